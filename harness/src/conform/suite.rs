//! The suite: runs conformance cases through the rig, judges each against its expectations and
//! reports the verdicts as they come.

use std::io;
use std::time::{Duration, Instant};

use crate::conform::cases::Case;
use crate::conform::expect::evaluate;
use crate::conform::formats::{CaseReport, CaseVerdict, Reporter, SuiteReport};
use crate::run::observed::ResultFile;
use crate::run::rig::{Rig, RigError};

/// Why the suite could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A case could not be run (a host problem: no case can run).
    #[error("{}", rig_message(.0))]
    Rig(#[from] RigError),
    /// The report could not be written.
    #[error("cannot write the report")]
    Report(#[source] io::Error),
}

/// A host problem ends the whole suite; other rig errors say what they say.
fn rig_message(e: &RigError) -> String {
    match e {
        RigError::HostProblem { .. } => format!("the suite {e}"),
        e => e.to_string(),
    }
}

/// Runs `cases` in order, reporting each as it finishes.
pub fn run_suite(
    cases: &[Case],
    rig: &Rig<'_>,
    reporter: &mut Reporter,
) -> Result<SuiteReport, SuiteError> {
    let start = Instant::now();
    reporter.begin(cases.len()).map_err(SuiteError::Report)?;
    let mut reports = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let report = match run_case(case, rig) {
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
            .map_err(SuiteError::Report)?;
        reports.push(report);
    }
    let suite = SuiteReport {
        cases: reports,
        duration: start.elapsed(),
        vmm_command: rig.vmm.description().to_string(),
    };
    reporter.finish(&suite).map_err(SuiteError::Report)?;
    Ok(suite)
}

/// Runs one case.
pub fn run_case(case: &Case, rig: &Rig<'_>) -> Result<CaseReport, SuiteError> {
    let start = Instant::now();
    let mut report = CaseReport {
        name: case.name.to_string(),
        description: case.description.to_string(),
        verdict: CaseVerdict::Pass,
        duration: Duration::ZERO,
        vmm: None,
        host: None,
    };
    if let Some(why) = &case.skip {
        report.verdict = CaseVerdict::Skip(why.to_string());
        return Ok(report);
    }
    let (planned, seen) = rig.execute(case.name, &case.input, case.name)?;
    if let ResultFile::Parsed(r) = &seen.result {
        report.vmm = Some(r.vmm.clone());
        report.host = Some(r.host.clone());
    }
    let reasons = evaluate(&case.expect, &planned, &seen);
    if !reasons.is_empty() {
        report.verdict = CaseVerdict::Fail(reasons);
    }
    report.duration = start.elapsed();
    Ok(report)
}
