//! A/B comparison of two results files (`report compare A.json B.json`): A is the baseline,
//! B the candidate.
//!
//! Cases are matched by [`CaseResult::id`], metrics by name, and each metric present on both
//! sides is compared with [`stats::compare`]: it *regressed* only if the permutation test gives
//! p < `alpha` (default 0.01) **and** its mean moved by more than `noise_threshold` (default
//! 5%) in the bad direction; *improved* likewise in the good direction; else *unchanged*. Cases
//! and metrics found on one side only are listed, with the other side's reason where it gave
//! one (a metric the host could not measure). [`CONSTANT_METRICS`] (`messages`, `bytes`) are
//! the case's configuration, not measurements: they get no verdict; a case whose parameters
//! differ between the files is compared but warned about.
//!
//! **Detectability.** With few repetitions the permutation test cannot reach p < `alpha` at
//! all ([`stats::smallest_p_value`]: 3 vs 3 values, 0.1; 5 vs 5, 0.008), so such a metric
//! could never be found to regress. Such rows are marked `detectable: false` (outcome
//! [`ComparisonOutcome::Undetectable`], not "unchanged") and the report carries a
//! [`Warning::Undetectable`] naming the repetitions needed.
//!
//! **Comparability.** Files of another schema or version are refused
//! ([`CompareError::Schema`]). Files from different hosts (CPU model, cores, kernel, KVM
//! flavour) or runs set up differently (profile, vCPU pinning), an interrupted run, or failed
//! repetitions, are compared but warned about ([`Warning`]).
//!
//! **The floor.** The floor metrics ([`results::Floor`]) are compared too, as case
//! [`FLOOR_CASE`], but by default they do not gate: they measure the host (a bare exit, a 4 KiB
//! memcpy, a page remap) more than the build, so a change there first of all says the two runs
//! are not on equal footing — a noisy neighbour, a new kernel, another CPU frequency. A floor
//! that changed significantly adds a [`Warning::FloorChanged`], which says the case verdicts
//! may reflect the host rather than the build. [`CompareOptions::gate_floor`] makes floor
//! regressions fail the comparison too (for a VMM change that targets exactly those paths).
//!
//! **Exit codes of `report compare`** ([`exit`]): 0 no regression, 1 a gating metric
//! regressed ([`CompareReport::regressed`]), 2 bad usage or input (unreadable or invalid file,
//! [`CompareError`]).
//!
//! Everything here is deterministic: the same two files always give the same report.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use pageflip_results::stats::{self, Comparison, Summary, Verdict};
use pageflip_results::{self as results, CaseResult, Metric, Results, RunInfo, VmmBuild};

mod markdown;

pub use markdown::markdown;

/// The case id the floor metrics are compared under.
pub use pageflip_results::FLOOR_CASE;

/// Case metrics that are constants of the case's configuration (counts it was told to make),
/// not measurements: never compared.
pub const CONSTANT_METRICS: &[&str] = &[results::metric::MESSAGES, results::metric::BYTES];

/// Exit codes of `report compare`.
pub mod exit {
    /// No gating metric regressed.
    pub const OK: u8 = 0;
    /// At least one gating metric regressed ([`super::CompareReport::regressed`]).
    pub const REGRESSED: u8 = 1;
    /// Bad usage or input: an unreadable or invalid results file, files of another schema,
    /// invalid options.
    pub const BAD_INPUT: u8 = 2;
}

