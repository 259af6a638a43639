//! The history of chosen metrics over several results files (`report history`): which runs,
//! in which order, labelled how, and each metric's summary per run.

use std::str::FromStr;

use crate::charts::history::HistorySeries;
use pageflip_results::{metric, Results};

/// One metric of one case: `CASE_ID:METRIC` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricRef {
    /// The case id (`stream/remap/immediate/4096B/b1/2vm`).
    pub case: String,
    /// The metric name (`time_per_msg_ns`).
    pub metric: String,
}

impl FromStr for MetricRef {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricRef, String> {
        match s.rsplit_once(':') {
            Some((case, metric)) if !case.is_empty() && !metric.is_empty() => Ok(MetricRef {
                case: case.to_string(),
                metric: metric.to_string(),
            }),
            _ => Err(format!(
                "expected CASE_ID:METRIC (e.g. stream/remap/immediate/4096B/b1/2vm:{}), got {s:?}",
                metric::TIME_PER_MSG_NS
            )),
        }
    }
}

impl std::fmt::Display for MetricRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.case, self.metric)
    }
}

/// `runs` oldest first (by start date, then id), the last `last` of them if given.
pub fn chronological(mut runs: Vec<Results>, last: Option<usize>) -> Vec<Results> {
    runs.sort_by(|a, b| (&a.run.date, &a.run.id).cmp(&(&b.run.date, &b.run.id)));
    if let Some(n) = last {
        let skip = runs.len().saturating_sub(n);
        runs.drain(..skip);
    }
    runs
}

/// Each run's x-axis label: start date and time (UTC) and short revision
/// (`2026-11-24 10:15 4ff41a2`), made unique with a `#k` suffix.
pub fn run_labels(runs: &[Results]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in runs {
        let date: String = r
            .run
            .date
            .chars()
            .take(16)
            .collect::<String>()
            .replace('T', " ");
        let base = match &r.run.git_revision {
            Some(rev) => format!("{date} {}", &rev[..rev.len().min(7)]),
            None => date,
        };
        let mut label = base.clone();
        let mut k = 2;
        while labels.contains(&label) {
            label = format!("{base} #{k}");
            k += 1;
        }
        labels.push(label);
    }
    labels
}

/// The metrics drawn when none are chosen: the transfer time per message of every immediate
/// stream case (batch 1, or no batch; receiver touching everything) of the newest run at its
/// most common message size.
pub fn default_metrics(newest: &Results) -> Vec<MetricRef> {
    let stream = newest.cases.iter().filter(|c| {
        c.params.workload == "stream"
            && c.params.batch <= 1
            && c.params.touch == pageflip_results::TOUCH_ALL
    });
    let mut sizes: Vec<u64> = stream.clone().map(|c| c.params.size).collect();
    sizes.sort_unstable();
    // The most common size; ties to the larger.
    let size = sizes
        .iter()
        .copied()
        .max_by_key(|s| (sizes.iter().filter(|t| *t == s).count(), *s));
    stream
        .filter(|c| Some(c.params.size) == size && c.metrics.contains_key(metric::TIME_PER_MSG_NS))
        .map(|c| MetricRef {
            case: c.id.clone(),
            metric: metric::TIME_PER_MSG_NS.into(),
        })
        .collect()
}

/// One series per metric over `runs` (chronological): the summary of each run that has the
/// case and a finite mean. Metrics no run has are returned separately.
pub fn series(runs: &[Results], metrics: &[MetricRef]) -> (Vec<HistorySeries>, Vec<MetricRef>) {
    let labels = run_labels(runs);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for m in metrics {
        let mut unit = None;
        let points: Vec<(String, pageflip_results::stats::Summary)> = runs
            .iter()
            .zip(&labels)
            .filter_map(|(r, label)| {
                let metric = r.metric(&m.case, &m.metric)?;
                if metric.summary.n == 0 || !metric.summary.mean.is_finite() {
                    return None;
                }
                unit.get_or_insert_with(|| metric.unit.clone());
                Some((label.clone(), metric.summary))
            })
            .collect();
        match unit {
            Some(unit) => found.push(HistorySeries {
                label: m.to_string(),
                unit,
                points,
            }),
            None => missing.push(m.clone()),
        }
    }
    (found, missing)
}

