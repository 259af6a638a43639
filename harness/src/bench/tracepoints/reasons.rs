//! The exit-reason tables: VMX basic exit reasons, SVM exit codes and `KVM_EXIT_*` numbers,
//! and the names `kvm:kvm_exit` and `kvm:kvm_userspace_exit` records are counted under.

use std::borrow::Cow;

use super::{KVM_EXIT, KVM_USERSPACE_EXIT};

/// The `KVM_ISA_VMX` value of `kvm_exit`'s `isa` field.
pub const ISA_VMX: u32 = 1;
/// The `KVM_ISA_SVM` value of `kvm_exit`'s `isa` field.
pub const ISA_SVM: u32 = 2;

/// VMX basic exit reasons (Intel SDM vol. 3 appendix C; the kernel's `VMX_EXIT_REASONS`).
pub(super) const VMX_EXIT_REASONS: &[(u32, &str)] = &[
    (0, "exception_nmi"),
    (1, "external_interrupt"),
    (2, "triple_fault"),
    (3, "init_signal"),
    (4, "sipi_signal"),
    (7, "interrupt_window"),
    (8, "nmi_window"),
    (9, "task_switch"),
    (10, "cpuid"),
    (12, "hlt"),
    (13, "invd"),
    (14, "invlpg"),
    (15, "rdpmc"),
    (16, "rdtsc"),
    (18, "vmcall"),
    (19, "vmclear"),
    (20, "vmlaunch"),
    (21, "vmptrld"),
    (22, "vmptrst"),
    (23, "vmread"),
    (24, "vmresume"),
    (25, "vmwrite"),
    (26, "vmoff"),
    (27, "vmon"),
    (28, "cr_access"),
    (29, "dr_access"),
    (30, "io_instruction"),
    (31, "msr_read"),
    (32, "msr_write"),
    (33, "invalid_state"),
    (34, "msr_load_fail"),
    (36, "mwait_instruction"),
    (37, "monitor_trap_flag"),
    (39, "monitor_instruction"),
    (40, "pause_instruction"),
    (41, "mce_during_vmentry"),
    (43, "tpr_below_threshold"),
    (44, "apic_access"),
    (45, "eoi_induced"),
    (46, "gdtr_idtr"),
    (47, "ldtr_tr"),
    (48, "ept_violation"),
    (49, "ept_misconfig"),
    (50, "invept"),
    (51, "rdtscp"),
    (52, "preemption_timer"),
    (53, "invvpid"),
    (54, "wbinvd"),
    (55, "xsetbv"),
    (56, "apic_write"),
    (57, "rdrand"),
    (58, "invpcid"),
    (59, "vmfunc"),
    (60, "encls"),
    (61, "rdseed"),
    (62, "pml_full"),
    (63, "xsaves"),
    (64, "xrstors"),
    (67, "umwait"),
    (68, "tpause"),
    (74, "bus_lock"),
    (75, "notify"),
    (77, "tdcall"),
    (84, "msr_read_imm"),
    (85, "msr_write_imm"),
];

