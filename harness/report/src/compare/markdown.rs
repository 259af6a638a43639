//! The compare report as Markdown: who was compared, the verdict, the warnings, then the
//! changed metrics (regressions first), the unchanged ones folded away, the floor, and what
//! only one side has.

use std::fmt::Write as _;

use super::{CompareReport, ComparisonOutcome, MetricComparison, Missing, SideInfo, VerdictCounts};
use pageflip_results::stats;

/// The report as Markdown (GitHub-flavoured: tables and `<details>`).
pub fn markdown(r: &CompareReport) -> String {
    let mut s = String::new();
    let o = &r.options;
    s.push_str("# A/B comparison\n\n");
    let _ = writeln!(s, "- **A** (baseline): {}", describe(&r.a));
    let _ = writeln!(s, "- **B** (candidate): {}\n", describe(&r.b));

    let verdict = if r.regressed() {
        "**REGRESSED**"
    } else {
        "**No regression**"
    };
    let _ = writeln!(s, "{verdict}: {}.\n", counts(&r.gating));
    let _ = writeln!(
        s,
        "Rule: a metric regressed (improved) when the permutation test of its repetitions gives \
         p < {} **and** its mean moved by more than {} in the bad (good) direction. Change = \
         (B − A) / |A| of the means, with its 95% bootstrap interval; ± is half the width of the \
         95% bootstrap interval of the mean. *Undetectable*: with so few repetitions p cannot \
         go below {} (the smallest possible p is given).",
        o.alpha,
        percent(o.noise_threshold),
        o.alpha
    );
    let tested = r.gating.total() - r.gating.undetectable;
    if tested > 0 {
        let _ = writeln!(
            s,
            "\n{tested} gating metrics could show a change: if nothing changed, about {:.1} of \
             them (α·n/2) would still pass the significance test in the bad direction by chance \
             — fewer once the noise threshold applies. A lone regression of a noisy metric is \
             worth a rerun before a bisection.",
            o.alpha * tested as f64 / 2.0
        );
    }
    if !o.metrics.is_empty() {
        let _ = writeln!(s, "\nMetrics compared: {}.", o.metrics.join(", "));
    }
    if o.gating.is_empty() {
        s.push_str("\nEvery metric gates.\n");
    } else {
        let _ = writeln!(
            s,
            "\nGating metrics (a regression fails the comparison): {}; the others are \
             informational.",
            o.gating.join(", ")
        );
    }

    if !r.warnings.is_empty() {
        s.push_str("\n## Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- {w}");
        }
    }

    let (gating, informational): (Vec<&MetricComparison>, Vec<&MetricComparison>) =
        r.rows.iter().partition(|x| x.gates);
    let (changed, unchanged): (Vec<&MetricComparison>, Vec<&MetricComparison>) =
        gating.into_iter().partition(|x| {
            matches!(
                x.outcome,
                ComparisonOutcome::Regressed | ComparisonOutcome::Improved
            )
        });
    s.push_str("\n## Changed metrics\n\n");
    if changed.is_empty() {
        s.push_str("None.\n");
    } else {
        s.push_str(&table(&changed));
    }
    if !unchanged.is_empty() {
        let _ = write!(
            s,
            "\n<details><summary>{} unchanged, {} undetectable</summary>\n\n{}\n</details>\n",
            r.gating.unchanged,
            r.gating.undetectable,
            table(&unchanged)
        );
    }
    if !informational.is_empty() {
        let _ = write!(
            s,
            "\n## Reported, not gating (the floor: the host's speed)\n\n{}: {}.\n\n{}",
            if r.options.gate_floor {
                "Gating"
            } else {
                "Not gating"
            },
            counts(&r.informational),
            table(&informational)
        );
    }
    missing(&mut s, "A", &r.only_in_a);
    missing(&mut s, "B", &r.only_in_b);
    s
}

