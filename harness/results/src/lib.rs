//! The benchmark results file: what `bench run` writes and `report` and `report compare` read
//! (`docs/results.md` documents every field; [`SCHEMA_VERSION`] changes when a field's meaning
//! does).
//!
//! One file is one invocation of the runner: where and when it ran, the host and which counters
//! it maintains, the VMM build, the floor measured in the same run, and per case its parameters
//! and every metric — each with the value of every repetition and their [`Summary`]. A metric
//! the host could not measure is absent from the case's `metrics` and named in its
//! `unavailable` list: unavailable, never 0.

pub mod stats;

use std::collections::BTreeMap;
use std::path::Path;

use pageflip_interface::TransportConfig;
use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// The `schema` field of every results file.
pub const SCHEMA: &str = "pageflip-results";

/// The version of the schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`] of the writer.
    pub version: u32,
    /// What was run, when, from which revision.
    pub run: RunInfo,
    /// The host.
    pub host: Host,
    /// The VMM build measured.
    pub vmm: VmmBuild,
    /// The floor, measured in the same run.
    pub floor: Floor,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseResult>,
}

/// What was run, when, from which revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// A name for the run, unique enough for a directory (`<date>-<profile>`, e.g.
    /// `20261124T101500Z-quick`).
    pub id: String,
    /// UTC start time, RFC 3339 (`2026-11-24T10:15:00Z`).
    pub date: String,
    /// `git rev-parse HEAD` of the harness's source tree, if it was built from a git checkout.
    pub git_revision: Option<String>,
    /// Whether that tree had uncommitted changes.
    pub git_dirty: bool,
    /// The profile (`quick`, `nightly`, `full`) or the matrix file's path.
    pub profile: String,
    /// The command line that made the file.
    pub command: String,
    /// Measured repetitions per case.
    pub repetitions: u32,
    /// Warm-up runs per case, not recorded.
    pub warmup: u32,
    /// Whether vCPU threads were pinned (VM i to host CPU i mod cores).
    pub pinned: bool,
    /// True if the run was stopped (Ctrl-C) before every case finished: the cases present
    /// are complete, the rest are missing.
    pub interrupted: bool,
    /// Wall-clock seconds the run took.
    pub duration_s: f64,
}

/// The host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// CPU model name.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `kvm_intel`, `kvm_amd`, `kvm_pvm` or `unknown`.
    pub kvm_flavour: String,
    /// The vCPUs' TSC frequency (kHz) every tick count is converted with, if known.
    pub tsc_khz: Option<u64>,
    /// Where `tsc_khz` came from (`KVM_GET_TSC_KHZ`).
    pub tsc_source: String,
    /// KVM binary-stats counters the host maintains (those the runner reads).
    pub counters: Vec<String>,
    /// Counters the runner reads that this host does not maintain.
    pub unavailable_counters: Vec<String>,
    /// Perf tracepoints by name (`kvm:kvm_exit`, `tlb:tlb_flush`, ...): whether they could be
    /// opened and fired during the run, or why not.
    pub tracepoints: BTreeMap<String, TracepointState>,
}

/// Whether a perf tracepoint could be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum TracepointState {
    /// Opened and fired at least once during the run.
    Fired,
    /// Opened but never fired while the cases ran (e.g. `kvm:kvm_exit` on kvm_pvm): its
    /// metrics are reported unavailable, not 0.
    Silent,
    /// Could not be opened.
    Unavailable {
        /// Why (not root, tracefs not mounted, no such event, ...).
        reason: String,
    },
}

/// The VMM build measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmmBuild {
    /// Name the VMM reports (`vmm.name` of its results).
    pub name: String,
    /// Version it reports.
    pub version: String,
    /// `builtin` or the path given with `--vmm`.
    pub path: String,
    /// SHA-256 of the VMM executable, hex.
    pub sha256: Option<String>,
    /// Arguments added to every run (e.g. an injected slowdown), empty normally.
    pub args: Vec<String>,
}

