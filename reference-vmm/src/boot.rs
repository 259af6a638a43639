//! Everything the VMM writes before a guest's first instruction: identity page tables, GDT and
//! TSS, the boot-info page, and the vCPU state for 64-bit long mode at CPL3.
//!
//! The state is valid for VMX and SVM entry checks, not only for PVM: every segment is set
//! explicitly, TR holds a busy 64-bit TSS (type 11), LDTR is unusable, RFLAGS bit 1 is set.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use pageflip_abi::layout::*;
use pageflip_abi::PAGE_SIZE;

use crate::memory::GuestRam;

const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_US: u64 = 1 << 2;
const PTE_PCD: u64 = 1 << 4;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
const PTE_PS: u64 = 1 << 7;

/// `entry` with accessed set if present, and dirty too if it is a writable `leaf`: set up
/// front, as Linux does for its own direct map, so that neither the CPU nor a shadow MMU (such
/// as kvm_pvm's) ever has to set them. A shadow MMU maps a guest page whose dirty bit is clear
/// read-only and, for a 2 MiB page, moves it to a new shadow page when the first write sets
/// the bit: every 4 KiB page of it read before that write faults once more (measured: the
/// shared-memory receiver's 32-69 page faults in its measured phase, one per slot page read).
fn with_accessed_dirty(entry: u64, leaf: bool) -> u64 {
    match entry {
        e if e & PTE_P == 0 => e,
        e if leaf && e & PTE_RW != 0 => e | PTE_A | PTE_D,
        e => e | PTE_A,
    }
}

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Size of the 64-bit TSS minus one (its limit).
const TSS_LIMIT: u32 = 0x67;

// The GDT (7 entries) and the TSS fit below the page tables.
const _: () = assert!(GDT_GPA + 7 * 8 <= TSS_GPA && TSS_GPA + (TSS_LIMIT as u64) < PML4_GPA);

/// The leaf entry for the 4 KiB page at `gpa` in the first 2 MiB, or 0 (not present).
fn low_pte(gpa: u64) -> u64 {
    match gpa {
        // null page and stack guard: not present
        0 | STACK_GUARD_GPA => 0,
        // GDT, TSS, page tables, boot info: the guest may read them, not change them
        g if g < TRANSPORT_GPA => g | PTE_P | PTE_US,
        g => g | PTE_P | PTE_RW | PTE_US,
    }
}

