//! What one repetition of a case measured: its metric values, its latency samples and the
//! counts its cross-checks compare, taken from the VMM's result, the guests' samples, the
//! VMM process's CPU time and the host's perf tracepoints.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use pageflip_abi::probes::ipc_workloads as w;
use pageflip_interface::{NotifyMode, RunResult, StatsDelta, TransportConfig};

use crate::bench::matrix::CaseSpec;
use crate::bench::tracepoints as tp;
use pageflip_results::metric as m;

/// Host-wide perf tracepoint counts over one run ([`crate::bench::tracepoints`]), of the tracepoints
/// that fired on this host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerfCounts {
    /// Totals by tracepoint (`kvm:kvm_exit`, ...), only for tracepoints that fired in the
    /// session; absent = unavailable.
    pub totals: BTreeMap<String, u64>,
    /// `kvm:kvm_exit` by exit reason, if sampled.
    pub exit_reasons: Option<BTreeMap<String, u64>>,
}

/// One repetition's measurements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Repetition {
    /// Metric values by name.
    pub values: BTreeMap<String, f64>,
    /// Metrics that could not be measured, with why.
    pub unavailable: BTreeMap<String, String>,
    /// Latency samples, ns.
    pub latency_ns: Vec<u64>,
    /// Cross-check counts: what is counted -> source -> count.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// What a cross-check of [`Repetition::counts`] compares, and why sources may differ.
pub mod check {
    /// Notifications in the measured phase: the guests' own count against KVM's.
    pub const NOTIFICATIONS: &str = "notifications, measured phase (all VMs)";
    /// Userspace exits over the whole run: KVM's binary stats against perf.
    pub const USERSPACE_EXITS: &str = "userspace exits, whole run (all VMs)";
    /// Exits over the whole run: KVM's binary stats against perf.
    pub const EXITS: &str = "exits, whole run (all VMs)";

    /// Why the sources of `what` may legitimately differ.
    pub fn note(what: &str) -> &'static str {
        match what {
            NOTIFICATIONS => {
                "guest: doorbell / QueueNotify writes the guests counted; kvm: userspace exits \
                 of the measured phases minus one PHASE end write per VM and the start barrier \
                 of each VM that receives first (one; a chain's every VM but VM0) (ioeventfd: in-kernel \
                 exits = exits - mmio_exits - irq_exits, which also holds the host's other \
                 in-kernel exits)"
            }
            USERSPACE_EXITS => {
                "kvm: mmio_exits + io_exits of every vCPU from creation to the end; perf: \
                 kvm:kvm_userspace_exit on every CPU while the VMM process ran (host-wide)"
            }
            EXITS => {
                "kvm: exits of every vCPU from creation to the end; perf: kvm:kvm_exit on \
                 every CPU while the VMM process ran (host-wide)"
            }
            _ => "",
        }
    }
}

/// Sum of one counter over the VMs' deltas, or `None` if a VM lacks it.
fn sum(deltas: &[&StatsDelta], name: &str) -> Option<u64> {
    deltas.iter().map(|d| d.counter(name)).sum()
}

/// TSC ticks to nanoseconds.
pub fn ticks_to_ns(ticks: f64, tsc_khz: u64) -> f64 {
    ticks * 1e6 / tsc_khz as f64
}

