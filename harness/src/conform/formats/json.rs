//! The JSON format, for machines: the VMM identity and host from the results, the counts, and
//! per case its name, status, duration and reasons.

use serde::Serialize;

use pageflip_interface::{HostInfo, VmmIdentity};

use super::{CaseVerdict, SuiteReport};

/// Version of this report document.
pub const REPORT_VERSION: u32 = 1;

/// The report document.
#[derive(Serialize)]
struct Document<'a> {
    /// Always `pageflip-conform`.
    report: &'static str,
    version: u32,
    vmm_command: &'a str,
    vmm: Option<&'a VmmIdentity>,
    host: Option<&'a HostInfo>,
    duration_s: f64,
    passed: usize,
    failed: usize,
    skipped: usize,
    cases: Vec<CaseDoc<'a>>,
}

#[derive(Serialize)]
struct CaseDoc<'a> {
    name: &'a str,
    description: &'a str,
    status: &'static str,
    duration_s: f64,
    reasons: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<&'a str>,
}

/// The whole report as a JSON document (one line per document is not promised).
pub fn render(suite: &SuiteReport) -> String {
    let c = suite.counts();
    let doc = Document {
        report: "pageflip-conform",
        version: REPORT_VERSION,
        vmm_command: &suite.vmm_command,
        vmm: suite.vmm(),
        host: suite.host(),
        duration_s: suite.duration.as_secs_f64(),
        passed: c.passed,
        failed: c.failed,
        skipped: c.skipped,
        cases: suite
            .cases
            .iter()
            .map(|case| {
                let (status, reasons, skip_reason): (_, &[String], _) = match &case.verdict {
                    CaseVerdict::Pass => ("pass", &[], None),
                    CaseVerdict::Fail(reasons) => ("fail", reasons, None),
                    CaseVerdict::Skip(why) => ("skip", &[], Some(why.as_str())),
                };
                CaseDoc {
                    name: &case.name,
                    description: &case.description,
                    status,
                    duration_s: case.duration.as_secs_f64(),
                    reasons,
                    skip_reason,
                }
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        // Serializing plain strings and numbers cannot fail; say so if it ever does.
        format!(
            "{{\"report\":\"pageflip-conform\",\"error\":{:?}}}",
            e.to_string()
        )
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::formats::sample;

    #[test]
    fn machine_readable_document() {
        let v: serde_json::Value = serde_json::from_str(&render(&sample::suite())).unwrap();
        assert_eq!(v["report"], "pageflip-conform");
        assert_eq!(v["version"], 1);
        assert_eq!(v["vmm"]["name"], "pageflip-reference-vmm");
        assert_eq!(v["host"]["kvm_flavour"], "kvm_pvm");
        assert_eq!(
            (
                v["passed"].as_u64(),
                v["failed"].as_u64(),
                v["skipped"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0]["name"], "boot-hello");
        assert_eq!(cases[0]["status"], "pass");
        assert_eq!(cases[0]["reasons"].as_array().unwrap().len(), 0);
        assert_eq!(cases[1]["status"], "fail");
        assert_eq!(cases[1]["reasons"].as_array().unwrap().len(), 2);
        assert!((cases[1]["duration_s"].as_f64().unwrap() - 0.123).abs() < 1e-9);
        assert_eq!(cases[2]["status"], "skip");
        assert_eq!(cases[2]["skip_reason"], "known issue #7");
    }
}
