//! `bench run`: runs a benchmark [`Matrix`] against a VMM build in rounds — each round
//! measures the floor once and every case once (warm-up rounds first, unrecorded) — and
//! writes a [`Results`] file (`docs/results.md`) after every measured round, so an
//! interrupted run (Ctrl-C) keeps every repetition it finished.

pub mod floor;
pub mod measure;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use pageflip_interface::RunResult;

use crate::bench::matrix::{CaseSpec, Matrix};
use crate::bench::tracepoints::{self, TracepointCounts, Tracepoints};
use crate::run::hugepages::Reservation;
use crate::run::layout::{Input, Layout};
use crate::run::rig::{CleanRunError, Rig};
use measure::{PerfCounts, Repetition};
use pageflip_results::{
    self as results, metric as m, CaseParams, CaseResult, CrossCheck, Floor, Host,
    LatencyDistribution, Metric, Results, RunInfo, TracepointState, VmmBuild,
};

/// What a benchmark run is asked to do.
#[derive(Debug)]
pub struct Plan {
    /// The matrix.
    pub matrix: Matrix,
    /// The profile's name or the matrix file's path.
    pub profile: String,
    /// The command line, for the results.
    pub command: String,
    /// Pin each VM's vCPU thread to a host CPU.
    pub pin: bool,
    /// `builtin` or the `--vmm` path.
    pub vmm_path: String,
    /// Extra arguments the VMM is run with.
    pub vmm_args: Vec<String>,
    /// Where the results file is written (after every case).
    pub out: PathBuf,
    /// Count perf tracepoints around each run (`crate::bench::tracepoints`).
    pub perf: bool,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The matrix is unusable.
    #[error(transparent)]
    Matrix(#[from] crate::bench::matrix::MatrixError),
    /// The floor could not be measured (nothing else can be).
    #[error("the floor could not be measured: {0}")]
    Floor(#[source] CleanRunError),
    /// The results file could not be written.
    #[error("cannot write the results to {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Interrupted before the first floor was measured: there is nothing to keep.
    #[error("interrupted before anything was measured")]
    Interrupted,
}

/// The number of VMM runs `matrix` takes (for a progress bar).
pub fn total_runs(matrix: &Matrix, cases: usize) -> u64 {
    u64::from(matrix.warmup + matrix.repetitions) * (floor::RUNS + cases as u64)
}

/// Runs the plan. `progress` is told before each VMM run what it is; `stop` is polled
/// between runs (set it on Ctrl-C): the run then ends early with `run.interrupted` set and
/// every repetition taken so far kept.
pub fn run(
    plan: &Plan,
    rig: &Rig<'_>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<Results, RunnerError> {
    let cases = plan.matrix.expand()?;
    let started = Instant::now();
    let date = utc_now();
    let mx = &plan.matrix;
    let mut perf = plan
        .perf
        .then(|| Tracepoints::open(tracepoints::RUNNER_TRACEPOINTS));
    let mut fired = BTreeSet::new();
    let mut states: Vec<CaseState> = cases
        .iter()
        .map(|spec| {
            let params = case_params(spec);
            CaseState {
                id: params.id(),
                params,
                spec,
                reps: Vec::new(),
                errors: Vec::new(),
            }
        })
        .collect();
    // remap-huge cases need free huge pages: reserve them (root) for the whole run.
    let huge = cases
        .iter()
        .map(|spec| {
            Input::Run(Layout::benchmark(
                spec.transport.clone(),
                spec.workload,
                &spec.params(),
                spec.vms,
            ))
            .huge_pages()
        })
        .max()
        .filter(|&n| n > 0);
    let _huge = huge.and_then(|n| match Reservation::at_least(n) {
        Ok(r) => Some(r),
        Err(e) => {
            progress(&format!("warning: {e}; the remap-huge cases will fail"));
            None
        }
    });
    let mut floor_reps = Vec::new();
    let mut results: Option<Results> = None;
    let mut interrupted = false;

    // Round-robin: each round measures the floor once and every case once, so a case's
    // repetitions spread over the whole run and see the host's slow drifts (which
    // back-to-back repetitions would hide, making two runs of one build look different).
    'rounds: for round in 0..(mx.warmup + mx.repetitions) {
        let measured = round >= mx.warmup;
        let what = if measured { "rep" } else { "warm-up" };
        let label = format!(
            "round {}/{} ({what})",
            round + 1,
            mx.warmup + mx.repetitions
        );
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break 'rounds;
        }
        progress(&format!("{label}: floor"));
        // The tracepoints count around the first floor only to learn which of them this
        // host fires.
        let counting = round == 0 && perf.as_mut().is_some_and(|p| p.start().is_ok());
        // Every run's files are kept apart (`--keep`): `round-NN/floor-exit`, `round-NN/<case id>`.
        let round_dir = format!("round-{:02}", round + 1);
        let rep = floor::measure(mx.floor_count, &round_dir, rig);
        if counting {
            let _ = perf.as_mut().map(|p| p.stop());
            fired = perf.as_ref().map_or_else(BTreeSet::new, |p| {
                p.states()
                    .into_iter()
                    .filter(|(_, s)| *s == TracepointState::Fired)
                    .map(|(n, _)| n)
                    .collect()
            });
        }
        let rep = match rep {
            Ok(rep) => rep,
            Err(_) if stop.load(Ordering::SeqCst) => {
                interrupted = true;
                break 'rounds;
            }
            Err(e) => return Err(RunnerError::Floor(e)),
        };
        for _ in 1..floor::RUNS {
            progress(&format!("{label}: floor"));
        }
        if results.is_none() {
            let first = rep.exit_run.as_ref().expect("the floor has a run");
            results = Some(header(plan, rig, &date, first));
        }
        let exit_ns = rep.values.get(results::floor::EXIT_NS).copied();
        if measured {
            floor_reps.push(rep);
        }
        for st in states.iter_mut() {
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break 'rounds;
            }
            progress(&format!("{label}: {}", st.id));
            let spec = st.spec;
            let lay = Layout {
                pin_vcpus: plan.pin,
                ..Layout::benchmark(
                    spec.transport.clone(),
                    spec.workload,
                    &spec.params(),
                    spec.vms,
                )
            };
            let counting = !fired.is_empty() && perf.as_mut().is_some_and(|p| p.start().is_ok());
            let cpu0 = children_cpu_ns();
            let outcome = rig.run_clean(spec.workload, &format!("{round_dir}/{}", st.id), lay);
            let cpu_ns = children_cpu_ns().saturating_sub(cpu0);
            let counts = if counting {
                perf.as_mut().and_then(|p| p.stop().ok())
            } else {
                None
            };
            match outcome {
                Ok((_, result)) if measured => {
                    let perf = counts.map_or_else(PerfCounts::default, |c| perf_counts(&c, &fired));
                    st.reps
                        .push(measure::repetition(spec, &result, exit_ns, cpu_ns, &perf));
                }
                Ok(_) => {}
                Err(_) if stop.load(Ordering::SeqCst) => {
                    interrupted = true;
                    break 'rounds;
                }
                Err(e) => st.errors.push(format!("round {} ({what}): {e}", round + 1)),
            }
        }
        if measured {
            let r = results.as_mut().expect("set after the first floor");
            fill(r, &floor_reps, &states, started);
            write(&plan.out, r)?;
        }
    }
    let mut r = results.ok_or(RunnerError::Interrupted)?;
    fill(&mut r, &floor_reps, &states, started);
    r.run.interrupted = interrupted;
    if let Some(p) = &perf {
        r.host.tracepoints = p.states();
    }
    write(&plan.out, &r)?;
    Ok(r)
}

