//! `conform`: runs pageflip's conformance cases against a VMM build (`conform --help`).
//!
//! With the hidden first argument `__vmm`, it is the reference VMM instead
//! (`conform __vmm run --config C --out R`): the default VMM under test is this same binary,
//! run as a separate process, so it goes through the same interface as any `--vmm` build.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use pageflip_harness::conform::app;
use pageflip_harness::conform::cli::{self, Parsed};
use pageflip_harness::run::vmm::VMM_SUBCOMMAND;

/// Exit code for usage errors and suites that cannot run.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == VMM_SUBCOMMAND) {
        let vmm_args =
            std::iter::once(OsString::from("pageflip-vmm")).chain(args[2..].iter().cloned());
        return pageflip_vmm::cli::run_cli(vmm_args);
    }
    env_logger::init();
    match conform(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("conform: error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn conform(args: Vec<OsString>) -> anyhow::Result<u8> {
    let options = match cli::parse(args)? {
        Parsed::Run(options) => options,
        Parsed::Print(text) => {
            let mut stdout = std::io::stdout();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            return Ok(0);
        }
    };
    Ok(app::run(&options)?.exit_code())
}
