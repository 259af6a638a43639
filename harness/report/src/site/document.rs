//! The report's content as a list of blocks, built once from the results and the charts, and
//! written both as `summary.md` ([`super::markdown`]) and as `index.html` ([`super::html`]):
//! the two always hold the same tables.

use std::collections::BTreeMap;

use super::plan::{series_label, ChartData, PlannedChart};
use super::ChartEntry;
use crate::charts::Rendered;
use crate::units;
use pageflip_results::{metric, CaseResult, Metric, Results, TracepointState};

/// A table: header and rows of plain-text cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column headers.
    pub header: Vec<String>,
    /// Rows, each as many cells as the header.
    pub rows: Vec<Vec<String>>,
    /// How many leading columns are text (left-aligned); the rest are numbers.
    pub text_columns: usize,
}

/// One block of the report.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A heading of level 1 to 3.
    Heading(u8, String),
    /// A paragraph of plain text.
    Paragraph(String),
    /// A warning that must not be missed.
    Warning(String),
    /// A bulleted list.
    List(Vec<String>),
    /// Named values (`name: value`).
    Fields(Vec<(String, String)>),
    /// A line of code (a command line).
    Code(String),
    /// A table.
    Table(Table),
    /// A chart that was drawn.
    Chart {
        /// Its title.
        title: String,
        /// How to read it.
        caption: String,
        /// Its files.
        files: Rendered,
    },
}

/// The main metrics of each workload's table, with their column headers.
const MAIN_METRICS: [(&str, &str); 11] = [
    (metric::TIME_PER_MSG_NS, "time/msg (ns)"),
    (metric::THROUGHPUT_MIB, "throughput (MiB/s)"),
    (metric::LATENCY_P50_NS, "latency p50 (ns)"),
    (metric::LATENCY_P99_NS, "latency p99 (ns)"),
    (metric::EXITS_PER_MSG, "exits/msg"),
    (metric::USERSPACE_EXITS_PER_MSG, "userspace exits/msg"),
    (metric::NOTIFICATIONS_PER_MSG, "notifications/msg"),
    (metric::TLB_FLUSHES_PER_MSG, "TLB flushes/msg"),
    (metric::REMOTE_TLB_FLUSHES_PER_MSG, "remote TLB flushes/msg"),
    (metric::HOST_TLB_FLUSHES_PER_MSG, "host TLB flushes/msg"),
    (metric::FAULTS_PER_MSG, "faults/msg"),
];

/// `mean [low, high]` of a metric, 4 significant digits.
pub fn mean_ci(m: &Metric) -> String {
    let s = &m.summary;
    if s.n < 2 {
        units::sig(s.mean, 4)
    } else {
        format!(
            "{} [{}, {}]",
            units::sig(s.mean, 4),
            units::sig(s.ci95.0, 4),
            units::sig(s.ci95.1, 4)
        )
    }
}

/// The host line of chart titles: KVM flavour, CPU, cores, kernel, VMM, run.
pub fn host_line(r: &Results) -> String {
    format!(
        "{} · {} · {} cores · kernel {} · {} {} · run {}",
        r.host.kvm_flavour,
        r.host.cpu_model,
        r.host.cores,
        r.host.kernel,
        r.vmm.name,
        r.vmm.version,
        r.run.id
    )
}

