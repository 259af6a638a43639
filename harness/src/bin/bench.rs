//! `bench`: pageflip's benchmark runner. `bench transports` (alias `ipc`) measures every
//! transport — remap and copy IPC with immediate and deferred exits, virtio, shared memory —
//! in exits, notifications, TLB flushes and latency over floors measured in the same run
//! (`bench transports --help`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pageflip_harness::driver::Bench;
use pageflip_harness::images::ImageSet;
use pageflip_harness::ipc_bench::{self, Params};
use pageflip_harness::vmm::{Vmm, VMM_SUBCOMMAND};

/// pageflip's benchmark runner.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Remap vs copy vs virtio vs shared memory: exits, notifications, faults and TLB
    /// flushes per message, and latency over the floors (bare exit + host remap; shared
    /// memory) measured in the same run.
    #[command(alias = "ipc")]
    Transports {
        /// Messages per stream run (and doorbells of the floor run).
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        /// Ping-pong rounds.
        #[arg(long, default_value_t = 5_000)]
        rounds: u64,
        /// Message size in bytes (64 to 65536).
        #[arg(long, default_value_t = 4096)]
        size: u64,
        /// Batch size of the deferred policy (2 to 64).
        #[arg(long, default_value_t = 32)]
        batch: u64,
        /// Virtio messages in flight per queue (1 to 85).
        #[arg(long, default_value_t = 32)]
        depth: u64,
        /// VMM build to measure [default: the reference VMM built into this binary].
        #[arg(long, value_name = "PATH")]
        vmm: Option<PathBuf>,
        /// Also write the report as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Keep every run's config and result under DIR.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
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
                pageflip_vmm::cli::usage_error_line(&e.to_string(), "bench")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Err(e) = check(&cli) {
        eprintln!("bench: error: {e}; run `bench transports --help` for usage");
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Checks the options that clap cannot: a usage error (exit code 2) if one is out of range.
fn check(cli: &Cli) -> Result<(), String> {
    let Command::Transports {
        count,
        rounds,
        size,
        batch,
        depth,
        ..
    } = &cli.command;
    if !(1..=85).contains(depth) {
        return Err(format!("--depth {depth}: must be 1 to 85"));
    }
    if !(64..=65536).contains(size) {
        return Err(format!("--size {size}: must be 64 to 65536 bytes"));
    }
    if !(2..=64).contains(batch) {
        return Err(format!("--batch {batch}: must be 2 to 64"));
    }
    if count < batch || count % batch != 0 {
        return Err(format!(
            "--count {count}: must be a multiple of --batch {batch}"
        ));
    }
    if *rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Transports {
        count,
        rounds,
        size,
        batch,
        depth,
        vmm,
        json,
        keep,
    } = cli.command;
    let vmm = match vmm {
        Some(p) => Vmm::at(&p)?,
        None => Vmm::builtin()?,
    };
    let temp = tempfile::tempdir().context("cannot create a temporary directory (set TMPDIR)")?;
    let work = keep.unwrap_or_else(|| temp.path().to_path_buf());
    let images_dir = work.join("images");
    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("cannot create {}", images_dir.display()))?;
    let images = ImageSet::write(&images_dir)?;
    let params = Params {
        count,
        rounds,
        size,
        batch,
        depth,
    };
    let bench = Bench {
        vmm: &vmm,
        images: &images,
        work_dir: &work,
        timeout: ipc_bench::timeout(&params),
    };
    let bar = ProgressBar::new(ipc_bench::steps(&params)).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}, eta {eta}] {msg}")
            .expect("valid template"),
    );
    let report = ipc_bench::run(params, &bench, &mut |step| {
        bar.set_message(step.to_string());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let table = ipc_bench::markdown(&report);
    std::io::stdout().write_all(table.as_bytes())?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
