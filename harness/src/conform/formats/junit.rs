//! JUnit XML: one `<testsuite>` of the cases, failures with their reasons, skips with theirs.

use std::fmt::Write as _;

use super::{CaseReport, CaseVerdict, SuiteReport};

/// Classname of every test case.
const CLASSNAME: &str = "conform";

/// The whole report as a JUnit XML document.
pub fn render(suite: &SuiteReport) -> String {
    let c = suite.counts();
    let time = format!("{:.3}", suite.duration.as_secs_f64());
    let totals = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{time}\"",
        suite.cases.len(),
        c.failed,
        c.skipped
    );
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"conform\" {totals}>");
    let _ = writeln!(x, "  <testsuite name=\"conform\" {totals}>");
    x.push_str("    <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(name),
            attr(value)
        );
    };
    property("vmm.command", &suite.vmm_command);
    if let Some(id) = suite.vmm() {
        property("vmm.name", &id.name);
        property("vmm.version", &id.version);
    }
    if let Some(host) = suite.host() {
        property("host.kvm_flavour", &host.kvm_flavour);
        property("host.kernel", &host.kernel);
        property("host.cpu_model", &host.cpu_model);
    }
    x.push_str("    </properties>\n");
    for case in &suite.cases {
        testcase(&mut x, case);
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn testcase(x: &mut String, case: &CaseReport) {
    let head = format!(
        "    <testcase name=\"{}\" classname=\"{CLASSNAME}\" time=\"{:.3}\"",
        attr(&case.name),
        case.duration.as_secs_f64()
    );
    match &case.verdict {
        CaseVerdict::Pass => {
            let _ = writeln!(x, "{head}/>");
        }
        CaseVerdict::Skip(why) => {
            let _ = writeln!(x, "{head}>\n      <skipped message=\"{}\"/>", attr(why));
            x.push_str("    </testcase>\n");
        }
        CaseVerdict::Fail(reasons) => {
            let first = reasons.first().map(String::as_str).unwrap_or("failed");
            let message = if reasons.len() > 1 {
                format!("{first} (and {} more)", reasons.len() - 1)
            } else {
                first.to_string()
            };
            let _ = writeln!(
                x,
                "{head}>\n      <failure message=\"{}\" type=\"conformance\">{}</failure>",
                attr(&message),
                text(&reasons.join("\n"))
            );
            x.push_str("    </testcase>\n");
        }
    }
}

/// Escapes character data: `&`, `<`, `>`; characters XML 1.0 does not allow become U+FFFD.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value (double-quoted): as [`text`], plus quotes, and tab, newline and
/// carriage return as character references so they survive attribute normalization.
pub fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' | '\n' | '\r' if attribute => {
                let _ = write!(out, "&#{};", u32::from(ch));
            }
            '\t' | '\n' | '\r' => out.push(ch),
            c if allowed_in_xml(c) => out.push(c),
            _ => out.push('\u{fffd}'),
        }
    }
    out
}

/// Characters XML 1.0 allows (besides tab, newline, carriage return handled above).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::formats::sample;

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(text("a<b & c>d \"q\" 'a'"), "a&lt;b &amp; c&gt;d \"q\" 'a'");
        assert_eq!(
            attr("a<b & \"q\" 'a'\nx\ty"),
            "a&lt;b &amp; &quot;q&quot; &apos;a&apos;&#10;x&#9;y"
        );
        assert_eq!(
            text("bell\u{7} nul\u{0} ok\u{e9}\u{1f600}"),
            "bell\u{fffd} nul\u{fffd} ok\u{e9}\u{1f600}"
        );
        assert_eq!(text("\u{fffe}"), "\u{fffd}");
    }

    #[test]
    fn renders_counts_failures_and_skips() {
        let x = render(&sample::suite());
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"conform\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"2.500\">"));
        assert!(x.contains("<testcase name=\"boot-hello\" classname=\"conform\" time=\"0.123\"/>"));
        assert!(x.contains("<failure message=\"vm0 stats.measured.vcpu.exits: expected 2 (params[0] + 1), seen 3 (and 1 more)\" type=\"conformance\">"));
        assert!(x.contains(
            "expected it to contain \"a&lt;b &amp; 'c'\"\n, seen \"\u{fffd}\"</failure>"
        ));
        assert!(x.contains("<skipped message=\"known issue #7\"/>"));
        assert!(x.contains("<property name=\"vmm.version\" value=\"0.1.0 (abc123)\"/>"));
        assert!(x.ends_with("  </testsuite>\n</testsuites>\n"));
        // Balanced elements: every opened testcase is closed.
        let opened = x.matches("<testcase ").count();
        let closed = x.matches("</testcase>").count() + x.matches("\"/>\n").count()
            - x.matches("<property ").count()
            - x.matches("<skipped ").count();
        assert_eq!(opened, closed);
    }
}
