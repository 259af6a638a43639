//! A synthetic results file for tests: seven transports (copy and three remap variants among
//! them), stream and ping-pong from 64 B to 8 MiB (`remap-huge` at whole huge pages only,
//! virtio and shmem to 64 KiB), a
//! batch sweep, the receiver's touch at 2 MiB, a forwarding chain over K VMs, latency
//! distributions, the VMM's move counts, unavailable counters and a disagreeing cross-check.
//! No KVM involved.

use std::collections::BTreeMap;

use pageflip_interface::{NotifyMode, TransportConfig};

use pageflip_results::{
    floor, metric, CaseParams, CaseResult, CrossCheck, Floor, Host, LatencyDistribution, Metric,
    Results, RunInfo, TracepointState, VmmBuild, SCHEMA, SCHEMA_VERSION,
};

/// Message sizes of the sample.
pub const SIZES: [u64; 7] = [64, 1024, 4096, 16384, 65536, 2 << 20, 8 << 20];

/// The transports of the sample, each with its stream and ping-pong policy.
const TRANSPORTS: [(&str, &str); 7] = [
    ("remap", "immediate"),
    ("remap-per-page", "immediate"),
    ("remap-huge", "immediate"),
    ("copy", "immediate"),
    ("virtio-ioeventfd", "event-idx"),
    ("virtio-userspace", "event-idx"),
    ("shmem", "polling"),
];

/// The chain's K values.
const CHAIN_VMS: [usize; 5] = [2, 3, 4, 6, 8];

/// Repetitions of the sample.
const REPS: usize = 8;

/// `REPS` values around `mean`, ±2% (deterministic).
fn reps(mean: f64) -> Vec<f64> {
    (0..REPS)
        .map(|i| mean * (1.0 + 0.02 * (((i * 7) % 5) as f64 - 2.0) / 2.0))
        .collect()
}

fn config(transport: &str) -> TransportConfig {
    match transport {
        "remap" => TransportConfig::Remap,
        "remap-per-page" => TransportConfig::RemapPerPage,
        "remap-huge" => TransportConfig::RemapHuge,
        "copy" => TransportConfig::Copy,
        "virtio-ioeventfd" => TransportConfig::Virtio {
            notify: NotifyMode::Ioeventfd,
        },
        "virtio-userspace" => TransportConfig::Virtio {
            notify: NotifyMode::Userspace,
        },
        _ => TransportConfig::Shmem,
    }
}

/// Pages of a message of `size` bytes.
fn pages(size: u64) -> f64 {
    size.div_ceil(4096) as f64
}

/// Cost of one message, ns: a per-message part, a per-page part and a per-byte part. Remap's
/// fixed cost is `remap_base`; remap-per-page pays per page (never crossing copy),
/// remap-huge little per byte (cheaper than copy at every size it runs).
fn cost(transport: &str, size: u64, batch: u64, remap_base: f64) -> f64 {
    let (fixed, per_page, per_byte) = match transport {
        "remap" => (remap_base, 0.0, 0.5),
        "remap-per-page" => (60_000.0, 150_000.0, 0.0),
        "remap-huge" => (70_000.0, 0.0, 0.2),
        "copy" => (60_000.0, 0.0, 3.0),
        "virtio-ioeventfd" => (40_000.0, 0.0, 2.0),
        "virtio-userspace" => (60_000.0, 0.0, 2.5),
        _ => (200.0, 0.0, 0.3),
    };
    fixed / batch.max(1) as f64 + per_page * pages(size) + per_byte * size as f64
}

/// The VMM's move time per message, ns (remap IPC only): part of [`cost`].
fn move_ns(transport: &str, size: u64) -> Option<f64> {
    let s = size as f64;
    match transport {
        "remap" => Some(10_000.0 + 0.3 * s),
        "remap-per-page" => Some(140_000.0 * pages(size)),
        "remap-huge" => Some(10_000.0 + 0.05 * s),
        "copy" => Some(2_000.0 + 2.5 * s),
        _ => None,
    }
}

/// Host mapping operations, remote TLB flush requests and faults per message.
fn counts(transport: &str, size: u64) -> (Option<f64>, f64, f64) {
    let p = pages(size);
    match transport {
        "remap" => (Some(3.0), 1.0, 0.9 * p),
        "remap-per-page" => (Some(3.0 * p), 2.0 * p, 0.8 * p),
        "remap-huge" => (Some(3.0), 1.0, (size >> 21) as f64),
        _ => (None, 0.0, 0.01),
    }
}

