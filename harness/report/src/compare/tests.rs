//! Hermetic tests of [`compare_results`] on synthetic results files whose repetitions are
//! drawn from fixed normal distributions with a deterministic generator.

use std::collections::BTreeMap;

use pageflip_interface::TransportConfig;

use super::*;
use pageflip_results::stats::testing::normal;
use pageflip_results::{floor, metric, CaseParams, Floor, Host, SCHEMA, SCHEMA_VERSION};

/// A metric of the synthetic cases: name, unit, higher is better, mean, relative std.
struct Spec(&'static str, &'static str, bool, f64, f64);

const CASE_METRICS: &[Spec] = &[
    Spec(metric::LATENCY_P50_NS, "ns", false, 2_000.0, 0.02),
    Spec(metric::LATENCY_P99_NS, "ns", false, 3_500.0, 0.03),
    Spec(metric::TIME_PER_MSG_NS, "ns", false, 1_500.0, 0.02),
    Spec(metric::HOST_CPU_NS_PER_MSG, "ns", false, 2_800.0, 0.02),
    Spec(metric::EXITS_PER_MSG, "exits/msg", false, 1.03, 0.01),
    Spec(metric::TLB_FLUSHES_PER_MSG, "flushes/msg", false, 1.0, 0.01),
    Spec(metric::THROUGHPUT_MSGS, "msg/s", true, 650_000.0, 0.02),
    Spec(metric::THROUGHPUT_MIB, "MiB/s", true, 2_540.0, 0.02),
];

const FLOOR_METRICS: &[Spec] = &[
    Spec(floor::EXIT_NS, "ns", false, 900.0, 0.02),
    Spec(floor::MEMCPY_4K_NS, "ns", false, 250.0, 0.02),
    Spec(floor::REMAP_NS, "ns", false, 4_000.0, 0.02),
];

fn host() -> Host {
    Host {
        cpu_model: "AMD EPYC (synthetic)".into(),
        cores: 2,
        kernel: "6.1.0".into(),
        kvm_flavour: "kvm_pvm".into(),
        tsc_khz: Some(2_000_000),
        tsc_source: "KVM_GET_TSC_KHZ".into(),
        counters: vec![],
        unavailable_counters: vec![],
        tracepoints: BTreeMap::new(),
    }
}

fn params(i: usize) -> CaseParams {
    CaseParams {
        workload: "stream".into(),
        transport: "remap".into(),
        transport_config: TransportConfig::Remap,
        policy: "deferred".into(),
        size: 4096 << (i % 5),
        batch: 32,
        vms: 2 + i / 5,
        messages: 20_000,
        depth: 0,
        touch: "all".into(),
    }
}

/// Seed of one metric's draws: distinct per file, case and metric.
fn seed(file: u64, case: usize, metric: usize) -> u64 {
    file * 1_000_003 + case as u64 * 1_009 + metric as u64
}

/// A results file of `cases` cases with `reps` repetitions drawn with file seed `file`;
/// `shift(case id, metric, mean)` gives each metric's mean.
fn run(cases: usize, reps: usize, file: u64, shift: &dyn Fn(&str, &str, f64) -> f64) -> Results {
    run_noisy(cases, reps, file, 1.0, shift)
}

