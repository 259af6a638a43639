//! Host perf tracepoint counts around one benchmark run: how often `kvm:kvm_exit`,
//! `kvm:kvm_userspace_exit`, `tlb:tlb_flush` (or any other `subsystem:event`) fired, and for the
//! KVM exit tracepoints by exit reason.
//!
//! The counters are **system-wide and host-wide**: one perf event per online CPU with no pid
//! (`pid = -1`), because the VMM is a child process that creates its vCPU threads after it is
//! spawned. The runner runs one VMM at a time, so over a run the counts are that VMM's plus
//! whatever else the host did meanwhile (another VM, the kernel's own TLB flushes). Where it
//! matters, [`ReasonCounts::by_process`] separates the exits of each process.
//!
//! [`Tracepoints::open`] never fails as a whole: a tracepoint that cannot be opened is kept
//! with why ([`TracepointState::Unavailable`]: not root, tracefs not mounted, no such event on
//! this kernel). [`Tracepoints::start`] and [`Tracepoints::stop`] bracket one run and give a
//! [`TracepointCounts`]; [`Tracepoints::states`] says over the whole session whether each
//! tracepoint fired at all, for [`pageflip_results::Host::tracepoints`]: under kvm_pvm
//! `kvm:kvm_exit` never fires, and is reported [`TracepointState::Silent`], not 0.
//!
//! By reason: `kvm:kvm_exit` (field `exit_reason`, with `isa` 1 = VMX, 2 = SVM) and
//! `kvm:kvm_userspace_exit` (field `reason`, a `KVM_EXIT_*` number, and `errno`) are sampled
//! with period 1 and `PERF_SAMPLE_RAW` into a ring buffer per CPU, drained by a thread while
//! the run goes on; each raw record is decoded with the field offsets and sizes of the event's
//! `format` file in tracefs ([`EventFormat`]). Records the kernel drops (ring buffer full) are
//! counted in [`ReasonCounts::lost`] and make the breakdown incomplete; the totals come from
//! the counters themselves and are exact either way.
//!
//! Needs: root (or `CAP_PERFMON` with raw tracepoint access) and tracefs mounted
//! (`mount -t tracefs nodev /sys/kernel/tracing`; `/sys/kernel/debug/tracing` is tried too).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use perf_event::events::Tracepoint;
use perf_event::{Builder, Counter, SampleFlag, Sampler};
use serde::Serialize;

use pageflip_results::TracepointState;

/// Every VM exit, with its hardware exit reason (VMX or SVM). Not fired by kvm_pvm.
pub const KVM_EXIT: &str = "kvm:kvm_exit";
/// Every return of `KVM_RUN` to userspace, with its `KVM_EXIT_*` reason.
pub const KVM_USERSPACE_EXIT: &str = "kvm:kvm_userspace_exit";
/// Every host TLB flush (all CPUs, every cause, not only KVM's).
pub const TLB_FLUSH: &str = "tlb:tlb_flush";
/// The tracepoints the benchmark runner opens.
pub const RUNNER_TRACEPOINTS: &[&str] = &[KVM_EXIT, KVM_USERSPACE_EXIT, TLB_FLUSH];

/// Where tracefs is looked for, in order.
pub const TRACEFS_ROOTS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// The command that mounts tracefs where it is looked for first.
pub const MOUNT_TRACEFS: &str = "mount -t tracefs nodev /sys/kernel/tracing";

/// Bytes of ring buffer per CPU for a sampled tracepoint (a power of two; plus one page of
/// header). A `kvm_userspace_exit` sample takes 40 bytes, a `kvm_exit` sample 96.
const RING_BYTES: usize = 256 * 1024;
/// The drain thread is woken when this much of a ring buffer is used.
const WAKEUP_BYTES: usize = RING_BYTES / 4;
/// How long the drain thread waits between looks at its stop flag.
const POLL_MS: i32 = 10;