/// One side in a line: run, build, revision, host, repetitions.
fn describe(x: &SideInfo) -> String {
    let run = &x.run;
    let revision = match &run.git_revision {
        Some(rev) => format!(
            "{}{}",
            rev.chars().take(12).collect::<String>(),
            if run.git_dirty { "+dirty" } else { "" }
        ),
        None => "no git revision".to_string(),
    };
    let args = if x.vmm.args.is_empty() {
        String::new()
    } else {
        format!(", args `{}`", x.vmm.args.join(" "))
    };
    format!(
        "`{}` ({}) — VMM {} {} (`{}`{args}) at {revision}; profile {}, {} repetitions{}; \
         {} on {}, {} cores, {}",
        run.id,
        run.date,
        x.vmm.name,
        x.vmm.version,
        x.vmm.path,
        run.profile,
        run.repetitions,
        if run.interrupted { ", interrupted" } else { "" },
        x.kvm_flavour,
        x.cpu_model,
        x.cores,
        x.kernel
    )
}

fn counts(c: &VerdictCounts) -> String {
    format!(
        "{} of {} metrics regressed, {} improved, {} unchanged, {} undetectable",
        c.regressed,
        c.total(),
        c.improved,
        c.unchanged,
        c.undetectable
    )
}

/// The table of `rows`.
fn table(rows: &[&MetricComparison]) -> String {
    let mut s = String::from(
        "| case | metric | A mean ± CI | B mean ± CI | change | 95% CI of change | p | verdict |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for x in rows {
        let c = &x.comparison;
        let verdict = match x.outcome {
            ComparisonOutcome::Regressed => "**regressed**".to_string(),
            ComparisonOutcome::Undetectable => {
                format!("undetectable (p ≥ {})", p_value(x.smallest_p))
            }
            other => other.name().to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | [{}, {}] | {} | {verdict} |",
            x.case,
            x.metric,
            mean_ci(&x.a, &x.unit),
            mean_ci(&x.b, &x.unit),
            percent_change(c.relative_change),
            percent_change(c.effect_ci95.0),
            percent_change(c.effect_ci95.1),
            p_value(c.p_value),
        );
    }
    s
}

fn missing(s: &mut String, side: &str, list: &[Missing]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Only in {side}\n");
    for m in list {
        let what = match &m.metric {
            Some(metric) => format!("`{}` of `{}`", metric, m.case),
            None => format!("case `{}`", m.case),
        };
        match &m.why {
            Some(why) => {
                let _ = writeln!(s, "- {what}: the other side says: {why}");
            }
            None => {
                let _ = writeln!(s, "- {what}");
            }
        }
    }
}

/// `mean ± half the CI width unit`.
fn mean_ci(x: &stats::Summary, unit: &str) -> String {
    if x.n == 0 {
        return "—".to_string();
    }
    format!(
        "{} ± {} {unit}",
        number(x.mean),
        number((x.ci95.1 - x.ci95.0) / 2.0)
    )
}

/// A value with as many decimals as its size deserves.
fn number(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "—".to_string()
    } else if a == 0.0 || a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.001 {
        format!("{x:.4}")
    } else {
        format!("{x:.2e}")
    }
}

/// A threshold as a percentage, without trailing zeros (`5%`, `2.5%`).
fn percent(x: f64) -> String {
    format!("{}%", (x * 100.0 * 1000.0).round() / 1000.0)
}

/// A relative change as a signed percentage.
fn percent_change(x: f64) -> String {
    if x.is_nan() {
        "—".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "+∞" } else { "−∞" }.to_string()
    } else {
        format!("{:+.1}%", x * 100.0)
    }
}

fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(1.2345), "1.23");
        assert_eq!(number(0.0123), "0.0123");
        assert_eq!(number(0.00002), "2.00e-5");
        assert_eq!(number(f64::NAN), "—");
        assert_eq!(percent_change(0.2012), "+20.1%");
        assert_eq!(percent_change(-0.05), "-5.0%");
        assert_eq!(percent_change(f64::INFINITY), "+∞");
        assert_eq!(p_value(0.0001), "0.0001");
        assert_eq!(p_value(0.1), "0.100");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.025), "2.5%");
    }
}
