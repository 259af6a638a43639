//! Reports: the verdict of each case and of the suite, and the formats they are written in.
//! Human and TAP reports stream one entry per case as it finishes; JUnit and JSON are written
//! when the suite is done (with human progress lines on stderr meanwhile).

pub mod human;
pub mod json;
pub mod junit;
pub mod tap;

use std::io::{self, Write};
use std::time::Duration;

use pageflip_interface::{HostInfo, VmmIdentity};

/// The verdict on one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseVerdict {
    /// Every expectation was met.
    Pass,
    /// These expectations were not met (one reason each: expected vs seen).
    Fail(Vec<String>),
    /// Not run, for this reason.
    Skip(String),
}

/// One case's report.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseReport {
    /// The case's name.
    pub name: String,
    /// Its one-line description.
    pub description: String,
    /// The verdict.
    pub verdict: CaseVerdict,
    /// Wall time of the case.
    pub duration: Duration,
    /// The VMM build that ran it, as its result says.
    pub vmm: Option<VmmIdentity>,
    /// The host, as the result says.
    pub host: Option<HostInfo>,
}

/// CaseCounts of verdicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaseCounts {
    /// Passed cases.
    pub passed: usize,
    /// Failed cases.
    pub failed: usize,
    /// Skipped cases.
    pub skipped: usize,
}

/// The report of a whole suite run.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteReport {
    /// The cases, in the order they ran.
    pub cases: Vec<CaseReport>,
    /// Wall time of the suite.
    pub duration: Duration,
    /// What `--vmm` (or the default) was.
    pub vmm_command: String,
}

impl SuiteReport {
    /// CaseCounts the verdicts.
    pub fn counts(&self) -> CaseCounts {
        let mut c = CaseCounts::default();
        for case in &self.cases {
            match case.verdict {
                CaseVerdict::Pass => c.passed += 1,
                CaseVerdict::Fail(_) => c.failed += 1,
                CaseVerdict::Skip(_) => c.skipped += 1,
            }
        }
        c
    }

    /// The VMM identity the first result reported.
    pub fn vmm(&self) -> Option<&VmmIdentity> {
        self.cases.iter().find_map(|c| c.vmm.as_ref())
    }

    /// The host the first result reported.
    pub fn host(&self) -> Option<&HostInfo> {
        self.cases.iter().find_map(|c| c.host.as_ref())
    }
}

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Progress lines and a summary, for people.
    Human,
    /// Test Anything Protocol, version 13.
    Tap,
    /// JUnit XML.
    Junit,
    /// JSON, for machines.
    Json,
}

/// Writes a report in one format as the suite runs.
pub struct Reporter {
    format: Format,
    out: Box<dyn Write>,
    progress: Option<Box<dyn Write>>,
}

impl Reporter {
    /// A reporter writing `format` to `out`; for the formats written at the end, progress
    /// lines go to `progress`.
    pub fn new(format: Format, out: Box<dyn Write>, progress: Box<dyn Write>) -> Reporter {
        let progress = matches!(format, Format::Junit | Format::Json).then_some(progress);
        Reporter {
            format,
            out,
            progress,
        }
    }

    /// Starts the report of `total` cases.
    pub fn begin(&mut self, total: usize) -> io::Result<()> {
        if self.format == Format::Tap {
            self.out.write_all(tap::header(total).as_bytes())?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// Reports case number `index` (from 1) of `total`, just finished.
    pub fn case(&mut self, index: usize, total: usize, case: &CaseReport) -> io::Result<()> {
        let line = human::case_line(index, total, case);
        match self.format {
            Format::Human => write_flush(&mut self.out, &line),
            Format::Tap => write_flush(&mut self.out, &tap::case(index, case)),
            Format::Junit | Format::Json => match &mut self.progress {
                Some(progress) => write_flush(progress, &line),
                None => Ok(()),
            },
        }
    }

    /// Gives up on the report: the suite cannot go on, for `reason`. TAP says `Bail out!`;
    /// the other formats write nothing more (the caller reports the error).
    pub fn bail_out(&mut self, reason: &str) -> io::Result<()> {
        if self.format == Format::Tap {
            write_flush(&mut self.out, &tap::bail_out(reason))?;
        }
        Ok(())
    }

    /// Ends the report.
    pub fn finish(&mut self, suite: &SuiteReport) -> io::Result<()> {
        let text = match self.format {
            Format::Human => human::closing(suite),
            Format::Tap => tap::closing(suite),
            Format::Junit => junit::render(suite),
            Format::Json => json::render(suite),
        };
        if let Some(progress) = &mut self.progress {
            write_flush(progress, &human::closing(suite))?;
        }
        write_flush(&mut self.out, &text)
    }
}

fn write_flush(out: &mut Box<dyn Write>, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Seconds with two decimals, as reports show durations.
pub fn seconds(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

#[cfg(test)]
pub(crate) mod sample {
    //! A suite report with one case of each verdict, for the format tests.
    use super::*;

    pub(crate) fn suite() -> SuiteReport {
        let identity = VmmIdentity {
            name: "pageflip-reference-vmm".into(),
            version: "0.1.0 (abc123)".into(),
        };
        let host = HostInfo {
            kvm_flavour: "kvm_pvm".into(),
            kernel: "6.1.0".into(),
            cpu_model: "Some CPU".into(),
            tsc_khz: Some(2_000_000),
        };
        let case = |name: &str, verdict| CaseReport {
            name: name.into(),
            description: format!("{name} does <things> & \"stuff\""),
            verdict,
            duration: Duration::from_millis(123),
            vmm: Some(identity.clone()),
            host: Some(host.clone()),
        };
        SuiteReport {
            cases: vec![
                case("boot-hello", CaseVerdict::Pass),
                case(
                    "exit-fidelity-k1",
                    CaseVerdict::Fail(vec![
                        "vm0 stats.measured.vcpu.exits: expected 2 (params[0] + 1), seen 3".into(),
                        "vm0 console: expected it to contain \"a<b & 'c'\"\n, seen \"\u{1}\""
                            .into(),
                    ]),
                ),
                case("watchdog", CaseVerdict::Skip("known issue #7".into())),
            ],
            duration: Duration::from_millis(2500),
            vmm_command: "the built-in reference VMM (conform __vmm)".into(),
        }
    }
}
