//! `report`'s command line: a results file's report site, the comparison of two results files,
//! and the history of metrics over many.
//!
//! Exit codes: 0 on success; 1 when an input file cannot be used (unreadable, not a results
//! file, wrong schema version) or holds nothing to draw; 2 for usage errors and when the
//! report cannot be written (output directory, PNG font). `report compare` follows
//! [`crate::compare::exit`]: 0 no regression, 1 a gating metric regressed, 2 bad usage or
//! input (files that cannot be read or compared included).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use pageflip_interface::usage::usage_error_line;

use crate::charts::delta::{delta_chart, DeltaRow};
use crate::charts::{history::history_chart, ChartError, ChartOut, Title};
use crate::compare::{self, compare_results, CompareOptions, ComparisonOutcome};
use crate::history::{self, MetricRef};
use crate::site;
use pageflip_results::stats::{DEFAULT_ALPHA, DEFAULT_NOISE_THRESHOLD};
use pageflip_results::{Results, ResultsError};

/// Exit code: an input file cannot be used.
pub const EXIT_BAD_INPUT: u8 = 1;
/// Exit code: usage error, or the report cannot be written.
pub const EXIT_USAGE: u8 = 2;

/// Writes the report of a pageflip benchmark results file (`bench run --out FILE`): every
/// chart as SVG and PNG, summary.md, and index.html, one self-contained page that opens
/// offline.
///
/// `report RESULTS.json` writes into reports/RUN_ID/. PNG charts need the DejaVu Sans font
/// (Debian: fonts-dejavu-core); --no-png writes SVG only. Exit code: 0 on success, 1 if an
/// input file cannot be used, 2 for usage errors or when the report cannot be written.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "report",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Compare two results files, or chart a history of several
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The results file to report on
    #[arg(value_name = "RESULTS.json", required = true)]
    pub results: Option<PathBuf>,
    /// Output directory [default: reports/RUN_ID]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Chart formats.
    #[command(flatten)]
    pub formats: Formats,
}

/// Chart formats.
#[derive(Clone, Copy, Debug, Args)]
pub struct Formats {
    /// Write SVG charts only (no PNG; needs no font)
    #[arg(long)]
    pub no_png: bool,
}

/// The subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Compare two results files, A (baseline) and B (candidate), case by case and metric by
    /// metric: a metric regressed only if the change is significant (permutation test,
    /// p < ALPHA) and larger than the noise threshold. Writes a delta chart and a table.
    Compare {
        /// The baseline
        #[arg(value_name = "A.json")]
        a: PathBuf,
        /// The candidate
        #[arg(value_name = "B.json")]
        b: PathBuf,
        /// Noise threshold: relative changes of the mean within ±NOISE are unchanged
        #[arg(long, value_name = "NOISE", default_value_t = DEFAULT_NOISE_THRESHOLD, value_parser = parse_noise)]
        noise: f64,
        /// Significance level of the permutation test
        #[arg(long, value_name = "ALPHA", default_value_t = DEFAULT_ALPHA, value_parser = parse_alpha)]
        alpha: f64,
        /// A case metric whose regression fails the comparison (repeatable; a name ending
        /// in `.` selects every metric it prefixes; `all` = every metric) [default: the
        /// headline costs: time_per_msg_ns, latency_p50_ns, exits_per_msg,
        /// userspace_exits_per_msg, tlb_flushes_per_msg, remote_tlb_flushes_per_msg,
        /// host_cpu_ns_per_msg]. The others are reported without failing it.
        #[arg(long = "gate", value_name = "METRIC")]
        gate: Vec<String>,
        /// Output directory [default: reports/compare-A_RUN_ID-vs-B_RUN_ID]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Chart formats.
        #[command(flatten)]
        formats: Formats,
    },
    /// Print the transports table of a results file: exits, notifications, faults and TLB
    /// flushes per message, and stream time and ping-pong latency over the floor and over
    /// shared memory's (what `bench transports` prints), as Markdown on stdout
    Transports {
        /// The results file
        #[arg(value_name = "RESULTS.json")]
        results: PathBuf,
    },
    /// Chart chosen metrics over several results files (the nightly history): the mean and
    /// its 95% CI per run, runs ordered by date
    History {
        /// The results files, any order
        #[arg(value_name = "RESULTS.json", required = true, num_args = 1..)]
        results: Vec<PathBuf>,
        /// Output directory (history.svg, history.png)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A metric to follow, as CASE_ID:METRIC (repeatable) [default: time_per_msg_ns of
        /// every immediate stream case of the newest run at its most common size]
        #[arg(long = "metric", value_name = "CASE_ID:METRIC")]
        metrics: Vec<MetricRef>,
        /// Only the newest N runs
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        last: Option<u64>,
        /// Chart formats.
        #[command(flatten)]
        formats: Formats,
    },
}

