//! The run result a VMM build writes: per-VM status, console, records, samples, KVM stats.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::INTERFACE_VERSION;

/// The result of one run (version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    /// [`INTERFACE_VERSION`].
    pub version: u32,
    /// Which VMM build produced this.
    pub vmm: VmmIdentity,
    /// The host it ran on.
    pub host: HostInfo,
    /// How the run as a whole ended.
    pub outcome: RunOutcome,
    /// Wall time from the start of the VMM process to the end of the run, in microseconds.
    pub wall_us: u64,
    /// One entry per configured VM, in config order.
    pub vms: Vec<VmResult>,
    /// What the transport did, for runs with one (`null` for transport `none`).
    #[serde(default)]
    pub transport: Option<TransportReport>,
}

/// What a run's transport did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportReport {
    /// The transport's kind, as in the config (`remap`, `copy`).
    pub kind: String,
    /// Per VM, in config order.
    pub vms: Vec<TransportVmReport>,
    /// The page-ownership audit taken at the end of the run (remap IPC).
    pub ownership: Option<OwnershipAudit>,
    /// With config `pre_fault`: `on`, or `unavailable: ` and why (the host lacks
    /// `KVM_CAP_PRE_FAULT_MEMORY`, or KVM refused the ioctl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_fault: Option<String>,
}

/// Transport counters of one VM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportVmReport {
    /// Messages this VM sent that were delivered.
    pub sent: u64,
    /// Messages delivered to this VM.
    pub received: u64,
    /// Pages moved out of this VM by remapping.
    pub pages_remapped: u64,
    /// Bytes copied out of this VM (copy transport).
    pub bytes_copied: u64,
    /// Host mapping operations for this VM's outgoing messages: every `mmap` and every
    /// `fallocate` the VMM made to move them (remap variants; 0 for copy).
    #[serde(default)]
    pub map_ops: u64,
    /// Pages of this VM's landing extents pre-faulted after remaps (config `pre_fault`).
    #[serde(default)]
    pub pre_faulted_pages: u64,
    /// Nanoseconds the VMM spent moving this VM's outgoing messages (host remaps, or copies).
    pub move_ns: u64,
    /// Drains of this VM's send ring that consumed at least one descriptor.
    pub drains: u64,
    /// Doorbell writes by kind (`send`, `flush`).
    pub doorbells: BTreeMap<String, u64>,
    /// This VM's refused descriptors by status name (`queue_full`, `bad_address`, ...).
    pub refused: BTreeMap<String, u64>,
    /// The virtio device's counters (virtio transport only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtio: Option<VirtioVmReport>,
}

/// What the virtio datagram device of one VM saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtioVmReport {
    /// How notifications reached the device: `ioeventfd` or `userspace`.
    pub notify: String,
    /// The features the driver accepted (FEATURES_OK), if it got that far.
    pub features: Option<u64>,
    /// Whether VIRTIO_F_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// Driver-to-device notifications of the tx queue the device received (QueueNotify
    /// exits, or the sum of the ioeventfd's counter).
    pub tx_notifications: u64,
    /// Driver-to-device notifications of the rx queue.
    pub rx_notifications: u64,
    /// Used-buffer notifications the device would have sent (the spec's rules, EVENT_IDX
    /// included); guests poll the used rings, so none is delivered as an interrupt.
    pub used_notifications: u64,
    /// Used-buffer notifications the driver suppressed.
    pub used_suppressed: u64,
    /// Tx chains consumed.
    pub tx_chains: u64,
    /// Rx chains filled.
    pub rx_chains: u64,
    /// Tx chains completed with a status other than ok, by status name.
    pub tx_errors: BTreeMap<String, u64>,
    /// Times the device set DEVICE_NEEDS_RESET.
    pub needs_reset: u64,
    /// Device resets by the driver (status 0 written).
    pub resets: u64,
}