/// How [`compare_results`] compares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Significance level: a change needs permutation-test p < `alpha` (default
    /// [`stats::DEFAULT_ALPHA`] = 0.01).
    pub alpha: f64,
    /// A change needs `|relative change of the mean|` above this (default
    /// [`stats::DEFAULT_NOISE_THRESHOLD`] = 0.05, i.e. 5%).
    pub noise_threshold: f64,
    /// Only these metrics (by name; a name ending in `.` selects every metric it prefixes,
    /// e.g. `exits_by_kind.`); empty: every metric.
    pub metrics: Vec<String>,
    /// Whether a regression of a floor metric fails the comparison too (default false; see
    /// the module documentation).
    pub gate_floor: bool,
    /// The case metrics whose regression fails the comparison (same matching as
    /// `metrics`; empty: every metric). Default [`GATING_METRICS`]: the headline costs; the
    /// tails (p99 and above) and the derived ratios are reported, not gated, because on a
    /// shared host they move between runs of one build (measured: `docs/results.md`).
    pub gating: Vec<String>,
}

/// The metrics [`CompareOptions::gating`] selects by default.
pub const GATING_METRICS: &[&str] = &[
    pageflip_results::metric::TIME_PER_MSG_NS,
    pageflip_results::metric::LATENCY_P50_NS,
    pageflip_results::metric::EXITS_PER_MSG,
    pageflip_results::metric::USERSPACE_EXITS_PER_MSG,
    pageflip_results::metric::TLB_FLUSHES_PER_MSG,
    pageflip_results::metric::REMOTE_TLB_FLUSHES_PER_MSG,
    pageflip_results::metric::HOST_CPU_NS_PER_MSG,
];

impl Default for CompareOptions {
    fn default() -> CompareOptions {
        CompareOptions {
            alpha: stats::DEFAULT_ALPHA,
            noise_threshold: stats::DEFAULT_NOISE_THRESHOLD,
            metrics: Vec::new(),
            gate_floor: false,
            gating: GATING_METRICS.iter().map(|m| m.to_string()).collect(),
        }
    }
}

impl CompareOptions {
    /// Whether the metric filter selects metric `name`.
    pub fn selects(&self, name: &str) -> bool {
        matches_any(&self.metrics, name)
    }

    /// Whether a regression of case metric `name` fails the comparison.
    pub fn gates(&self, name: &str) -> bool {
        matches_any(&self.gating, name)
    }

    fn check(&self) -> Result<(), CompareError> {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(CompareError::Option {
                option: "alpha",
                why: format!("{} is not in (0, 1]", self.alpha),
            });
        }
        if !(self.noise_threshold >= 0.0 && self.noise_threshold.is_finite()) {
            return Err(CompareError::Option {
                option: "noise threshold",
                why: format!("{} is not a finite value >= 0", self.noise_threshold),
            });
        }
        Ok(())
    }
}

/// Why two results files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The files are of different schemas or schema versions: their fields may not mean the
    /// same.
    #[error("the files are of different schemas: A is {a}, B is {b}")]
    Schema {
        /// A's schema and version.
        a: String,
        /// B's schema and version.
        b: String,
    },
    /// An option is out of range.
    #[error("invalid {option}: {why}")]
    Option {
        /// Which option.
        option: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// One side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The baseline.
    A,
    /// The candidate.
    B,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

/// What a row concluded, with undetectable kept apart from unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComparisonOutcome {
    /// Significantly worse by more than the noise threshold.
    Regressed,
    /// Significantly better by more than the noise threshold.
    Improved,
    /// No significant change beyond the noise threshold, though one could have been found.
    Unchanged,
    /// No change found, and none could have been: too few repetitions for `alpha`.
    Undetectable,
}

impl ComparisonOutcome {
    /// Its name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ComparisonOutcome::Regressed => "regressed",
            ComparisonOutcome::Improved => "improved",
            ComparisonOutcome::Unchanged => "unchanged",
            ComparisonOutcome::Undetectable => "undetectable",
        }
    }
}