/// Measures one repetition of `spec` from its `result`; `exit_ns` is the floor's bare exit of
/// the same run (for the ratios), `cpu_ns` the VMM process's CPU time.
pub fn repetition(
    spec: &CaseSpec,
    result: &RunResult,
    exit_ns: Option<f64>,
    cpu_ns: u64,
    perf: &PerfCounts,
) -> Repetition {
    let mut r = Repetition::default();
    let n = spec.messages() as f64;
    let vms = result.vms.len() as u64;
    let put = |r: &mut Repetition, name: &str, v: Option<f64>, why: &str| match v {
        Some(v) if v.is_finite() => {
            r.values.insert(name.to_string(), v);
        }
        _ => {
            r.unavailable.insert(name.to_string(), why.to_string());
        }
    };
    put(&mut r, m::MESSAGES, Some(n), "");
    put(&mut r, m::BYTES, Some(n * spec.size as f64), "");

    // KVM binary stats of the measured phase.
    let measured: Option<Vec<&StatsDelta>> = result
        .vms
        .iter()
        .map(|v| v.stats.measured.as_ref())
        .collect();
    let no_stats = "the host keeps no binary stats (or a VM marked no measured phase)";
    let measured = measured.unwrap_or_default();
    let phase = |name: &str| -> Option<f64> {
        if measured.is_empty() {
            return None;
        }
        sum(&measured, name).map(|v| v as f64)
    };
    let per_msg = |v: Option<f64>| v.map(|v| v / n);
    // Exits of the workloads' own bookkeeping inside the measured phases: each VM's PHASE
    // end write, and the start barrier of each VM that receives first (its phase begins
    // before the barrier, so that every delivery into it falls inside): one VM, or every
    // VM but VM0 in a chain.
    let before_barrier = if spec.workload == pageflip_workloads::CHAIN {
        vms.saturating_sub(1)
    } else {
        1
    };
    let bookkeeping = pageflip_abi::phase::bookkeeping_exits(vms, before_barrier) as f64;
    let exits = phase("exits").map(|e| (e - bookkeeping).max(0.0));
    let mmio = phase("mmio_exits").map(|e| (e - bookkeeping).max(0.0));
    let userspace = mmio.map(|mm| mm + phase("io_exits").unwrap_or(0.0));
    put(&mut r, m::EXITS_PER_MSG, per_msg(exits), no_stats);
    put(
        &mut r,
        m::USERSPACE_EXITS_PER_MSG,
        per_msg(userspace),
        no_stats,
    );
    if let (Some(total), Some(first)) = (exits, measured.first()) {
        let mut kinds = 0.0;
        for name in first.vcpu.keys().filter(|k| k.ends_with("_exits")) {
            let mut v = phase(name).unwrap_or(0.0);
            if name == "mmio_exits" {
                v = mmio.unwrap_or(v);
            }
            kinds += v;
            put(
                &mut r,
                &format!("{}{name}", m::EXITS_BY_KIND),
                Some(v / n),
                "",
            );
        }
        put(
            &mut r,
            &format!("{}other", m::EXITS_BY_KIND),
            Some((total - kinds).max(0.0) / n),
            "",
        );
    }
    put(
        &mut r,
        m::TLB_FLUSHES_PER_MSG,
        per_msg(phase("tlb_flush")),
        no_stats,
    );
    put(
        &mut r,
        m::REMOTE_TLB_FLUSHES_PER_MSG,
        per_msg(phase("remote_tlb_flush_requests")),
        no_stats,
    );
    // The VMM's own counts of its moves. Like the per-page flush metrics, they mean nothing
    // where the VMM moves nothing itself: map operations exist for remap variants only, the
    // move time for remap IPC (remaps or copies); the other transports have neither, absent
    // rather than 0. A VMM that reports no transport counts makes them unavailable.
    let transport = result.transport.as_ref();
    let no_report = "the VMM reported no transport counts (result.transport)";
    let transport_total = |f: fn(&pageflip_interface::TransportVmReport) -> u64| {
        transport.map(|t| t.vms.iter().map(f).sum::<u64>() as f64)
    };
    if spec.transport.remaps() {
        put(
            &mut r,
            m::MAP_OPS_PER_MSG,
            per_msg(transport_total(|v| v.map_ops)),
            no_report,
        );
    }
    if spec.transport.has_ipc() {
        put(
            &mut r,
            m::MOVE_NS_PER_MSG,
            per_msg(transport_total(|v| v.move_ns)),
            no_report,
        );
    }
    let pages = transport_total(|v| v.pages_remapped).unwrap_or(0.0);
    if pages > 0.0 {
        let per_page = |v: Option<f64>| v.map(|v| v / pages);
        put(
            &mut r,
            m::TLB_FLUSHES_PER_PAGE,
            per_page(phase("tlb_flush")),
            no_stats,
        );
        put(
            &mut r,
            m::REMOTE_TLB_FLUSHES_PER_PAGE,
            per_page(phase("remote_tlb_flush_requests")),
            no_stats,
        );
    }
    put(
        &mut r,
        m::FAULTS_PER_MSG,
        per_msg(phase("pf_fixed")),
        no_stats,
    );
    let receivers: Vec<&StatsDelta> = result
        .vms
        .iter()
        .zip(&measured)
        .filter(|(v, _)| v.samples.get(w::S_RECEIVED).is_some_and(|&k| k > 0))
        .map(|(_, d)| *d)
        .collect();
    put(
        &mut r,
        m::RECEIVER_FAULTS_PER_MSG,
        per_msg(
            (!measured.is_empty())
                .then(|| sum(&receivers, "pf_fixed"))
                .flatten()
                .map(|v| v as f64),
        ),
        no_stats,
    );
    put(
        &mut r,
        m::EMULATED_PER_MSG,
        per_msg(phase("insn_emulation")),
        no_stats,
    );
    put(
        &mut r,
        m::HOST_CPU_NS_PER_MSG,
        Some(cpu_ns as f64 / n),
        "no CPU time of the VMM process",
    );

    // The guests' own samples.
    let sample = |vm: usize, i: usize| result.vms.get(vm).and_then(|v| v.samples.get(i).copied());
    let notifications: u64 = (0..result.vms.len())
        .filter_map(|vm| sample(vm, w::S_NOTIFICATIONS))
        .sum();
    put(
        &mut r,
        m::NOTIFICATIONS_PER_MSG,
        Some(notifications as f64 / n),
        "",
    );
    let tsc_khz = result.host.tsc_khz.filter(|&k| k > 0);
    let no_tsc = "the VMM reports no TSC frequency (host.tsc_khz)";
    let loop_ticks = (0..result.vms.len())
        .filter_map(|vm| sample(vm, w::S_LOOP_TSC))
        .max()
        .filter(|&t| t > 0);
    let loop_ns = tsc_khz
        .zip(loop_ticks)
        .map(|(k, t)| ticks_to_ns(t as f64, k));
    let time_per_msg = loop_ns.map(|ns| ns / n);
    put(&mut r, m::TIME_PER_MSG_NS, time_per_msg, no_tsc);
    put(
        &mut r,
        m::TIME_PER_MSG_OVER_EXIT,
        time_per_msg.zip(exit_ns).map(|(t, e)| t / e),
        "no floor exit in this run",
    );
    put(
        &mut r,
        m::THROUGHPUT_MSGS,
        loop_ns.map(|ns| n / (ns / 1e9)),
        no_tsc,
    );
    put(
        &mut r,
        m::THROUGHPUT_MIB,
        loop_ns.map(|ns| n * spec.size as f64 / (1u64 << 20) as f64 / (ns / 1e9)),
        no_tsc,
    );

    // Latency: ping-pong round trips of VM0 (one way = half), or the receiver's
    // inter-arrival times (the first one, from the start barrier, left out).
    let (vm, skip, halve) = if spec.workload == pageflip_workloads::PINGPONG {
        (Some(0), 0, true)
    } else {
        (
            (0..result.vms.len()).find(|&vm| sample(vm, w::S_PER_MESSAGE).unwrap_or(0) > 0),
            1,
            false,
        )
    };
    if let (Some(vm), Some(k)) = (vm, tsc_khz) {
        let s = &result.vms[vm].samples;
        let count = s.get(w::S_PER_MESSAGE).copied().unwrap_or(0) as usize;
        let ticks = s
            .get(w::S_HEADER..(w::S_HEADER + count).min(s.len()))
            .unwrap_or(&[]);
        r.latency_ns = ticks
            .iter()
            .skip(skip)
            .map(|&t| {
                let t = if halve { t as f64 / 2.0 } else { t as f64 };
                ticks_to_ns(t, k).round().max(1.0) as u64
            })
            .collect();
    }
    let q = percentiles(&r.latency_ns);
    let no_samples = "the workload reported no per-message samples";
    for (name, v) in [
        (m::LATENCY_P50_NS, q.map(|q| q[0])),
        (m::LATENCY_P90_NS, q.map(|q| q[1])),
        (m::LATENCY_P99_NS, q.map(|q| q[2])),
        (m::LATENCY_P999_NS, q.map(|q| q[3])),
        (m::LATENCY_MAX_NS, q.map(|q| q[4])),
    ] {
        put(&mut r, name, v, no_samples);
    }
    put(
        &mut r,
        m::LATENCY_P50_OVER_EXIT,
        q.map(|q| q[0]).zip(exit_ns).map(|(l, e)| l / e),
        no_samples,
    );

    // Host-wide tracepoints over the run.
    match perf.totals.get(tp::TLB_FLUSH) {
        Some(&c) => put(&mut r, m::HOST_TLB_FLUSHES_PER_MSG, Some(c as f64 / n), ""),
        None => put(
            &mut r,
            m::HOST_TLB_FLUSHES_PER_MSG,
            None,
            "perf tracepoint tlb:tlb_flush unavailable or silent here",
        ),
    }
    match &perf.exit_reasons {
        Some(reasons) => {
            for (reason, c) in reasons {
                put(
                    &mut r,
                    &format!("{}{reason}", m::EXIT_REASON),
                    Some(*c as f64 / n),
                    "",
                );
            }
        }
        None => put(
            &mut r,
            m::EXIT_REASON.trim_end_matches('.'),
            None,
            "perf tracepoint kvm:kvm_exit unavailable or silent here (kvm_pvm does not fire it)",
        ),
    }

    // Cross-checks.
    let mut counts = BTreeMap::new();
    let mut src = BTreeMap::new();
    src.insert("guest".to_string(), notifications);
    let kvm_notifications = match spec.transport {
        TransportConfig::Virtio {
            notify: NotifyMode::Ioeventfd,
        } => phase("exits")
            .zip(phase("mmio_exits"))
            .map(|(e, mm)| e - mm - phase("irq_exits").unwrap_or(0.0)),
        _ => userspace,
    };
    if let Some(k) = kvm_notifications {
        src.insert("kvm".to_string(), k.max(0.0) as u64);
    }
    counts.insert(check::NOTIFICATIONS.to_string(), src);
    let run: Option<Vec<&StatsDelta>> = result.vms.iter().map(|v| v.stats.run.as_ref()).collect();
    if let Some(run) = run.filter(|r| !r.is_empty()) {
        let mut src = BTreeMap::new();
        if let Some(mm) = sum(&run, "mmio_exits") {
            src.insert("kvm".to_string(), mm + sum(&run, "io_exits").unwrap_or(0));
        }
        if let Some(&c) = perf.totals.get(tp::KVM_USERSPACE_EXIT) {
            src.insert("perf".to_string(), c);
        }
        counts.insert(check::USERSPACE_EXITS.to_string(), src);
        let mut src = BTreeMap::new();
        if let Some(e) = sum(&run, "exits") {
            src.insert("kvm".to_string(), e);
        }
        if let Some(&c) = perf.totals.get(tp::KVM_EXIT) {
            src.insert("perf".to_string(), c);
        }
        counts.insert(check::EXITS.to_string(), src);
    }
    r.counts = counts;
    r
}

