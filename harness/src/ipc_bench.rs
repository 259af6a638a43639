//! `bench transports` (alias `bench ipc`): what one message costs over each transport —
//! remap and copy IPC with immediate and deferred exits, virtio with ioeventfd or userspace
//! notifications and with or without EVENT_IDX, and shared memory — in exits (userspace and
//! total), notifications, faults and TLB flushes per message, and in latency as a ratio over
//! two floors measured in the same run: one bare MMIO exit round trip plus one host page remap,
//! and the shared-memory transport itself. Figures are ratios and counts, not absolute times:
//! the test hosts are shared.

use std::fmt::Write as _;
use std::time::Duration;

use pageflip_abi::probes::{doorbell, ipc_workloads as w};
use pageflip_interface::{NotifyMode, RunConfig, RunResult, StatsDelta, TransportConfig};
use serde::Serialize;

use crate::cases::{Case, Input, Layout, VmSpec};
use crate::driver::{execute_in, Bench, DriverError};
use crate::expect::{Expect, ResultFile};
use crate::matrix::workload_params;

/// What a benchmark run needs.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Messages per stream run, doorbells of the floor run.
    pub count: u64,
    /// Rounds per ping-pong run.
    pub rounds: u64,
    /// Message size in bytes.
    pub size: u64,
    /// Batch size of the deferred policy.
    pub batch: u64,
    /// Virtio messages in flight per queue.
    pub depth: u64,
}

/// Why the benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The VMM could not be run.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A run did not produce a usable result.
    #[error("run {run}: {why}")]
    Run {
        /// The run.
        run: String,
        /// What was wrong.
        why: String,
    },
}

/// The floor, measured in the same invocation.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// TSC ticks per bare MMIO exit round trip (the `doorbell` guest).
    pub exit_ticks: f64,
    /// TSC ticks per host page remap (the VMM's own timing of its remaps in the remap runs).
    pub remap_ticks: f64,
    /// TSC frequency, kHz.
    pub tsc_khz: u64,
}

/// One row: one transport with one exit or notification policy.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The transport (`remap`, `copy`, `virtio-ioeventfd`, `virtio-userspace`, `shmem`).
    pub movement: String,
    /// `immediate` (B = 1), `deferred (B = n)`, `EVENT_IDX`, `no EVENT_IDX`, `polling`.
    pub policy: String,
    /// Messages in the stream run.
    pub messages: u64,
    /// Sender's MMIO exits to userspace per message (its measured phase, without the PHASE
    /// end write).
    pub sender_mmio_exits: f64,
    /// Notifications the sender's driver made per message (virtio QueueNotify writes; the
    /// doorbell writes of remap and copy are its MMIO exits; 0 for shmem).
    pub notifications: f64,
    /// Sends repeated after `queue_full` (backpressure from a slower receiver) per message:
    /// each costs the sender a flush exit.
    pub retries: f64,
    /// Sender's exits of every kind per message.
    pub sender_exits: f64,
    /// Receiver's exits of every kind per message.
    pub receiver_exits: f64,
    /// Page faults KVM fixed by mapping memory (`pf_fixed`: re-faults on remapped pages),
    /// sender + receiver, per message. (`pf_taken` also counts every MMIO exit under kvm_pvm.)
    pub faults: f64,
    /// Remote TLB flush requests (both VMs) per remapped page; `None` for copy.
    pub tlb_requests_per_page: Option<f64>,
    /// vCPU TLB flushes (both VMs) per message.
    pub vcpu_tlb_flushes: f64,
    /// Stream time per message over the floor (bare exit + host remap).
    pub stream_ratio: f64,
    /// Ping-pong one-way latency (round trip / 2) over the floor; `None` for deferred.
    pub pingpong_ratio: Option<f64>,
    /// Stream time per message over shared memory's, measured in the same run.
    pub stream_over_shmem: f64,
    /// Ping-pong one-way latency over shared memory's; `None` for deferred.
    pub pingpong_over_shmem: Option<f64>,
}