/// What varies between the sample's cases.
struct Spec<'a> {
    workload: &'a str,
    transport: &'a str,
    policy: &'a str,
    size: u64,
    batch: u64,
    vms: usize,
    touch: &'a str,
}

impl<'a> Spec<'a> {
    /// A two-VM case whose receiver touches everything.
    fn new(workload: &'a str, transport: &'a str, policy: &'a str, size: u64, batch: u64) -> Self {
        Spec {
            workload,
            transport,
            policy,
            size,
            batch,
            vms: 2,
            touch: pageflip_results::TOUCH_ALL,
        }
    }
}

fn case(spec: Spec, remap_base: f64) -> CaseResult {
    let Spec {
        workload,
        transport,
        policy,
        size,
        batch,
        vms,
        touch,
    } = spec;
    let params = CaseParams {
        workload: workload.into(),
        transport: transport.into(),
        transport_config: config(transport),
        policy: policy.into(),
        size,
        batch,
        vms,
        messages: 1000,
        depth: if transport.starts_with("virtio") {
            32
        } else {
            0
        },
        touch: touch.into(),
    };
    let mut t = cost(transport, size, batch, remap_base);
    let (map_ops, flushes, mut faults) = counts(transport, size);
    if touch != pageflip_results::TOUCH_ALL {
        // A receiver that does not read the payload takes no faults on it.
        t -= 0.8 * faults * 1_000.0;
        faults = 0.01;
    }
    if workload == "chain" {
        // K - 1 hops, partly overlapped.
        t *= 0.6 * (vms - 1) as f64;
    }
    let exits = match transport {
        "shmem" => 0.002,
        "virtio-ioeventfd" => 0.05,
        _ => 1.0 + 2.0 / batch.max(1) as f64,
    };
    let mut metrics = BTreeMap::new();
    let mut put = |name: &str, unit: &str, higher: bool, mean: f64| {
        metrics.insert(name.to_string(), Metric::new(unit, higher, reps(mean)));
    };
    put(metric::EXITS_PER_MSG, "exits/msg", false, exits);
    put(
        metric::USERSPACE_EXITS_PER_MSG,
        "exits/msg",
        false,
        exits / 2.0,
    );
    put(
        metric::TLB_FLUSHES_PER_MSG,
        "flushes/msg",
        false,
        2.0 * flushes,
    );
    put(
        metric::REMOTE_TLB_FLUSHES_PER_MSG,
        "flushes/msg",
        false,
        flushes,
    );
    if let Some(ops) = map_ops {
        put(metric::MAP_OPS_PER_MSG, "per message", false, ops);
    }
    if let Some(ns) = move_ns(transport, size) {
        put(metric::MOVE_NS_PER_MSG, "ns/msg", false, ns);
    }
    let mut unavailable = BTreeMap::new();
    if transport == "virtio-userspace" {
        // One transport whose faults the host did not count: "n/a" in the breakdown.
        unavailable.insert(
            metric::FAULTS_PER_MSG.to_string(),
            "the host keeps no binary stats".to_string(),
        );
    } else {
        put(metric::FAULTS_PER_MSG, "per message", false, faults);
    }
    let mut latency = None;
    if workload != "pingpong" {
        put(metric::TIME_PER_MSG_NS, "ns", false, t);
        put(
            metric::THROUGHPUT_MIB,
            "MiB/s",
            true,
            size as f64 / t * 1e9 / 1_048_576.0,
        );
    } else {
        put(metric::LATENCY_P50_NS, "ns", false, t);
        put(metric::LATENCY_P99_NS, "ns", false, t * 1.7);
        latency = Some(LatencyDistribution {
            what: "one-way latency (round trip / 2)".into(),
            samples: 8000,
            cdf: (0..=50)
                .map(|i| {
                    let q = i as f64 / 50.0;
                    (q, t * (0.8 + 0.9 * q.powi(6)))
                })
                .collect(),
        });
    }
    unavailable.insert(
        metric::HOST_TLB_FLUSHES_PER_MSG.to_string(),
        "perf tlb:tlb_flush could not be opened (not root)".to_string(),
    );
    let cross_checks = vec![CrossCheck {
        what: "sender userspace exits, measured phase".into(),
        sources: [
            ("kvm mmio_exits".to_string(), 1000),
            ("guest doorbells".to_string(), 1000),
        ]
        .into_iter()
        .collect(),
        agree: true,
        note: String::new(),
    }];
    CaseResult {
        id: params.id(),
        params,
        metrics,
        unavailable,
        latency,
        cross_checks,
        errors: Vec::new(),
    }
}

