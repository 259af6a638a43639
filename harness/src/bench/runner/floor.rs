//! The floor, measured in the same run as the cases: one bare MMIO exit round trip, one
//! in-kernel exit (an ioeventfd notification), one memcpy of 4 KiB on the host and one host
//! page remap. Every case's latency is also given over the first of them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use pageflip_abi::probes::{doorbell, ipc_workloads as w, notify_floor};
use pageflip_interface::{NotifyMode, RunResult, TransportConfig};

use crate::bench::runner::measure::ticks_to_ns;
use crate::run::layout::Layout;
use crate::run::rig::{CleanRunError, Rig};
use pageflip_results::floor as f;

/// One repetition of the floor: values by floor metric name, and the runs' results.
#[derive(Clone, Debug, Default)]
pub struct FloorRep {
    /// Floor metric -> ns.
    pub values: BTreeMap<String, f64>,
    /// Floor metric -> why it could not be measured.
    pub unavailable: BTreeMap<String, String>,
    /// The result of the bare-exit run (host facts, counters).
    pub exit_run: Option<RunResult>,
}

/// VMM runs of one floor measurement (bare exits, ioeventfd exits, the remap stream).
pub const RUNS: u64 = 3;

/// Messages of the remap run that times the host remap.
const REMAP_MESSAGES: u64 = 500;
/// memcpys of 4 KiB timed per repetition.
const MEMCPY_ROUNDS: u32 = 20_000;

/// Runs the floor once: `count` doorbells, `count` ioeventfd notifications, a remap stream
/// and the host memcpy; the runs' files go under `dir` in the work directory.
pub fn measure(count: u64, dir: &str, rig: &Rig<'_>) -> Result<FloorRep, CleanRunError> {
    let mut rep = FloorRep::default();
    let (_, exit_run) = rig.run_clean(
        "floor-exit",
        &format!("{dir}/floor-exit"),
        Layout::benchmark(
            TransportConfig::None,
            pageflip_workloads::DOORBELL,
            &[count],
            1,
        ),
    )?;
    let tsc_khz = exit_run.host.tsc_khz.filter(|&k| k > 0);
    let phase_ticks = |r: &RunResult, i: usize| r.vms[0].samples.get(i).copied();
    let exit_ticks =
        phase_ticks(&exit_run, doorbell::S_PHASE_TSC).map(|t| t as f64 / (count + 2) as f64);
    let Some(k) = tsc_khz else {
        for name in [f::EXIT_NS, f::IOEVENTFD_EXIT_NS] {
            rep.unavailable.insert(
                name.into(),
                "the VMM reports no TSC frequency (host.tsc_khz)".into(),
            );
        }
        rep.exit_run = Some(exit_run);
        return Ok(rep);
    };
    if let Some(t) = exit_ticks {
        rep.values.insert(f::EXIT_NS.into(), ticks_to_ns(t, k));
    }

    let mut p = vec![0; 1];
    p[notify_floor::COUNT] = count;
    let (_, notify_run) = rig.run_clean(
        "floor-ioeventfd",
        &format!("{dir}/floor-ioeventfd"),
        Layout::benchmark(
            TransportConfig::Virtio {
                notify: NotifyMode::Ioeventfd,
            },
            pageflip_workloads::NOTIFY_FLOOR,
            &p,
            1,
        ),
    )?;
    // The phase holds the K notifications and the two phase writes (bare exits).
    if let (Some(t), Some(e)) = (
        phase_ticks(&notify_run, notify_floor::S_PHASE_TSC),
        exit_ticks,
    ) {
        let per = (t as f64 - 2.0 * e) / count as f64;
        rep.values
            .insert(f::IOEVENTFD_EXIT_NS.into(), ticks_to_ns(per.max(0.0), k));
    }

    let mut p = vec![0; 10];
    p[w::COUNT] = REMAP_MESSAGES;
    p[w::SIZE] = 4096;
    p[w::BATCH] = 1;
    p[w::CHECK] = w::CHECK_LIGHT;
    let (_, remap_run) = rig.run_clean(
        "floor-remap",
        &format!("{dir}/floor-remap"),
        Layout::benchmark(TransportConfig::Remap, pageflip_workloads::STREAM, &p, 2),
    )?;
    let (ns, pages) = remap_run.transport.as_ref().map_or((0, 0), |t| {
        t.vms
            .iter()
            .fold((0, 0), |(n, p), v| (n + v.move_ns, p + v.pages_remapped))
    });
    if pages > 0 {
        rep.values
            .insert(f::REMAP_NS.into(), ns as f64 / pages as f64);
    } else {
        rep.unavailable.insert(
            f::REMAP_NS.into(),
            "the remap run moved no page (does this VMM build implement remap?)".into(),
        );
    }
    rep.values.insert(f::MEMCPY_4K_NS.into(), memcpy_4k_ns());
    rep.exit_run = Some(exit_run);
    Ok(rep)
}

/// Nanoseconds per memcpy of 4 KiB between two page-aligned buffers (the copy transport's
/// unit of work), over `MEMCPY_ROUNDS` copies.
pub fn memcpy_4k_ns() -> f64 {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let src = Box::new(Page([0x5a; 4096]));
    let mut dst = Box::new(Page([0; 4096]));
    // Warm the caches and the TLB.
    dst.0.copy_from_slice(&src.0);
    let t = Instant::now();
    for i in 0..MEMCPY_ROUNDS {
        let s = black_box(&src.0);
        dst.0.copy_from_slice(s);
        black_box(&mut dst.0)[0] = i as u8;
    }
    t.elapsed().as_nanos() as f64 / f64::from(MEMCPY_ROUNDS)
}
