//! The `pageflip-vmm` command line: the VMM-build interface (`docs/vmm-interface.md`).
//!
//! Exit codes: 0 the run was carried out and its result written (whatever the guests did);
//! 1 the VMM failed (a disallowed system call too: [`crate::seccomp`]); 2 bad input, nothing
//! ran; 3 a host problem (no /dev/kvm, no permission).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use pageflip_interface::usage::usage_error_line;
use pageflip_interface::{exit, RunConfig};

use crate::inject::Fault;
use crate::inject::Injected;
use crate::inject::Slowdown;
use crate::runner::{self, VMM_NAME};
use crate::seccomp::{Confinement, ThreadKind};

/// pageflip's reference KVM VMM: runs 1 to 8 CPL3 guests as described by a JSON run config.
#[derive(Debug, Parser)]
#[command(name = "pageflip-vmm", version, about, long_about = None)]
struct Cli {
    /// Log level for the VMM's own messages (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    log_level: log::LevelFilter,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the VMs of a config and write the result as JSON.
    Run {
        /// The run config (JSON, version 1; see docs/vmm-interface.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Where to write the result (JSON); `-` for standard output.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Inject one fault into a transport (remap IPC, virtio, shmem), to check that a test suite catches it
        /// (`conform --mutants`). Never use it for measurements.
        #[arg(long, value_name = "FAULT")]
        inject_fault: Option<Fault>,
        /// Busy-wait this many microseconds (1 to 100000) on every message the VMM moves
        /// (each remap/copy delivery, each virtio buffer relayed; shared memory has no VMM
        /// work to slow): a performance fault, to check that a benchmark comparison flags a
        /// slower VMM. Never use it for measurements of the VMM itself.
        #[arg(long, value_name = "US")]
        inject_slowdown_us: Option<Slowdown>,
        /// Run without the seccomp filters (every thread may make any system call): for
        /// debugging a run that a filter ended.
        #[arg(long)]
        no_seccomp: bool,
        /// Test of the seccomp report: the threads of this kind (main, vcpu, backend) make one
        /// system call no filter allows as soon as they are confined.
        #[arg(long, value_name = "KIND", hide = true)]
        seccomp_selftest: Option<ThreadKind>,
    },
    /// Print this host's KVM flavour and the KVM statistics it exposes, as JSON.
    Host,
}

/// Runs the VMM command line with `args` (including the program name) and returns its exit code.
pub fn run_cli<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let started = Instant::now();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let line = usage_error_line(&e.to_string(), PROGRAM);
            return ExitCode::from(fail(exit::BAD_INPUT, line) as u8);
        }
        Err(e) => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let _ = env_logger::Builder::new()
        .filter_level(cli.log_level)
        .format_target(false)
        .try_init();
    let code = match cli.command {
        Command::Run {
            config,
            out,
            inject_fault,
            inject_slowdown_us,
            no_seccomp,
            seccomp_selftest,
        } => {
            let injected = Injected {
                fault: inject_fault,
                slowdown: inject_slowdown_us,
            };
            let confinement = if no_seccomp {
                log::warn!("seccomp filters are off (--no-seccomp)");
                Confinement::off()
            } else {
                match Confinement::on() {
                    Ok(c) => c,
                    Err(e) => {
                        return ExitCode::from(fail(exit::INTERNAL, e) as u8);
                    }
                }
            };
            let confinement = confinement.with_selftest(seccomp_selftest);
            run(&config, &out, started, injected, &confinement)
        }
        Command::Host => host(),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The program name that prefixes error lines.
const PROGRAM: &str = "pageflip-vmm";

fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    eprintln!("{PROGRAM}: error: {message}");
    code
}

fn run(
    config_path: &Path,
    out: &Path,
    started: Instant,
    injected: Injected,
    confinement: &Confinement,
) -> i32 {
    let text = match std::fs::read_to_string(config_path) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                2,
                format_args!("cannot read config {}: {e}", config_path.display()),
            )
        }
    };
    let config = match RunConfig::from_json(&text) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                exit::BAD_INPUT,
                format_args!("config {}: {e}", config_path.display()),
            )
        }
    };
    // Fail on an unwritable output before running anything.
    let mut sink: Box<dyn Write> = if out == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        match std::fs::File::create(out) {
            Ok(f) => Box::new(f),
            Err(e) => {
                return fail(
                    2,
                    format_args!("cannot write result {}: {e}", out.display()),
                )
            }
        }
    };
    if let Some(f) = injected.fault {
        log::warn!("injected fault: {f} (this run is a mutant, not a measurement)");
    }
    if let Some(s) = injected.slowdown {
        log::warn!(
            "injected slowdown: {s} moved (remap, copy, virtio; none for shmem); this run measures a deliberately slower VMM"
        );
    }
    let result = match runner::run_confined(&config, started, injected, confinement) {
        Ok(r) => r,
        Err(e) => {
            // Leave no empty result behind for a run that did not happen.
            if out != Path::new("-") {
                let _ = std::fs::remove_file(out);
            }
            return fail(e.exit_code(), e);
        }
    };
    let json = serde_json::to_string_pretty(&result).expect("results serialize");
    if let Err(e) = writeln!(sink, "{json}") {
        return fail(
            1,
            format_args!("writing result {} failed: {e}", out.display()),
        );
    }
    exit::RAN
}

fn host() -> i32 {
    let kvm = match kvm_ioctls::Kvm::new() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("{PROGRAM}: warning: cannot open /dev/kvm: {e}");
            None
        }
    };
    let counters = kvm.as_ref().and_then(|k| crate::probe_stat_names(k).ok());
    let info = serde_json::json!({
        "vmm": {"name": VMM_NAME, "version": env!("CARGO_PKG_VERSION")},
        "host": crate::host::host_info(None),
        "kvm_api_version": kvm.as_ref().map(|k| k.get_api_version()),
        "binary_stats": counters,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&info).expect("serializes")
    );
    if kvm.is_some() {
        exit::RAN
    } else {
        exit::HOST
    }
}