/// One transport configuration the benchmark runs.
struct Variant {
    /// Names the variant's run directories (`stream/<key>`).
    key: String,
    movement: &'static str,
    policy: String,
    transport: TransportConfig,
    batch: u64,
    event_idx: bool,
    pingpong: bool,
}

/// Every variant, shared memory last (the floor of the `÷ shmem` columns).
fn variants(params: &Params) -> Vec<Variant> {
    let mut v = Vec::new();
    for (movement, transport) in [
        ("remap", TransportConfig::Remap),
        ("copy", TransportConfig::Copy),
    ] {
        for batch in [1, params.batch] {
            v.push(Variant {
                key: format!(
                    "{movement}-{}",
                    if batch == 1 { "immediate" } else { "deferred" }
                ),
                movement,
                policy: if batch == 1 {
                    "immediate".to_string()
                } else {
                    format!("deferred (B = {batch})")
                },
                transport: transport.clone(),
                batch,
                event_idx: true,
                pingpong: batch == 1,
            });
        }
    }
    for (movement, notify) in [
        ("virtio-ioeventfd", NotifyMode::Ioeventfd),
        ("virtio-userspace", NotifyMode::Userspace),
    ] {
        for event_idx in [true, false] {
            v.push(Variant {
                key: format!("{movement}-{}event-idx", if event_idx { "" } else { "no-" }),
                movement,
                policy: format!(
                    "{}EVENT_IDX, depth {}",
                    if event_idx { "" } else { "no " },
                    params.depth
                ),
                transport: TransportConfig::Virtio { notify },
                batch: 0,
                event_idx,
                pingpong: event_idx,
            });
        }
    }
    v.push(Variant {
        key: "shmem-polling".into(),
        movement: "shmem",
        policy: "polling".into(),
        transport: TransportConfig::Shmem,
        batch: 0,
        event_idx: true,
        pingpong: true,
    });
    v
}

/// Runs the benchmark needs: the floor run and two per variant with ping-pong.
pub fn steps(params: &Params) -> u64 {
    1 + variants(params)
        .iter()
        .map(|v| 1 + u64::from(v.pingpong))
        .sum::<u64>()
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What was run.
    pub count: u64,
    /// Ping-pong rounds.
    pub rounds: u64,
    /// Message size.
    pub size: u64,
    /// The floor.
    pub floor: Floor,
    /// The rows.
    pub rows: Vec<Row>,
    /// KVM flavour and kernel of the host.
    pub host: String,
}

pub(crate) fn layout(
    transport: TransportConfig,
    image: &'static str,
    params: &[u64],
    vms: usize,
) -> Layout {
    Layout {
        timeout_ms: 600_000,
        ..Layout::of(
            (0..vms)
                .map(|_| VmSpec::guest(image, w::MIN_MEMORY_MIB, params))
                .collect(),
        )
        .with_transport(transport)
    }
}

/// Runs one layout (its files in `dir` under the work directory) and returns its result,
/// checking that every VM succeeded.
pub(crate) fn run_one(
    name: &'static str,
    dir: &str,
    layout: Layout,
    bench: &Bench<'_>,
) -> Result<(RunConfig, RunResult), BenchError> {
    let case = Case {
        name,
        description: "benchmark run",
        input: Input::Run(layout),
        expect: Expect::Run(Vec::new()),
        skip: None,
    };
    let (planned, seen) = execute_in(&case, bench, dir)?;
    let err = |why: String| BenchError::Run {
        run: name.into(),
        why,
    };
    let result = match seen.result {
        ResultFile::Parsed(r) => *r,
        ResultFile::Absent => {
            return Err(err(format!(
                "no result ({}): {}",
                seen.run.exit,
                seen.stderr.trim()
            )))
        }
        ResultFile::Invalid(why) => return Err(err(why)),
    };
    for vm in &result.vms {
        if !vm.status.is_success() || vm.summary.fail > 0 {
            return Err(err(format!(
                "{} ended {:?} with {} failed records",
                vm.name, vm.status, vm.summary.fail
            )));
        }
    }
    Ok((planned.config.expect("runs have configs"), result))
}

