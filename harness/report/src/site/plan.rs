//! Which charts a results file gives, and their data: each chart either with its plain input
//! or with the reason it is skipped (no empty or misleading chart is drawn).

use std::collections::BTreeMap;

use crate::charts::breakdown::BreakdownRow;
use crate::charts::cdf::CdfSeries;
use crate::charts::counts::CountGroup;
use crate::charts::sweeps::{LatencyPoint, LatencySeries, VariantCrossover};
use crate::charts::xy::SummarySeries;
use crate::crossover::{self, SizeSamples};
use crate::units;
use pageflip_results::{metric, CaseParams, CaseResult, Metric, Results};

/// The data of one chart.
#[derive(Clone, Debug, PartialEq)]
pub enum ChartData {
    /// Latency vs message size.
    LatencyVsSize(Vec<LatencySeries>),
    /// Throughput vs message size.
    ThroughputVsSize(Vec<SummarySeries>),
    /// Per-message counters side by side.
    Counts {
        /// The value axis title.
        axis: String,
        /// The counters' legend labels.
        counters: Vec<String>,
        /// One group per transport.
        groups: Vec<CountGroup>,
    },
    /// Copy against each remap variant, and their crossovers.
    Crossover {
        /// The cost axis title.
        cost_axis: String,
        /// Copy's cost.
        copy: SummarySeries,
        /// Each remap variant's cost and its crossover with copy.
        variants: Vec<VariantCrossover>,
    },
    /// Where each transport's time per message goes, at a few sizes.
    Breakdown(Vec<BreakdownRow>),
    /// Time per message of the `chain` workload against K, the number of VMs.
    Chain(Vec<SummarySeries>),
    /// The deferred-exit batch sweep.
    BatchSweep {
        /// Exits per message over the batch.
        exits: Vec<SummarySeries>,
        /// Time per message over the batch.
        time: Vec<SummarySeries>,
    },
    /// Latency CDFs.
    Cdf {
        /// What the samples are.
        what: String,
        /// One per transport.
        series: Vec<CdfSeries>,
    },
}

/// One chart of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedChart {
    /// The file stem.
    pub stem: String,
    /// What the chart shows (its title's first line).
    pub what: String,
    /// One or two sentences on how to read it.
    pub caption: String,
    /// The data, or why the chart is skipped.
    pub data: Result<ChartData, String>,
}

/// The mean of `case`'s metric `name`, if it has a finite one.
fn metric<'a>(case: &'a CaseResult, name: &str) -> Option<&'a Metric> {
    case.metrics
        .get(name)
        .filter(|m| m.summary.n > 0 && m.summary.mean.is_finite())
}

/// The legend label of a case's transport: `remap immediate`, `copy deferred B=32`,
/// `shmem polling 4 VMs`, `remap immediate touch header`.
pub fn series_label(p: &CaseParams) -> String {
    let mut label = transport_label(p);
    if p.vms != 2 {
        label += &format!(" {} VMs", p.vms);
    }
    label
}

/// [`series_label`] without the VM count (the chain chart's x).
fn transport_label(p: &CaseParams) -> String {
    let mut label = format!("{} {}", p.transport, p.policy);
    if p.batch > 1 {
        label += &format!(" B={}", p.batch);
    }
    if p.touch != pageflip_results::TOUCH_ALL {
        label += &format!(" touch {}", p.touch);
    }
    label
}

/// The most frequent of `items`; ties go to the largest.
fn mode<T: Ord + Copy>(items: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(item, _)| item)
}

/// A case's parameters other than the size: what a line over sizes follows.
type SeriesKey = (String, String, u64, usize, String);

fn series_key(p: &CaseParams) -> SeriesKey {
    (
        p.transport.clone(),
        p.policy.clone(),
        p.batch,
        p.vms,
        p.touch.clone(),
    )
}

/// Cases of `workload` grouped by everything but the size, in order of first appearance,
/// keeping only groups measured at two sizes or more.
fn size_series<'a>(results: &'a Results, workload: &str) -> Vec<Vec<&'a CaseResult>> {
    let mut groups: Vec<(SeriesKey, Vec<&CaseResult>)> = Vec::new();
    for case in results
        .cases
        .iter()
        .filter(|c| c.params.workload == workload)
    {
        let key = series_key(&case.params);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cases)) => cases.push(case),
            None => groups.push((key, vec![case])),
        }
    }
    groups
        .into_iter()
        .map(|(_, cases)| cases)
        .filter(|cases| {
            let mut sizes: Vec<u64> = cases.iter().map(|c| c.params.size).collect();
            sizes.sort_unstable();
            sizes.dedup();
            sizes.len() >= 2
        })
        .collect()
}