/// SVM exit codes (AMD APM vol. 2 appendix C; the kernel's `SVM_EXIT_REASONS`).
pub(super) const SVM_EXIT_CODES: &[(u32, &str)] = &[
    (0x0, "read_cr0"),
    (0x2, "read_cr2"),
    (0x3, "read_cr3"),
    (0x4, "read_cr4"),
    (0x8, "read_cr8"),
    (0x10, "write_cr0"),
    (0x12, "write_cr2"),
    (0x13, "write_cr3"),
    (0x14, "write_cr4"),
    (0x18, "write_cr8"),
    (0x20, "read_dr0"),
    (0x21, "read_dr1"),
    (0x22, "read_dr2"),
    (0x23, "read_dr3"),
    (0x24, "read_dr4"),
    (0x25, "read_dr5"),
    (0x26, "read_dr6"),
    (0x27, "read_dr7"),
    (0x30, "write_dr0"),
    (0x31, "write_dr1"),
    (0x32, "write_dr2"),
    (0x33, "write_dr3"),
    (0x34, "write_dr4"),
    (0x35, "write_dr5"),
    (0x36, "write_dr6"),
    (0x37, "write_dr7"),
    (0x40, "excp_de"),
    (0x41, "excp_db"),
    (0x43, "excp_bp"),
    (0x44, "excp_of"),
    (0x45, "excp_br"),
    (0x46, "excp_ud"),
    (0x47, "excp_nm"),
    (0x48, "excp_df"),
    (0x4a, "excp_ts"),
    (0x4b, "excp_np"),
    (0x4c, "excp_ss"),
    (0x4d, "excp_gp"),
    (0x4e, "excp_pf"),
    (0x50, "excp_mf"),
    (0x51, "excp_ac"),
    (0x52, "excp_mc"),
    (0x53, "excp_xf"),
    (0x60, "interrupt"),
    (0x61, "nmi"),
    (0x62, "smi"),
    (0x63, "init"),
    (0x64, "vintr"),
    (0x65, "cr0_sel_write"),
    (0x66, "read_idtr"),
    (0x67, "read_gdtr"),
    (0x68, "read_ldtr"),
    (0x69, "read_rt"),
    (0x6a, "write_idtr"),
    (0x6b, "write_gdtr"),
    (0x6c, "write_ldtr"),
    (0x6d, "write_rt"),
    (0x6e, "rdtsc"),
    (0x6f, "rdpmc"),
    (0x70, "pushf"),
    (0x71, "popf"),
    (0x72, "cpuid"),
    (0x73, "rsm"),
    (0x74, "iret"),
    (0x75, "swint"),
    (0x76, "invd"),
    (0x77, "pause"),
    (0x78, "hlt"),
    (0x79, "invlpg"),
    (0x7a, "invlpga"),
    (0x7b, "io"),
    (0x7c, "msr"),
    (0x7d, "task_switch"),
    (0x7e, "ferr_freeze"),
    (0x7f, "shutdown"),
    (0x80, "vmrun"),
    (0x81, "hypercall"),
    (0x82, "vmload"),
    (0x83, "vmsave"),
    (0x84, "stgi"),
    (0x85, "clgi"),
    (0x86, "skinit"),
    (0x87, "rdtscp"),
    (0x88, "icebp"),
    (0x89, "wbinvd"),
    (0x8a, "monitor"),
    (0x8b, "mwait"),
    (0x8d, "xsetbv"),
    (0x8f, "write_efer_trap"),
    (0x90, "write_cr0_trap"),
    (0x94, "write_cr4_trap"),
    (0x98, "write_cr8_trap"),
    (0xa2, "invpcid"),
    (0xa5, "buslock"),
    (0xa6, "idle_halt"),
    (0x400, "npf"),
    (0x401, "avic_incomplete_ipi"),
    (0x402, "avic_unaccelerated_access"),
    (0x403, "vmgexit"),
    (0x8000_0001, "vmgexit_mmio_read"),
    (0x8000_0002, "vmgexit_mmio_write"),
    (0x8000_0003, "vmgexit_nmi_complete"),
    (0x8000_0004, "vmgexit_ap_hlt_loop"),
    (0x8000_0005, "vmgexit_ap_jump_table"),
    (0x8000_0010, "vmgexit_page_state_change"),
    (0x8000_0011, "vmgexit_guest_request"),
    (0x8000_0012, "vmgexit_ext_guest_request"),
    (0x8000_0013, "vmgexit_ap_creation"),
    (0x8000_fffd, "vmgexit_hypervisor_feature"),
    (0xffff_ffff, "invalid_guest_state"),
];