/// Who owns every page of the run's page pool, checked at the end of the run: every page
/// belongs to exactly one VM or to the free list, and no page is mapped twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipAudit {
    /// Pages per owner: VM names and `free`.
    pub pages_per_owner: BTreeMap<String, u64>,
    /// Pages in the pool in all (their sum).
    pub total_pages: u64,
    /// Every inconsistency found (a page mapped twice, mapped by a VM that does not own it,
    /// owned but mapped nowhere, ...); must be empty.
    pub violations: Vec<String>,
}

/// Name and version of a VMM build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmmIdentity {
    /// e.g. `pageflip-reference-vmm`.
    pub name: String,
    /// The build's version (and git revision if known).
    pub version: String,
}

/// Facts about the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInfo {
    /// `kvm_intel`, `kvm_amd`, `kvm_pvm` or `unknown`.
    pub kvm_flavour: String,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// The vCPUs' TSC frequency in kHz, if KVM reports it.
    pub tsc_khz: Option<u64>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every VM stopped by itself (done, or died) or was stopped after another failed.
    Completed,
    /// The watchdog stopped the run.
    Timeout,
}

/// The result of one VM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmResult {
    /// The VM's id (index in the config).
    pub id: u32,
    /// The VM's name.
    pub name: String,
    /// How the VM ended.
    pub status: VmStatus,
    /// For a VM that died: what happened, its registers and last console lines.
    pub death: Option<DeathReport>,
    /// Everything the guest printed.
    pub console: String,
    /// The guest's result records, in order.
    pub records: Vec<Record>,
    /// Counts of the records by kind.
    pub summary: Summary,
    /// Samples the guest reported, in order.
    pub samples: Vec<u64>,
    /// Doorbell writes over the whole run.
    pub doorbells: u64,
    /// Requests the VMM refused (bad guest input), in order: the first
    /// `GUEST_ERRORS_LISTED` (1000) of each device.
    pub guest_errors: Vec<GuestError>,
    /// Every request the VMM refused, counted (`guest_errors` is complete when its length
    /// equals this).
    pub guest_errors_total: u64,
    /// Microseconds from the VMM process start to the guest's first MMIO access.
    pub boot_us: Option<u64>,
    /// Microseconds from the VMM process start to the guest's first result record.
    pub first_record_us: Option<u64>,
    /// KVM statistics.
    pub stats: Stats,
}

/// How a VM ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum VmStatus {
    /// The guest wrote its exit code to the done register.
    Done {
        /// The exit code (0 = success).
        exit_code: u64,
    },
    /// The VM shut down (e.g. a triple fault: a guest exception with no handler).
    Shutdown,
    /// KVM reported an internal error (e.g. an instruction it could not emulate).
    InternalError {
        /// KVM's suberror code.
        suberror: u32,
    },
    /// KVM failed to enter the guest.
    FailEntry {
        /// Hardware entry failure reason.
        reason: u64,
    },
    /// The guest accessed a GPA that is neither its memory nor a device.
    UnownedMmio {
        /// The address.
        gpa: u64,
        /// A write (true) or a read.
        write: bool,
    },
    /// An exit the VMM does not handle.
    UnexpectedExit {
        /// What KVM said.
        exit: String,
    },
    /// The watchdog stopped the VM.
    Timeout,
    /// Stopped because another VM of the run failed (`stop_on_failure`).
    Stopped,
    /// The VMM failed while running this VM (e.g. an ioctl error).
    VmmError {
        /// What failed.
        message: String,
    },
}

impl VmStatus {
    /// True for a guest that finished with exit code 0.
    pub fn is_success(&self) -> bool {
        matches!(self, VmStatus::Done { exit_code: 0 })
    }
}

/// What the VMM saw when a VM died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeathReport {
    /// One line: what happened.
    pub message: String,
    /// vCPU registers at death, by name (rip, rsp, rflags, rax…, cr0, cr2, cr3, cr4, efer, cs, cpl).
    pub registers: BTreeMap<String, u64>,
    /// The guest's last console lines (at most 10).
    pub console_tail: Vec<String>,
}