/// The page-table pages of the identity map, as (GPA, 512 entries).
pub fn page_tables() -> Vec<(u64, [u64; 512])> {
    let mut pml4 = [0u64; 512];
    pml4[0] = PDPT_GPA | PTE_P | PTE_RW | PTE_US;
    let mut pdpt = [0u64; 512];
    let pds = IDENTITY_MAP_END / (1 << 30);
    for (i, e) in pdpt.iter_mut().enumerate().take(pds as usize) {
        *e = (PD_GPA + i as u64 * PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;
    }
    let mut tables = vec![(PML4_GPA, pml4), (PDPT_GPA, pdpt)];
    for pd_index in 0..pds {
        let mut pd = [0u64; 512];
        for (i, e) in pd.iter_mut().enumerate() {
            let gpa = (pd_index << 30) | ((i as u64) << 21);
            *e = if gpa == 0 {
                PT0_GPA | PTE_P | PTE_RW | PTE_US
            } else if (MMIO_BASE..MMIO_BASE + MMIO_SIZE).contains(&gpa) {
                gpa | PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD
            } else {
                gpa | PTE_P | PTE_RW | PTE_US | PTE_PS
            };
        }
        tables.push((PD_GPA + pd_index * PAGE_SIZE, pd));
    }
    let mut pt0 = [0u64; 512];
    for (i, e) in pt0.iter_mut().enumerate() {
        *e = low_pte(i as u64 * PAGE_SIZE);
    }
    tables.push((PT0_GPA, pt0));
    for (gpa, table) in &mut tables {
        for e in table.iter_mut() {
            // Leaves: every entry of the PT, and the 2 MiB pages of the PDs.
            *e = with_accessed_dirty(*e, *gpa == PT0_GPA || *e & PTE_PS != 0);
        }
    }
    tables
}

/// The GDT: null, ring-0 code and data, ring-3 code and data, then a 16-byte TSS descriptor.
pub fn gdt() -> [u64; 7] {
    let tss_base = TSS_GPA;
    let tss_low = u64::from(TSS_LIMIT & 0xffff)
        | ((tss_base & 0xff_ffff) << 16)
        | (0x8b << 40) // present, DPL 0, type 11: busy 64-bit TSS
        | ((tss_base >> 24 & 0xff) << 56);
    [
        0,
        0x00af_9b00_0000_ffff, // ring-0 code: L, P, DPL 0, execute/read, accessed
        0x00cf_9300_0000_ffff, // ring-0 data
        0x00af_fb00_0000_ffff, // ring-3 code: L, P, DPL 3
        0x00cf_f300_0000_ffff, // ring-3 data
        tss_low,
        tss_base >> 32,
    ]
}

/// Writes page tables, GDT and TSS into guest memory.
pub fn write_system_tables(ram: &GuestRam) -> bool {
    let mut ok = true;
    for (gpa, table) in page_tables() {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        ok &= ram.write_bytes(gpa, &bytes);
    }
    let gdt: Vec<u8> = gdt().iter().flat_map(|e| e.to_le_bytes()).collect();
    ok &= ram.write_bytes(GDT_GPA, &gdt);
    // TSS: all zero but the I/O map base, placed past the limit: no I/O bitmap, so any port
    // access from CPL3 faults.
    let mut tss = [0u8; TSS_LIMIT as usize + 1];
    tss[0x66..0x68].copy_from_slice(&((TSS_LIMIT + 1) as u16).to_le_bytes());
    ok &= ram.write_bytes(TSS_GPA, &tss);
    ok
}

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 11 } else { 3 }, // accessed, execute/read or read/write
        present: 1,
        dpl: (selector & 3) as u8,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Sets `sregs` for 64-bit long mode at CPL3 with this memory map.
pub fn long_mode_cpl3(sregs: &mut kvm_sregs) {
    sregs.cs = segment(SEL_USER_CODE, true);
    let data = segment(SEL_USER_DATA, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: TSS_GPA,
        limit: TSS_LIMIT,
        selector: SEL_TSS,
        type_: 11,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.ldt = kvm_segment {
        selector: 0,
        type_: 2,
        unusable: 1,
        ..Default::default()
    };
    sregs.gdt.base = GDT_GPA;
    sregs.gdt.limit = (gdt().len() * 8 - 1) as u16;
    // No IDT: an exception shuts the VM down (triple fault), which the VMM reports.
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_GPA;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA;
}

/// General registers at entry: RIP at the image entry, RSP at the stack top.
pub fn entry_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rsp: STACK_TOP,
        rflags: 0x2,
        ..Default::default()
    }
}