/// `KVM_EXIT_*` reasons of `struct kvm_run` (`linux/kvm.h`).
pub(super) const KVM_EXIT_REASONS: &[(u32, &str)] = {
    use kvm_bindings::*;
    &[
        (KVM_EXIT_UNKNOWN, "unknown"),
        (KVM_EXIT_EXCEPTION, "exception"),
        (KVM_EXIT_IO, "io"),
        (KVM_EXIT_HYPERCALL, "hypercall"),
        (KVM_EXIT_DEBUG, "debug"),
        (KVM_EXIT_HLT, "hlt"),
        (KVM_EXIT_MMIO, "mmio"),
        (KVM_EXIT_IRQ_WINDOW_OPEN, "irq_window_open"),
        (KVM_EXIT_SHUTDOWN, "shutdown"),
        (KVM_EXIT_FAIL_ENTRY, "fail_entry"),
        (KVM_EXIT_INTR, "intr"),
        (KVM_EXIT_SET_TPR, "set_tpr"),
        (KVM_EXIT_TPR_ACCESS, "tpr_access"),
        (KVM_EXIT_S390_SIEIC, "s390_sieic"),
        (KVM_EXIT_S390_RESET, "s390_reset"),
        (KVM_EXIT_DCR, "dcr"),
        (KVM_EXIT_NMI, "nmi"),
        (KVM_EXIT_INTERNAL_ERROR, "internal_error"),
        (KVM_EXIT_OSI, "osi"),
        (KVM_EXIT_PAPR_HCALL, "papr_hcall"),
        (KVM_EXIT_S390_UCONTROL, "s390_ucontrol"),
        (KVM_EXIT_WATCHDOG, "watchdog"),
        (KVM_EXIT_S390_TSCH, "s390_tsch"),
        (KVM_EXIT_EPR, "epr"),
        (KVM_EXIT_SYSTEM_EVENT, "system_event"),
        (KVM_EXIT_S390_STSI, "s390_stsi"),
        (KVM_EXIT_IOAPIC_EOI, "ioapic_eoi"),
        (KVM_EXIT_HYPERV, "hyperv"),
        (KVM_EXIT_ARM_NISV, "arm_nisv"),
        (KVM_EXIT_X86_RDMSR, "x86_rdmsr"),
        (KVM_EXIT_X86_WRMSR, "x86_wrmsr"),
        (KVM_EXIT_DIRTY_RING_FULL, "dirty_ring_full"),
        (KVM_EXIT_AP_RESET_HOLD, "ap_reset_hold"),
        (KVM_EXIT_X86_BUS_LOCK, "x86_bus_lock"),
        (KVM_EXIT_XEN, "xen"),
        (KVM_EXIT_RISCV_SBI, "riscv_sbi"),
        (KVM_EXIT_RISCV_CSR, "riscv_csr"),
        (KVM_EXIT_NOTIFY, "notify"),
        (KVM_EXIT_LOONGARCH_IOCSR, "loongarch_iocsr"),
        (KVM_EXIT_MEMORY_FAULT, "memory_fault"),
    ]
};

pub(super) fn lookup(table: &[(u32, &'static str)], n: u32) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == n).map(|(_, name)| *name)
}

/// The name of a `kvm:kvm_exit` reason: VMX (`isa` 1) basic exit reasons by their SDM names
/// (`ept_violation`, `io_instruction`; a failed VM entry as `failed_vmentry_<reason>`), SVM
/// (`isa` 2) exit codes by the kernel's names (`npf`, `io`, `excp_pf`), anything else as
/// `vmx_<n>`, `svm_0x<hex>` or `isa<isa>_<n>`.
pub fn kvm_exit_reason(isa: u32, exit_reason: u32) -> Cow<'static, str> {
    match isa {
        ISA_VMX => {
            let basic = exit_reason & 0xffff;
            let name = lookup(VMX_EXIT_REASONS, basic)
                .map_or_else(|| Cow::Owned(format!("vmx_{basic}")), Cow::Borrowed);
            if exit_reason & 0x8000_0000 != 0 {
                Cow::Owned(format!("failed_vmentry_{name}"))
            } else {
                name
            }
        }
        ISA_SVM => lookup(SVM_EXIT_CODES, exit_reason).map_or_else(
            || Cow::Owned(format!("svm_{exit_reason:#x}")),
            Cow::Borrowed,
        ),
        _ => Cow::Owned(format!("isa{isa}_{exit_reason}")),
    }
}

/// The name of a `kvm:kvm_userspace_exit` reason: the `KVM_EXIT_*` name in lower case
/// without the prefix (`mmio`, `io`, `shutdown`), `exit_<n>` for one this table lacks; when
/// `KVM_RUN` failed (`errno` < 0) the reason field is stale and the name is `restart` for
/// `-EINTR` (a signal interrupted the run) and `error` otherwise.
pub fn userspace_exit_reason(reason: u32, errno: i32) -> Cow<'static, str> {
    if errno == -libc::EINTR {
        Cow::Borrowed("restart")
    } else if errno < 0 {
        Cow::Borrowed("error")
    } else {
        lookup(KVM_EXIT_REASONS, reason)
            .map_or_else(|| Cow::Owned(format!("exit_{reason}")), Cow::Borrowed)
    }
}

/// Whether `tracepoint` is counted by reason ([`KVM_EXIT`], [`KVM_USERSPACE_EXIT`]).
pub fn has_reasons(tracepoint: &str) -> bool {
    matches!(tracepoint, KVM_EXIT | KVM_USERSPACE_EXIT)
}