/// The representative case per transport and policy among `cases` (one size): the most
/// common VM count and batch, ties to the larger.
fn representatives<'a>(cases: &[&'a CaseResult]) -> Vec<&'a CaseResult> {
    let mut out: Vec<&CaseResult> = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for case in cases {
        let key = (case.params.transport.as_str(), case.params.policy.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let group: Vec<&CaseResult> = cases
            .iter()
            .filter(|c| (c.params.transport.as_str(), c.params.policy.as_str()) == key)
            .copied()
            .collect();
        let vms = mode(group.iter().map(|c| c.params.vms));
        let batch = mode(
            group
                .iter()
                .filter(|c| Some(c.params.vms) == vms)
                .map(|c| c.params.batch),
        );
        out.extend(
            group
                .into_iter()
                .find(|c| Some(c.params.vms) == vms && Some(c.params.batch) == batch),
        );
    }
    out
}

/// The workload name as prose.
fn workload_name(workload: &str) -> &str {
    match workload {
        "pingpong" => "ping-pong",
        "fanin" => "fan-in",
        other => other,
    }
}

/// Every chart of `results`, drawn or skipped, in report order.
pub fn plan(results: &Results) -> Vec<PlannedChart> {
    let mut charts = vec![latency_vs_size(results), throughput_vs_size(results)];
    charts.extend(counts(results));
    charts.extend(crossovers(results));
    charts.push(breakdown(results));
    charts.extend(chain(results));
    charts.push(batch_sweep(results));
    charts.extend(cdfs(results));
    charts
}

fn latency_vs_size(results: &Results) -> PlannedChart {
    let series: Vec<LatencySeries> = size_series(results, "pingpong")
        .into_iter()
        .map(|cases| LatencySeries {
            label: series_label(&cases[0].params),
            points: cases
                .iter()
                .filter_map(|c| {
                    Some(LatencyPoint {
                        size: c.params.size,
                        p50_ns: metric(c, metric::LATENCY_P50_NS)?.summary.mean,
                        p99_ns: metric(c, metric::LATENCY_P99_NS).map(|m| m.summary.mean),
                    })
                })
                .collect(),
        })
        .filter(|s| s.points.len() >= 2)
        .collect();
    PlannedChart {
        stem: "latency-vs-size".into(),
        what: "Ping-pong one-way latency vs message size (p50, shaded to p99)".into(),
        caption: "One-way latency (round trip / 2) of each transport: the line joins the \
                  medians (mean over repetitions of each repetition's p50), the band reaches \
                  the p99. Both axes are logarithmic."
            .into(),
        data: if series.is_empty() {
            Err("no ping-pong transport has latency_p50_ns at two or more message sizes".into())
        } else {
            Ok(ChartData::LatencyVsSize(series))
        },
    }
}

/// `(x, summary)` points of `metric_name` over `cases`, x from `x`.
fn summary_points(
    cases: &[&CaseResult],
    metric_name: &str,
    x: impl Fn(&CaseParams) -> f64,
) -> Vec<(f64, pageflip_results::stats::Summary)> {
    cases
        .iter()
        .filter_map(|c| Some((x(&c.params), metric(c, metric_name)?.summary)))
        .collect()
}

fn throughput_vs_size(results: &Results) -> PlannedChart {
    let series: Vec<SummarySeries> = size_series(results, "stream")
        .into_iter()
        .map(|cases| SummarySeries {
            label: series_label(&cases[0].params),
            points: summary_points(&cases, metric::THROUGHPUT_MIB, |p| p.size as f64),
        })
        .filter(|s| s.points.len() >= 2)
        .collect();
    PlannedChart {
        stem: "throughput-vs-size".into(),
        what: "Stream throughput vs message size".into(),
        caption: "Payload MiB/s of a one-way stream, mean over repetitions with its 95% CI \
                  shaded. Both axes are logarithmic."
            .into(),
        data: if series.is_empty() {
            Err("no stream transport has throughput_mib_per_s at two or more message sizes".into())
        } else {
            Ok(ChartData::ThroughputVsSize(series))
        },
    }
}