/// One result record of a guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The check's name.
    pub name: String,
    /// Pass, fail or skip.
    pub status: RecordStatus,
    /// What was expected and what was seen.
    pub message: String,
}

/// Kind of a result record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Skipped.
    Skip,
}

/// Counts of records by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Passed records.
    pub pass: u64,
    /// Failed records.
    pub fail: u64,
    /// Skipped records.
    pub skip: u64,
}

impl Summary {
    /// Counts the records by kind.
    pub fn of(records: &[Record]) -> Summary {
        let mut s = Summary::default();
        for r in records {
            match r.status {
                RecordStatus::Pass => s.pass += 1,
                RecordStatus::Fail => s.fail += 1,
                RecordStatus::Skip => s.skip += 1,
            }
        }
        s
    }
}

/// A request from the guest that the VMM refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestError {
    /// Register name (see `pageflip_abi::mmio::register_name`).
    pub register: String,
    /// The status left in the STATUS register (`pageflip_abi::mmio::Status::name`).
    pub status: String,
    /// What was wrong.
    pub detail: String,
}

/// KVM binary statistics of one VM (its vCPU and its VM fd).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Whether the host offers binary stats (`KVM_CAP_BINARY_STATS_FD`) at all.
    pub available: bool,
    /// Change over the measured phase the guest marked (PHASE_BEGIN to PHASE_END), if it did.
    pub measured: Option<StatsDelta>,
    /// Change over the whole run (vCPU creation to the end of the run).
    pub run: Option<StatsDelta>,
    /// Well-known counters this host does not expose. They are absent from the maps above:
    /// unavailable, not zero.
    pub unavailable: Vec<String>,
}

/// Counter changes over an interval. Cumulative counters give the increase; instant and peak
/// counters give the value at the end of the interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsDelta {
    /// vCPU counters.
    pub vcpu: BTreeMap<String, u64>,
    /// VM counters.
    pub vm: BTreeMap<String, u64>,
}

impl StatsDelta {
    /// The counter `name`: the vCPU's, else the VM's; `None` where the host does not keep
    /// it (unavailable, never 0). Every reader of a KVM counter from a result goes through
    /// here.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.vcpu.get(name).or_else(|| self.vm.get(name)).copied()
    }
}

/// Why a result document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// Not JSON or not of the documented shape.
    #[error("not a valid run result: {0}")]
    Json(#[source] serde_json::Error),
    /// A version this code does not read.
    #[error(
        "result version {found} is not supported (this harness reads version {INTERFACE_VERSION})"
    )]
    Version {
        /// The version the document gives.
        found: u64,
    },
}

impl RunResult {
    /// Parses a result document, checking its version first.
    pub fn from_json(text: &str) -> Result<RunResult, ResultError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(ResultError::Json)?;
        let found = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if found != u64::from(INTERFACE_VERSION) {
            return Err(ResultError::Version { found });
        }
        serde_json::from_value(value).map_err(ResultError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_shape_is_tagged() {
        let s = serde_json::to_string(&VmStatus::Done { exit_code: 3 }).unwrap();
        assert_eq!(s, r#"{"state":"done","exit_code":3}"#);
        let u: VmStatus =
            serde_json::from_str(r#"{"state":"unowned_mmio","gpa":4096,"write":false}"#).unwrap();
        assert_eq!(
            u,
            VmStatus::UnownedMmio {
                gpa: 4096,
                write: false
            }
        );
        assert!(!u.is_success());
    }

    #[test]
    fn summary_counts_by_kind() {
        let r = |status| Record {
            name: "x".into(),
            status,
            message: String::new(),
        };
        let s = Summary::of(&[
            r(RecordStatus::Pass),
            r(RecordStatus::Fail),
            r(RecordStatus::Pass),
        ]);
        assert_eq!((s.pass, s.fail, s.skip), (2, 1, 0));
    }

    #[test]
    fn rejects_other_versions() {
        assert!(matches!(
            RunResult::from_json(r#"{"version":7}"#),
            Err(ResultError::Version { found: 7 })
        ));
    }
}