/// [`run`] with every metric's relative std multiplied by `noise`.
fn run_noisy(
    cases: usize,
    reps: usize,
    file: u64,
    noise: f64,
    shift: &dyn Fn(&str, &str, f64) -> f64,
) -> Results {
    let draw = |case: &str, c: usize, m: usize, s: &Spec| {
        let mean = shift(case, s.0, s.3);
        let std = mean * s.4 * noise;
        Metric::new(s.1, s.2, normal(reps, mean, std, seed(file, c, m)))
    };
    let cases = (0..cases)
        .map(|c| {
            let params = params(c);
            let id = params.id();
            let mut metrics: BTreeMap<String, Metric> = CASE_METRICS
                .iter()
                .enumerate()
                .map(|(m, s)| (s.0.to_string(), draw(&id, c, m, s)))
                .collect();
            metrics.insert(
                metric::MESSAGES.into(),
                Metric::new("msg", false, vec![params.messages as f64; reps]),
            );
            CaseResult {
                id,
                params,
                metrics,
                unavailable: BTreeMap::new(),
                latency: None,
                cross_checks: vec![],
                errors: vec![],
            }
        })
        .collect();
    let floor = Floor {
        metrics: FLOOR_METRICS
            .iter()
            .enumerate()
            .map(|(m, s)| (s.0.to_string(), draw(FLOOR_CASE, 999, m, s)))
            .collect(),
        unavailable: BTreeMap::new(),
    };
    Results {
        schema: SCHEMA.into(),
        version: SCHEMA_VERSION,
        run: RunInfo {
            id: format!("run-{file}"),
            date: "2026-11-24T10:15:00Z".into(),
            git_revision: Some("4ff41a232c5ba97c9d045a92edc1ac63796da4f9".into()),
            git_dirty: false,
            profile: "nightly".into(),
            command: "bench run --profile nightly".into(),
            repetitions: reps as u32,
            warmup: 1,
            pinned: true,
            interrupted: false,
            duration_s: 60.0,
        },
        host: host(),
        vmm: VmmBuild {
            name: "pageflip-vmm".into(),
            version: "0.1.0".into(),
            path: "builtin".into(),
            sha256: None,
            args: vec![],
        },
        floor,
        cases,
    }
}

fn same(_: &str, _: &str, mean: f64) -> f64 {
    mean
}

/// Options under which every metric gates (the tests' metrics are not all headline ones).
fn all_gate() -> CompareOptions {
    CompareOptions {
        gating: Vec::new(),
        ..CompareOptions::default()
    }
}

fn compare(a: &Results, b: &Results) -> CompareReport {
    compare_results(a, b, &all_gate()).expect("comparable")
}

fn rows_with(r: &CompareReport, outcome: ComparisonOutcome) -> Vec<(&str, &str)> {
    r.rows
        .iter()
        .filter(|x| x.outcome == outcome)
        .map(|x| (x.case.as_str(), x.metric.as_str()))
        .collect()
}

#[test]
fn an_a_a_comparison_flags_nothing() {
    let a = run(12, 10, 1, &same);
    let b = run(12, 10, 2, &same);
    let r = compare(&a, &b);
    assert_eq!(r.gating.total(), 12 * CASE_METRICS.len());
    assert_eq!(r.informational.total(), FLOOR_METRICS.len());
    assert_eq!(r.gating.unchanged, r.gating.total(), "{:?}", r.gating);
    assert_eq!(r.informational.unchanged, r.informational.total());
    assert!(!r.regressed());
    assert_eq!(r.exit_code(), exit::OK);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.only_in_a.is_empty() && r.only_in_b.is_empty());
    assert!(r.rows.iter().all(|x| x.detectable && x.smallest_p < 0.001));
    // The files differ: the test did run (p-values spread out, not all 1).
    assert!(r.rows.iter().any(|x| x.comparison.p_value < 0.5));
    let md = markdown(&r);
    assert!(
        md.contains("**No regression**: 0 of 96 metrics regressed"),
        "{md}"
    );
}

