//! The human format: a progress line per case as it finishes, reasons indented below a
//! failure, and a closing `N passed, N failed, N skipped` line.

use super::{seconds, CaseReport, CaseVerdict, SuiteReport};

/// Indentation of the reasons below a failed case.
const INDENT: &str = "        ";

/// The progress line(s) of case `index` (from 1) of `total`.
pub fn case_line(index: usize, total: usize, case: &CaseReport) -> String {
    let width = total.to_string().len();
    let head = format!("[{index:>width$}/{total}]");
    match &case.verdict {
        CaseVerdict::Pass => format!("{head} PASS {} ({} s)\n", case.name, seconds(case.duration)),
        CaseVerdict::Skip(why) => format!("{head} SKIP {} ({why})\n", case.name),
        CaseVerdict::Fail(reasons) => {
            let mut text = format!("{head} FAIL {} ({} s)\n", case.name, seconds(case.duration));
            for reason in reasons {
                for (i, line) in reason.lines().enumerate() {
                    let bullet = if i == 0 { "- " } else { "  " };
                    text.push_str(&format!("{INDENT}{bullet}{line}\n"));
                }
            }
            text
        }
    }
}

/// The closing lines: what ran against what, the failed cases, and the counts line.
pub fn closing(suite: &SuiteReport) -> String {
    let counts = suite.counts();
    let vmm = match suite.vmm() {
        Some(id) => format!("{} {}", id.name, id.version),
        None => suite.vmm_command.clone(),
    };
    let host = suite
        .host()
        .map(|h| format!(" on {} (kernel {})", h.kvm_flavour, h.kernel))
        .unwrap_or_default();
    let n = suite.cases.len();
    let mut text = format!(
        "\n{n} case{} against {vmm}{host} in {} s\n",
        if n == 1 { "" } else { "s" },
        seconds(suite.duration)
    );
    let failed: Vec<&str> = suite
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, CaseVerdict::Fail(_)))
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        text.push_str(&format!("failed: {}\n", failed.join(" ")));
    }
    text.push_str(&format!(
        "{} passed, {} failed, {} skipped\n",
        counts.passed, counts.failed, counts.skipped
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::formats::sample;

    #[test]
    fn progress_lines_and_closing_line() {
        let suite = sample::suite();
        assert_eq!(
            case_line(3, 21, &suite.cases[0]),
            "[ 3/21] PASS boot-hello (0.12 s)\n"
        );
        let fail = case_line(2, 3, &suite.cases[1]);
        let lines: Vec<&str> = fail.lines().collect();
        assert_eq!(lines[0], "[2/3] FAIL exit-fidelity-k1 (0.12 s)");
        assert!(lines[1].starts_with("        - vm0 stats.measured.vcpu.exits"));
        assert_eq!(lines.len(), 4, "a reason with a newline continues indented");
        assert!(lines[3].starts_with("          "));
        assert_eq!(
            case_line(3, 3, &suite.cases[2]),
            "[3/3] SKIP watchdog (known issue #7)\n"
        );
        let closing = closing(&suite);
        assert_eq!(
            closing.lines().last(),
            Some("1 passed, 1 failed, 1 skipped")
        );
        assert!(closing.contains("failed: exit-fidelity-k1\n"));
        assert!(closing.contains("pageflip-reference-vmm 0.1.0 (abc123) on kvm_pvm"));
    }
}