/// One metric of one case, compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricComparison {
    /// Case id ([`FLOOR_CASE`] for the floor).
    pub case: String,
    /// Metric name.
    pub metric: String,
    /// Unit.
    pub unit: String,
    /// Whether larger is better.
    pub higher_is_better: bool,
    /// A's values summarized.
    pub a: Summary,
    /// B's values summarized.
    pub b: Summary,
    /// The test: verdict, relative change, its interval, p.
    pub comparison: Comparison,
    /// The smallest p the test could give with these sample sizes
    /// ([`stats::smallest_p_value`]).
    pub smallest_p: f64,
    /// Whether a change could be found at all: `smallest_p < alpha`.
    pub detectable: bool,
    /// Whether a regression of this row fails the comparison (false for the floor unless
    /// [`CompareOptions::gate_floor`]).
    pub gates: bool,
    /// The verdict, with [`ComparisonOutcome::Undetectable`] for an undetectable "unchanged".
    pub outcome: ComparisonOutcome,
}

/// A case, or a metric of a case, that only one side has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// Case id.
    pub case: String,
    /// The metric, or `None` for the whole case.
    pub metric: Option<String>,
    /// Why the other side lacks it, where it said (an unavailable metric's reason, an
    /// interrupted run).
    pub why: Option<String>,
}

/// Verdict counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    /// Rows that regressed.
    pub regressed: usize,
    /// Rows that improved.
    pub improved: usize,
    /// Rows unchanged (and detectable).
    pub unchanged: usize,
    /// Rows where no change could have been found.
    pub undetectable: usize,
}

impl VerdictCounts {
    fn add(&mut self, outcome: ComparisonOutcome) {
        match outcome {
            ComparisonOutcome::Regressed => self.regressed += 1,
            ComparisonOutcome::Improved => self.improved += 1,
            ComparisonOutcome::Unchanged => self.unchanged += 1,
            ComparisonOutcome::Undetectable => self.undetectable += 1,
        }
    }

    /// Rows counted.
    pub fn total(&self) -> usize {
        self.regressed + self.improved + self.unchanged + self.undetectable
    }
}

/// Something that limits what the comparison means.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// The files come from different hosts.
    HostDiffers {
        /// Which property (`cpu_model`, `cores`, `kernel`, `kvm_flavour`).
        what: &'static str,
        /// A's.
        a: String,
        /// B's.
        b: String,
    },
    /// The runs were set up differently.
    RunDiffers {
        /// Which setting (`profile`, `pinned`).
        what: &'static str,
        /// A's.
        a: String,
        /// B's.
        b: String,
    },
    /// A run was stopped before every case finished.
    Interrupted {
        /// Which.
        side: Side,
    },
    /// A case's parameters differ between the files (same id, e.g. another message count).
    ParamsDiffer {
        /// Case id.
        case: String,
    },
    /// Repetitions of a case failed on one side (a VM failed, the VMM crashed): its metrics
    /// have fewer values there.
    FailedRepetitions {
        /// Case id.
        case: String,
        /// Which side.
        side: Side,
        /// How many failed.
        count: usize,
    },
    /// Some metrics have too few repetitions for any change to reach p < alpha.
    Undetectable {
        /// Such rows.
        rows: usize,
        /// Rows compared.
        of: usize,
        /// The significance level.
        alpha: f64,
        /// Repetitions per side that would make a change detectable, if any number would
        /// (with [`stats::PERMUTATION_ROUNDS`] rounds none does below alpha = 0.0001).
        needed: Option<usize>,
    },
    /// The floor moved significantly: the hosts' speeds differ, and so may the case verdicts.
    FloorChanged {
        /// Floor metrics that regressed or improved.
        metrics: Vec<String>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::HostDiffers { what, a, b } => write!(
                f,
                "the hosts differ: {what} is {a:?} in A, {b:?} in B; a difference may be the host's, not the build's"
            ),
            Warning::RunDiffers { what, a, b } => {
                write!(f, "the runs differ: {what} is {a} in A, {b} in B")
            }
            Warning::Interrupted { side } => write!(
                f,
                "{side}'s run was interrupted: the cases it did not finish are missing"
            ),
            Warning::ParamsDiffer { case } => write!(
                f,
                "case {case} has other parameters in A than in B (e.g. the message count)"
            ),
            Warning::FailedRepetitions { case, side, count } => write!(
                f,
                "{count} repetition(s) of case {case} failed in {side}: its metrics have fewer values there"
            ),
            Warning::Undetectable {
                rows,
                of,
                alpha,
                needed,
            } => {
                write!(
                    f,
                    "{rows} of {of} metrics have too few repetitions for the permutation test to reach p < {alpha}: no change in them could be detected"
                )?;
                match needed {
                    Some(n) => write!(f, "; run at least {n} repetitions per side"),
                    None => write!(f, "; no repetition count can reach it, raise alpha"),
                }
            }
            Warning::FloorChanged { metrics } => write!(
                f,
                "the floor changed ({}): the two runs did not see the same host speed, so case verdicts may reflect the host rather than the build",
                metrics.join(", ")
            ),
        }
    }
}

