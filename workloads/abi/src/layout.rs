//! The guest physical memory map. Guest memory starts at GPA 0 and is identity mapped
//! (virtual address == guest physical address) by page tables the VMM builds.
//!
//! ```text
//! 0x0000_0000  null page                      not mapped: a null access faults
//! 0x0000_1000  GDT (0x1000) and TSS (0x1800)  read-only for the guest
//! 0x0000_2000  PML4, PDPT, 4 PDs, PT0         read-only for the guest
//! 0x0000_9000  boot-info page                 read-only for the guest
//! 0x0000_a000  reserved for transports        read-write (control structures)
//! 0x000f_f000  stack guard page               not mapped
//! 0x0010_0000  stack (grows down from 0x20_0000)
//! 0x0020_0000  guest image (ELF PT_LOAD segments), then free memory up to mem_size
//! mem_size     not backed: an access is an MMIO exit no device owns, the VM is stopped
//! 0xf000_0000  the pageflip MMIO device (one page)
//! 4 GiB        end of the identity map: above it nothing is mapped
//! ```

/// GPA of the global descriptor table.
pub const GDT_GPA: u64 = 0x1000;
/// GPA of the 64-bit task state segment.
pub const TSS_GPA: u64 = 0x1800;
/// GPA of the top-level page table (CR3).
pub const PML4_GPA: u64 = 0x2000;
/// GPA of the page-directory-pointer table.
pub const PDPT_GPA: u64 = 0x3000;
/// GPA of the first of four page directories (2 MiB pages, 4 GiB in all).
pub const PD_GPA: u64 = 0x4000;
/// GPA of the 4 KiB page table that maps the first 2 MiB.
pub const PT0_GPA: u64 = 0x8000;
/// GPA of the boot-info page ([`crate::BootInfo`]).
pub const BOOT_INFO_GPA: u64 = 0x9000;
/// First GPA of the range reserved for transports' control structures.
pub const TRANSPORT_GPA: u64 = 0xa000;
/// GPA of the unmapped page below the stack.
pub const STACK_GUARD_GPA: u64 = 0xf_f000;
/// Lowest GPA of the stack.
pub const STACK_BOTTOM: u64 = 0x10_0000;
/// Initial stack pointer (the stack grows down from here).
pub const STACK_TOP: u64 = 0x20_0000;
/// Lowest GPA a guest image may load at; everything below belongs to the VMM.
pub const IMAGE_BASE: u64 = 0x20_0000;
/// Smallest guest memory size.
pub const MIN_MEM_SIZE: u64 = 4 << 20;
/// Largest guest memory size (memory must end below the MMIO device).
pub const MAX_MEM_SIZE: u64 = 3 << 30;
/// Guest memory sizes are multiples of this (one 2 MiB page).
pub const MEM_ALIGN: u64 = 2 << 20;
/// GPA of the pageflip MMIO device.
pub const MMIO_BASE: u64 = 0xf000_0000;
/// Size of the pageflip MMIO device.
pub const MMIO_SIZE: u64 = 0x1000;
/// End of the identity map.
pub const IDENTITY_MAP_END: u64 = 4 << 30;

/// GDT selector of the ring-0 code segment.
pub const SEL_KERNEL_CODE: u16 = 0x08;
/// GDT selector of the ring-0 data segment.
pub const SEL_KERNEL_DATA: u16 = 0x10;
/// GDT selector (with RPL 3) of the ring-3 code segment.
pub const SEL_USER_CODE: u16 = 0x18 | 3;
/// GDT selector (with RPL 3) of the ring-3 data segment.
pub const SEL_USER_DATA: u16 = 0x20 | 3;
/// GDT selector of the TSS descriptor (16 bytes).
pub const SEL_TSS: u16 = 0x28;