/// One case while the rounds run.
struct CaseState<'a> {
    spec: &'a CaseSpec,
    id: String,
    params: CaseParams,
    reps: Vec<Repetition>,
    errors: Vec<String>,
}

/// The results' fields that do not change while the run goes on.
fn header(plan: &Plan, rig: &Rig<'_>, date: &str, first: &RunResult) -> Results {
    let mx = &plan.matrix;
    Results {
        schema: results::SCHEMA.into(),
        version: results::SCHEMA_VERSION,
        run: RunInfo {
            id: format!("{}-{}", date.replace(['-', ':'], ""), short(&plan.profile)),
            date: date.to_string(),
            git_revision: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
            profile: plan.profile.clone(),
            command: plan.command.clone(),
            repetitions: mx.repetitions,
            warmup: mx.warmup,
            pinned: plan.pin,
            interrupted: false,
            duration_s: 0.0,
        },
        host: host(first),
        vmm: VmmBuild {
            name: first.vmm.name.clone(),
            version: first.vmm.version.clone(),
            path: plan.vmm_path.clone(),
            sha256: sha256_of(rig.vmm.program()),
            args: plan.vmm_args.clone(),
        },
        floor: Floor::default(),
        cases: Vec::new(),
    }
}

/// Puts the floor and the cases measured so far (those with a repetition or an error) into
/// `r`.
fn fill(
    r: &mut Results,
    floor_reps: &[floor::FloorRep],
    states: &[CaseState<'_>],
    started: Instant,
) {
    r.floor = floor_metrics(floor_reps);
    r.cases = states
        .iter()
        .filter(|st| !st.reps.is_empty() || !st.errors.is_empty())
        .map(|st| {
            case_result(
                st.id.clone(),
                st.params.clone(),
                &st.reps,
                st.errors.clone(),
            )
        })
        .collect();
    r.run.duration_s = started.elapsed().as_secs_f64();
}

/// The counts of the tracepoints in `fired` (a by-reason breakdown only if complete).
fn perf_counts(c: &TracepointCounts, fired: &BTreeSet<String>) -> PerfCounts {
    PerfCounts {
        totals: c
            .totals
            .iter()
            .filter(|(n, _)| fired.contains(*n))
            .map(|(n, v)| (n.clone(), *v))
            .collect(),
        exit_reasons: c
            .by_reason
            .get(tracepoints::KVM_EXIT)
            .filter(|r| r.complete && fired.contains(tracepoints::KVM_EXIT))
            .map(|r| r.reasons.clone()),
    }
}

/// The parameters of `spec` as the results give them.
fn case_params(spec: &CaseSpec) -> CaseParams {
    CaseParams {
        workload: spec.workload.into(),
        transport: spec.transport.name(),
        transport_config: spec.transport.clone(),
        policy: spec.policy.into(),
        size: spec.size,
        batch: spec.batch,
        vms: spec.vms,
        messages: spec.messages(),
        depth: spec.depth,
        touch: spec.touch.name().into(),
    }
}

/// A case's result from its measured repetitions.
fn case_result(
    id: String,
    params: CaseParams,
    reps: &[Repetition],
    errors: Vec<String>,
) -> CaseResult {
    let mut metrics = BTreeMap::new();
    let mut unavailable = BTreeMap::new();
    let names: BTreeSet<&String> = reps.iter().flat_map(|r| r.values.keys()).collect();
    for name in names {
        let values: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.values.get(name).copied())
            .collect();
        if values.len() == reps.len() {
            let (unit, higher) = unit_of(name);
            metrics.insert(name.clone(), Metric::new(unit, higher, values));
        } else {
            unavailable.insert(
                name.clone(),
                format!("measured in {} of {} repetitions", values.len(), reps.len()),
            );
        }
    }
    for r in reps {
        for (name, why) in &r.unavailable {
            if !metrics.contains_key(name) {
                unavailable
                    .entry(name.clone())
                    .or_insert_with(|| why.clone());
            }
        }
    }
    let pooled: Vec<u64> = reps
        .iter()
        .flat_map(|r| r.latency_ns.iter().copied())
        .collect();
    let latency = (!pooled.is_empty()).then(|| LatencyDistribution {
        what: if params.workload == pageflip_workloads::PINGPONG {
            "one-way latency (round trip / 2), ns".into()
        } else {
            "receiver inter-arrival time, ns".into()
        },
        samples: pooled.len() as u64,
        cdf: measure::cdf(&pooled),
    });
    let mut totals: BTreeMap<&String, BTreeMap<&String, u64>> = BTreeMap::new();
    for r in reps {
        for (what, sources) in &r.counts {
            let t = totals.entry(what).or_default();
            for (src, c) in sources {
                *t.entry(src).or_default() += c;
            }
        }
    }
    let cross_checks = totals
        .into_iter()
        .filter(|(_, s)| s.len() >= 2)
        .map(|(what, s)| {
            let first = s.values().next().copied();
            CrossCheck {
                what: what.clone(),
                agree: s.values().all(|&c| Some(c) == first),
                sources: s.into_iter().map(|(k, v)| (k.clone(), v)).collect(),
                note: measure::check::note(what).into(),
            }
        })
        .collect();
    CaseResult {
        id,
        params,
        metrics,
        unavailable,
        latency,
        cross_checks,
        errors,
    }
}