/// Why a tracepoint could not be opened (the text of [`TracepointState::Unavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The name is not `subsystem:event`.
    #[error("{0:?} is not a tracepoint name of the form subsystem:event")]
    BadName(String),
    /// No tracefs at any of [`TRACEFS_ROOTS`].
    #[error("tracefs is not mounted (no {tried}): {MOUNT_TRACEFS}")]
    NotMounted {
        /// The `events` directories looked for.
        tried: String,
    },
    /// tracefs is there but may not be read (it is root's only).
    #[error("cannot read {path} (tracefs is readable by root only: run as root): {source}")]
    NotPermitted {
        /// What could not be read.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel has no such tracepoint.
    #[error("no such event on this kernel (no {path})")]
    NoSuchEvent {
        /// The event's directory that is missing.
        path: PathBuf,
    },
    /// The event's `id` file could not be read or parsed.
    #[error("cannot read the tracepoint id from {path}: {why}")]
    BadId {
        /// The `id` file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The online CPUs could not be listed.
    #[error("cannot list the online CPUs from {path}: {why}")]
    Cpus {
        /// The file read.
        path: &'static str,
        /// What was wrong.
        why: String,
    },
    /// `perf_event_open` refused: not root.
    #[error(
        "perf_event_open on CPU {cpu}: permission denied: system-wide tracepoint counters need \
         root (or CAP_PERFMON); /proc/sys/kernel/perf_event_paranoid is {paranoid} ({source})"
    )]
    PerfPermission {
        /// The CPU.
        cpu: usize,
        /// `perf_event_paranoid`, or `unknown`.
        paranoid: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `perf_event_open` failed otherwise.
    #[error("perf_event_open on CPU {cpu}: {source}")]
    Perf {
        /// The CPU.
        cpu: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Why an event's `format` file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A `field:` line is not `field:<decl>; offset:N; size:N; signed:N;`.
    #[error("bad field line {0:?}")]
    BadField(String),
    /// The file has no `name:` line.
    #[error("no name: line")]
    NoName,
    /// The file has no (numeric) `ID:` line.
    #[error("no ID: line")]
    NoId,
    /// A field the decoder needs is missing or not an integer of 1, 2, 4 or 8 bytes.
    #[error("no integer field {0:?}")]
    NoField(String),
}

/// Why counting around a run failed.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    /// [`Tracepoints::start`] while counting already.
    #[error("the tracepoint counters are running already")]
    AlreadyStarted,
    /// [`Tracepoints::stop`] without a [`Tracepoints::start`].
    #[error("the tracepoint counters were not started")]
    NotStarted,
    /// A counter could not be reset, enabled, disabled or read.
    #[error("{tracepoint} on CPU {cpu}: cannot {what} the counter")]
    Counter {
        /// The tracepoint.
        tracepoint: String,
        /// The CPU.
        cpu: usize,
        /// `reset`, `enable`, `disable` or `read`.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The thread draining the sample buffers could not be started.
    #[error("cannot start the thread draining the tracepoint sample buffers")]
    Spawn(#[source] io::Error),
    /// The thread draining the sample buffers panicked.
    #[error("the thread draining the tracepoint sample buffers panicked")]
    Drainer,
}

/// The counts of one run (between [`Tracepoints::start`] and [`Tracepoints::stop`]): plain
/// data for the results file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TracepointCounts {
    /// Events per tracepoint that could be opened, summed over every CPU.
    pub totals: BTreeMap<String, u64>,
    /// By reason, for the tracepoints that have one ([`KVM_EXIT`], [`KVM_USERSPACE_EXIT`]).
    pub by_reason: BTreeMap<String, ReasonCounts>,
    /// Tracepoints that could not be opened, with why (absent from `totals`).
    pub unavailable: BTreeMap<String, String>,
    /// Tracepoints that have a total but no by-reason breakdown, with why.
    pub by_reason_unavailable: BTreeMap<String, String>,
}

impl TracepointCounts {
    /// The total of `tracepoint`, if it was counted.
    pub fn total(&self, tracepoint: &str) -> Option<u64> {
        self.totals.get(tracepoint).copied()
    }
}

/// One tracepoint's events by reason over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReasonCounts {
    /// Events by reason name (`mmio`, `io`, `ept_violation`, `npf`, ...; see
    /// [`kvm_exit_reason`] and [`userspace_exit_reason`]).
    pub reasons: BTreeMap<String, u64>,
    /// The same by process (the thread group id of the thread the event fired in).
    pub by_process: BTreeMap<u32, BTreeMap<String, u64>>,
    /// Records the kernel dropped (ring buffer full), plus records that could not be decoded.
    pub lost: u64,
    /// True if every event of the total is in `reasons` (nothing lost, the sums agree).
    pub complete: bool,
}

/// A parsed tracefs `format` file: the layout of the event's raw record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    /// The event's name (`kvm_exit`).
    pub name: String,
    /// Its tracepoint id.
    pub id: u64,
    /// Its fields, common ones first, in file order.
    pub fields: Vec<FormatField>,
}

/// One field of a raw tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    /// Its name (`exit_reason`).
    pub name: String,
    /// Its C declaration (`unsigned int exit_reason`).
    pub decl: String,
    /// Byte offset in the raw record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Whether it is a signed integer.
    pub signed: bool,
}

impl EventFormat {
    /// Parses the text of `events/<sys>/<event>/format`.
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name:") {
                name = Some(n.trim().to_string());
            } else if let Some(n) = line.strip_prefix("ID:") {
                id = Some(n.trim().parse().map_err(|_| FormatError::NoId)?);
            } else if line.starts_with("field:") {
                fields.push(FormatField::parse(line)?);
            }
        }
        Ok(EventFormat {
            name: name.ok_or(FormatError::NoName)?,
            id: id.ok_or(FormatError::NoId)?,
            fields,
        })
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FormatField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field called `name` if it is an integer [`FormatField::read`] can read.
    fn int_field(&self, name: &str) -> Result<FormatField, FormatError> {
        self.field(name)
            .filter(|f| matches!(f.size, 1 | 2 | 4 | 8))
            .cloned()
            .ok_or_else(|| FormatError::NoField(name.to_string()))
    }
}