/// A counter of a counts chart: metric name, legend label.
type Counter = (&'static str, &'static str);

/// The exits and TLB-flush charts, over the representative cases of the stream workload (or
/// ping-pong without stream cases) at its most common message size.
fn counts(results: &Results) -> Vec<PlannedChart> {
    let workload = ["stream", "pingpong", "fanin"]
        .into_iter()
        .find(|w| results.cases.iter().any(|c| c.params.workload == *w));
    let selection = workload.and_then(|w| {
        let cases: Vec<&CaseResult> = results
            .cases
            .iter()
            .filter(|c| c.params.workload == w)
            .collect();
        let size = mode(cases.iter().map(|c| c.params.size))?;
        let at_size: Vec<&CaseResult> = cases
            .into_iter()
            .filter(|c| c.params.size == size)
            .collect();
        Some((w, size, representatives(&at_size)))
    });
    let specs: [(&str, &str, &str, &[Counter]); 2] = [
        (
            "exits-per-message",
            "VM exits per message",
            "VM exits per message (all VMs together)",
            &[
                (metric::EXITS_PER_MSG, "all VM exits (KVM exits)"),
                (
                    metric::USERSPACE_EXITS_PER_MSG,
                    "exits to userspace (MMIO + port I/O)",
                ),
            ],
        ),
        (
            "tlb-flushes-per-message",
            "TLB flushes per message",
            "TLB flushes per message (all VMs together)",
            &[
                (
                    metric::TLB_FLUSHES_PER_MSG,
                    "vCPU TLB flushes (KVM tlb_flush)",
                ),
                (
                    metric::REMOTE_TLB_FLUSHES_PER_MSG,
                    "remote TLB flush requests (KVM)",
                ),
                (
                    metric::HOST_TLB_FLUSHES_PER_MSG,
                    "host TLB flushes (perf tlb:tlb_flush)",
                ),
            ],
        ),
    ];
    specs
        .iter()
        .map(|&(stem, what, axis, all)| {
            let Some((workload, size, cases)) = &selection else {
                return PlannedChart {
                    stem: stem.into(),
                    what: what.into(),
                    caption: String::new(),
                    data: Err("the results hold no case".into()),
                };
            };
            // A counter no case has (host TLB flushes without perf) gets no bar at all; the
            // caption says why.
            let (counters, absent): (Vec<Counter>, Vec<Counter>) = all
                .iter()
                .copied()
                .partition(|(name, _)| cases.iter().any(|c| metric(c, name).is_some()));
            let mut not_shown: Vec<String> = Vec::new();
            for (name, label) in absent {
                let why: Vec<&str> = cases
                    .iter()
                    .filter_map(|c| c.unavailable.get(name).map(String::as_str))
                    .collect();
                if let Some(why) = mode(why) {
                    not_shown.push(format!("{label}, unavailable: {why}"));
                }
            }
            let groups: Vec<CountGroup> = cases
                .iter()
                .map(|c| CountGroup {
                    label: series_label(&c.params),
                    values: counters
                        .iter()
                        .map(|(name, _)| metric(c, name).map(|m| m.summary))
                        .collect(),
                })
                .collect();
            let any = groups.iter().flat_map(|g| &g.values).any(Option::is_some);
            PlannedChart {
                stem: stem.into(),
                what: format!(
                    "{what}, {} at {}",
                    workload_name(workload),
                    units::bytes(*size as f64)
                ),
                caption: format!(
                    "Per message, counted over the measured phase of every VM of the run, mean \
                     over repetitions with its 95% CI as a whisker; {} is the most common \
                     message size of the {} cases. \"unavailable\": this host does not count it \
                     for that transport.{}",
                    units::bytes(*size as f64),
                    workload_name(workload),
                    not_shown
                        .iter()
                        .map(|n| format!(" Not shown: {n}."))
                        .collect::<String>()
                ),
                data: if any {
                    Ok(ChartData::Counts {
                        axis: axis.into(),
                        counters: counters
                            .iter()
                            .map(|(_, label)| label.to_string())
                            .collect(),
                        groups,
                    })
                } else {
                    Err(format!(
                        "no {} case at {} has {}",
                        workload_name(workload),
                        units::bytes(*size as f64),
                        all.iter()
                            .map(|(name, _)| *name)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ))
                },
            }
        })
        .collect()
}