/// x87 and SSE state at reset values (FCW 0x37f, MXCSR 0x1f80).
pub fn fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(tables: &[(u64, [u64; 512])], va: u64) -> Option<(u64, u64)> {
        let get = |gpa: u64| tables.iter().find(|t| t.0 == gpa).map(|t| t.1);
        let pml4e = get(PML4_GPA)?[(va >> 39 & 511) as usize];
        if pml4e & PTE_P == 0 {
            return None;
        }
        let pdpte = get(pml4e & !0xfff)?[(va >> 30 & 511) as usize];
        if pdpte & PTE_P == 0 {
            return None;
        }
        let pde = get(pdpte & !0xfff)?[(va >> 21 & 511) as usize];
        if pde & PTE_P == 0 {
            return None;
        }
        if pde & PTE_PS != 0 {
            return Some((
                (pde & !0x1f_ffff & !(1 << 63)) | (va & 0x1f_ffff),
                pde & 0xfff,
            ));
        }
        let pte = get(pde & !0xfff)?[(va >> 12 & 511) as usize];
        if pte & PTE_P == 0 {
            return None;
        }
        Some(((pte & !0xfff) | (va & 0xfff), pte & 0xfff))
    }

    #[test]
    fn identity_map_with_guards_and_user_access() {
        let t = page_tables();
        for va in [
            0x9008,
            0x10_0000,
            0x1f_fff8,
            0x20_0000,
            0x1234_5678,
            MMIO_BASE + 0x38,
            IDENTITY_MAP_END - 8,
        ] {
            let (pa, flags) = walk(&t, va).unwrap_or_else(|| panic!("{va:#x} unmapped"));
            assert_eq!(pa, va, "identity");
            assert_ne!(flags & PTE_US, 0, "{va:#x} must be user-accessible");
        }
        assert!(walk(&t, 0).is_none(), "null page mapped");
        assert!(
            walk(&t, STACK_GUARD_GPA + 8).is_none(),
            "stack guard mapped"
        );
        assert!(walk(&t, IDENTITY_MAP_END).is_none());
        // system tables are read-only for the guest, transports' range is writable
        assert_eq!(walk(&t, PML4_GPA).unwrap().1 & PTE_RW, 0);
        assert_eq!(walk(&t, BOOT_INFO_GPA).unwrap().1 & PTE_RW, 0);
        assert_ne!(walk(&t, TRANSPORT_GPA).unwrap().1 & PTE_RW, 0);
        // every intermediate level is user-accessible too
        for (_, table) in &t {
            for e in table.iter().filter(|e| *e & PTE_P != 0 && *e & PTE_PS == 0) {
                if e & !0xfff >= PML4_GPA && e & !0xfff <= PT0_GPA {
                    assert_ne!(e & PTE_US, 0);
                }
            }
        }
    }

    #[test]
    fn accessed_and_dirty_are_set_up_front() {
        let t = page_tables();
        for va in [0x10_0000, 0x20_0000, 0xc020_1000, MMIO_BASE + 0x38] {
            let (_, flags) = walk(&t, va).unwrap();
            assert_eq!(
                flags & (PTE_A | PTE_D),
                PTE_A | PTE_D,
                "{va:#x}: {flags:#x}"
            );
        }
        // read-only pages are accessed, not dirty
        let (_, flags) = walk(&t, BOOT_INFO_GPA).unwrap();
        assert_eq!(flags & (PTE_A | PTE_D), PTE_A, "{flags:#x}");
        // every present entry of every level is accessed
        for (gpa, table) in &t {
            for e in table.iter().filter(|e| *e & PTE_P != 0) {
                assert_ne!(e & PTE_A, 0, "table {gpa:#x}: {e:#x}");
            }
        }
    }

    #[test]
    fn tables_fit_below_boot_info() {
        for (gpa, _) in page_tables() {
            assert!(
                gpa >= PML4_GPA && gpa + PAGE_SIZE <= BOOT_INFO_GPA,
                "{gpa:#x}"
            );
        }
    }

    #[test]
    fn gdt_descriptors_match_selectors() {
        let g = gdt();
        let dpl = |d: u64| (d >> 45) & 3;
        assert_eq!(dpl(g[(SEL_USER_CODE >> 3) as usize]), 3);
        assert_eq!(dpl(g[(SEL_USER_DATA >> 3) as usize]), 3);
        assert_eq!(dpl(g[(SEL_KERNEL_CODE >> 3) as usize]), 0);
        let tss = g[(SEL_TSS >> 3) as usize];
        assert_eq!((tss >> 40) & 0xf, 11, "busy 64-bit TSS");
        let base = ((tss >> 16) & 0xff_ffff) | (((tss >> 56) & 0xff) << 24) | (g[6] << 32);
        assert_eq!(base, TSS_GPA);
    }

    #[test]
    fn sregs_are_cpl3_long_mode() {
        let mut s = kvm_sregs::default();
        long_mode_cpl3(&mut s);
        assert_eq!(s.cs.dpl, 3);
        assert_eq!(s.ss.dpl, 3);
        assert_eq!(s.cs.selector & 3, 3);
        assert_eq!(s.cs.l, 1);
        assert_eq!(s.tr.type_, 11);
        assert_eq!(s.ldt.unusable, 1);
        assert_ne!(s.efer & EFER_LMA, 0);
        assert_ne!(s.cr4 & CR4_OSFXSR, 0);
    }
}