impl FormatField {
    /// Parses `field:<decl>;\toffset:N;\tsize:N;\tsigned:N;`.
    fn parse(line: &str) -> Result<FormatField, FormatError> {
        let bad = || FormatError::BadField(line.to_string());
        let mut decl = None;
        let (mut offset, mut size, mut signed) = (None, None, None);
        for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once(':').ok_or_else(bad)?;
            let number = || value.trim().parse::<usize>().map_err(|_| bad());
            match key.trim() {
                "field" => decl = Some(value.trim().to_string()),
                "offset" => offset = Some(number()?),
                "size" => size = Some(number()?),
                "signed" => signed = Some(number()? != 0),
                _ => {}
            }
        }
        let decl = decl.ok_or_else(bad)?;
        // The name is the declaration's last identifier once every `[...]` is gone:
        // `unsigned long guest_rip`, `char comm[16]`, `__data_loc char[] filename`.
        let mut plain = String::with_capacity(decl.len());
        let mut depth = 0usize;
        for c in decl.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        let name = plain
            .split_whitespace()
            .last()
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(bad)?
            .to_string();
        Ok(FormatField {
            name,
            decl,
            offset: offset.ok_or_else(bad)?,
            size: size.ok_or_else(bad)?,
            signed: signed.ok_or_else(bad)?,
        })
    }

    /// The field's value in `raw` (little-endian), sign-extended if it is signed; `None` if
    /// `raw` is too short or the field is not an integer of 1, 2, 4 or 8 bytes.
    pub fn read(&self, raw: &[u8]) -> Option<i128> {
        if !matches!(self.size, 1 | 2 | 4 | 8) {
            return None;
        }
        let bytes = raw.get(self.offset..self.offset.checked_add(self.size)?)?;
        let mut buf = [0u8; 8];
        buf[..self.size].copy_from_slice(bytes);
        let unsigned = u64::from_le_bytes(buf);
        Some(if self.signed {
            let shift = 64 - 8 * self.size as u32;
            i128::from(((unsigned << shift) as i64) >> shift)
        } else {
            i128::from(unsigned)
        })
    }
}

/// Parses a kernel CPU list (`0-3,6,8-9`).
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The `KVM_ISA_VMX` value of `kvm_exit`'s `isa` field.
pub const ISA_VMX: u32 = 1;
/// The `KVM_ISA_SVM` value of `kvm_exit`'s `isa` field.
pub const ISA_SVM: u32 = 2;