fn parse_noise(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a relative change of 0 or more (0.05 = 5%)".into()),
    }
}

fn parse_alpha(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err("must be a probability between 0 and 1 (exclusive)".into()),
    }
}

/// Why `report` stopped: the message and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A usage error (one line).
    #[error("{0}")]
    Usage(String),
    /// An input file cannot be used.
    #[error(transparent)]
    Input(#[from] ResultsError),
    /// The input holds nothing to draw.
    #[error("{0}")]
    Nothing(String),
    /// The report could not be written.
    #[error(transparent)]
    Site(#[from] site::SiteError),
    /// A chart could not be written.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// `report compare`: the two files cannot be compared.
    #[error("{0}")]
    CompareInput(String),
    /// `report compare`: a gating metric regressed.
    #[error("{0}")]
    Regressed(String),
    /// Standard output could not be written.
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
}

impl ReportError {
    /// The exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReportError::Input(_) | ReportError::Nothing(_) => EXIT_BAD_INPUT,
            ReportError::Regressed(_) => compare::exit::REGRESSED,
            ReportError::Usage(_)
            | ReportError::Site(_)
            | ReportError::Chart(_)
            | ReportError::CompareInput(_)
            | ReportError::Stdout(_) => EXIT_USAGE,
        }
    }
}

/// Runs `report` with `args` (including the program name), writing what it did to `out`;
/// returns the exit code. Errors go to standard error as one `report: error: ...` line.
pub fn main<I, T>(args: I, out: &mut impl Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = write!(out, "{e}");
            return 0;
        }
        Err(e) => {
            eprintln!(
                "report: error: {}",
                usage_error_line(&e.to_string(), "report")
            );
            return EXIT_USAGE;
        }
    };
    match run(&cli, out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("report: error: {e}");
            e.exit_code()
        }
    }
}

/// Carries out `cli`.
pub fn run(cli: &Cli, out: &mut impl Write) -> Result<(), ReportError> {
    match &cli.command {
        None => {
            let path = cli
                .results
                .as_deref()
                .ok_or_else(|| ReportError::Usage("no results file given".into()))?;
            report_site(path, cli.out.as_deref(), cli.formats, out)
        }
        Some(Command::Compare {
            a,
            b,
            noise,
            alpha,
            gate,
            out: dir,
            formats,
        }) => {
            // compare's exit code 1 is a regression: bad inputs are usage errors (2) here.
            let load =
                |p: &Path| Results::load(p).map_err(|e| ReportError::CompareInput(e.to_string()));
            let a = load(a)?;
            let b = load(b)?;
            let dir = dir.clone().unwrap_or_else(|| {
                Path::new("reports").join(format!("compare-{}-vs-{}", a.run.id, b.run.id))
            });
            compare(
                &a,
                &b,
                (*noise, *alpha, gate),
                &chart_out(dir, *formats),
                out,
            )
        }
        Some(Command::Transports { results }) => {
            let results = Results::load(results)?;
            out.write_all(crate::transports::markdown(&results).as_bytes())
                .map_err(ReportError::Stdout)?;
            Ok(())
        }
        Some(Command::History {
            results,
            out: dir,
            metrics,
            last,
            formats,
        }) => {
            let runs = results
                .iter()
                .map(|p| Results::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let last = last.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            history_report(runs, metrics, last, &chart_out(dir.clone(), *formats), out)
        }
    }
}

fn chart_out(dir: PathBuf, formats: Formats) -> ChartOut {
    ChartOut {
        dir,
        png: !formats.no_png,
    }
}

fn report_site(
    path: &Path,
    dir: Option<&Path>,
    formats: Formats,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let results = Results::load(path)?;
    let dir = dir.map_or_else(
        || Path::new("reports").join(&results.run.id),
        Path::to_path_buf,
    );
    let site = site::generate(&results, &chart_out(dir.clone(), formats))?;
    let drawn = site.charts.iter().filter(|c| c.files.is_some()).count();
    let _ = writeln!(
        out,
        "report: {} cases, {drawn} charts written to {}",
        results.cases.len(),
        dir.display()
    );
    for c in site.charts.iter() {
        if let Some(why) = &c.skipped {
            let _ = writeln!(out, "report: chart {} not drawn: {why}", c.stem);
        }
    }
    let _ = writeln!(out, "report: {}", site.index.display());
    let _ = writeln!(out, "report: {}", site.summary.display());
    Ok(())
}

/// `report compare`: the comparison as Markdown on `out`, and `compare.md`, `compare.json`
/// and the delta chart in the target directory. A regression of a gating metric is an
/// error with exit code [`compare::exit::REGRESSED`].
fn compare(
    a: &Results,
    b: &Results,
    (noise, alpha, gate): (f64, f64, &[String]),
    target: &ChartOut,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let mut opts = CompareOptions {
        alpha,
        noise_threshold: noise,
        ..CompareOptions::default()
    };
    if gate.iter().any(|g| g == "all") {
        opts.gating.clear();
    } else if !gate.is_empty() {
        opts.gating = gate.to_vec();
    }
    let report =
        compare_results(a, b, &opts).map_err(|e| ReportError::CompareInput(e.to_string()))?;
    let text = compare::markdown(&report);
    let dir = &target.dir;
    let write = |name: &str, body: &str| {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join(name), body))
            .map_err(|e| {
                ReportError::Usage(format!("cannot write {}: {e}", dir.join(name).display()))
            })
    };
    write("compare.md", &text)?;
    write("compare.json", &report.to_json())?;
    let rows = delta_rows(&report);
    if !rows.is_empty() {
        let title = Title {
            what: format!(
                "Change of B ({}) over A ({}): mean and 95% CI",
                b.run.id, a.run.id
            ),
            host: site::document::host_line(b),
        };
        delta_chart(target, "deltas", &title, &rows, noise)?;
    }
    let _ = write!(out, "{text}");
    let _ = writeln!(out, "report: written to {}", dir.display());
    if report.regressed() {
        return Err(ReportError::Regressed(format!(
            "{} metrics regressed (p < {alpha} and more than {:.0}% worse)",
            report.gating.regressed,
            noise * 100.0
        )));
    }
    Ok(())
}