#[test]
fn noisy_metrics_raise_false_alarms_at_about_alpha_only() {
    // 12.5 times the noise (25% relative std for most metrics): a 5% change is well inside
    // it, so the noise threshold does not protect; only p < 0.01 does. Five A/A pairs of
    // such files: about 1% of the rows flagged, either way.
    let mut flagged = 0;
    let mut rows = 0;
    for k in 0..5u64 {
        let r = compare(
            &run_noisy(8, 10, 100 + 2 * k, 12.5, &same),
            &run_noisy(8, 10, 101 + 2 * k, 12.5, &same),
        );
        flagged += r.gating.regressed + r.gating.improved;
        rows += r.gating.total();
        // The noise is real: many rows move by more than the threshold.
        let big = r
            .rows
            .iter()
            .filter(|x| x.comparison.relative_change.abs() > 0.05)
            .count();
        assert!(
            big > r.rows.len() / 3,
            "{big} of {} moved > 5%",
            r.rows.len()
        );
    }
    assert_eq!(rows, 5 * 8 * CASE_METRICS.len()); // `messages` gets no verdict
                                                  // Expected 0.01 * 320 = 3.2; more than 10 would mean the rule is not calibrated.
    assert!(flagged <= 10, "{flagged} of {rows} flagged");
}

#[test]
fn a_twenty_percent_latency_slowdown_is_a_regression() {
    let target = params(3).id();
    let a = run(6, 10, 3, &same);
    let b = run(6, 10, 4, &|case, m, mean| {
        if case == target && m == metric::LATENCY_P50_NS {
            mean * 1.2
        } else {
            mean
        }
    });
    let r = compare(&a, &b);
    assert_eq!(
        rows_with(&r, ComparisonOutcome::Regressed),
        [(target.as_str(), metric::LATENCY_P50_NS)]
    );
    assert!(rows_with(&r, ComparisonOutcome::Improved).is_empty());
    assert!(r.regressed());
    assert_eq!(r.exit_code(), exit::REGRESSED);
    // Regressions come first, with the effect size and its interval.
    let first = &r.rows[0];
    assert_eq!(first.outcome, ComparisonOutcome::Regressed);
    let c = &first.comparison;
    assert!((0.15..0.25).contains(&c.relative_change), "{c:?}");
    assert!(c.effect_ci95.0 > 0.1 && c.effect_ci95.1 < 0.3, "{c:?}");
    assert!(c.p_value < 0.001, "{c:?}");
    let md = markdown(&r);
    assert!(
        md.contains("**REGRESSED**: 1 of 48 metrics regressed"),
        "{md}"
    );
    let line = md
        .lines()
        .find(|l| l.contains("**regressed**"))
        .expect("a regressed row");
    assert!(
        line.starts_with(&format!("| {target} | latency_p50_ns |")),
        "{line}"
    );
    // It is listed before every unchanged row.
    assert!(md.find("**regressed**") < md.find("| unchanged |"));
}

#[test]
fn a_throughput_drop_is_a_regression_and_a_rise_an_improvement() {
    let a = run(4, 10, 5, &same);
    let scaled = |factor: f64| {
        move |_: &str, m: &str, mean: f64| {
            if m == metric::THROUGHPUT_MSGS {
                mean * factor
            } else {
                mean
            }
        }
    };
    let down = compare(&a, &run(4, 10, 6, &scaled(0.8)));
    assert_eq!(down.gating.regressed, 4, "{:?}", down.gating);
    assert!(down
        .rows
        .iter()
        .filter(|x| x.outcome == ComparisonOutcome::Regressed)
        .all(|x| x.metric == metric::THROUGHPUT_MSGS && x.comparison.relative_change < -0.1));
    assert!(down.regressed());

    let up = compare(&a, &run(4, 10, 6, &scaled(1.25)));
    assert_eq!(up.gating.improved, 4, "{:?}", up.gating);
    assert_eq!(up.gating.regressed, 0);
    assert!(!up.regressed());
    assert_eq!(up.exit_code(), exit::OK);
    assert!(markdown(&up).contains("| improved |"));
}

#[test]
fn a_latency_drop_is_an_improvement() {
    let a = run(2, 10, 7, &same);
    let b = run(2, 10, 8, &|_, m, mean| {
        if m == metric::TIME_PER_MSG_NS {
            mean * 0.7
        } else {
            mean
        }
    });
    let r = compare(&a, &b);
    assert_eq!(r.gating.improved, 2);
    assert_eq!(r.gating.regressed, 0);
    assert!(r.rows[..2]
        .iter()
        .all(|x| x.outcome == ComparisonOutcome::Improved));
}