fn kv(rows: Vec<(&str, String)>) -> Block {
    Block::Fields(rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The report of `results` with `charts` (drawn or skipped).
pub fn build(results: &Results, plan: &[PlannedChart], charts: &[ChartEntry]) -> Vec<Block> {
    let r = results;
    let mut doc = vec![Block::Heading(
        1,
        format!("pageflip benchmark report: {}", r.run.id),
    )];
    doc.push(Block::Paragraph(format!(
        "{} cases on {}, {} measured repetitions each.",
        r.cases.len(),
        host_line(r),
        r.run.repetitions
    )));
    doc.extend(warnings(r));
    doc.extend(disagreements(r));

    doc.push(Block::Heading(2, "Run".into()));
    doc.push(kv(vec![
        ("id", r.run.id.clone()),
        ("date (UTC)", r.run.date.clone()),
        ("profile", r.run.profile.clone()),
        (
            "git revision",
            match &r.run.git_revision {
                Some(rev) if r.run.git_dirty => format!("{rev} (with uncommitted changes)"),
                Some(rev) => rev.clone(),
                None => "unknown (not built from a git checkout)".into(),
            },
        ),
        ("repetitions", r.run.repetitions.to_string()),
        ("warm-up runs", r.run.warmup.to_string()),
        (
            "vCPUs pinned",
            if r.run.pinned { "yes" } else { "no" }.into(),
        ),
        ("duration", format!("{} s", units::sig(r.run.duration_s, 4))),
    ]));
    doc.push(Block::Paragraph(
        "The command that made the results:".into(),
    ));
    doc.push(Block::Code(r.run.command.clone()));

    doc.push(Block::Heading(2, "Host".into()));
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    doc.push(kv(vec![
        ("CPU", r.host.cpu_model.clone()),
        ("cores", r.host.cores.to_string()),
        ("kernel", r.host.kernel.clone()),
        ("KVM", r.host.kvm_flavour.clone()),
        (
            "TSC",
            match r.host.tsc_khz {
                Some(khz) => format!("{khz} kHz ({})", r.host.tsc_source),
                None => format!("unknown ({})", r.host.tsc_source),
            },
        ),
        ("KVM counters read", list(&r.host.counters)),
        (
            "KVM counters not maintained here",
            list(&r.host.unavailable_counters),
        ),
    ]));
    if !r.host.tracepoints.is_empty() {
        doc.push(Block::List(
            r.host
                .tracepoints
                .iter()
                .map(|(name, state)| match state {
                    TracepointState::Fired => format!("tracepoint {name}: fired"),
                    TracepointState::Silent => format!(
                        "tracepoint {name}: opened but never fired (its metrics are unavailable)"
                    ),
                    TracepointState::Unavailable { reason } => {
                        format!("tracepoint {name}: unavailable ({reason})")
                    }
                })
                .collect(),
        ));
    }

    doc.push(Block::Heading(2, "VMM".into()));
    doc.push(kv(vec![
        ("name", r.vmm.name.clone()),
        ("version", r.vmm.version.clone()),
        ("path", r.vmm.path.clone()),
        (
            "SHA-256",
            r.vmm.sha256.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "extra arguments",
            if r.vmm.args.is_empty() {
                "none".into()
            } else {
                r.vmm.args.join(" ")
            },
        ),
    ]));

    doc.extend(crossover_findings(plan));
    doc.extend(chart_blocks(charts));
    doc.extend(floor(r));
    doc.extend(workload_tables(r));
    doc.extend(unavailable(r));
    doc
}

fn warnings(r: &Results) -> Vec<Block> {
    let mut w = Vec::new();
    if r.run.interrupted {
        w.push(Block::Warning(
            "This run was interrupted: the cases below are complete, the remaining cases are \
             missing."
                .into(),
        ));
    }
    if r.run.git_dirty {
        w.push(Block::Warning(
            "The harness was built from a tree with uncommitted changes.".into(),
        ));
    }
    if !r.vmm.args.is_empty() {
        w.push(Block::Warning(format!(
            "The VMM ran with extra arguments: {}",
            r.vmm.args.join(" ")
        )));
    }
    w
}

/// Cross-checks whose sources disagree: prominent, near the top.
fn disagreements(r: &Results) -> Vec<Block> {
    let rows: Vec<Vec<String>> = r
        .cases
        .iter()
        .flat_map(|c| c.cross_checks.iter().map(move |x| (c, x)))
        .filter(|(_, x)| !x.agree)
        .map(|(c, x)| {
            vec![
                c.id.clone(),
                x.what.clone(),
                x.sources
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                x.note.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Warning(format!(
            "{} cross-check(s) disagree: independent counts of the same quantity differ.",
            rows.len()
        )),
        Block::Heading(2, "Cross-checks that disagree".into()),
        Block::Table(Table {
            header: ["case", "what", "sources", "note"]
                .map(String::from)
                .to_vec(),
            rows,
            text_columns: 4,
        }),
    ]
}

fn crossover_findings(plan: &[PlannedChart]) -> Vec<Block> {
    // One item per remap variant of each crossover chart.
    let findings: Vec<String> = plan
        .iter()
        .filter(|c| c.stem.starts_with("crossover"))
        .flat_map(|c| match &c.data {
            Ok(ChartData::Crossover { variants, .. }) => variants
                .iter()
                .map(|v| {
                    format!(
                        "{} — {}: {}.",
                        c.what,
                        v.crossover.variant,
                        v.crossover.describe()
                    )
                })
                .collect(),
            Ok(_) => unreachable!("crossover stems hold crossover data"),
            Err(why) => vec![format!("{}: {why}.", c.what)],
        })
        .collect();
    vec![
        Block::Heading(2, "Remap variants vs copy".into()),
        Block::List(findings),
    ]
}

fn floor(r: &Results) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(2, "Floor".into()),
        Block::Paragraph(
            "The cheapest operations every transport is built from, measured in the same run."
                .into(),
        ),
    ];
    if !r.floor.metrics.is_empty() {
        blocks.push(Block::Table(Table {
            header: ["metric", "unit", "mean [95% CI]", "n"]
                .map(String::from)
                .to_vec(),
            rows: r
                .floor
                .metrics
                .iter()
                .map(|(name, m)| {
                    vec![
                        name.clone(),
                        m.unit.clone(),
                        mean_ci(m),
                        m.summary.n.to_string(),
                    ]
                })
                .collect(),
            text_columns: 2,
        }));
    }
    if !r.floor.unavailable.is_empty() {
        blocks.push(Block::List(
            r.floor
                .unavailable
                .iter()
                .map(|(name, why)| format!("{name}: unavailable ({why})"))
                .collect(),
        ));
    }
    blocks
}

/// One table per workload: a row per case, the main metrics as `mean [95% CI]`.
fn workload_tables(r: &Results) -> Vec<Block> {
    let mut workloads: Vec<&str> = Vec::new();
    for c in &r.cases {
        if !workloads.contains(&c.params.workload.as_str()) {
            workloads.push(&c.params.workload);
        }
    }
    let mut blocks = Vec::new();
    for workload in workloads {
        let cases: Vec<&CaseResult> = r
            .cases
            .iter()
            .filter(|c| c.params.workload == workload)
            .collect();
        let columns: Vec<(&str, &str)> = MAIN_METRICS
            .iter()
            .copied()
            .filter(|(name, _)| {
                cases
                    .iter()
                    .any(|c| c.metrics.contains_key(*name) || c.unavailable.contains_key(*name))
            })
            .collect();
        let mut header: Vec<String> = ["transport", "policy", "size", "batch", "VMs"]
            .map(String::from)
            .to_vec();
        header.extend(columns.iter().map(|(_, h)| h.to_string()));
        let rows = cases
            .iter()
            .map(|c| {
                let p = &c.params;
                let mut row = vec![
                    p.transport.clone(),
                    p.policy.clone(),
                    units::bytes(p.size as f64),
                    p.batch.to_string(),
                    p.vms.to_string(),
                ];
                row.extend(columns.iter().map(|(name, _)| {
                    match (c.metrics.get(*name), c.unavailable.contains_key(*name)) {
                        (Some(m), _) => mean_ci(m),
                        (None, true) => "unavailable".into(),
                        (None, false) => "—".into(),
                    }
                }));
                row
            })
            .collect();
        blocks.push(Block::Heading(2, format!("Workload: {workload}")));
        blocks.push(Block::Paragraph(
            "Mean over repetitions [95% bootstrap CI of the mean]; per-message counts are over \
             the measured phase of every VM of the run together. \"unavailable\": this host \
             cannot measure it (see below); \"—\": not measured for this case."
                .into(),
        ));
        blocks.push(Block::Table(Table {
            header,
            rows,
            text_columns: 2,
        }));
    }
    blocks
}

/// Metrics the host could not measure, grouped by metric and reason.
fn unavailable(r: &Results) -> Vec<Block> {
    let mut grouped: BTreeMap<(&str, &str), Vec<&CaseResult>> = BTreeMap::new();
    for c in &r.cases {
        for (name, why) in &c.unavailable {
            grouped.entry((name, why)).or_default().push(c);
        }
    }
    if grouped.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(2, "Unavailable metrics".into()),
        Block::Paragraph(
            "Metrics this host could not measure are reported as unavailable, never as 0.".into(),
        ),
        Block::Table(Table {
            header: ["metric", "why", "cases"].map(String::from).to_vec(),
            rows: grouped
                .into_iter()
                .map(|((name, why), cases)| {
                    let which = if cases.len() == r.cases.len() {
                        format!("all {}", cases.len())
                    } else {
                        let labels: Vec<String> = cases
                            .iter()
                            .map(|c| format!("{} {}", c.params.workload, series_label(&c.params)))
                            .collect();
                        format!("{}: {}", cases.len(), dedup(labels).join(", "))
                    };
                    vec![name.to_string(), why.to_string(), which]
                })
                .collect(),
            text_columns: 3,
        }),
    ]
}

/// `items` without repeats, first occurrence kept.
fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn chart_blocks(charts: &[ChartEntry]) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "Charts".into())];
    let skipped: Vec<String> = charts
        .iter()
        .filter_map(|c| {
            c.skipped
                .as_ref()
                .map(|why| format!("{} ({}): not drawn, {why}", c.what, c.stem))
        })
        .collect();
    if !skipped.is_empty() {
        blocks.push(Block::Paragraph("Charts without data:".into()));
        blocks.push(Block::List(skipped));
    }
    for c in charts {
        if let Some(files) = &c.files {
            blocks.push(Block::Chart {
                title: c.what.clone(),
                caption: c.caption.clone(),
                files: files.clone(),
            });
        }
    }
    blocks
}