/// p50, p90, p99, p99.9 and max of `ns` (HdrHistogram, 3 significant digits), or `None` if
/// there are no samples.
pub fn percentiles(ns: &[u64]) -> Option<[f64; 5]> {
    let h = histogram(ns)?;
    Some([
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.9) as f64,
        h.value_at_quantile(0.99) as f64,
        h.value_at_quantile(0.999) as f64,
        h.max() as f64,
    ])
}

/// An HdrHistogram of `ns`, or `None` if empty.
pub fn histogram(ns: &[u64]) -> Option<Histogram<u64>> {
    if ns.is_empty() {
        return None;
    }
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for &v in ns {
        h.record(v.max(1)).expect("auto-resizing histogram");
    }
    Some(h)
}

/// CDF points of `ns`: `(quantile, ns)` at quantiles spread to show the tail.
pub fn cdf(ns: &[u64]) -> Vec<(f64, f64)> {
    let Some(h) = histogram(ns) else {
        return Vec::new();
    };
    let mut qs: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
    qs.extend([0.995, 0.999, 0.9995, 0.9999]);
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    qs.iter()
        .map(|&q| (q, h.value_at_quantile(q) as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::matrix::Profile;
    use pageflip_interface::{
        HostInfo, RunOutcome, Stats, Summary, TransportReport, TransportVmReport, VmResult,
        VmStatus, VmmIdentity,
    };

    /// A run of two VMs without stats or samples, whose VMM reported `transport`.
    fn result(transport: Option<TransportReport>) -> RunResult {
        RunResult {
            version: 1,
            vmm: VmmIdentity {
                name: "v".into(),
                version: "1".into(),
            },
            host: HostInfo {
                kvm_flavour: "kvm_pvm".into(),
                kernel: "k".into(),
                cpu_model: "c".into(),
                tsc_khz: None,
            },
            outcome: RunOutcome::Completed,
            wall_us: 1,
            vms: (0..2)
                .map(|i| VmResult {
                    id: i,
                    name: format!("vm{i}"),
                    status: VmStatus::Done { exit_code: 0 },
                    death: None,
                    console: String::new(),
                    records: Vec::new(),
                    summary: Summary::default(),
                    samples: Vec::new(),
                    doorbells: 0,
                    guest_errors: Vec::new(),
                    guest_errors_total: 0,
                    boot_us: None,
                    first_record_us: None,
                    stats: Stats::default(),
                })
                .collect(),
            transport,
        }
    }

    /// The quick profile's stream case of `t` at `size`.
    fn spec(t: &TransportConfig, size: u64) -> CaseSpec {
        Profile::Quick
            .matrix()
            .expand()
            .unwrap()
            .into_iter()
            .find(|c| c.workload == "stream" && &c.transport == t && c.size == size)
            .unwrap()
    }

    #[test]
    fn map_ops_per_msg_sums_the_vms_and_exists_for_remap_variants_only() {
        // The sender's VM made every map operation; the receiver's counts are added.
        let report = |kind: &str| TransportReport {
            kind: kind.into(),
            vms: vec![
                TransportVmReport {
                    map_ops: 90,
                    move_ns: 3_000_000,
                    pages_remapped: 512 * 30,
                    ..Default::default()
                },
                TransportVmReport {
                    map_ops: 6,
                    move_ns: 200_000,
                    ..Default::default()
                },
            ],
            ownership: None,
            pre_fault: None,
        };
        for t in [TransportConfig::Remap, TransportConfig::RemapHuge] {
            let spec = spec(&t, 2 << 20);
            let n = spec.messages() as f64;
            let r = repetition(
                &spec,
                &result(Some(report("remap"))),
                None,
                1,
                &PerfCounts::default(),
            );
            assert_eq!(r.values[m::MAP_OPS_PER_MSG], 96.0 / n, "{}", t.name());
            assert_eq!(r.values[m::MOVE_NS_PER_MSG], 3_200_000.0 / n);
        }
        // Copy moves without mapping: a move time, no map operations (absent, not 0).
        let copy = spec(&TransportConfig::Copy, 4096);
        let r = repetition(
            &copy,
            &result(Some(report("copy"))),
            None,
            1,
            &PerfCounts::default(),
        );
        assert!(!r.values.contains_key(m::MAP_OPS_PER_MSG));
        assert!(!r.unavailable.contains_key(m::MAP_OPS_PER_MSG));
        assert!(r.values.contains_key(m::MOVE_NS_PER_MSG));
        // Shared memory: neither.
        let shmem = spec(&TransportConfig::Shmem, 4096);
        let r = repetition(&shmem, &result(None), None, 1, &PerfCounts::default());
        assert!(!r.values.contains_key(m::MAP_OPS_PER_MSG));
        assert!(!r.values.contains_key(m::MOVE_NS_PER_MSG));
        // A remap run whose VMM reported no counts: unavailable, with why.
        let remap = spec(&TransportConfig::RemapPerPage, 4096);
        let r = repetition(&remap, &result(None), None, 1, &PerfCounts::default());
        assert!(!r.values.contains_key(m::MAP_OPS_PER_MSG));
        assert!(r.unavailable[m::MAP_OPS_PER_MSG].contains("no transport counts"));
    }

    #[test]
    fn percentiles_of_known_samples() {
        let ns: Vec<u64> = (1..=1000).collect();
        let q = percentiles(&ns).unwrap();
        assert!((q[0] - 500.0).abs() <= 1.0, "{q:?}");
        assert!((q[1] - 900.0).abs() <= 1.0, "{q:?}");
        assert!((q[2] - 990.0).abs() <= 1.0, "{q:?}");
        assert_eq!(q[4], 1000.0);
        assert!(percentiles(&[]).is_none());
        let c = cdf(&ns);
        assert_eq!(c.first().unwrap().0, 0.0);
        assert_eq!(c.last().unwrap().0, 1.0);
        assert!(c.windows(2).all(|p| p[0].1 <= p[1].1), "CDF is monotonic");
    }
}