#[test]
fn three_repetitions_cannot_detect_anything() {
    // A 50% slowdown of every metric, but 3 repetitions per side: p >= 0.1.
    let a = run(2, 3, 9, &same);
    let b = run(2, 3, 10, &|_, _, mean| mean * 1.5);
    let r = compare(&a, &b);
    assert!(r.rows.iter().all(|x| !x.detectable));
    assert!(r
        .rows
        .iter()
        .all(|x| x.outcome == ComparisonOutcome::Undetectable));
    assert!(r.rows.iter().all(|x| (x.smallest_p - 0.1).abs() < 1e-12));
    assert_eq!(r.gating.undetectable, r.gating.total());
    assert_eq!(r.gating.unchanged, 0);
    assert!(!r.regressed());
    assert!(r.warnings.contains(&Warning::Undetectable {
        rows: r.rows.len(),
        of: r.rows.len(),
        alpha: 0.01,
        needed: Some(5),
    }));
    let md = markdown(&r);
    assert!(md.contains("run at least 5 repetitions per side"), "{md}");
    assert!(md.contains("undetectable (p ≥ 0.100)"), "{md}");
}

#[test]
fn five_repetitions_can() {
    let a = run(1, 5, 11, &same);
    let b = run(1, 5, 12, &|_, m, mean| {
        if m == metric::LATENCY_P50_NS {
            mean * 1.2
        } else {
            mean
        }
    });
    let r = compare(&a, &b);
    assert!(r.rows.iter().all(|x| x.detectable));
    assert_eq!(
        rows_with(&r, ComparisonOutcome::Regressed),
        [(params(0).id().as_str(), metric::LATENCY_P50_NS)]
    );
    assert!(!r
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::Undetectable { .. })));
}

#[test]
fn repetitions_needed_follows_alpha() {
    assert_eq!(repetitions_needed(0.01), Some(5));
    assert_eq!(repetitions_needed(0.05), Some(4));
    assert_eq!(repetitions_needed(0.001), Some(7));
    assert_eq!(repetitions_needed(0.00005), None);
}

#[test]
fn another_schema_version_is_refused() {
    let a = run(1, 5, 13, &same);
    let mut b = a.clone();
    b.version = SCHEMA_VERSION + 1;
    let e = compare_results(&a, &b, &CompareOptions::default()).unwrap_err();
    assert!(matches!(e, CompareError::Schema { .. }), "{e}");
    assert!(e.to_string().contains("version 2"), "{e}");
    b.version = SCHEMA_VERSION;
    b.schema = "something-else".into();
    assert!(matches!(
        compare_results(&a, &b, &CompareOptions::default()),
        Err(CompareError::Schema { .. })
    ));
}

#[test]
fn invalid_options_are_refused() {
    let a = run(1, 5, 14, &same);
    for opts in [
        CompareOptions {
            alpha: 0.0,
            ..CompareOptions::default()
        },
        CompareOptions {
            alpha: f64::NAN,
            ..CompareOptions::default()
        },
        CompareOptions {
            noise_threshold: -0.1,
            ..CompareOptions::default()
        },
    ] {
        assert!(matches!(
            compare_results(&a, &a, &opts),
            Err(CompareError::Option { .. })
        ));
    }
}