/// VMX basic exit reasons (Intel SDM vol. 3 appendix C; the kernel's `VMX_EXIT_REASONS`).
const VMX_EXIT_REASONS: &[(u32, &str)] = &[
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
const SVM_EXIT_CODES: &[(u32, &str)] = &[
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
const KVM_EXIT_REASONS: &[(u32, &str)] = {
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

fn lookup(table: &[(u32, &'static str)], n: u32) -> Option<&'static str> {
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

/// How the raw records of a by-reason tracepoint are decoded.
#[derive(Clone, Debug)]
enum Decoder {
    KvmExit {
        exit_reason: FormatField,
        isa: FormatField,
    },
    UserspaceExit {
        reason: FormatField,
        errno: FormatField,
    },
}

impl Decoder {
    /// The decoder for `tracepoint`, one of those [`has_reasons`] is true of.
    fn for_tracepoint(tracepoint: &str, format: &EventFormat) -> Result<Decoder, FormatError> {
        if tracepoint == KVM_EXIT {
            Ok(Decoder::KvmExit {
                exit_reason: format.int_field("exit_reason")?,
                isa: format.int_field("isa")?,
            })
        } else {
            Ok(Decoder::UserspaceExit {
                reason: format.int_field("reason")?,
                errno: format.int_field("errno")?,
            })
        }
    }

    /// The reason of one raw record, `None` if it is too short.
    fn reason(&self, raw: &[u8]) -> Option<Cow<'static, str>> {
        Some(match self {
            Decoder::KvmExit { exit_reason, isa } => {
                kvm_exit_reason(isa.read(raw)? as u32, exit_reason.read(raw)? as u32)
            }
            Decoder::UserspaceExit { reason, errno } => {
                userspace_exit_reason(reason.read(raw)? as u32, errno.read(raw)? as i32)
            }
        })
    }
}

/// A by-reason tracepoint's samplers (one per CPU) and what they gave so far.
struct Sampled {
    point: usize,
    decoder: Decoder,
    samplers: Vec<(usize, Sampler)>,
    tally: ReasonCounts,
}

impl Sampled {
    /// Reads every record in the ring buffers.
    fn drain(&mut self) {
        for (_, sampler) in &mut self.samplers {
            while let Some(record) = sampler.next_record() {
                match record.parse_record() {
                    Ok(perf_event::data::Record::Sample(sample)) => {
                        match sample.raw().and_then(|raw| self.decoder.reason(raw)) {
                            Some(reason) => {
                                bump(&mut self.tally.reasons, &reason);
                                let process = self
                                    .tally
                                    .by_process
                                    .entry(sample.pid().unwrap_or(0))
                                    .or_default();
                                bump(process, &reason);
                            }
                            None => self.tally.lost += 1,
                        }
                    }
                    Ok(perf_event::data::Record::Lost(lost)) => self.tally.lost += lost.lost,
                    Ok(_) => {}
                    Err(_) => self.tally.lost += 1,
                }
            }
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// What one tracepoint is.
enum State {
    Unavailable(String),
    /// Counted by plain counters, one per CPU; with why it has no reasons, if it should.
    Counting(Vec<(usize, Counter)>, Option<String>),
    /// Counted and sampled: its samplers are in [`Tracepoints::sampled`].
    Sampled,
}

struct Point {
    name: String,
    state: State,
    session_total: u64,
}

/// The thread that drains the sample buffers during a run.
struct Drainer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Host perf tracepoints, counted system-wide (every CPU, every process) around runs.
pub struct Tracepoints {
    points: Vec<Point>,
    /// The sampled tracepoints, shared with the drain thread during a run.
    sampled: Arc<Mutex<Vec<Sampled>>>,
    /// Between `start` and `stop`.
    running: bool,
    drainer: Option<Drainer>,
}

impl std::fmt::Debug for Tracepoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.states().iter().map(|(k, v)| (k.clone(), v.clone())))
            .finish()
    }
}

impl Tracepoints {
    /// Opens the tracepoints `names` (`subsystem:event`) on every online CPU, disabled. One
    /// that cannot be opened is kept as [`TracepointState::Unavailable`] with why.
    pub fn open(names: &[&str]) -> Tracepoints {
        let roots: Vec<PathBuf> = TRACEFS_ROOTS.iter().map(PathBuf::from).collect();
        Tracepoints::open_in(&roots, names)
    }

    /// [`Tracepoints::open`] with tracefs looked for at `tracefs_roots` instead of
    /// [`TRACEFS_ROOTS`].
    pub fn open_in(tracefs_roots: &[PathBuf], names: &[&str]) -> Tracepoints {
        let mut points = Vec::new();
        let mut sampled = Vec::new();
        for &name in names {
            let state = match open_one(tracefs_roots, name) {
                Err(e) => State::Unavailable(e.to_string()),
                Ok(Opened::Counting(counters, why)) => State::Counting(counters, why),
                Ok(Opened::Sampled(decoder, samplers)) => {
                    sampled.push(Sampled {
                        point: points.len(),
                        decoder,
                        samplers,
                        tally: ReasonCounts::default(),
                    });
                    State::Sampled
                }
            };
            points.push(Point {
                name: name.to_string(),
                state,
                session_total: 0,
            });
        }
        Tracepoints {
            points,
            sampled: Arc::new(Mutex::new(sampled)),
            running: false,
            drainer: None,
        }
    }

    /// Each tracepoint's state over the session so far: [`TracepointState::Fired`] if it
    /// counted at least one event in any run, [`TracepointState::Silent`] if not,
    /// [`TracepointState::Unavailable`] if it could not be opened.
    pub fn states(&self) -> BTreeMap<String, TracepointState> {
        self.points
            .iter()
            .map(|p| {
                let state = match &p.state {
                    State::Unavailable(reason) => TracepointState::Unavailable {
                        reason: reason.clone(),
                    },
                    _ if p.session_total > 0 => TracepointState::Fired,
                    _ => TracepointState::Silent,
                };
                (p.name.clone(), state)
            })
            .collect()
    }

    /// Resets and enables every counter: the start of one run.
    pub fn start(&mut self) -> Result<(), CountError> {
        if self.running {
            return Err(CountError::AlreadyStarted);
        }
        let mut fds = Vec::new();
        {
            let mut sampled = lock(&self.sampled);
            for s in sampled.iter_mut() {
                s.tally = ReasonCounts::default();
                let name = &self.points[s.point].name;
                for (cpu, sampler) in &mut s.samplers {
                    // Records of an earlier window left in the buffer (none normally: `stop`
                    // drains after disabling) are not this run's.
                    while sampler.next_record().is_some() {}
                    reset_enable(name, *cpu, sampler)?;
                    fds.push(sampler.as_raw_fd());
                }
            }
        }
        for p in &mut self.points {
            if let State::Counting(counters, _) = &mut p.state {
                for (cpu, counter) in counters {
                    reset_enable(&p.name, *cpu, counter)?;
                }
            }
        }
        self.running = true;
        if !fds.is_empty() {
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, sampled) = (Arc::clone(&stop), Arc::clone(&self.sampled));
            let handle = std::thread::Builder::new()
                .name("tracepoint-drain".into())
                .spawn(move || drain_until(&sampled, fds, &flag))
                .map_err(CountError::Spawn)?;
            self.drainer = Some(Drainer { stop, handle });
        }
        Ok(())
    }

    /// Disables every counter and reads it: the counts since [`Tracepoints::start`].
    pub fn stop(&mut self) -> Result<TracepointCounts, CountError> {
        if !self.running {
            return Err(CountError::NotStarted);
        }
        self.running = false;
        let drained = self.stop_drainer();
        let mut counts = TracepointCounts::default();
        let mut first_error = drained.err();
        for p in &mut self.points {
            match &mut p.state {
                State::Unavailable(why) => {
                    counts.unavailable.insert(p.name.clone(), why.clone());
                }
                State::Counting(counters, why) => {
                    match disable_read(&p.name, counters.iter_mut().map(|(c, x)| (*c, x))) {
                        Ok(total) => {
                            p.session_total += total;
                            counts.totals.insert(p.name.clone(), total);
                            if let Some(why) = why {
                                counts
                                    .by_reason_unavailable
                                    .insert(p.name.clone(), why.clone());
                            }
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                State::Sampled => {}
            }
        }
        for s in lock(&self.sampled).iter_mut() {
            let p = &mut self.points[s.point];
            let samplers = s.samplers.iter_mut();
            match disable_read(&p.name, samplers.map(|(cpu, x)| (*cpu, &mut **x))) {
                Ok(total) => {
                    // Every record of the run is in the buffers once the samplers are off.
                    s.drain();
                    p.session_total += total;
                    counts.totals.insert(p.name.clone(), total);
                    let decoded: u64 = s.tally.reasons.values().sum();
                    s.tally.complete = s.tally.lost == 0 && decoded == total;
                    counts
                        .by_reason
                        .insert(p.name.clone(), std::mem::take(&mut s.tally));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(counts),
        }
    }

    /// Stops and joins the drain thread, if it runs.
    fn stop_drainer(&mut self) -> Result<(), CountError> {
        match self.drainer.take() {
            Some(drainer) => {
                drainer.stop.store(true, Ordering::Release);
                drainer.handle.join().map_err(|_| CountError::Drainer)
            }
            None => Ok(()),
        }
    }
}

impl Drop for Tracepoints {
    fn drop(&mut self) {
        // A panic of the thread has been reported on stderr; the counters close either way.
        let _ = self.stop_drainer();
    }
}

/// The sampled tracepoints; a panic of the drain thread leaves them usable (their tallies
/// are counts, never half-updated structures).
fn lock(sampled: &Mutex<Vec<Sampled>>) -> MutexGuard<'_, Vec<Sampled>> {
    sampled
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The error of operation `what` on the counter of tracepoint `name` on `cpu`.
fn counter_error<'a>(
    name: &'a str,
    cpu: usize,
    what: &'static str,
) -> impl FnOnce(io::Error) -> CountError + 'a {
    move |source| CountError::Counter {
        tracepoint: name.to_string(),
        cpu,
        what,
        source,
    }
}

fn reset_enable(name: &str, cpu: usize, counter: &mut Counter) -> Result<(), CountError> {
    let err = |what| counter_error(name, cpu, what);
    counter.reset().map_err(err("reset"))?;
    counter.enable().map_err(err("enable"))
}

fn disable_read<'a>(
    name: &str,
    counters: impl Iterator<Item = (usize, &'a mut Counter)>,
) -> Result<u64, CountError> {
    let mut total = 0;
    for (cpu, counter) in counters {
        let err = |what| counter_error(name, cpu, what);
        counter.disable().map_err(err("disable"))?;
        total += counter.read().map_err(err("read"))?;
    }
    Ok(total)
}

/// The drain thread: empties the ring buffers whenever one of `fds` is a quarter full (and
/// every [`POLL_MS`]) until told to stop.
fn drain_until(sampled: &Mutex<Vec<Sampled>>, fds: Vec<RawFd>, stop: &AtomicBool) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .into_iter()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Acquire) {
        for s in lock(sampled).iter_mut() {
            s.drain();
        }
        // SAFETY: `pollfds` is a valid, exclusively borrowed array of `pollfds.len()` pollfds.
        // Their descriptors are the samplers', which stay open while this thread runs: they
        // are dropped only with the `Tracepoints`, which stops and joins this thread first.
        // The result is not needed: every buffer is drained after the call either way.
        unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, POLL_MS) };
    }
}

enum Opened {
    Counting(Vec<(usize, Counter)>, Option<String>),
    Sampled(Decoder, Vec<(usize, Sampler)>),
}

/// Finds `name`'s event directory in tracefs.
fn event_dir(tracefs_roots: &[PathBuf], name: &str) -> Result<PathBuf, OpenError> {
    let (sys, event) = name
        .split_once(':')
        .filter(|(s, e)| {
            let ok = |x: &str| !x.is_empty() && !x.contains(['/', ':']) && x != "." && x != "..";
            ok(s) && ok(e)
        })
        .ok_or_else(|| OpenError::BadName(name.to_string()))?;
    let mut tried = Vec::new();
    for root in tracefs_roots {
        let events = root.join("events");
        match std::fs::metadata(&events) {
            Ok(m) if m.is_dir() => {
                let dir = events.join(sys).join(event);
                return match std::fs::metadata(&dir) {
                    Ok(_) => Ok(dir),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        Err(OpenError::NotPermitted {
                            path: dir,
                            source: e,
                        })
                    }
                    Err(_) => Err(OpenError::NoSuchEvent { path: dir }),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(OpenError::NotPermitted {
                    path: events,
                    source: e,
                })
            }
            _ => tried.push(events.display().to_string()),
        }
    }
    Err(OpenError::NotMounted {
        tried: tried.join(" or "),
    })
}

fn read_file(path: &Path) -> Result<String, OpenError> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => OpenError::NotPermitted {
            path: path.to_path_buf(),
            source: e,
        },
        _ => OpenError::BadId {
            path: path.to_path_buf(),
            why: e.to_string(),
        },
    })
}

fn online_cpus() -> Result<Vec<usize>, OpenError> {
    const PATH: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(PATH).map_err(|e| OpenError::Cpus {
        path: PATH,
        why: e.to_string(),
    })?;
    parse_cpu_list(&text).ok_or_else(|| OpenError::Cpus {
        path: PATH,
        why: format!("not a CPU list: {:?}", text.trim()),
    })
}

fn perf_error(cpu: usize, source: io::Error) -> OpenError {
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => OpenError::PerfPermission {
            cpu,
            paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            source,
        },
        _ => OpenError::Perf { cpu, source },
    }
}

