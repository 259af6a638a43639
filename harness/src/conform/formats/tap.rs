//! TAP version 13: a plan, one `ok`/`not ok` line per case, failure reasons in an indented
//! YAML block, skips as `# SKIP`.

use super::{seconds, CaseReport, CaseVerdict, SuiteReport};

/// The version line and the plan.
pub fn header(total: usize) -> String {
    format!("TAP version 13\n1..{total}\n")
}

/// The test line (and YAML block) of case number `index` (from 1).
pub fn case(index: usize, case: &CaseReport) -> String {
    let name = description(&case.name);
    match &case.verdict {
        CaseVerdict::Pass => format!("ok {index} - {name}\n"),
        CaseVerdict::Skip(why) => format!("ok {index} - {name} # SKIP {}\n", one_line(why)),
        CaseVerdict::Fail(reasons) => {
            let mut text = format!("not ok {index} - {name}\n  ---\n");
            text.push_str(&format!("  duration_s: {}\n", seconds(case.duration)));
            text.push_str("  reasons:\n");
            for reason in reasons {
                text.push_str(&format!("    - {}\n", yaml_string(reason)));
            }
            text.push_str("  ...\n");
            text
        }
    }
}

/// Closing diagnostics (comments).
pub fn closing(suite: &SuiteReport) -> String {
    let c = suite.counts();
    format!(
        "# {} passed, {} failed, {} skipped in {} s\n",
        c.passed,
        c.failed,
        c.skipped,
        seconds(suite.duration)
    )
}

/// The line that stops a TAP stream early.
pub fn bail_out(reason: &str) -> String {
    format!("Bail out! {}\n", one_line(reason))
}

/// A test description: `#` would start a directive, so it is replaced.
fn description(name: &str) -> String {
    one_line(name).replace('#', "_")
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// A YAML double-quoted scalar (JSON's string syntax is a subset of it).
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::formats::sample;

    #[test]
    fn tap13_lines_and_yaml_block() {
        let suite = sample::suite();
        let mut text = header(3);
        for (i, c) in suite.cases.iter().enumerate() {
            text.push_str(&case(i + 1, c));
        }
        text.push_str(&closing(&suite));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TAP version 13");
        assert_eq!(lines[1], "1..3");
        assert_eq!(lines[2], "ok 1 - boot-hello");
        assert_eq!(lines[3], "not ok 2 - exit-fidelity-k1");
        assert_eq!(lines[4], "  ---");
        assert_eq!(lines[5], "  duration_s: 0.12");
        assert_eq!(lines[6], "  reasons:");
        assert_eq!(
            lines[7],
            "    - \"vm0 stats.measured.vcpu.exits: expected 2 (params[0] + 1), seen 3\""
        );
        assert_eq!(
            lines[8],
            r#"    - "vm0 console: expected it to contain \"a<b & 'c'\"\n, seen \"\u0001\"""#
        );
        assert_eq!(lines[9], "  ...");
        assert_eq!(lines[10], "ok 3 - watchdog # SKIP known issue #7");
        assert!(lines[11].starts_with("# 1 passed, 1 failed, 1 skipped"));
        assert_eq!(
            bail_out("no /dev/kvm\nhere"),
            "Bail out! no /dev/kvm here\n"
        );
    }
}