fn measured(result: &RunResult, vm: usize) -> Result<&StatsDelta, BenchError> {
    result.vms[vm]
        .stats
        .measured
        .as_ref()
        .ok_or_else(|| BenchError::Run {
            run: result.vms[vm].name.clone(),
            why: "no measured-phase stats (the host has no binary stats?)".into(),
        })
}

fn counter(d: &StatsDelta, name: &str) -> f64 {
    d.vcpu
        .get(name)
        .or_else(|| d.vm.get(name))
        .copied()
        .unwrap_or(0) as f64
}

/// Exits of a measured phase without the PHASE end write's own exit (`docs/abi.md`).
fn phase_exits(d: &StatsDelta, name: &str) -> f64 {
    (counter(d, name) - 1.0).max(0.0)
}

/// Runs the whole benchmark; `progress` is told before each run.
pub fn run(
    params: Params,
    bench: &Bench<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BenchError> {
    progress("floor: bare MMIO exits");
    let (_, floor_run) = run_one(
        "floor-exit",
        "floor-exit",
        layout(TransportConfig::None, "doorbell", &[params.count], 1),
        bench,
    )?;
    let phase_ticks = floor_run.vms[0]
        .samples
        .get(doorbell::S_PHASE_TSC)
        .copied()
        .unwrap_or(0);
    let exit_ticks = phase_ticks as f64 / (params.count + 2) as f64;
    let tsc_khz = floor_run.host.tsc_khz.unwrap_or(0);
    let host = format!(
        "{} (kernel {})",
        floor_run.host.kvm_flavour, floor_run.host.kernel
    );

    let mut raw = Vec::new();
    for v in variants(&params) {
        let (movement, policy) = (v.movement, v.policy);
        progress(&format!("{movement}, {policy}: stream"));
        let p = workload_params(
            params.count,
            params.size,
            v.batch,
            v.event_idx,
            params.depth,
        );
        let (_, stream) = run_one(
            "stream",
            &format!("stream/{}", v.key),
            layout(v.transport.clone(), "stream", &p, 2),
            bench,
        )?;
        let pingpong = if v.pingpong {
            progress(&format!("{movement}, {policy}: ping-pong"));
            let mut p = p.clone();
            p[w::COUNT] = params.rounds;
            Some(
                run_one(
                    "pingpong",
                    &format!("pingpong/{}", v.key),
                    layout(v.transport.clone(), "pingpong", &p, 2),
                    bench,
                )?
                .1,
            )
        } else {
            None
        };
        raw.push((movement, policy, stream, pingpong));
    }
    // The host remap cost, from the remap runs' own timing.
    let (mut ns, mut pages) = (0u64, 0u64);
    for (_, _, stream, _) in raw.iter().filter(|r| r.0 == "remap") {
        if let Some(t) = &stream.transport {
            ns += t.vms[0].move_ns;
            pages += t.vms[0].pages_remapped;
        }
    }
    let remap_ticks = if pages == 0 {
        0.0
    } else {
        ns as f64 / pages as f64 * tsc_khz as f64 / 1e6
    };
    let floor = Floor {
        exit_ticks,
        remap_ticks,
        tsc_khz,
    };
    let floor_ticks = exit_ticks + remap_ticks;

    let one_way = |pp: &RunResult| {
        let s = &pp.vms[0].samples;
        let k = s.get(w::S_PER_MESSAGE).copied().unwrap_or(0) as usize;
        let rtts = s.get(w::S_HEADER..w::S_HEADER + k).unwrap_or(&[]);
        let mut sorted = rtts.to_vec();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(0) as f64 / 2.0
    };
    let loop_ticks = |stream: &RunResult| {
        stream.vms[0]
            .samples
            .get(w::S_LOOP_TSC)
            .copied()
            .unwrap_or(0) as f64
    };
    let shmem = raw.iter().find(|r| r.0 == "shmem");
    let shmem_stream = shmem.map_or(f64::NAN, |r| loop_ticks(&r.2));
    let shmem_one_way = shmem.and_then(|r| r.3.as_ref()).map_or(f64::NAN, one_way);
    let mut rows = Vec::new();
    for (movement, policy, stream, pingpong) in raw {
        let n = params.count as f64;
        let s = measured(&stream, 0)?;
        let r = measured(&stream, 1)?;
        let t = stream.transport.as_ref();
        let pages = t.map_or(0, |t| t.vms[0].pages_remapped);
        let stream_ticks = loop_ticks(&stream);
        let pp_one_way = pingpong.as_ref().map(one_way);
        let notifications = if stream
            .transport
            .as_ref()
            .is_some_and(|t| t.kind.starts_with("virtio"))
        {
            stream.vms[0]
                .samples
                .get(w::S_NOTIFICATIONS)
                .copied()
                .unwrap_or(0) as f64
                / n
        } else {
            phase_exits(s, "mmio_exits") / n
        };
        rows.push(Row {
            movement: movement.into(),
            policy,
            messages: params.count,
            sender_mmio_exits: phase_exits(s, "mmio_exits") / n,
            notifications,
            retries: stream.vms[0]
                .samples
                .get(w::S_RETRIES)
                .copied()
                .unwrap_or(0) as f64
                / n,
            sender_exits: phase_exits(s, "exits") / n,
            receiver_exits: phase_exits(r, "exits") / n,
            faults: (counter(s, "pf_fixed") + counter(r, "pf_fixed")) / n,
            tlb_requests_per_page: (pages > 0).then(|| {
                (s.vm.get("remote_tlb_flush_requests").copied().unwrap_or(0)
                    + r.vm.get("remote_tlb_flush_requests").copied().unwrap_or(0))
                    as f64
                    / pages as f64
            }),
            vcpu_tlb_flushes: (counter(s, "tlb_flush") + counter(r, "tlb_flush")) / n,
            stream_ratio: stream_ticks / n / floor_ticks,
            pingpong_ratio: pp_one_way.map(|t| t / floor_ticks),
            stream_over_shmem: stream_ticks / shmem_stream,
            pingpong_over_shmem: pp_one_way.map(|t| t / shmem_one_way),
        });
    }
    Ok(Report {
        count: params.count,
        rounds: params.rounds,
        size: params.size,
        floor,
        rows,
        host,
    })
}

/// The report as a Markdown table with its floor.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let us = |ticks: f64| {
        if r.floor.tsc_khz == 0 {
            f64::NAN
        } else {
            ticks / r.floor.tsc_khz as f64 * 1000.0
        }
    };
    let _ = writeln!(
        s,
        "host: {}; {} messages of {} bytes per stream, {} ping-pong rounds",
        r.host, r.count, r.size, r.rounds
    );
    let _ = writeln!(
        s,
        "floor (same run): bare MMIO exit round trip {:.0} ticks ({:.1} us), host page remap {:.0} ticks ({:.1} us)\n",
        r.floor.exit_ticks, us(r.floor.exit_ticks), r.floor.remap_ticks, us(r.floor.remap_ticks)
    );
    let _ = writeln!(s, "| transport | policy | sender userspace exits/msg | notifications/msg | of which retries/msg | sender exits/msg | receiver exits/msg | page faults fixed/msg | remote TLB flush req./page | vCPU TLB flushes/msg | stream time/msg ÷ floor | ping-pong one-way ÷ floor | stream ÷ shmem | ping-pong ÷ shmem |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &r.rows {
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {:.2} | {:.2} | {} | {:.2} | {} |",
            row.movement,
            row.policy,
            row.sender_mmio_exits,
            row.notifications,
            row.retries,
            row.sender_exits,
            row.receiver_exits,
            row.faults,
            opt(row.tlb_requests_per_page),
            row.vcpu_tlb_flushes,
            row.stream_ratio,
            opt(row.pingpong_ratio),
            row.stream_over_shmem,
            opt(row.pingpong_over_shmem)
        );
    }
    s
}

/// A per-run timeout long enough for `params`.
pub fn timeout(params: &Params) -> Duration {
    Duration::from_secs(60 + (params.count.max(params.rounds) / 200))
}
