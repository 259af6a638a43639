//! `bench`'s command line: pageflip's benchmark runner. `bench transports` (alias `ipc`) measures every
//! transport — remap and copy IPC with immediate and deferred exits, virtio, shared memory —
//! in exits, notifications, TLB flushes and latency over floors measured in the same run
//! (`bench transports --help`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::bench::matrix::{Matrix, Profile, TransportsSweep};
use crate::bench::progress::Progress;
use crate::bench::runner::{self, Plan};
use crate::run::images::ImageSet;
use crate::run::rig::Rig;
use crate::run::vmm::{Vmm, VMM_SUBCOMMAND};
use anyhow::Context;
use clap::{Parser, Subcommand};
use pageflip_abi::probes::ipc_workloads as w;

/// pageflip's benchmark runner.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a benchmark matrix (workload x transport x exit policy x size x batch x VMs)
    /// from a profile or a matrix file, with warm-up and repetitions, and writes a results
    /// file (docs/results.md) that `report` draws and `report compare` compares.
    Run(RunArgs),
    /// Remap vs copy vs virtio vs shared memory: exits, notifications, faults and TLB
    /// flushes per message, and latency over the floors (bare exit + host remap; shared
    /// memory) measured in the same run.
    ///
    /// A fixed matrix of `bench run` (every transport at one size: stream immediate and
    /// deferred, ping-pong, virtio with and without EVENT_IDX), written as a results file and
    /// printed as the table `report transports` draws from it.
    #[command(alias = "ipc")]
    Transports(TransportsArgs),
}

/// `bench transports` options.
#[derive(Debug, clap::Args)]
struct TransportsArgs {
    /// Messages per stream run (and doorbells of the floor run).
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Ping-pong rounds.
    #[arg(long, default_value_t = 5_000)]
    rounds: u64,
    /// Message size in bytes (64 to 8388608, 8 MiB).
    #[arg(long, default_value_t = 4096)]
    size: u64,
    /// Batch size of the deferred policy (2 to 64).
    #[arg(long, default_value_t = 32)]
    batch: u64,
    /// Virtio messages in flight per queue (1 to 85).
    #[arg(long, default_value_t = 32)]
    depth: u64,
    /// Measured repetitions per case.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// VMM build to measure [default: the reference VMM built into this binary].
    #[arg(long, value_name = "PATH")]
    vmm: Option<PathBuf>,
    /// Where to write the results file [default: results/transports.json].
    #[arg(long, visible_alias = "json", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep every run's config and result under DIR.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Do not count perf tracepoints around the runs.
    #[arg(long)]
    no_perf: bool,
}

