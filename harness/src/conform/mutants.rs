//! `conform --mutants`: runs the transport cases (remap IPC, virtio, shmem) against the
//! reference VMM once per injected fault — each fault against the cases of the transports it
//! breaks — and prints which cases kill which mutant. A mutant no case kills means the suite
//! cannot tell that implementation from a correct one: the command then fails.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Instant;

use crate::conform::cases::Case;
use crate::conform::formats::CaseVerdict;
use crate::conform::suite::{run_case, SuiteError};
use crate::run::rig::Rig;
use crate::run::vmm::Vmm;

/// The faults the reference VMM can inject (`pageflip-vmm run --inject-fault NAME`).
pub fn fault_names() -> Vec<&'static str> {
    pageflip_vmm::inject::ALL_FAULTS
        .iter()
        .map(|f| f.name())
        .collect()
}

/// Whether the reference VMM's fault `name` concerns the transport `case` runs (unknown
/// names concern every case).
pub fn reference_fault_applies(name: &str, case: &Case) -> bool {
    let Some(transport) = case.transport() else {
        return false;
    };
    name.parse::<pageflip_vmm::inject::Fault>()
        .map_or(true, |f| f.applies_to(transport))
}

/// Which cases failed against each mutant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillMatrix {
    /// The cases, in order.
    pub cases: Vec<String>,
    /// Per mutant (fault name): for each case, whether it failed against the mutant while it
    /// passed without a fault (killed the mutant); `None` where the case was not run against
    /// the mutant (another transport's fault).
    pub rows: Vec<(String, Vec<Option<bool>>)>,
    /// Cases that failed against the VMM without any fault (the matrix means nothing then).
    pub baseline_failures: Vec<String>,
}

impl KillMatrix {
    /// Mutants no case killed (of those some selected case was run against).
    pub fn survivors(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|(_, kills)| kills.iter().any(Option::is_some))
            .filter(|(_, kills)| !kills.contains(&Some(true)))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Whether the suite passed cleanly and killed every mutant.
    pub fn all_killed(&self) -> bool {
        self.baseline_failures.is_empty() && self.survivors().is_empty()
    }

    /// The matrix as text: one row per mutant, one column per case (numbered, with a legend).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let width = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            s,
            "kill matrix (X = the case fails against the mutant, - = not run against it):"
        );
        for (i, c) in self.cases.iter().enumerate() {
            let _ = writeln!(s, "  c{:<2} {c}", i + 1);
        }
        let _ = write!(s, "{:width$} ", "mutant");
        for i in 0..self.cases.len() {
            let _ = write!(s, " c{:<2}", i + 1);
        }
        let _ = writeln!(s, "  verdict");
        for (name, kills) in &self.rows {
            let _ = write!(s, "{name:width$} ");
            for k in kills {
                let c = match k {
                    Some(true) => 'X',
                    Some(false) => '.',
                    None => '-',
                };
                let _ = write!(s, "  {c} ");
            }
            let n = kills.iter().filter(|k| **k == Some(true)).count();
            let verdict = if kills.iter().all(Option::is_none) {
                "not run (no selected case of its transport)".to_string()
            } else if n == 0 {
                "SURVIVED".to_string()
            } else {
                format!("killed by {n}")
            };
            let _ = writeln!(s, "  {verdict}");
        }
        if !self.baseline_failures.is_empty() {
            let _ = writeln!(
                s,
                "baseline (no fault) failed: {}; fix these first",
                self.baseline_failures.join(", ")
            );
        }
        let survivors = self.survivors();
        let run = self
            .rows
            .iter()
            .filter(|(_, kills)| kills.iter().any(Option::is_some))
            .count();
        let _ = writeln!(
            s,
            "{run} mutants, {} killed, {} survived{}",
            run - survivors.len(),
            survivors.len(),
            if survivors.is_empty() {
                String::new()
            } else {
                format!(": {}", survivors.join(", "))
            }
        );
        s
    }
}

fn failed(case: &Case, rig: &Rig<'_>) -> Result<bool, SuiteError> {
    run_case(case, rig).map(|r| matches!(r.verdict, CaseVerdict::Fail(_)))
}