/// Most bars of the delta chart.
const DELTA_ROWS: usize = 40;

/// The delta chart's rows, gating metrics only: those that regressed or improved, then the
/// time per message and median latency of the other cases, largest changes first, at most
/// [`DELTA_ROWS`].
fn delta_rows(report: &compare::CompareReport) -> Vec<DeltaRow> {
    use pageflip_results::metric as m;
    let mut rows: Vec<&compare::MetricComparison> = report
        .rows
        .iter()
        .filter(|r| r.gates && r.comparison.relative_change.is_finite())
        .filter(|r| {
            matches!(
                r.outcome,
                ComparisonOutcome::Regressed | ComparisonOutcome::Improved
            ) || r.metric == m::TIME_PER_MSG_NS
                || r.metric == m::LATENCY_P50_NS
        })
        .collect();
    rows.sort_by(|x, y| {
        let key = |r: &compare::MetricComparison| {
            matches!(
                r.outcome,
                ComparisonOutcome::Regressed | ComparisonOutcome::Improved
            )
        };
        key(y).cmp(&key(x)).then(
            y.comparison
                .relative_change
                .abs()
                .total_cmp(&x.comparison.relative_change.abs()),
        )
    });
    rows.truncate(DELTA_ROWS);
    rows.iter()
        .map(|r| DeltaRow {
            label: format!("{}\n{}", r.case, r.metric),
            relative_change: r.comparison.relative_change,
            ci95: r.comparison.effect_ci95,
            verdict: r.comparison.verdict,
        })
        .collect()
}