/// `bench run` options.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Named matrix: quick (~5 min on 2 cores), nightly (~30 min) or full (hours).
    #[arg(long, value_enum, default_value = "quick", conflicts_with = "matrix")]
    profile: Profile,
    /// A matrix file (JSON, docs/results.md) instead of a profile.
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Where to write the results [default: results/PROFILE.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Measured repetitions per case (overrides the profile's).
    #[arg(long, value_name = "N")]
    reps: Option<u32>,
    /// Warm-up runs per case (overrides the profile's).
    #[arg(long, value_name = "N")]
    warmup: Option<u32>,
    /// Do not pin vCPU threads to host CPUs.
    #[arg(long)]
    no_pin: bool,
    /// VMM build to measure [default: the reference VMM built into this binary].
    #[arg(long, value_name = "PATH")]
    vmm: Option<PathBuf>,
    /// Reference VMM only: busy-wait US microseconds on every message it moves (an injected
    /// slowdown, to show that `report compare` flags it).
    #[arg(long, value_name = "US")]
    inject_slowdown_us: Option<u32>,
    /// Keep every run's config and result under DIR.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Do not count perf tracepoints (kvm:kvm_exit, kvm:kvm_userspace_exit, tlb:tlb_flush)
    /// around the runs.
    #[arg(long)]
    no_perf: bool,
    /// List the cases the matrix expands to and exit.
    #[arg(long)]
    list: bool,
}

/// Runs `bench` with the process's arguments; with the hidden first argument `__vmm` it is the
/// reference VMM instead (the default VMM under test, run as a separate process).
pub fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == VMM_SUBCOMMAND) {
        let vmm_args = std::iter::once("pageflip-vmm".into()).chain(args[2..].iter().cloned());
        return pageflip_vmm::cli::run_cli::<_, std::ffi::OsString>(vmm_args);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            eprintln!(
                "bench: error: {}",
                pageflip_interface::usage::usage_error_line(&e.to_string(), "bench")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match cli.command {
        Command::Run(args) => bench_run(args),
        Command::Transports(args) => bench_transports(args),
    }
}

/// `bench transports`: checks the options that clap cannot (a usage error, exit code 2, if
/// one is out of range), then runs the transports matrix like `bench run` and prints its
/// table.
fn bench_transports(t: TransportsArgs) -> ExitCode {
    let TransportsArgs {
        count,
        rounds,
        size,
        batch,
        depth,
        ..
    } = t;
    let problem = if !(1..=85).contains(&depth) {
        Some(format!("--depth {depth}: must be 1 to 85"))
    } else if !(w::MIN_SIZE..=w::MAX_SIZE).contains(&size) {
        Some(format!(
            "--size {size}: must be {} to {} bytes",
            w::MIN_SIZE,
            w::MAX_SIZE
        ))
    } else if !(2..=64).contains(&batch) {
        Some(format!("--batch {batch}: must be 2 to 64"))
    } else if count < batch || count % batch != 0 {
        Some(format!(
            "--count {count}: must be a multiple of --batch {batch}"
        ))
    } else if rounds == 0 {
        Some("--rounds must be at least 1".into())
    } else {
        None
    };
    if let Some(e) = problem {
        eprintln!("bench: error: {e}; run `bench transports --help` for usage");
        return ExitCode::from(2);
    }
    let matrix = Matrix::transports(TransportsSweep {
        count,
        rounds,
        size,
        batch,
        depth,
        repetitions: t.reps,
    });
    let args = RunArgs {
        profile: Profile::Quick,
        matrix: None,
        out: Some(
            t.out
                .unwrap_or_else(|| PathBuf::from("results").join("transports.json")),
        ),
        reps: None,
        warmup: None,
        vmm: t.vmm,
        no_pin: false,
        inject_slowdown_us: None,
        keep: t.keep,
        no_perf: t.no_perf,
        list: false,
    };
    let cases = match matrix.expand() {
        Ok(c) => c.len(),
        Err(e) => {
            eprintln!("bench: error: {e}; run `bench transports --help` for usage");
            return ExitCode::from(2);
        }
    };
    execute(
        args,
        matrix,
        "transports".into(),
        cases,
        View::TransportsTable,
    )
}

/// What `bench` prints on stdout after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Nothing: the results file is the output.
    None,
    /// The transports table (`report transports`).
    TransportsTable,
}