/// Runs `cases` without a fault, then once per fault against the cases `applies` selects
/// for it, with progress lines on `progress`.
pub fn run(
    cases: &[Case],
    rig: &Rig<'_>,
    faults: &[&str],
    applies: &dyn Fn(&str, &Case) -> bool,
    progress: &mut dyn Write,
) -> Result<KillMatrix, SuiteError> {
    let report = |progress: &mut dyn Write, line: String| {
        let _ = writeln!(progress, "{line}");
    };
    let start = Instant::now();
    let baseline = cases
        .iter()
        .map(|c| failed(c, rig))
        .collect::<Result<Vec<bool>, _>>()?;
    let baseline_failures: Vec<String> = cases
        .iter()
        .zip(&baseline)
        .filter(|(_, f)| **f)
        .map(|(c, _)| c.name.to_string())
        .collect();
    report(
        progress,
        format!(
            "baseline: {} cases, {} failed",
            cases.len(),
            baseline_failures.len()
        ),
    );
    let mut rows = Vec::with_capacity(faults.len());
    for (i, fault) in faults.iter().enumerate() {
        let vmm: Vmm = rig.vmm.with_fault(fault);
        let mutant = Rig { vmm: &vmm, ..*rig };
        // A case that fails without the fault proves nothing about the fault.
        let kills: Vec<Option<bool>> = cases
            .iter()
            .zip(&baseline)
            .map(|(c, failed_before)| {
                if !applies(fault, c) {
                    return Ok(None);
                }
                Ok(Some(failed(c, &mutant)? && !failed_before))
            })
            .collect::<Result<_, SuiteError>>()?;
        if !cases.iter().any(|c| applies(fault, c)) {
            report(
                progress,
                format!(
                    "[{}/{}] {fault}: not run (no selected case of its transport)",
                    i + 1,
                    faults.len()
                ),
            );
            rows.push((fault.to_string(), vec![None; cases.len()]));
            continue;
        }
        let killers: Vec<&str> = cases
            .iter()
            .zip(&kills)
            .filter(|(_, k)| **k == Some(true))
            .map(|(c, _)| c.name)
            .collect();
        report(
            progress,
            format!(
                "[{}/{}] {fault}: {} ({:.1} s)",
                i + 1,
                faults.len(),
                if killers.is_empty() {
                    "SURVIVED".to_string()
                } else {
                    format!("killed by {}", killers.join(", "))
                },
                start.elapsed().as_secs_f64()
            ),
        );
        rows.push((fault.to_string(), kills));
    }
    Ok(KillMatrix {
        cases: cases.iter().map(|c| c.name.to_string()).collect(),
        rows,
        baseline_failures,
    })
}

/// Writes the matrix to `out`.
pub fn write(matrix: &KillMatrix, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(matrix.render().as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survivors_and_render() {
        let m = KillMatrix {
            cases: vec!["a".into(), "b".into()],
            rows: vec![
                ("f1".into(), vec![Some(true), Some(false)]),
                ("f2".into(), vec![Some(false), None]),
            ],
            baseline_failures: vec![],
        };
        assert_eq!(m.survivors(), vec!["f2"]);
        assert!(!m.all_killed());
        let text = m.render();
        assert!(
            text.contains("SURVIVED") && text.contains("killed by 1"),
            "{text}"
        );
        assert!(
            text.contains("2 mutants, 1 killed, 1 survived: f2"),
            "{text}"
        );
        let not_run = KillMatrix {
            rows: vec![("f3".into(), vec![None, None])],
            ..m.clone()
        };
        assert!(not_run.survivors().is_empty());
        assert!(not_run.render().contains("not run"));
        let clean = KillMatrix {
            rows: vec![("f1".into(), vec![Some(true), None])],
            ..m.clone()
        };
        assert!(clean.all_killed());
        let broken = KillMatrix {
            baseline_failures: vec!["a".into()],
            ..clean
        };
        assert!(!broken.all_killed());
    }

    #[test]
    fn every_reference_fault_is_listed() {
        let names = fault_names();
        assert!(names.len() >= 9, "{names:?}");
        assert!(names.contains(&"skip-unmap") && names.contains(&"ignore-urgent"));
    }
}
