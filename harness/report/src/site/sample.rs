//! A synthetic results file for tests: five transports, stream and ping-pong over five
//! message sizes, a batch sweep, latency distributions, an unavailable counter and a
//! disagreeing cross-check. No KVM involved.

use std::collections::BTreeMap;

use pageflip_interface::{NotifyMode, TransportConfig};

use pageflip_results::{
    floor, metric, CaseParams, CaseResult, CrossCheck, Floor, Host, LatencyDistribution, Metric,
    Results, RunInfo, TracepointState, VmmBuild, SCHEMA, SCHEMA_VERSION,
};

/// Message sizes of the sample.
pub const SIZES: [u64; 5] = [64, 1024, 4096, 16384, 65536];

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

/// Cost of one message, ns: a per-message part and a per-byte part. Remap's fixed cost is
/// `remap_base`.
fn cost(transport: &str, size: u64, batch: u64, remap_base: f64) -> f64 {
    let (fixed, per_byte) = match transport {
        "remap" => (remap_base, 0.5),
        "copy" => (20_000.0, 3.0),
        "virtio-ioeventfd" => (40_000.0, 2.0),
        "virtio-userspace" => (25_000.0, 2.5),
        _ => (200.0, 0.3),
    };
    fixed / batch.max(1) as f64 + per_byte * size as f64
}

fn case(
    workload: &str,
    transport: &str,
    policy: &str,
    size: u64,
    batch: u64,
    remap_base: f64,
) -> CaseResult {
    let params = CaseParams {
        workload: workload.into(),
        transport: transport.into(),
        transport_config: config(transport),
        policy: policy.into(),
        size,
        batch,
        vms: 2,
        messages: 1000,
        depth: if transport.starts_with("virtio") {
            32
        } else {
            0
        },
    };
    let t = cost(transport, size, batch, remap_base);
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
        if transport == "remap" { 2.0 } else { 0.0 },
    );
    put(
        metric::REMOTE_TLB_FLUSHES_PER_MSG,
        "flushes/msg",
        false,
        if transport == "remap" { 1.0 } else { 0.0 },
    );
    let mut latency = None;
    if workload == "stream" {
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
    let mut unavailable = BTreeMap::new();
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
/// with copy between 16 and 64 KiB; 1 000 000 makes copy cheaper at every size.
pub fn results(remap_base: f64) -> Results {
    let mut cases = Vec::new();
    for workload in ["stream", "pingpong"] {
        for (transport, policy) in [
            ("remap", "immediate"),
            ("copy", "immediate"),
            ("virtio-ioeventfd", "event-idx"),
            ("virtio-userspace", "event-idx"),
            ("shmem", "polling"),
        ] {
            for size in SIZES {
                cases.push(case(workload, transport, policy, size, 1, remap_base));
            }
        }
    }
    for transport in ["remap", "copy"] {
        for batch in [4, 16, 32] {
            cases.push(case(
                "stream", transport, "deferred", 4096, batch, remap_base,
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
