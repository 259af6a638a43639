//! `conform`'s command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use pageflip_interface::usage::usage_error_line;

use crate::conform::formats::Format;

/// Longest per-case timeout accepted (a day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Runs pageflip's conformance cases against a VMM build and reports the verdicts.
///
/// Each case is run as a separate VMM process, `VMM run --config C --out R`
/// (docs/vmm-interface.md). Exit code: 0 if every selected case passed (skips allowed),
/// 1 if any failed, 2 for usage errors or when the suite cannot run at all.
#[derive(Clone, Debug, Parser)]
#[command(name = "conform", version)]
pub struct Options {
    /// VMM build to test [default: the reference VMM built into conform]
    #[arg(long, value_name = "PATH")]
    pub vmm: Option<PathBuf>,
    /// List the (selected) cases with one-line descriptions and exit
    #[arg(long)]
    pub list: bool,
    /// Run only cases whose name contains PATTERN (repeatable: any may match)
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Leave out cases whose name contains PATTERN (repeatable; applied after --filter)
    #[arg(long, value_name = "PATTERN")]
    pub skip: Vec<String>,
    /// Kill a case's VMM process, and every process it started, after SECS seconds; the case
    /// fails
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub timeout: Duration,
    /// Report format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE [default: standard output]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep each case's config, result and VMM output under DIR (and the guest images)
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Mutation testing: run the (selected) transport cases once per fault the reference VMM
    /// can inject (`run --inject-fault NAME`), each fault against its transport's cases, and
    /// print a mutant x case kill matrix; exit 1 if a mutant survives (no case fails against it)
    #[arg(long)]
    pub mutants: bool,
    /// Seed of the guest-side fuzzer's cases (fuzz-guest-*): a failing run prints its seed,
    /// and this replays it [default: from the clock]
    #[arg(long, value_name = "SEED", env = "PAGEFLIP_FUZZ_SEED")]
    pub fuzz_seed: Option<u64>,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub enum Parsed {
    /// Run (or list) with these options.
    Run(Options),
    /// Print this text (help or version) and exit successfully.
    Print(String),
}

/// A command line that cannot be used, as one line: what is wrong and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses `args` (including the program name).
pub fn parse<I, T>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Options::try_parse_from(args) {
        Ok(options) => Ok(Parsed::Run(options)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(Parsed::Print(e.to_string()))
        }
        Err(e) => Err(UsageError(usage_error_line(&e.to_string(), "conform"))),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= MAX_TIMEOUT_SECS => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Options {
        match parse(std::iter::once("conform").chain(args.iter().copied())) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(std::iter::once("conform").chain(args.iter().copied())) {
            Err(UsageError(line)) => line,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let o = options(&[]);
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert_eq!(o.format, Format::Human);
        assert!(o.vmm.is_none() && o.output.is_none() && o.keep.is_none() && !o.list);
        let o = options(&[
            "--filter",
            "boot",
            "--filter",
            "bad-elf",
            "--timeout",
            "2.5",
            "--format",
            "junit",
            "--vmm",
            "/x/vmm",
            "--output",
            "r.xml",
            "--keep",
            "k",
            "--list",
        ]);
        assert_eq!(o.filter, ["boot", "bad-elf"]);
        assert_eq!(o.timeout, Duration::from_millis(2500));
        assert_eq!(o.format, Format::Junit);
        assert_eq!(o.vmm, Some(PathBuf::from("/x/vmm")));
        assert!(o.list);
    }

    #[test]
    fn usage_errors_are_one_line() {
        for (args, needle) in [
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (
                &["--format", "xml"][..],
                "possible values: human, tap, junit, json",
            ),
            (&["--timeout", "0"][..], "above 0"),
            (&["--timeout", "soon"][..], "--timeout"),
            (&["--filter"][..], "--filter"),
            (&["extra"][..], "unexpected argument 'extra'"),
        ] {
            let line = usage_error(args);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains(needle), "{args:?}: {line}");
            assert!(line.ends_with("run `conform --help` for usage"), "{line}");
        }
    }

    #[test]
    fn help_and_version_are_printed() {
        for flag in ["--help", "--version"] {
            assert!(matches!(
                parse(["conform", flag]),
                Ok(Parsed::Print(text)) if !text.is_empty()
            ));
        }
    }
}