/// `bench run`: exit 0 when every case ran, 1 when a case had failed repetitions or the run
/// could not go on, 2 for bad options or a bad matrix, 130 when interrupted (the results
/// of the finished cases are written).
fn bench_run(args: RunArgs) -> ExitCode {
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("bench: error: {e}; run `bench run --help` for usage");
        ExitCode::from(2)
    };
    let (mut matrix, profile) = match &args.matrix {
        Some(path) => match Matrix::load(path) {
            Ok(m) => (m, path.display().to_string()),
            Err(e) => return usage(&e),
        },
        None => (args.profile.matrix(), args.profile.name().to_string()),
    };
    if let Some(r) = args.reps {
        matrix.repetitions = r;
    }
    if let Some(w) = args.warmup {
        matrix.warmup = w;
    }
    let cases = match matrix.expand() {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if args.list {
        for c in &cases {
            println!(
                "{:<8} {:<18} {:<12} {:>7} B  batch {:<2} {} VMs  touch {:<6} {} messages",
                c.workload,
                c.transport.name(),
                c.policy,
                c.size,
                c.batch,
                c.vms,
                c.touch.name(),
                c.messages()
            );
        }
        println!(
            "{} cases x ({} warm-up + {} repetitions)",
            cases.len(),
            matrix.warmup,
            matrix.repetitions
        );
        return ExitCode::SUCCESS;
    }
    if let Some(us) = args.inject_slowdown_us {
        if args.vmm.is_some() {
            return usage(&"--inject-slowdown-us works with the built-in reference VMM only");
        }
        let range = pageflip_vmm::inject::SLOWDOWN_US;
        if !range.contains(&us) {
            return usage(&format!(
                "--inject-slowdown-us {us}: must be {} to {}",
                range.start(),
                range.end()
            ));
        }
    }
    execute(args, matrix, profile, cases.len(), View::None)
}

/// Runs `matrix`, which expands to `cases` cases, as `bench run` does, prints `view`, and
/// turns the outcome into the exit code.
fn execute(args: RunArgs, matrix: Matrix, profile: String, cases: usize, view: View) -> ExitCode {
    match bench_run_inner(args, matrix, profile, cases) {
        Ok((results, out)) => {
            let failed: usize = results.cases.iter().map(|c| c.errors.len()).sum();
            let disagree = results
                .cases
                .iter()
                .flat_map(|c| {
                    c.cross_checks
                        .iter()
                        .filter(|x| !x.agree)
                        .map(move |x| (c, x))
                })
                .count();
            eprintln!(
                "bench: {} cases in {:.0} s -> {}{}",
                results.cases.len(),
                results.run.duration_s,
                out.display(),
                if disagree > 0 {
                    format!(" ({disagree} cross-checks disagree: see the results)")
                } else {
                    String::new()
                }
            );
            if view == View::TransportsTable {
                let table = pageflip_report::transports::markdown(&results);
                if std::io::stdout().write_all(table.as_bytes()).is_err() {
                    return ExitCode::from(1);
                }
            }
            if results.run.interrupted {
                eprintln!("bench: interrupted; the finished cases are kept");
                ExitCode::from(130)
            } else if failed > 0 {
                eprintln!("bench: {failed} repetitions failed (see `errors` in the results)");
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn bench_run_inner(
    args: RunArgs,
    matrix: Matrix,
    profile: String,
    cases: usize,
) -> anyhow::Result<(pageflip_results::Results, PathBuf)> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let mut vmm = match &args.vmm {
        Some(p) => Vmm::at(p)?,
        None => Vmm::builtin()?,
    };
    if let Some(us) = args.inject_slowdown_us {
        vmm = vmm.with_run_args(
            vec!["--inject-slowdown-us".to_string(), us.to_string()],
            &format!("slowed down by {us} us per message"),
        );
    }
    let vmm_args = vmm.run_args().to_vec();
    let temp = tempfile::tempdir().context("cannot create a temporary directory (set TMPDIR)")?;
    let work = args
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let images_dir = work.join("images");
    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("cannot create {}", images_dir.display()))?;
    let images = ImageSet::write(&images_dir)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}.json", profile.replace('/', "_")))
    });
    let plan = Plan {
        matrix,
        profile,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        pin: !args.no_pin,
        vmm_path: args
            .vmm
            .as_ref()
            .map_or("builtin".to_string(), |p| p.display().to_string()),
        vmm_args,
        out: out.clone(),
        perf: !args.no_perf,
    };
    let bench = Rig {
        vmm: &vmm,
        images: &images,
        work_dir: &work,
        timeout: std::time::Duration::from_secs(600),
    };
    let mut progress = Progress::new(runner::total_runs(&plan.matrix, cases));
    let results = runner::run(&plan, &bench, &stop, &mut |step| progress.step(step));
    progress.finish();
    Ok((results?, out))
}
