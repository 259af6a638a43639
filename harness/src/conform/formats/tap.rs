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
                text.push_str(&yaml_block(reason));
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

/// One list item of the reasons as a YAML literal block scalar (`- |`, the text on the lines
/// below, indented), which every YAML reader parses, Perl's `TAP::Parser::YAMLish` included:
/// it takes a quoted scalar that ends in an escaped quote (`"... \"x\""`) for a multi-line one
/// and stops parsing, and it knows no chomping indicator (`|-`). Control characters other than newlines are written
/// as `\u{..}`, leading spaces as `\u{20}` (a block's indentation is taken from its first
/// line), and an empty line as `\n`.
fn yaml_block(text: &str) -> String {
    let mut out = String::from("    - |\n");
    for line in text.trim_end_matches(['\n', '\r']).split('\n') {
        let mut shown: String = line
            .trim_end_matches('\r')
            .chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect();
        let lead = shown.len() - shown.trim_start_matches(' ').len();
        if lead > 0 {
            shown = "\\u{20}".repeat(lead) + &shown[lead..];
        }
        if shown.is_empty() {
            shown = "\\n".into();
        }
        out.push_str("      ");
        out.push_str(&shown);
        out.push('\n');
    }
    out
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
        assert_eq!(lines[7], "    - |");
        assert_eq!(
            lines[8],
            "      vm0 stats.measured.vcpu.exits: expected 2 (params[0] + 1), seen 3"
        );
        assert_eq!(lines[9], "    - |");
        assert_eq!(
            lines[10],
            r#"      vm0 console: expected it to contain "a<b & 'c'""#
        );
        assert_eq!(lines[11], r#"      , seen "\u{1}""#);
        assert_eq!(lines[12], "  ...");
        assert_eq!(lines[13], "ok 3 - watchdog # SKIP known issue #7");
        assert!(lines[14].starts_with("# 1 passed, 1 failed, 1 skipped"));
        assert_eq!(
            yaml_block("  x\n\ny"),
            "    - |\n      \\u{20}\\u{20}x\n      \\n\n      y\n"
        );
        assert_eq!(
            bail_out("no /dev/kvm\nhere"),
            "Bail out! no /dev/kvm here\n"
        );
    }

    /// Perl's `prove` (TAP::Parser) reads the stream whole: every case counted, no parse error,
    /// though a reason ends in a quoted string (which a double-quoted YAML scalar got wrong).
    #[test]
    fn perl_prove_parses_failures_and_reasons() {
        let Ok(prove) = which("prove") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have Perl's prove (perl-base's TAP::Harness)"
            );
            eprintln!("skipped: no `prove` on PATH (Perl's TAP::Harness)");
            return;
        };
        let mut suite = sample::suite();
        // A reason with ": " before a quoted string: a YAML double-quoted scalar of it reads
        // as a hash line to TAP::Parser::YAMLish, which then stops ("does not support
        // multi-line quoted scalars", "Bad plan").
        for c in &mut suite.cases {
            if let CaseVerdict::Fail(reasons) = &mut c.verdict {
                reasons.push("VMM: expected \"x\"".into());
            }
        }
        let mut text = header(3);
        for (i, c) in suite.cases.iter().enumerate() {
            text.push_str(&case(i + 1, c));
        }
        text.push_str(&closing(&suite));
        let dir = tempfile::tempdir().unwrap();
        let tap = dir.path().join("conform.tap");
        std::fs::write(&tap, &text).unwrap();
        let out = std::process::Command::new(prove)
            .args(["-e", "cat"])
            .arg(&tap)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!report.contains("Parse errors"), "{report}\n{text}");
        assert!(report.contains("Tests=3"), "{report}");
        assert!(report.contains("Failed test:  2"), "{report}");
    }

    fn which(name: &str) -> Result<std::path::PathBuf, ()> {
        std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(name))
                    .find(|c| c.is_file())
            })
            .ok_or(())
    }
}