fn open_one(tracefs_roots: &[PathBuf], name: &str) -> Result<Opened, OpenError> {
    let dir = event_dir(tracefs_roots, name)?;
    let id_path = dir.join("id");
    let id: u64 = read_file(&id_path)?
        .trim()
        .parse()
        .map_err(|e| OpenError::BadId {
            path: id_path.clone(),
            why: format!("{e}"),
        })?;
    let cpus = online_cpus()?;
    let mut builder = Builder::new(Tracepoint::with_id(id));
    // Tracepoints fire in the kernel: counting only user mode (the builder's default) would
    // count nothing.
    builder.any_pid().exclude_kernel(false);
    let counting = |builder: &mut Builder<'_>| {
        cpus.iter()
            .map(|&cpu| {
                builder
                    .one_cpu(cpu)
                    .build()
                    .map(|c| (cpu, c))
                    .map_err(|e| perf_error(cpu, e))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    if !has_reasons(name) {
        return Ok(Opened::Counting(counting(&mut builder)?, None));
    }
    let format_path = dir.join("format");
    let decoder = match std::fs::read_to_string(&format_path)
        .map_err(|e| format!("cannot read {}: {e}", format_path.display()))
        .and_then(|text| {
            EventFormat::parse(&text)
                .and_then(|format| Decoder::for_tracepoint(name, &format))
                .map_err(|e| format!("{}: {e}", format_path.display()))
        }) {
        Ok(decoder) => decoder,
        Err(why) => return Ok(Opened::Counting(counting(&mut builder)?, Some(why))),
    };
    let mut sampling = builder.clone();
    sampling
        .sample_period(1)
        .sample(SampleFlag::RAW | SampleFlag::TID)
        .wakeup_watermark(WAKEUP_BYTES);
    let samplers = cpus
        .iter()
        .map(|&cpu| {
            let counter = sampling
                .one_cpu(cpu)
                .build()
                .map_err(|e| format!("cannot sample raw records: {}", perf_error(cpu, e)))?;
            counter.sampled(RING_BYTES).map(|s| (cpu, s)).map_err(|e| {
                format!("cannot map a {RING_BYTES}-byte ring buffer on CPU {cpu}: {e}")
            })
        })
        .collect::<Result<Vec<_>, String>>();
    match samplers {
        Ok(samplers) => Ok(Opened::Sampled(decoder, samplers)),
        // Sampling raw records may be refused where counting is not (it needs more
        // privilege, and locked memory): count only, and say why there are no reasons.
        Err(why) => Ok(Opened::Counting(counting(&mut builder)?, Some(why))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `format` files copied verbatim from this project's test host (kernel 6.18, kvm_pvm).
    const KVM_EXIT_FORMAT: &str = include_str!("fixtures/kvm_exit.format");
    const USERSPACE_EXIT_FORMAT: &str =
        include_str!("fixtures/kvm_userspace_exit.format");
    const TLB_FLUSH_FORMAT: &str = include_str!("fixtures/tlb_flush.format");
    const SCHED_PROCESS_EXEC_FORMAT: &str =
        include_str!("fixtures/sched_process_exec.format");

    fn field(format: &EventFormat, name: &str) -> (usize, usize, bool) {
        let f = format
            .field(name)
            .unwrap_or_else(|| panic!("no field {name}"));
        (f.offset, f.size, f.signed)
    }

    #[test]
    fn parses_the_kvm_exit_format() {
        let f = EventFormat::parse(KVM_EXIT_FORMAT).unwrap();
        assert_eq!(f.name, "kvm_exit");
        assert_eq!(f.id, 103);
        assert_eq!(f.fields.len(), 13);
        assert_eq!(field(&f, "common_type"), (0, 2, false));
        assert_eq!(field(&f, "common_pid"), (4, 4, true));
        assert_eq!(field(&f, "exit_reason"), (8, 4, false));
        assert_eq!(field(&f, "guest_rip"), (16, 8, false));
        assert_eq!(field(&f, "isa"), (24, 4, false));
        assert_eq!(field(&f, "requests"), (64, 8, false));
        assert_eq!(
            f.field("exit_reason").unwrap().decl,
            "unsigned int exit_reason"
        );
        assert!(f.field("REC").is_none());
    }

    #[test]
    fn parses_the_userspace_exit_and_tlb_flush_formats() {
        let f = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("kvm_userspace_exit", 42));
        assert_eq!(field(&f, "reason"), (8, 4, false));
        assert_eq!(field(&f, "errno"), (12, 4, true));
        let f = EventFormat::parse(TLB_FLUSH_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("tlb_flush", 188));
        assert_eq!(field(&f, "reason"), (8, 4, true));
        assert_eq!(field(&f, "pages"), (16, 8, false));
    }

    #[test]
    fn parses_array_and_data_loc_fields_and_rejects_bad_files() {
        let f = EventFormat::parse(SCHED_PROCESS_EXEC_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sched_process_exec", 365));
        assert_eq!(field(&f, "filename"), (8, 4, false));
        assert_eq!(
            f.field("filename").unwrap().decl,
            "__data_loc char[] filename"
        );
        assert_eq!(field(&f, "old_pid"), (16, 4, true));
        let f = EventFormat::parse(
            "name: x\nID: 7\nformat:\n\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:1;\n",
        )
        .unwrap();
        assert_eq!(field(&f, "comm"), (8, 16, true));
        assert_eq!(
            f.field("comm").unwrap().read(&[0; 64]),
            None,
            "not an integer"
        );
        let no_size = "name: x\nID: 7\n\tfield:int a;\toffset:8;\tsigned:1;\n";
        assert!(matches!(
            EventFormat::parse(no_size),
            Err(FormatError::BadField(_))
        ));
        let bad_offset = "name: x\nID: 7\n\tfield:int a;\toffset:eight;\tsize:4;\tsigned:1;\n";
        assert!(matches!(
            EventFormat::parse(bad_offset),
            Err(FormatError::BadField(_))
        ));
        assert_eq!(EventFormat::parse("name: x\n"), Err(FormatError::NoId));
        assert_eq!(EventFormat::parse("ID: 3\n"), Err(FormatError::NoName));
        let f = EventFormat::parse(TLB_FLUSH_FORMAT).unwrap();
        assert!(matches!(
            Decoder::for_tracepoint(KVM_USERSPACE_EXIT, &f),
            Err(FormatError::NoField(n)) if n == "errno"
        ));
    }

    #[test]
    fn reads_fields_little_endian_and_sign_extends() {
        let f = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        let mut raw = vec![0u8; 16];
        raw[8..12].copy_from_slice(&0xffff_fffeu32.to_le_bytes());
        raw[12..16].copy_from_slice(&(-4i32).to_le_bytes());
        assert_eq!(f.field("reason").unwrap().read(&raw), Some(0xffff_fffe));
        assert_eq!(f.field("errno").unwrap().read(&raw), Some(-4));
        assert_eq!(f.field("errno").unwrap().read(&raw[..15]), None);
        let byte = FormatField {
            name: "b".into(),
            decl: "char b".into(),
            offset: 0,
            size: 1,
            signed: true,
        };
        assert_eq!(byte.read(&[0x80]), Some(-128));
    }

    /// A raw record of `format` with `values` written at their fields.
    fn record(format: &EventFormat, values: &[(&str, u64)]) -> Vec<u8> {
        let mut raw = vec![0u8; 72];
        for (name, v) in values {
            let f = format.field(name).unwrap();
            raw[f.offset..f.offset + f.size].copy_from_slice(&v.to_le_bytes()[..f.size]);
        }
        raw
    }

    #[test]
    fn decodes_raw_records_by_reason() {
        let ue = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        let d = Decoder::for_tracepoint(KVM_USERSPACE_EXIT, &ue).unwrap();
        let reason = |values: &[(&str, u64)]| d.reason(&record(&ue, values)).unwrap();
        assert_eq!(reason(&[("reason", 6), ("errno", 0)]), "mmio");
        assert_eq!(reason(&[("reason", 2), ("errno", 0)]), "io");
        assert_eq!(reason(&[("reason", 8), ("errno", 0)]), "shutdown");
        assert_eq!(
            reason(&[("reason", 6), ("errno", (-4i32) as u32 as u64)]),
            "restart"
        );
        assert_eq!(
            reason(&[("reason", 6), ("errno", (-14i32) as u32 as u64)]),
            "error"
        );
        assert_eq!(reason(&[("reason", 999), ("errno", 0)]), "exit_999");
        assert_eq!(d.reason(&[0; 12]), None, "too short");

        let ke = EventFormat::parse(KVM_EXIT_FORMAT).unwrap();
        let d = Decoder::for_tracepoint(KVM_EXIT, &ke).unwrap();
        let reason = |values: &[(&str, u64)]| d.reason(&record(&ke, values)).unwrap();
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 48)]), "ept_violation");
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 49)]), "ept_misconfig");
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 30)]), "io_instruction");
        assert_eq!(
            reason(&[("isa", 1), ("exit_reason", 0x8000_0021)]),
            "failed_vmentry_invalid_state"
        );
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 99)]), "vmx_99");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x400)]), "npf");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x7b)]), "io");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x4e)]), "excp_pf");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x1234)]), "svm_0x1234");
        assert_eq!(reason(&[("isa", 3), ("exit_reason", 5)]), "isa3_5");
    }

    /// `{ value, "NAME" }` pairs of a `__print_symbolic` list.
    fn symbols(list: &str) -> Vec<(i64, String)> {
        list.split('{')
            .skip(1)
            .map(|item| {
                let (value, rest) = item.split_once(',').unwrap();
                let name: String = rest
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .collect::<Vec<_>>()
                    .concat();
                let value = value.trim();
                let n = match value.split_once('+') {
                    Some((a, b)) => parse_c(a) + parse_c(b),
                    None => parse_c(value),
                };
                (n, name)
            })
            .collect()
    }

    fn parse_c(s: &str) -> i64 {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
            None => s.parse().unwrap(),
        }
    }

    /// The kernel's name as this module spells it: lower case, `_` for spaces and dashes,
    /// `PF excp` as `excp_pf`.
    fn normalized(kernel: &str) -> String {
        let lower = kernel.to_lowercase().replace([' ', '-'], "_");
        match lower.strip_suffix("_excp") {
            Some(x) => format!("excp_{x}"),
            None => lower,
        }
    }

    #[test]
    fn the_reason_tables_agree_with_the_kernels_print_formats() {
        let print = KVM_EXIT_FORMAT.split("print fmt:").nth(1).unwrap();
        let vmx = print
            .split("__print_symbolic(REC->exit_reason & 0xffff,")
            .nth(1)
            .unwrap()
            .split(") :")
            .next()
            .unwrap();
        let svm = print
            .split("__print_symbolic(REC->exit_reason,")
            .nth(1)
            .unwrap()
            .split("), (REC")
            .next()
            .unwrap();
        let vmx = symbols(vmx);
        assert_eq!(vmx.len(), VMX_EXIT_REASONS.len());
        for (n, name) in vmx {
            assert_eq!(
                kvm_exit_reason(ISA_VMX, n as u32),
                normalized(&name),
                "VMX {n}"
            );
        }
        let svm = symbols(svm);
        assert_eq!(svm.len(), SVM_EXIT_CODES.len());
        for (n, name) in svm {
            assert_eq!(
                kvm_exit_reason(ISA_SVM, n as u32),
                normalized(&name),
                "SVM {n:#x}"
            );
        }
        let print = USERSPACE_EXIT_FORMAT.split("print fmt:").nth(1).unwrap();
        let list = print.split("__print_symbolic(REC->reason,").nth(1).unwrap();
        let list = list.split("), REC->errno").next().unwrap();
        let exits = symbols(list);
        assert_eq!(
            exits.len(),
            31,
            "this kernel's tracepoint names KVM_EXIT_ 0 to 30"
        );
        for (n, name) in exits {
            let name = name.strip_prefix("KVM_EXIT_").unwrap().to_lowercase();
            assert_eq!(userspace_exit_reason(n as u32, 0), name, "KVM_EXIT {n}");
        }
        assert_eq!(
            userspace_exit_reason(kvm_bindings::KVM_EXIT_MMIO, 0),
            "mmio"
        );
        assert_eq!(kvm_bindings::KVM_EXIT_MMIO, 6);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("4-2"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    fn reason_of(t: &Tracepoints, name: &str) -> String {
        match t.states().remove(name) {
            Some(TracepointState::Unavailable { reason }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn says_why_a_tracepoint_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let roots = [dir.path().join("tracing"), dir.path().join("debug/tracing")];
        let t = Tracepoints::open_in(&roots, &[KVM_EXIT, "nocolon"]);
        let why = reason_of(&t, KVM_EXIT);
        assert!(why.contains("tracefs is not mounted"), "{why}");
        assert!(why.contains(MOUNT_TRACEFS), "{why}");
        assert!(
            why.contains("debug/tracing/events"),
            "both roots tried: {why}"
        );
        assert!(reason_of(&t, "nocolon").contains("subsystem:event"));

        std::fs::create_dir_all(roots[1].join("events/kvm/kvm_exit")).unwrap();
        std::fs::write(roots[1].join("events/kvm/kvm_exit/id"), "not a number\n").unwrap();
        let mut t = Tracepoints::open_in(&roots, &[KVM_EXIT, "kvm:no_such_event", "a:/b"]);
        let why = reason_of(&t, KVM_EXIT);
        assert!(why.contains("cannot read the tracepoint id"), "{why}");
        let why = reason_of(&t, "kvm:no_such_event");
        assert!(why.contains("no such event on this kernel"), "{why}");
        assert!(
            why.contains("debug/tracing/events/kvm/no_such_event"),
            "{why}"
        );
        assert!(reason_of(&t, "a:/b").contains("not a tracepoint name"));

        // Nothing to count: a run still works and says why each is missing.
        assert!(matches!(t.stop(), Err(CountError::NotStarted)));
        t.start().unwrap();
        assert!(matches!(t.start(), Err(CountError::AlreadyStarted)));
        let counts = t.stop().unwrap();
        assert!(counts.totals.is_empty());
        assert_eq!(counts.unavailable.len(), 3);
        assert_eq!(counts.total(KVM_EXIT), None);
        assert!(counts.unavailable[KVM_EXIT].contains("tracepoint id"));
    }
}