/// The host line of a history chart: the host if every run shares it, else the hosts.
pub fn hosts_line(runs: &[Results]) -> String {
    let mut hosts: Vec<String> = Vec::new();
    for r in runs {
        let h = format!(
            "{} · {} · {} cores · kernel {}",
            r.host.kvm_flavour, r.host.cpu_model, r.host.cores, r.host.kernel
        );
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let span = match (runs.first(), runs.last()) {
        (Some(a), Some(b)) => format!("runs {} to {}", a.run.id, b.run.id),
        _ => "no run".into(),
    };
    match hosts.len() {
        1 => format!("{} · {span}", hosts[0]),
        n => format!("{n} different hosts ({}) · {span}", hosts.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample;

    fn run(date: &str, rev: &str, scale: f64) -> Results {
        let mut r = sample::results(80_000.0);
        r.run.date = date.into();
        r.run.id = format!("{date}-nightly");
        r.run.git_revision = Some(rev.into());
        for c in &mut r.cases {
            for m in c.metrics.values_mut() {
                let values: Vec<f64> = m.values.iter().map(|v| v * scale).collect();
                *m = pageflip_results::Metric::new(&m.unit, m.higher_is_better, values);
            }
        }
        r
    }

    #[test]
    fn metric_refs_parse() {
        let m: MetricRef = "stream/remap/immediate/4096B/b1/2vm:time_per_msg_ns"
            .parse()
            .unwrap();
        assert_eq!(m.case, "stream/remap/immediate/4096B/b1/2vm");
        assert_eq!(m.metric, "time_per_msg_ns");
        assert_eq!(
            m.to_string(),
            "stream/remap/immediate/4096B/b1/2vm:time_per_msg_ns"
        );
        for bad in ["no-colon", ":metric", "case:"] {
            assert!(bad
                .parse::<MetricRef>()
                .unwrap_err()
                .contains("CASE_ID:METRIC"));
        }
    }

    #[test]
    fn runs_are_ordered_cut_and_labelled() {
        let runs = chronological(
            vec![
                run("2026-11-24T02:00:00Z", "cccccccccc", 1.0),
                run("2026-11-22T02:00:00Z", "aaaaaaaaaa", 1.0),
                run("2026-11-23T02:00:00Z", "bbbbbbbbbb", 1.0),
                run("2026-11-23T02:00:00Z", "bbbbbbbbbb", 1.0),
            ],
            Some(3),
        );
        assert_eq!(
            run_labels(&runs),
            [
                "2026-11-23 02:00 bbbbbbb",
                "2026-11-23 02:00 bbbbbbb #2",
                "2026-11-24 02:00 ccccccc"
            ]
        );
    }

    #[test]
    fn floor_metrics_are_named_by_the_floor_case() {
        let runs = vec![run("2026-11-22T02:00:00Z", "a", 1.0)];
        let m: MetricRef = "floor:exit_ns".parse().unwrap();
        assert!(runs[0].floor.metrics.contains_key("exit_ns"));
        let (found, missing) = series(&runs, std::slice::from_ref(&m));
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(
            found[0].points[0].1,
            runs[0].floor.metrics["exit_ns"].summary
        );
    }

    #[test]
    fn series_follow_the_metric_over_runs() {
        let runs = vec![
            run("2026-11-22T02:00:00Z", "a", 1.0),
            run("2026-11-23T02:00:00Z", "b", 1.1),
        ];
        let metrics = default_metrics(&runs[1]);
        // The six immediate stream transports at 64 KiB, receivers touching everything:
        // every transport but remap-huge runs at 64 B to 64 KiB (ties go to the largest);
        // 2 and 8 MiB have only the four over the queues.
        assert_eq!(metrics.len(), 6, "{metrics:?}");
        assert!(
            metrics.iter().all(|m| m.case.contains("/65536B/")),
            "{metrics:?}"
        );
        let mut wanted = metrics.clone();
        wanted.push("no/such/case:time_per_msg_ns".parse().unwrap());
        let (found, missing) = series(&runs, &wanted);
        assert_eq!(missing, ["no/such/case:time_per_msg_ns".parse().unwrap()]);
        assert_eq!(found.len(), 6);
        let first = &found[0];
        assert_eq!(first.unit, "ns");
        assert_eq!(first.points.len(), 2);
        let ratio = first.points[1].1.mean / first.points[0].1.mean;
        assert!((ratio - 1.1).abs() < 1e-9, "{ratio}");
        assert!(
            hosts_line(&runs).starts_with("kvm_pvm · AMD EPYC"),
            "{}",
            hosts_line(&runs)
        );
    }
}