/// The crossover of copy and every remap variant for every workload, policy and batch
/// measured at two or more sizes for copy and at least one variant.
fn crossovers(results: &Results) -> Vec<PlannedChart> {
    let mut charts = Vec::new();
    for (workload, cost, prose) in [
        (
            "stream",
            metric::TIME_PER_MSG_NS,
            "transfer time per message",
        ),
        ("pingpong", metric::LATENCY_P50_NS, "one-way latency p50"),
    ] {
        let cost_axis = format!("{prose} (log scale)");
        let groups = size_series(results, workload);
        let samples = |cases: &[&CaseResult]| -> Vec<SizeSamples> {
            cases
                .iter()
                .filter_map(|c| {
                    Some(SizeSamples {
                        size: c.params.size,
                        values: metric(c, cost)?.values.clone(),
                    })
                })
                .collect()
        };
        let line = |cases: &[&CaseResult]| SummarySeries {
            label: transport_label(&cases[0].params),
            points: summary_points(cases, cost, |p| p.size as f64),
        };
        for copy in groups.iter().filter(|g| g[0].params.transport == "copy") {
            let p = &copy[0].params;
            let same_setting = |q: &CaseParams| {
                (q.policy.as_str(), q.batch, q.vms, q.touch.as_str())
                    == (p.policy.as_str(), p.batch, p.vms, p.touch.as_str())
            };
            let variants: Vec<VariantCrossover> = groups
                .iter()
                .filter(|g| g[0].params.transport_config.remaps() && same_setting(&g[0].params))
                .map(|remap| VariantCrossover {
                    series: line(remap),
                    crossover: crossover::find(
                        &remap[0].params.transport,
                        &samples(remap),
                        &samples(copy),
                    ),
                })
                .collect();
            if variants.is_empty() {
                continue;
            }
            let mut stem = format!("crossover-{workload}-{}", p.policy);
            let mut setting = p.policy.clone();
            if p.batch > 1 {
                stem += &format!("-b{}", p.batch);
                setting += &format!(", B={}", p.batch);
            }
            if p.vms != 2 {
                stem += &format!("-{}vm", p.vms);
                setting += &format!(", {} VMs", p.vms);
            }
            if p.touch != pageflip_results::TOUCH_ALL {
                stem += &format!("-touch-{}", p.touch);
                setting += &format!(", touch {}", p.touch);
            }
            let data = if variants.iter().all(|v| v.crossover.sizes.len() < 2) {
                Err(variants
                    .iter()
                    .map(|v| v.crossover.describe())
                    .collect::<Vec<_>>()
                    .join("; "))
            } else {
                Ok(ChartData::Crossover {
                    cost_axis: cost_axis.clone(),
                    copy: line(copy),
                    variants,
                })
            };
            charts.push(PlannedChart {
                stem,
                what: format!(
                    "Remap variants vs copy, {} ({setting}): {prose} vs message size",
                    workload_name(workload)
                ),
                caption: format!(
                    "Mean {prose} ({cost}) over repetitions (95% CI shaded) of copy and each \
                     remap variant; a variant's crossover is where its line crosses copy's \
                     (log-log interpolation between measured sizes), its 95% CI from {} \
                     bootstrap resamples of the repetitions. A variant that never crosses \
                     says \"none in range\" with its cost over copy's at the largest size.",
                    pageflip_results::stats::BOOTSTRAP_RESAMPLES
                ),
                data,
            });
        }
    }
    if charts.is_empty() {
        charts.push(PlannedChart {
            stem: "crossover".into(),
            what: "Remap vs copy crossover".into(),
            caption: String::new(),
            data: Err(
                "copy and a remap variant were not both measured at two or more message sizes \
                 with the same policy"
                    .into(),
            ),
        });
    }
    charts
}

/// The sizes the cost breakdown shows, where measured: one page, 16 pages, one huge page.
pub const BREAKDOWN_SIZES: [u64; 3] = [4096, 65536, 2 << 20];