/// What one side's file says about its run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideInfo {
    /// The run.
    pub run: RunInfo,
    /// The VMM build measured.
    pub vmm: VmmBuild,
    /// Host CPU model.
    pub cpu_model: String,
    /// Host online CPUs.
    pub cores: usize,
    /// Host kernel.
    pub kernel: String,
    /// Host KVM flavour.
    pub kvm_flavour: String,
}

impl SideInfo {
    fn of(r: &Results) -> SideInfo {
        SideInfo {
            run: r.run.clone(),
            vmm: r.vmm.clone(),
            cpu_model: r.host.cpu_model.clone(),
            cores: r.host.cores,
            kernel: r.host.kernel.clone(),
            kvm_flavour: r.host.kvm_flavour.clone(),
        }
    }
}

/// The comparison of two results files.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareReport {
    /// The baseline.
    pub a: SideInfo,
    /// The candidate.
    pub b: SideInfo,
    /// How they were compared.
    pub options: CompareOptions,
    /// Every metric compared: gating rows first, then the others (the floor by default); in
    /// each, regressions first, then improvements, unchanged, undetectable; else in file order.
    pub rows: Vec<MetricComparison>,
    /// Cases and metrics only A has.
    pub only_in_a: Vec<Missing>,
    /// Cases and metrics only B has.
    pub only_in_b: Vec<Missing>,
    /// Outcomes of the gating rows.
    pub gating: VerdictCounts,
    /// Outcomes of the rows reported without gating.
    pub informational: VerdictCounts,
    /// What limits the comparison's meaning.
    pub warnings: Vec<Warning>,
}

impl CompareReport {
    /// Whether a gating metric regressed: `report compare` then exits [`exit::REGRESSED`].
    pub fn regressed(&self) -> bool {
        self.gating.regressed > 0
    }

    /// `report compare`'s exit code for this report ([`exit`]).
    pub fn exit_code(&self) -> u8 {
        if self.regressed() {
            exit::REGRESSED
        } else {
            exit::OK
        }
    }

    /// The report as pretty JSON (NaN and infinite values as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("compare report serializes")
    }
}