fn history_report(
    runs: Vec<Results>,
    metrics: &[MetricRef],
    last: Option<usize>,
    target: &ChartOut,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let runs = history::chronological(runs, last);
    let newest = runs.last().expect("clap requires one file at least");
    let metrics = if metrics.is_empty() {
        history::default_metrics(newest)
    } else {
        metrics.to_vec()
    };
    let (series, missing) = history::series(&runs, &metrics);
    for m in &missing {
        let _ = writeln!(
            out,
            "report: {m}: in none of the {} runs, left out",
            runs.len()
        );
    }
    if series.is_empty() {
        return Err(ReportError::Nothing(format!(
            "none of the chosen metrics is in the {} results files{}",
            runs.len(),
            if metrics.is_empty() {
                " (the newest has no immediate stream case with time_per_msg_ns; choose with --metric)"
            } else {
                ""
            }
        )));
    }
    let title = Title {
        what: format!("History over {} runs: mean with 95% CI", runs.len()),
        host: history::hosts_line(&runs),
    };
    let files = history_chart(target, "history", &title, &series)?;
    let _ = writeln!(
        out,
        "report: {} metrics over {} runs: {}",
        series.len(),
        runs.len(),
        files.svg.display()
    );
    if let Some(png) = files.png {
        let _ = writeln!(out, "report: {}", png.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample;

    /// Runs `report args...`; returns the exit code and standard output.
    fn report(args: &[&str]) -> (u8, String) {
        let mut out = Vec::new();
        let code = main(
            std::iter::once("report").chain(args.iter().copied()),
            &mut out,
        );
        (code, String::from_utf8(out).unwrap())
    }

    fn write_sample(dir: &Path, name: &str, date: &str) -> String {
        let mut r = sample::results(80_000.0);
        r.run.date = date.into();
        r.run.id = format!("{date}-sample");
        let path = dir.join(name);
        std::fs::write(&path, r.to_json()).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_site_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_sample(dir.path(), "r.json", "2026-11-24T10:15:00Z");
        let out = dir.path().join("site");
        let (code, text) = report(&[&input, "--out", out.to_str().unwrap(), "--no-png"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("10 charts written"), "{text}");
        assert!(out.join("index.html").is_file() && out.join("summary.md").is_file());
    }

    #[test]
    fn bad_input_files_exit_1() {
        let dir = tempfile::tempdir().unwrap();
        let not_json = dir.path().join("x.json");
        std::fs::write(&not_json, "hello").unwrap();
        let other = dir.path().join("y.json");
        std::fs::write(&other, r#"{"schema":"something-else","version":1}"#).unwrap();
        for path in [
            not_json.to_str().unwrap(),
            other.to_str().unwrap(),
            "/nonexistent/results.json",
        ] {
            let mut cli = Cli::try_parse_from(["report", path, "--no-png"]).unwrap();
            cli.out = Some(dir.path().join("out"));
            let e = run(&cli, &mut Vec::new()).unwrap_err();
            assert_eq!(e.exit_code(), EXIT_BAD_INPUT, "{e}");
            assert!(e.to_string().contains(path), "{e}");
        }
        let e = run(
            &Cli::try_parse_from([
                "report",
                "history",
                not_json.to_str().unwrap(),
                "--out",
                "x",
            ])
            .unwrap(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &[][..],
            &["a.json", "b.json"][..],
            &["compare", "a.json"][..],
            &["compare", "a.json", "b.json", "--noise", "-1"][..],
            &["compare", "a.json", "b.json", "--alpha", "1"][..],
            &["history", "a.json"][..],
            &["history", "a.json", "--out", "d", "--metric", "nocolon"][..],
            &["history", "a.json", "--out", "d", "--last", "0"][..],
            &["--bogus"][..],
        ] {
            assert_eq!(report(args).0, EXIT_USAGE, "{args:?}");
        }
        // Missing arguments are named.
        let e = Cli::try_parse_from(["report"]).unwrap_err();
        assert_eq!(
            usage_error_line(&e.to_string(), "report"),
            "the following required arguments were not provided: <RESULTS.json>; \
             run `report --help` for usage"
        );
        let (code, help) = report(&["--help"]);
        assert_eq!(code, 0);
        for needle in [
            "compare",
            "history",
            "--out",
            "--no-png",
            "fonts-dejavu-core",
        ] {
            assert!(help.contains(needle), "{help}");
        }
        assert_eq!(report(&["history", "--help"]).0, 0);
    }

    #[test]
    fn compare_parses_its_thresholds() {
        let cli = Cli::try_parse_from(["report", "compare", "a.json", "b.json", "--noise", "0.1"])
            .unwrap();
        let Some(Command::Compare { noise, alpha, .. }) = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!((noise, alpha), (0.1, DEFAULT_ALPHA));
    }

    #[test]
    fn history_charts_the_runs() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_sample(dir.path(), "a.json", "2026-11-22T02:00:00Z");
        let b = write_sample(dir.path(), "b.json", "2026-11-23T02:00:00Z");
        let out = dir.path().join("history");
        let (code, text) = report(&[
            "history",
            &b,
            &a,
            "--out",
            out.to_str().unwrap(),
            "--no-png",
            "--metric",
            "stream/remap/immediate/4096B/b1/2vm:time_per_msg_ns",
            "--metric",
            "no/such:metric",
        ]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("no/such:metric: in none of the 2 runs"),
            "{text}"
        );
        assert!(text.contains("1 metrics over 2 runs"), "{text}");
        let svg = std::fs::read_to_string(out.join("history.svg")).unwrap();
        assert!(
            svg.contains("2026-11-22 02:00 4ff41a2"),
            "runs label the x axis"
        );
        // Only unknown metrics: nothing to draw.
        let (code, _) = report(&[
            "history",
            &a,
            "--out",
            out.to_str().unwrap(),
            "--no-png",
            "--metric",
            "no/such:metric",
        ]);
        assert_eq!(code, EXIT_BAD_INPUT);
    }
}