/// The per-message cost breakdown: the representative stream case of every transport
/// (receiver touching everything) at each of [`BREAKDOWN_SIZES`] measured, or at the most
/// common stream size if none is.
fn breakdown(results: &Results) -> PlannedChart {
    let stream: Vec<&CaseResult> = results
        .cases
        .iter()
        .filter(|c| {
            c.params.workload == "stream"
                && c.params.touch == pageflip_results::TOUCH_ALL
                && c.params.batch <= 1
        })
        .collect();
    let mut sizes: Vec<u64> = BREAKDOWN_SIZES
        .into_iter()
        .filter(|s| stream.iter().any(|c| c.params.size == *s))
        .collect();
    if sizes.is_empty() {
        sizes.extend(mode(stream.iter().map(|c| c.params.size)));
    }
    let exit_ns = results
        .floor
        .metrics
        .get(pageflip_results::floor::EXIT_NS)
        .filter(|m| m.summary.n > 0 && m.summary.mean.is_finite())
        .map(|m| m.summary.mean);
    let mean = |c: &CaseResult, name: &str| metric(c, name).map(|m| m.summary.mean);
    let mut rows = Vec::new();
    for &size in &sizes {
        let at_size: Vec<&CaseResult> = stream
            .iter()
            .filter(|c| c.params.size == size)
            .copied()
            .collect();
        for c in representatives(&at_size) {
            rows.push(BreakdownRow {
                label: transport_label(&c.params),
                size,
                remaps: c.params.transport_config.remaps(),
                time_ns: mean(c, metric::TIME_PER_MSG_NS),
                exits: mean(c, metric::USERSPACE_EXITS_PER_MSG),
                exit_ns,
                move_ns: mean(c, metric::MOVE_NS_PER_MSG),
                map_ops: mean(c, metric::MAP_OPS_PER_MSG),
                flushes: mean(c, metric::REMOTE_TLB_FLUSHES_PER_MSG),
                faults: mean(c, metric::FAULTS_PER_MSG),
            });
        }
    }
    let at = sizes
        .iter()
        .map(|&s| units::bytes(s as f64))
        .collect::<Vec<_>>()
        .join(", ");
    PlannedChart {
        stem: "cost-breakdown".into(),
        what: format!("Where the time per message goes, stream at {at}"),
        caption: "Each bar is a transport's mean transfer time per message (time_per_msg_ns), \
                  split into: exits (userspace exits per message times the floor's bare \
                  exit), host mapping (the VMM's move time, move_ns_per_msg, of a remap \
                  variant), copy (the same for copy) and the rest (the guests' own work, \
                  the receiver's faults and the TLB flushes' re-walks, not timed apart). \
                  Beside each bar: host mapping operations, remote TLB flush requests and \
                  page faults per message; \"n/a\" where the results do not have them, never 0."
            .into(),
        data: if rows.iter().any(|r| r.time_ns.is_some()) {
            Ok(ChartData::Breakdown(rows))
        } else {
            Err("no stream case has time_per_msg_ns".into())
        },
    }
}

/// The chain chart, only when the results hold `chain` cases: time per message against K
/// (the case's VMs), one line per transport, policy and touch.
fn chain(results: &Results) -> Option<PlannedChart> {
    let cases: Vec<&CaseResult> = results
        .cases
        .iter()
        .filter(|c| c.params.workload == "chain")
        .collect();
    if cases.is_empty() {
        return None;
    }
    let mut series: Vec<SummarySeries> = Vec::new();
    for c in &cases {
        let label = transport_label(&c.params);
        if series.iter().any(|s| s.label == label) {
            continue;
        }
        // Every K of this line at its most common size.
        let line: Vec<&CaseResult> = cases
            .iter()
            .filter(|d| transport_label(&d.params) == label)
            .copied()
            .collect();
        let size = mode(line.iter().map(|d| d.params.size));
        let line: Vec<&CaseResult> = line
            .into_iter()
            .filter(|d| Some(d.params.size) == size)
            .collect();
        series.push(SummarySeries {
            label,
            points: summary_points(&line, metric::TIME_PER_MSG_NS, |p| p.vms as f64),
        });
    }
    series.retain(|s| !s.points.is_empty());
    let size = mode(cases.iter().map(|c| c.params.size));
    Some(PlannedChart {
        stem: "chain".into(),
        what: format!(
            "Forwarding chain: time per message vs K VMs{}",
            size.map_or(String::new(), |s| format!(" at {}", units::bytes(s as f64)))
        ),
        caption: "The chain workload: K VMs in a line, the first sends, each middle VM reads \
                  the header and forwards the message, the last checks it. Mean transfer time \
                  per message (time_per_msg_ns) against K, 95% CI shaded, one line per \
                  transport."
            .into(),
        data: if series.is_empty() {
            Err("no chain case has time_per_msg_ns".into())
        } else {
            Ok(ChartData::Chain(series))
        },
    })
}