/// The floor: the cheapest operations every transport is built from, measured in the same run,
/// each a metric with one value per repetition. Keys of `metrics`: see [`floor`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    /// The floor metrics by name.
    pub metrics: BTreeMap<String, Metric>,
    /// Floor metrics that could not be measured here, with why.
    pub unavailable: BTreeMap<String, String>,
}

/// The case id that names the floor where a case id is expected (`report compare`,
/// `report history --metric floor:exit_ns`).
pub const FLOOR_CASE: &str = "floor";

/// Names of the floor metrics (all in nanoseconds per operation).
pub mod floor {
    /// One bare MMIO exit round trip to the VMM (guest write, userspace exit, re-entry).
    pub const EXIT_NS: &str = "exit_ns";
    /// One MMIO write handled in the kernel by an ioeventfd (no userspace exit).
    pub const IOEVENTFD_EXIT_NS: &str = "ioeventfd_exit_ns";
    /// One memcpy of 4 KiB on the host.
    pub const MEMCPY_4K_NS: &str = "memcpy_4k_ns";
    /// One host page remap (the VMM's own timing of its remaps).
    pub const REMAP_NS: &str = "remap_ns";
}

/// The parameters of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    /// `stream`, `pingpong` or `fanin`.
    pub workload: String,
    /// [`TransportConfig::name`] (`remap`, `copy`, `virtio-ioeventfd`, `shmem`, ...).
    pub transport: String,
    /// The transport as the VMM config gives it.
    pub transport_config: TransportConfig,
    /// `immediate`, `deferred`, `event-idx`, `no-event-idx` or `polling`.
    pub policy: String,
    /// Message size, bytes.
    pub size: u64,
    /// Batch size of the deferred policy (1 = immediate; 0 where the transport has none).
    pub batch: u64,
    /// VMs in the run.
    pub vms: usize,
    /// Messages per repetition (all senders together; ping-pong: round trips).
    pub messages: u64,
    /// Virtio messages in flight per queue (0 for the other transports).
    pub depth: u64,
    /// How much of each payload the receiver reads: [`TOUCH_ALL`] (default, also of files
    /// written before the field existed), `header` (the first 64 bytes) or `none`.
    #[serde(default = "touch_all")]
    pub touch: String,
}

/// [`CaseParams::touch`] of a receiver that reads the whole payload (the default).
pub const TOUCH_ALL: &str = "all";

fn touch_all() -> String {
    TOUCH_ALL.to_string()
}

/// One case: its parameters, and every metric over the repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    /// `<workload>/<transport>/<policy>/<size>B/b<batch>/<vms>vm[/touch-<touch>]`, unique in a file and
    /// stable across files (what `report compare` matches cases by).
    pub id: String,
    /// The parameters.
    pub params: CaseParams,
    /// Metrics by name (see [`metric`]).
    pub metrics: BTreeMap<String, Metric>,
    /// Metrics the host could not measure for this case, with why: unavailable, not 0.
    pub unavailable: BTreeMap<String, String>,
    /// Latency distribution of all measured repetitions pooled (ping-pong one-way latency,
    /// stream inter-arrival time), if the workload records one.
    pub latency: Option<LatencyDistribution>,
    /// The same quantity counted by independent sources; disagreements are kept here.
    pub cross_checks: Vec<CrossCheck>,
    /// Repetitions that failed (a VM failed, the VMM crashed), with why; their values are
    /// not in `metrics`.
    #[serde(default)]
    pub errors: Vec<String>,
}

/// One metric: the value of every measured repetition and their summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Unit (`ns`, `exits/msg`, `msg/s`, `MiB/s`, `ratio`, ...).
    pub unit: String,
    /// Whether a larger value is better (throughput) or worse (latency, exits).
    pub higher_is_better: bool,
    /// One value per measured repetition, in order.
    pub values: Vec<f64>,
    /// Mean, median, std, min, max and 95% confidence interval of `values`.
    pub summary: Summary,
}