/// The floor's metrics from its repetitions.
fn floor_metrics(reps: &[floor::FloorRep]) -> Floor {
    let mut out = Floor::default();
    for name in [
        results::floor::EXIT_NS,
        results::floor::IOEVENTFD_EXIT_NS,
        results::floor::MEMCPY_4K_NS,
        results::floor::REMAP_NS,
    ] {
        let values: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.values.get(name).copied())
            .collect();
        if values.len() == reps.len() && !values.is_empty() {
            out.metrics
                .insert(name.into(), Metric::new("ns", false, values));
        } else {
            let why = reps
                .iter()
                .find_map(|r| r.unavailable.get(name).cloned())
                .unwrap_or_else(|| "not measured in every repetition".into());
            out.unavailable.insert(name.into(), why);
        }
    }
    out
}

/// Unit and direction of a case metric.
pub fn unit_of(name: &str) -> (&'static str, bool) {
    match name {
        m::MESSAGES => ("messages", true),
        m::BYTES => ("bytes", true),
        m::THROUGHPUT_MSGS => ("msg/s", true),
        m::THROUGHPUT_MIB => ("MiB/s", true),
        m::HOST_CPU_NS_PER_MSG | m::MOVE_NS_PER_MSG => ("ns/msg", false),
        n if n.ends_with("_over_exit") => ("ratio", false),
        n if n.ends_with("_ns") => ("ns", false),
        n if n.ends_with("_per_page") => ("per page", false),
        n if n.starts_with(m::EXITS_BY_KIND) || n.starts_with(m::EXIT_REASON) => {
            ("exits/msg", false)
        }
        _ => ("per message", false),
    }
}