#[test]
fn cases_and_metrics_on_one_side_are_listed_with_why() {
    let a = run(3, 5, 15, &same);
    let mut b = run(3, 5, 16, &same);
    let gone = b.cases.remove(0).id;
    let c = &mut b.cases[0];
    c.metrics.remove(metric::TLB_FLUSHES_PER_MSG);
    c.unavailable.insert(
        metric::TLB_FLUSHES_PER_MSG.into(),
        "no tlb_flush counter".into(),
    );
    c.metrics.insert(
        "exits_by_kind.halt_exits".into(),
        Metric::new("exits/msg", false, vec![0.0; 5]),
    );
    let id1 = c.id.clone();
    b.floor.metrics.remove(floor::REMAP_NS);
    b.run.interrupted = true;

    let r = compare(&a, &b);
    assert_eq!(
        r.only_in_a,
        [
            Missing {
                case: gone,
                metric: None,
                why: Some("that run was interrupted".into()),
            },
            Missing {
                case: id1.clone(),
                metric: Some(metric::TLB_FLUSHES_PER_MSG.into()),
                why: Some("no tlb_flush counter".into()),
            },
            Missing {
                case: FLOOR_CASE.into(),
                metric: Some(floor::REMAP_NS.into()),
                why: None,
            },
        ]
    );
    assert_eq!(
        r.only_in_b,
        [Missing {
            case: id1,
            metric: Some("exits_by_kind.halt_exits".into()),
            why: None,
        }]
    );
    assert!(r.warnings.contains(&Warning::Interrupted { side: Side::B }));
    let md = markdown(&r);
    assert!(md.contains("## Only in A"), "{md}");
    assert!(
        md.contains("the other side says: no tlb_flush counter"),
        "{md}"
    );
}

#[test]
fn constants_get_no_verdict_and_other_parameters_and_failures_are_warned_about() {
    let a = run(2, 5, 17, &same);
    let mut b = run(2, 5, 18, &same);
    let c = &mut b.cases[1];
    c.params.messages *= 2;
    c.metrics.insert(
        metric::MESSAGES.into(),
        Metric::new("msg", false, vec![c.params.messages as f64; 5]),
    );
    b.cases[0].errors = vec!["repetition 3: VM 1 failed".into()];
    let r = compare(&a, &b);
    assert!(r
        .rows
        .iter()
        .all(|x| !CONSTANT_METRICS.contains(&x.metric.as_str())));
    assert_eq!(
        r.warnings,
        [
            Warning::FailedRepetitions {
                case: b.cases[0].id.clone(),
                side: Side::B,
                count: 1
            },
            Warning::ParamsDiffer {
                case: b.cases[1].id.clone()
            }
        ]
    );
}

#[test]
fn other_hosts_and_settings_are_warned_about() {
    let a = run(1, 5, 19, &same);
    let mut b = run(1, 5, 20, &same);
    b.host.kernel = "6.12.0".into();
    b.host.kvm_flavour = "kvm_amd".into();
    b.run.pinned = false;
    let r = compare(&a, &b);
    assert_eq!(
        r.warnings,
        [
            Warning::HostDiffers {
                what: "kernel",
                a: "6.1.0".into(),
                b: "6.12.0".into()
            },
            Warning::HostDiffers {
                what: "kvm_flavour",
                a: "kvm_pvm".into(),
                b: "kvm_amd".into()
            },
            Warning::RunDiffers {
                what: "pinned",
                a: "true".into(),
                b: "false".into()
            },
        ]
    );
    assert!(markdown(&r).contains("## Warnings\n\n- the hosts differ: kernel is \"6.1.0\" in A"));
}

#[test]
fn a_slower_floor_warns_but_gates_only_when_asked() {
    let a = run(2, 10, 21, &same);
    let b = run(2, 10, 22, &|case, m, mean| {
        if case == FLOOR_CASE && m == floor::EXIT_NS {
            mean * 1.3
        } else {
            mean
        }
    });
    let r = compare(&a, &b);
    assert!(!r.regressed());
    assert_eq!(r.gating.regressed, 0);
    assert_eq!(r.informational.regressed, 1);
    assert_eq!(
        r.warnings,
        [Warning::FloorChanged {
            metrics: vec![floor::EXIT_NS.into()]
        }]
    );
    // Gating rows come first, the floor after them.
    assert!(r.rows.last().is_some_and(|x| !x.gates));
    assert!(markdown(&r).contains("## Reported, not gating"));

    let gated = compare_results(
        &a,
        &b,
        &CompareOptions {
            gate_floor: true,
            ..all_gate()
        },
    )
    .unwrap();
    assert!(gated.regressed());
    assert_eq!(gated.rows[0].case, FLOOR_CASE);
}