impl Metric {
    /// A metric of `values` with its summary.
    pub fn new(unit: &str, higher_is_better: bool, values: Vec<f64>) -> Metric {
        Metric {
            unit: unit.to_string(),
            higher_is_better,
            summary: Summary::of(&values),
            values,
        }
    }
}

/// Names of the case metrics. Per-message metrics divide by [`CaseParams::messages`]; counts
/// are over the measured phase of every VM of the run together, without the phase-marker
/// writes.
pub mod metric {
    /// Messages per repetition.
    pub const MESSAGES: &str = "messages";
    /// Payload bytes per repetition.
    pub const BYTES: &str = "bytes";
    /// VM exits of every kind per message (KVM `exits`).
    pub const EXITS_PER_MSG: &str = "exits_per_msg";
    /// Exits to userspace per message (KVM `mmio_exits` + `io_exits`).
    pub const USERSPACE_EXITS_PER_MSG: &str = "userspace_exits_per_msg";
    /// Prefix of exits by kind per message from KVM's binary stats: `exits_by_kind.<counter>`
    /// for each `*_exits` counter the host keeps (`mmio_exits`, `io_exits`, `irq_exits`,
    /// `halt_exits`, ...) and `exits_by_kind.in_kernel` (`exits` minus all of those).
    pub const EXITS_BY_KIND: &str = "exits_by_kind.";
    /// Prefix of exits by exit reason per message from perf's `kvm:kvm_exit` (whole run, where
    /// the host fires it): `exit_reason.<reason>`.
    pub const EXIT_REASON: &str = "exit_reason.";
    /// Notifications (doorbell writes, virtio QueueNotify) the senders' drivers made per
    /// message, counted by the guests.
    pub const NOTIFICATIONS_PER_MSG: &str = "notifications_per_msg";
    /// vCPU TLB flushes per message (KVM `tlb_flush`).
    pub const TLB_FLUSHES_PER_MSG: &str = "tlb_flushes_per_msg";
    /// vCPU TLB flushes per page moved (remap only).
    pub const TLB_FLUSHES_PER_PAGE: &str = "tlb_flushes_per_page";
    /// Remote TLB flush requests per message (KVM `remote_tlb_flush_requests`).
    pub const REMOTE_TLB_FLUSHES_PER_MSG: &str = "remote_tlb_flushes_per_msg";
    /// Remote TLB flush requests per page moved (remap only).
    pub const REMOTE_TLB_FLUSHES_PER_PAGE: &str = "remote_tlb_flushes_per_page";
    /// Host TLB flushes (perf `tlb:tlb_flush`, every CPU, whole run) per message.
    pub const HOST_TLB_FLUSHES_PER_MSG: &str = "host_tlb_flushes_per_msg";
    /// Host mapping operations (`mmap` + `fallocate`) per message, summed over the VMs'
    /// transport reports (`map_ops`); remap variants only (absent for the other transports).
    pub const MAP_OPS_PER_MSG: &str = "map_ops_per_msg";
    /// Nanoseconds the VMM spent moving each message, summed over the VMs' transport reports
    /// (`move_ns`): host remaps for remap variants, the copy for copy; remap IPC only (absent
    /// for virtio and shmem, whose VMM does not time its moves).
    pub const MOVE_NS_PER_MSG: &str = "move_ns_per_msg";
    /// Page faults KVM fixed per message (`pf_fixed`).
    pub const FAULTS_PER_MSG: &str = "faults_per_msg";
    /// Page faults KVM fixed per message in the VMs that received messages (`pf_fixed` of
    /// every VM whose guest reported a receive): what touching a landed payload costs.
    pub const RECEIVER_FAULTS_PER_MSG: &str = "receiver_faults_per_msg";
    /// Instructions KVM emulated per message (`insn_emulation`).
    pub const EMULATED_PER_MSG: &str = "emulated_per_msg";
    /// Host CPU time (user + system) of the VMM process per message, ns.
    pub const HOST_CPU_NS_PER_MSG: &str = "host_cpu_ns_per_msg";
    /// Latency percentiles, ns (ping-pong: one-way = round trip / 2; stream and fan-in: the
    /// receiver's inter-arrival time).
    pub const LATENCY_P50_NS: &str = "latency_p50_ns";
    /// 90th percentile.
    pub const LATENCY_P90_NS: &str = "latency_p90_ns";
    /// 99th percentile.
    pub const LATENCY_P99_NS: &str = "latency_p99_ns";
    /// 99.9th percentile.
    pub const LATENCY_P999_NS: &str = "latency_p999_ns";
    /// Largest.
    pub const LATENCY_MAX_NS: &str = "latency_max_ns";
    /// Median latency over the floor's bare exit ([`super::floor::EXIT_NS`]) of the same run.
    pub const LATENCY_P50_OVER_EXIT: &str = "latency_p50_over_exit";
    /// Transfer-loop time per message, ns (the senders' loop time over messages).
    pub const TIME_PER_MSG_NS: &str = "time_per_msg_ns";
    /// [`TIME_PER_MSG_NS`] over the floor's bare exit.
    pub const TIME_PER_MSG_OVER_EXIT: &str = "time_per_msg_over_exit";
    /// Messages per second.
    pub const THROUGHPUT_MSGS: &str = "throughput_msgs_per_s";
    /// Payload MiB per second.
    pub const THROUGHPUT_MIB: &str = "throughput_mib_per_s";
}