/// Compares results `b` (candidate) against `a` (baseline); see the module documentation.
pub fn compare_results(
    a: &Results,
    b: &Results,
    opts: &CompareOptions,
) -> Result<CompareReport, CompareError> {
    opts.check()?;
    if a.schema != b.schema || a.version != b.version {
        return Err(CompareError::Schema {
            a: format!("{} version {}", a.schema, a.version),
            b: format!("{} version {}", b.schema, b.version),
        });
    }
    let mut warnings = comparability(a, b);
    let mut acc = Rows::default();
    for case_a in &a.cases {
        match b.case(&case_a.id) {
            Some(case_b) => {
                if case_a.params != case_b.params {
                    warnings.push(Warning::ParamsDiffer {
                        case: case_a.id.clone(),
                    });
                }
                for (side, c) in [(Side::A, case_a), (Side::B, case_b)] {
                    if !c.errors.is_empty() {
                        warnings.push(Warning::FailedRepetitions {
                            case: c.id.clone(),
                            side,
                            count: c.errors.len(),
                        });
                    }
                }
                acc.compare_sets(
                    &case_a.id,
                    MetricSet::of_case(case_a),
                    MetricSet::of_case(case_b),
                    opts,
                    true,
                );
            }
            None => acc.only_in_a.push(missing_case(&case_a.id, b)),
        }
    }
    for case_b in b.cases.iter().filter(|c| a.case(&c.id).is_none()) {
        acc.only_in_b.push(missing_case(&case_b.id, a));
    }
    acc.compare_sets(
        FLOOR_CASE,
        MetricSet::of_floor(a),
        MetricSet::of_floor(b),
        opts,
        opts.gate_floor,
    );

    let Rows {
        mut rows,
        only_in_a,
        only_in_b,
    } = acc;
    rows.sort_by_key(|r| (!r.gates, r.outcome));
    let (mut gating, mut informational) = (VerdictCounts::default(), VerdictCounts::default());
    for r in &rows {
        if r.gates {
            gating.add(r.outcome)
        } else {
            informational.add(r.outcome)
        }
    }
    let undetectable = rows.iter().filter(|r| !r.detectable).count();
    if undetectable > 0 {
        warnings.push(Warning::Undetectable {
            rows: undetectable,
            of: rows.len(),
            alpha: opts.alpha,
            needed: repetitions_needed(opts.alpha),
        });
    }
    let floor_changed: Vec<String> = rows
        .iter()
        .filter(|r| r.case == FLOOR_CASE)
        .filter(|r| {
            matches!(
                r.outcome,
                ComparisonOutcome::Regressed | ComparisonOutcome::Improved
            )
        })
        .map(|r| r.metric.clone())
        .collect();
    if !floor_changed.is_empty() {
        warnings.push(Warning::FloorChanged {
            metrics: floor_changed,
        });
    }
    Ok(CompareReport {
        a: SideInfo::of(a),
        b: SideInfo::of(b),
        options: opts.clone(),
        rows,
        only_in_a,
        only_in_b,
        gating,
        informational,
        warnings,
    })
}

/// The smallest number of repetitions per side at which the permutation test can reach
/// p < `alpha`, if one up to 1000 can.
pub fn repetitions_needed(alpha: f64) -> Option<usize> {
    (1..=1000).find(|&n| stats::smallest_p_value(n, n, stats::PERMUTATION_ROUNDS) < alpha)
}

/// Differences between the files' hosts and run settings.
fn comparability(a: &Results, b: &Results) -> Vec<Warning> {
    let mut w = Vec::new();
    let host = [
        ("cpu_model", &a.host.cpu_model, &b.host.cpu_model),
        ("kernel", &a.host.kernel, &b.host.kernel),
        ("kvm_flavour", &a.host.kvm_flavour, &b.host.kvm_flavour),
    ];
    for (what, x, y) in host {
        if x != y {
            w.push(Warning::HostDiffers {
                what,
                a: x.clone(),
                b: y.clone(),
            });
        }
    }
    if a.host.cores != b.host.cores {
        w.push(Warning::HostDiffers {
            what: "cores",
            a: a.host.cores.to_string(),
            b: b.host.cores.to_string(),
        });
    }
    if a.run.profile != b.run.profile {
        w.push(Warning::RunDiffers {
            what: "profile",
            a: a.run.profile.clone(),
            b: b.run.profile.clone(),
        });
    }
    if a.run.pinned != b.run.pinned {
        w.push(Warning::RunDiffers {
            what: "pinned",
            a: a.run.pinned.to_string(),
            b: b.run.pinned.to_string(),
        });
    }
    for (side, r) in [(Side::A, a), (Side::B, b)] {
        if r.run.interrupted {
            w.push(Warning::Interrupted { side });
        }
    }
    w
}

/// A case `other` lacks.
fn missing_case(id: &str, other: &Results) -> Missing {
    Missing {
        case: id.to_string(),
        metric: None,
        why: other
            .run
            .interrupted
            .then(|| "that run was interrupted".to_string()),
    }
}