/// The sample. `remap_base` is remap's fixed cost per message (ns): 80 000 gives a crossover
/// with copy between 4 and 16 KiB; 30 000 000 makes copy cheaper at every size.
pub fn results(remap_base: f64) -> Results {
    let mut cases = Vec::new();
    for workload in ["stream", "pingpong"] {
        for (transport, policy) in TRANSPORTS {
            for size in SIZES {
                // As bench's matrix has it: remap-huge moves whole 2 MiB pages only; virtio
                // and shmem carry at most 64 KiB.
                let queues = transport.starts_with("remap") || transport == "copy";
                if (transport == "remap-huge" && size % (2 << 20) != 0) || (!queues && size > 65536)
                {
                    continue;
                }
                cases.push(case(
                    Spec::new(workload, transport, policy, size, 1),
                    remap_base,
                ));
            }
        }
    }
    for transport in ["remap", "copy"] {
        for batch in [4, 16, 32] {
            cases.push(case(
                Spec::new("stream", transport, "deferred", 4096, batch),
                remap_base,
            ));
        }
        for touch in ["header", "none"] {
            cases.push(case(
                Spec {
                    touch,
                    ..Spec::new("stream", transport, "immediate", 2 << 20, 1)
                },
                remap_base,
            ));
        }
    }
    for (transport, policy) in TRANSPORTS
        .into_iter()
        .filter(|(t, _)| *t != "remap-huge" && *t != "virtio-userspace")
    {
        for vms in CHAIN_VMS {
            cases.push(case(
                Spec {
                    vms,
                    ..Spec::new("chain", transport, policy, 65536, 1)
                },
                remap_base,
            ));
        }
    }
    // One disagreeing cross-check.
    let last = cases.len() - 1;
    cases[last].cross_checks[0].agree = false;
    cases[last].cross_checks[0]
        .sources
        .insert("guest doorbells".into(), 990);
    cases[last].cross_checks[0].note = "the guest counted 10 fewer doorbells".into();

    let mut floor_metrics = BTreeMap::new();
    floor_metrics.insert(
        floor::EXIT_NS.to_string(),
        Metric::new("ns", false, reps(34_900.0)),
    );
    floor_metrics.insert(
        floor::REMAP_NS.to_string(),
        Metric::new("ns", false, reps(118_500.0)),
    );
    let mut floor_unavailable = BTreeMap::new();
    floor_unavailable.insert(
        floor::IOEVENTFD_EXIT_NS.to_string(),
        "not measured by this runner".to_string(),
    );
    let mut tracepoints = BTreeMap::new();
    tracepoints.insert("kvm:kvm_exit".to_string(), TracepointState::Silent);
    tracepoints.insert(
        "tlb:tlb_flush".to_string(),
        TracepointState::Unavailable {
            reason: "not root".into(),
        },
    );
    Results {
        schema: SCHEMA.into(),
        version: SCHEMA_VERSION,
        run: RunInfo {
            id: "20261124T101500Z-sample".into(),
            date: "2026-11-24T10:15:00Z".into(),
            git_revision: Some("4ff41a2".into()),
            git_dirty: false,
            profile: "sample".into(),
            command: "bench run --profile sample --out results.json".into(),
            repetitions: REPS as u32,
            warmup: 1,
            pinned: true,
            interrupted: false,
            duration_s: 123.4,
        },
        host: Host {
            cpu_model: "AMD EPYC 7B13 64-Core Processor".into(),
            cores: 2,
            kernel: "6.18.0-pvm".into(),
            kvm_flavour: "kvm_pvm".into(),
            tsc_khz: Some(2_450_000),
            tsc_source: "KVM_GET_TSC_KHZ".into(),
            counters: vec!["exits".into(), "mmio_exits".into(), "tlb_flush".into()],
            unavailable_counters: vec!["io_exits".into()],
            tracepoints,
        },
        vmm: VmmBuild {
            name: "pageflip-vmm".into(),
            version: "0.1.0".into(),
            path: "builtin".into(),
            sha256: None,
            args: Vec::new(),
        },
        floor: Floor {
            metrics: floor_metrics,
            unavailable: floor_unavailable,
        },
        cases,
    }
}