#[test]
fn the_metric_filter_selects_names_and_prefixes() {
    let opts = CompareOptions {
        metrics: vec![
            metric::LATENCY_P50_NS.into(),
            "throughput_".into(),
            "exit_".into(),
        ],
        ..CompareOptions::default()
    };
    assert!(opts.selects(metric::LATENCY_P50_NS));
    assert!(!opts.selects(metric::LATENCY_P99_NS));
    // A prefix needs its trailing dot: "exit_" is a name, "throughput_" too.
    assert!(!opts.selects(metric::THROUGHPUT_MSGS));
    assert!(!opts.selects(floor::EXIT_NS));
    let prefixed = CompareOptions {
        metrics: vec!["exits_by_kind.".into()],
        ..CompareOptions::default()
    };
    assert!(prefixed.selects("exits_by_kind.mmio_exits"));
    assert!(!prefixed.selects(metric::EXITS_PER_MSG));

    let a = run(2, 5, 23, &same);
    let r = compare_results(&a, &a, &opts).unwrap();
    assert_eq!(r.rows.len(), 2);
    assert!(r.rows.iter().all(|x| x.metric == metric::LATENCY_P50_NS));
}

#[test]
fn the_json_report_has_every_row_and_verdict() {
    let a = run(1, 10, 25, &same);
    let b = run(1, 10, 26, &|_, m, mean| {
        if m == metric::LATENCY_P99_NS {
            mean * 1.5
        } else {
            mean
        }
    });
    let r = compare(&a, &b);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["gating"]["regressed"], 1);
    assert_eq!(v["rows"][0]["outcome"], "regressed");
    assert_eq!(v["rows"][0]["comparison"]["verdict"], "regressed");
    assert_eq!(v["rows"][0]["metric"], metric::LATENCY_P99_NS);
    assert_eq!(v["rows"][0]["detectable"], true);
    assert_eq!(v["options"]["alpha"], 0.01);
    assert_eq!(v["a"]["run"]["id"], "run-25");
    assert_eq!(
        v["rows"].as_array().unwrap().len(),
        CASE_METRICS.len() + FLOOR_METRICS.len()
    );
}

#[test]
fn the_same_files_give_the_same_report() {
    let a = run(3, 7, 27, &same);
    let b = run(3, 7, 28, &|_, _, mean| mean * 1.03);
    assert_eq!(compare(&a, &b), compare(&a, &b));
    assert_eq!(markdown(&compare(&a, &b)), markdown(&compare(&a, &b)));
}

#[test]
fn by_default_only_headline_metrics_gate() {
    let a = run(2, 10, 31, &same);
    let slower = |metric: &'static str| {
        move |_: &str, m: &str, mean: f64| if m == metric { mean * 1.3 } else { mean }
    };
    // A 30% worse p99 is reported as a regression but does not fail the comparison...
    let b = run(2, 10, 32, &slower(metric::LATENCY_P99_NS));
    let r = compare_results(&a, &b, &CompareOptions::default()).unwrap();
    assert!(!r.regressed(), "{:?}", r.gating);
    assert!(r.rows.iter().any(|x| x.metric == metric::LATENCY_P99_NS
        && !x.gates
        && x.outcome == ComparisonOutcome::Regressed));
    // ... a 30% worse time per message does.
    let b = run(2, 10, 32, &slower(metric::TIME_PER_MSG_NS));
    let r = compare_results(&a, &b, &CompareOptions::default()).unwrap();
    assert!(r.regressed());
    assert_eq!(r.exit_code(), exit::REGRESSED);
}