/// The metrics of one case (or the floor) of one file.
#[derive(Clone, Copy)]
struct MetricSet<'a> {
    metrics: &'a BTreeMap<String, Metric>,
    unavailable: &'a BTreeMap<String, String>,
}

impl<'a> MetricSet<'a> {
    fn of_case(c: &'a CaseResult) -> MetricSet<'a> {
        MetricSet {
            metrics: &c.metrics,
            unavailable: &c.unavailable,
        }
    }

    fn of_floor(r: &'a Results) -> MetricSet<'a> {
        MetricSet {
            metrics: &r.floor.metrics,
            unavailable: &r.floor.unavailable,
        }
    }

    /// Its metrics that get a verdict under `opts`.
    fn compared(self, opts: &'a CompareOptions) -> impl Iterator<Item = (&'a String, &'a Metric)> {
        self.metrics
            .iter()
            .filter(|(name, _)| !CONSTANT_METRICS.contains(&name.as_str()))
            .filter(|(name, _)| opts.selects(name))
    }
}

/// Whether `name` is one of `names` (a name ending in `.` matches every name it prefixes);
/// an empty list matches everything.
fn matches_any(names: &[String], name: &str) -> bool {
    names.is_empty()
        || names.iter().any(|m| {
            if m.ends_with('.') {
                name.starts_with(m.as_str())
            } else {
                name == m
            }
        })
}

/// What [`compare_results`] collects.
#[derive(Default)]
struct Rows {
    rows: Vec<MetricComparison>,
    only_in_a: Vec<Missing>,
    only_in_b: Vec<Missing>,
}

impl Rows {
    /// Compares the metrics of one case in A and B.
    fn compare_sets(
        &mut self,
        case: &str,
        a: MetricSet<'_>,
        b: MetricSet<'_>,
        opts: &CompareOptions,
        gates: bool,
    ) {
        let missing = |name: &str, other: MetricSet<'_>| Missing {
            case: case.to_string(),
            metric: Some(name.to_string()),
            why: other.unavailable.get(name).cloned(),
        };
        for (name, ma) in a.compared(opts) {
            match b.metrics.get(name) {
                Some(mb) => {
                    let gates = gates && (case == FLOOR_CASE || opts.gates(name));
                    self.rows.push(row(case, name, ma, mb, opts, gates))
                }
                None => self.only_in_a.push(missing(name, b)),
            }
        }
        for (name, _) in b
            .compared(opts)
            .filter(|(n, _)| !a.metrics.contains_key(*n))
        {
            self.only_in_b.push(missing(name, a));
        }
    }
}

/// Compares one metric.
fn row(
    case: &str,
    name: &str,
    a: &Metric,
    b: &Metric,
    opts: &CompareOptions,
    gates: bool,
) -> MetricComparison {
    let comparison = stats::compare(
        &a.values,
        &b.values,
        opts.noise_threshold,
        opts.alpha,
        a.higher_is_better,
    );
    let smallest_p =
        stats::smallest_p_value(a.values.len(), b.values.len(), stats::PERMUTATION_ROUNDS);
    let detectable = smallest_p < opts.alpha;
    let outcome = match comparison.verdict {
        Verdict::Regressed => ComparisonOutcome::Regressed,
        Verdict::Improved => ComparisonOutcome::Improved,
        Verdict::Unchanged if detectable => ComparisonOutcome::Unchanged,
        Verdict::Unchanged => ComparisonOutcome::Undetectable,
    };
    MetricComparison {
        case: case.to_string(),
        metric: name.to_string(),
        unit: a.unit.clone(),
        higher_is_better: a.higher_is_better,
        a: a.summary,
        b: b.summary,
        comparison,
        smallest_p,
        detectable,
        gates,
        outcome,
    }
}

#[cfg(test)]
mod tests;
