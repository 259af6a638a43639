//! The one driver that runs every case: write its config, run the VMM process, read what it
//! did, evaluate the case's expectations, report.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pageflip_interface::{exit, RunConfig, RunResult};

use crate::cases::{Case, Input, HELLO_PLACEHOLDER};
use crate::expect::{evaluate, Observed, Planned, ResultFile};
use crate::images::{Image, ImageSet};
use crate::report::{CaseReport, Reporter, SuiteReport, Verdict};
use crate::vmm::{Vmm, VmmError, VmmExit};

/// File names of what a case leaves in its directory.
pub mod files {
    /// The config handed to the VMM.
    pub const CONFIG: &str = "run.json";
    /// The result the VMM writes.
    pub const RESULT: &str = "result.json";
    /// The VMM's standard output.
    pub const STDOUT: &str = "stdout.txt";
    /// The VMM's standard error.
    pub const STDERR: &str = "stderr.txt";
}

/// What the driver runs cases with.
#[derive(Debug)]
pub struct Bench<'a> {
    /// The VMM under test.
    pub vmm: &'a Vmm,
    /// The guest images.
    pub images: &'a ImageSet,
    /// Each case gets the directory `<work_dir>/<case name>`.
    pub work_dir: &'a Path,
    /// Per-case limit on the VMM process.
    pub timeout: Duration,
}

/// Why the suite could not go on.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A case's directory or config could not be written.
    #[error("cannot write {0}")]
    Write(PathBuf, #[source] io::Error),
    /// A case's config could not be serialized (e.g. a path that is not UTF-8).
    #[error("cannot write the config of case {0} as JSON")]
    Serialize(&'static str, #[source] serde_json::Error),
    /// The VMM could not be run.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The VMM reports a host problem: no case can run here.
    #[error("the suite cannot run on this host: in case {case} the VMM exited with code {code} (host problem): {message}")]
    HostProblem {
        /// The case.
        case: &'static str,
        /// The VMM's exit code.
        code: i32,
        /// The VMM's last stderr line.
        message: String,
    },
    /// The report could not be written.
    #[error("cannot write the report")]
    Report(#[source] io::Error),
}

/// Runs `cases` in order, reporting each as it finishes.
pub fn run_suite(
    cases: &[Case],
    bench: &Bench<'_>,
    reporter: &mut Reporter,
) -> Result<SuiteReport, DriverError> {
    let start = Instant::now();
    reporter.begin(cases.len()).map_err(DriverError::Report)?;
    let mut reports = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let report = match run_case(case, bench) {
            Ok(report) => report,
            Err(e) => {
                // The error itself is what the caller reports; a failure to say so here too
                // changes nothing.
                let _ = reporter.bail_out(&e.to_string());
                return Err(e);
            }
        };
        reporter
            .case(i + 1, cases.len(), &report)
            .map_err(DriverError::Report)?;
        reports.push(report);
    }
    let suite = SuiteReport {
        cases: reports,
        duration: start.elapsed(),
        vmm_command: bench.vmm.description().to_string(),
    };
    reporter.finish(&suite).map_err(DriverError::Report)?;
    Ok(suite)
}

/// Runs one case.
pub fn run_case(case: &Case, bench: &Bench<'_>) -> Result<CaseReport, DriverError> {
    let start = Instant::now();
    let mut report = CaseReport {
        name: case.name.to_string(),
        description: case.description.to_string(),
        verdict: Verdict::Pass,
        duration: Duration::ZERO,
        vmm: None,
        host: None,
    };
    if let Some(why) = case.skip {
        report.verdict = Verdict::Skip(why.to_string());
        return Ok(report);
    }
    let (planned, seen) = execute(case, bench)?;
    if let ResultFile::Parsed(r) = &seen.result {
        report.vmm = Some(r.vmm.clone());
        report.host = Some(r.host.clone());
    }
    let reasons = evaluate(&case.expect, &planned, &seen);
    if !reasons.is_empty() {
        report.verdict = Verdict::Fail(reasons);
    }
    report.duration = start.elapsed();
    Ok(report)
}

/// Runs a case's VMM process in `<work_dir>/<case name>` and collects what it did (a VMM
/// reporting a host problem is an error: no case can run here).
pub fn execute(case: &Case, bench: &Bench<'_>) -> Result<(Planned, Observed), DriverError> {
    execute_in(case, bench, case.name)
}

/// [`execute`], with the run's files in `dir` (relative to the work directory; it may hold
/// `/`) instead of the case's name: runs of one case that must all be kept.
pub fn execute_in(
    case: &Case,
    bench: &Bench<'_>,
    dir: &str,
) -> Result<(Planned, Observed), DriverError> {
    let dir = bench.work_dir.join(dir);
    fresh_dir(&dir)?;
    let (text, planned) = plan(case, bench.images)?;
    let config_path = dir.join(files::CONFIG);
    let result_path = dir.join(files::RESULT);
    let stderr_path = dir.join(files::STDERR);
    fs::write(&config_path, text).map_err(|e| DriverError::Write(config_path.clone(), e))?;
    let create = |path: PathBuf| File::create(&path).map_err(|e| DriverError::Write(path, e));
    let run = bench.vmm.run(
        &config_path,
        &result_path,
        create(dir.join(files::STDOUT))?,
        create(stderr_path.clone())?,
        bench.timeout,
    )?;
    let stderr = fs::read(&stderr_path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    if run.exit == VmmExit::Code(exit::HOST) {
        return Err(DriverError::HostProblem {
            case: case.name,
            code: exit::HOST,
            message: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no message on stderr)")
                .to_string(),
        });
    }
    let result = read_result(&result_path);
    Ok((
        planned,
        Observed {
            run,
            stderr,
            result,
        },
    ))
}

/// The config text a case hands to the VMM, and what the driver planned.
pub fn plan(case: &Case, images: &ImageSet) -> Result<(String, Planned), DriverError> {
    match &case.input {
        Input::Run(layout) => {
            let config = layout.config(images);
            let text = serde_json::to_string_pretty(&config)
                .map_err(|e| DriverError::Serialize(case.name, e))?;
            let planned = Planned {
                image_paths: config.vms.iter().map(|vm| vm.image.clone()).collect(),
                config: Some(config),
            };
            Ok((text, planned))
        }
        Input::Raw(raw) => {
            let hello = images.path(Image::Guest("hello"));
            let quoted =
                serde_json::to_string(&hello).map_err(|e| DriverError::Serialize(case.name, e))?;
            let text = raw.replace(HELLO_PLACEHOLDER, &quoted);
            let planned = Planned {
                config: RunConfig::from_json(&text).ok(),
                image_paths: if raw.contains(HELLO_PLACEHOLDER) {
                    vec![hello]
                } else {
                    Vec::new()
                },
            };
            Ok((text, planned))
        }
    }
}

fn fresh_dir(dir: &Path) -> Result<(), DriverError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DriverError::Write(dir.to_path_buf(), e)),
    }
    fs::create_dir_all(dir).map_err(|e| DriverError::Write(dir.to_path_buf(), e))
}

fn read_result(path: &Path) -> ResultFile {
    match fs::read_to_string(path) {
        Ok(text) => match RunResult::from_json(&text) {
            Ok(result) => ResultFile::Parsed(Box::new(result)),
            Err(e) => ResultFile::Invalid(e.to_string()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => ResultFile::Absent,
        Err(e) => ResultFile::Invalid(format!("cannot read {}: {e}", path.display())),
    }
}