/// The host as the floor's first run saw it.
fn host(r: &RunResult) -> Host {
    let vm = &r.vms[0].stats;
    let mut counters: BTreeSet<String> = BTreeSet::new();
    if let Some(d) = vm.run.as_ref().or(vm.measured.as_ref()) {
        counters.extend(d.vcpu.keys().cloned());
        counters.extend(d.vm.keys().cloned());
    }
    Host {
        cpu_model: r.host.cpu_model.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: r.host.kernel.clone(),
        kvm_flavour: r.host.kvm_flavour.clone(),
        tsc_khz: r.host.tsc_khz,
        tsc_source: "KVM_GET_TSC_KHZ on the VMM's vCPU (result host.tsc_khz)".into(),
        counters: counters.into_iter().collect(),
        unavailable_counters: vm.unavailable.clone(),
        tracepoints: BTreeMap::new(),
    }
}

/// The profile's name for the run id (a matrix file's stem).
fn short(profile: &str) -> String {
    Path::new(profile)
        .file_stem()
        .map_or_else(|| profile.to_string(), |s| s.to_string_lossy().into_owned())
}

/// The UTC time now, RFC 3339 to the second.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Output of `git ARGS` in the harness's source tree, trimmed, if git and the tree exist.
fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// SHA-256 of a file, hex.
fn sha256_of(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).ok()?;
    Some(
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// CPU time (user + system) of every child process waited for so far, ns.
fn children_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage writes it whole and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// Writes the results file whole (a temporary file renamed over it).
fn write(path: &Path, r: &Results) -> Result<(), RunnerError> {
    let err = |source| RunnerError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, r.to_json()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_civil() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }

    #[test]
    fn units_and_directions() {
        assert_eq!(unit_of(m::THROUGHPUT_MIB), ("MiB/s", true));
        assert_eq!(unit_of(m::LATENCY_P99_NS), ("ns", false));
        assert_eq!(unit_of(m::LATENCY_P50_OVER_EXIT), ("ratio", false));
        assert_eq!(unit_of("exits_by_kind.mmio_exits"), ("exits/msg", false));
        assert_eq!(unit_of(m::REMOTE_TLB_FLUSHES_PER_PAGE), ("per page", false));
        assert_eq!(unit_of(m::MOVE_NS_PER_MSG), ("ns/msg", false));
        assert_eq!(unit_of(m::MAP_OPS_PER_MSG), ("per message", false));
    }

    #[test]
    fn a_metric_missing_in_one_repetition_is_unavailable_not_averaged() {
        let mut a = Repetition::default();
        a.values.insert(m::EXITS_PER_MSG.into(), 1.0);
        a.values.insert(m::TIME_PER_MSG_NS.into(), 10.0);
        let mut b = Repetition::default();
        b.values.insert(m::EXITS_PER_MSG.into(), 1.0);
        let spec = &crate::bench::matrix::Profile::Quick
            .matrix()
            .expand()
            .unwrap()[0];
        let c = case_result("x".into(), case_params(spec), &[a, b], vec![]);
        assert_eq!(c.metrics[m::EXITS_PER_MSG].values, vec![1.0, 1.0]);
        assert!(!c.metrics.contains_key(m::TIME_PER_MSG_NS));
        assert!(c.unavailable[m::TIME_PER_MSG_NS].contains("1 of 2"));
    }

    #[test]
    fn cross_checks_keep_disagreements() {
        let mut a = Repetition::default();
        let mut s = BTreeMap::new();
        s.insert("guest".to_string(), 100);
        s.insert("kvm".to_string(), 101);
        a.counts.insert(measure::check::NOTIFICATIONS.into(), s);
        let spec = &crate::bench::matrix::Profile::Quick
            .matrix()
            .expand()
            .unwrap()[0];
        let c = case_result("x".into(), case_params(spec), &[a.clone(), a], vec![]);
        assert_eq!(c.cross_checks.len(), 1);
        assert!(!c.cross_checks[0].agree);
        assert_eq!(c.cross_checks[0].sources["kvm"], 202);
    }
}