/// A latency distribution: HdrHistogram quantiles of every sample of every measured
/// repetition, for the CDF chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyDistribution {
    /// What the samples are (`one-way latency (round trip / 2)`, `inter-arrival time`).
    pub what: String,
    /// Samples pooled.
    pub samples: u64,
    /// `(quantile, ns)` points, quantile ascending from 0 to 1.
    pub cdf: Vec<(f64, f64)>,
}

/// One quantity counted by independent sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossCheck {
    /// What is counted (`sender userspace exits, measured phase`, ...).
    pub what: String,
    /// Source name to its count, summed over the measured repetitions.
    pub sources: BTreeMap<String, u64>,
    /// Whether every source gave the same count.
    pub agree: bool,
    /// Why they may legitimately differ, or what the disagreement means.
    pub note: String,
}

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a results file of this schema.
    #[error("{path} is not a pageflip results file: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl Results {
    /// Reads and checks a results file.
    pub fn load(path: &Path) -> Result<Results, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Results::parse(&text).map_err(|why| ResultsError::Invalid {
            path: path.display().to_string(),
            why,
        })
    }

    /// Parses a results file's text, checking its schema name and version.
    pub fn parse(text: &str) -> Result<Results, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(format!("schema is {other:?}, expected {SCHEMA:?}")),
            None => return Err(format!("no \"schema\": {SCHEMA:?} field")),
        }
        match v.get("version").and_then(|s| s.as_u64()) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "schema version {n}; this build reads version {SCHEMA_VERSION}"
                ))
            }
            None => return Err("no \"version\" field".into()),
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// The file's text (pretty JSON). NaN and infinite values are written as `null`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize")
    }

    /// The case with id `id`.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Metric `name` of case `case`, or of the floor when `case` is [`FLOOR_CASE`].
    pub fn metric(&self, case: &str, name: &str) -> Option<&Metric> {
        if case == FLOOR_CASE {
            self.floor.metrics.get(name)
        } else {
            self.case(case)?.metrics.get(name)
        }
    }
}

impl CaseParams {
    /// The case id these parameters give (see [`CaseResult::id`]); a receiver that does not
    /// read the whole payload adds `/touch-<touch>`, so ids of whole-payload cases stay those
    /// of files written before [`CaseParams::touch`] existed.
    pub fn id(&self) -> String {
        let mut id = format!(
            "{}/{}/{}/{}B/b{}/{}vm",
            self.workload, self.transport, self.policy, self.size, self.batch, self.vms
        );
        if self.touch != TOUCH_ALL {
            id += &format!("/touch-{}", self.touch);
        }
        id
    }
}