fn batch_sweep(results: &Results) -> PlannedChart {
    let stream: Vec<&CaseResult> = results
        .cases
        .iter()
        .filter(|c| c.params.workload == "stream")
        .collect();
    let deferred: Vec<&CaseResult> = stream
        .iter()
        .filter(|c| c.params.policy == "deferred")
        .copied()
        .collect();
    let size = mode(deferred.iter().map(|c| c.params.size));
    let vms = mode(deferred.iter().map(|c| c.params.vms));
    let mut transports: Vec<&str> = Vec::new();
    for c in &deferred {
        if !transports.contains(&c.params.transport.as_str()) {
            transports.push(&c.params.transport);
        }
    }
    let mut exits = Vec::new();
    let mut time = Vec::new();
    for transport in transports {
        let cases: Vec<&CaseResult> = stream
            .iter()
            .filter(|c| {
                c.params.transport == transport
                    && Some(c.params.size) == size
                    && Some(c.params.vms) == vms
                    && (c.params.policy == "deferred" || c.params.policy == "immediate")
            })
            .copied()
            .collect();
        // Immediate sends are batch 1.
        let batch = |p: &CaseParams| {
            if p.policy == "immediate" {
                1.0
            } else {
                p.batch as f64
            }
        };
        let mut batches: Vec<u64> = cases.iter().map(|c| batch(&c.params) as u64).collect();
        batches.sort_unstable();
        batches.dedup();
        if batches.len() < 2 {
            continue;
        }
        exits.push(SummarySeries {
            label: transport.into(),
            points: summary_points(&cases, metric::EXITS_PER_MSG, batch),
        });
        time.push(SummarySeries {
            label: transport.into(),
            points: summary_points(&cases, metric::TIME_PER_MSG_NS, batch),
        });
    }
    let at = match (size, vms) {
        (Some(size), Some(vms)) => format!(", {}, {vms} VMs", units::bytes(size as f64)),
        _ => String::new(),
    };
    PlannedChart {
        stem: "batch-sweep".into(),
        what: format!("Deferred exits: batch-size sweep (stream{at})"),
        caption: "Exits per message and transfer time per message as the deferred policy's \
                  batch grows (immediate sends are batch 1), mean with its 95% CI shaded."
            .into(),
        data: if exits.is_empty() {
            Err("no transport's deferred stream was measured at two or more batch sizes".into())
        } else {
            Ok(ChartData::BatchSweep { exits, time })
        },
    }
}

/// One latency CDF chart per workload with latency distributions, at its most common size.
fn cdfs(results: &Results) -> Vec<PlannedChart> {
    let mut charts = Vec::new();
    for workload in ["pingpong", "stream", "fanin"] {
        let cases: Vec<&CaseResult> = results
            .cases
            .iter()
            .filter(|c| {
                c.params.workload == workload
                    && c.latency.as_ref().is_some_and(|l| !l.cdf.is_empty())
            })
            .collect();
        let Some(size) = mode(cases.iter().map(|c| c.params.size)) else {
            continue;
        };
        let at_size: Vec<&CaseResult> = cases
            .into_iter()
            .filter(|c| c.params.size == size)
            .collect();
        let chosen = representatives(&at_size);
        let what = chosen
            .iter()
            .find_map(|c| c.latency.as_ref())
            .map_or_else(|| "latency".to_string(), |l| l.what.clone());
        let series = chosen
            .iter()
            .filter_map(|c| {
                Some(CdfSeries {
                    label: series_label(&c.params),
                    points: c.latency.as_ref()?.cdf.clone(),
                })
            })
            .collect();
        charts.push(PlannedChart {
            stem: format!("latency-cdf-{workload}"),
            what: format!(
                "{} latency distribution at {}: {what}",
                capitalized(workload_name(workload)),
                units::bytes(size as f64)
            ),
            caption: "The share of samples (every sample of every measured repetition) at or \
                      below each latency; the x axis is logarithmic."
                .into(),
            data: Ok(ChartData::Cdf { what, series }),
        });
    }
    if charts.is_empty() {
        charts.push(PlannedChart {
            stem: "latency-cdf".into(),
            what: "Latency distributions".into(),
            caption: String::new(),
            data: Err("no case recorded a latency distribution".into()),
        });
    }
    charts
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
