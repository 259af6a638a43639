//! The transports table: one row per transport and policy of a results file — exits,
//! notifications, faults, TLB flushes and host mapping operations per message, and stream time per message and
//! ping-pong one-way latency as ratios over the floor (bare MMIO exit + host page remap,
//! measured in the same run) and over shared memory's (`bench transports` prints it;
//! `report transports FILE` draws it from any results file).
//!
//! Every figure is the median over the case's repetitions of a metric the runner defines
//! (`pageflip_results::metric`); a metric the host could not measure is "unavailable".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pageflip_results::{floor, metric as m, CaseResult, Metric, Results, TOUCH_ALL};

/// Stream (throughput) and ping-pong (latency) cases of one transport and policy at one size.
struct Row<'a> {
    transport: &'a str,
    policy: &'a str,
    size: u64,
    batch: u64,
    touch: &'a str,
    stream: Option<&'a CaseResult>,
    pingpong: Option<&'a CaseResult>,
}

/// The median of `metric` among `metrics` (a case's or the floor's), if measured.
fn median_of(metrics: &BTreeMap<String, Metric>, metric: &str) -> Option<f64> {
    metrics
        .get(metric)
        .map(|x| x.summary.median)
        .filter(|v| v.is_finite())
}

/// The median of `metric` in `case`, if measured.
fn median(case: &CaseResult, metric: &str) -> Option<f64> {
    median_of(&case.metrics, metric)
}

/// The rows of `results`: two-VM stream and ping-pong cases, paired by transport, policy,
/// size, batch and touch, in the order the stream cases appear.
fn rows(results: &Results) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for c in results.cases.iter().filter(|c| c.params.vms == 2) {
        let p = &c.params;
        let is_stream = p.workload == "stream";
        if !is_stream && p.workload != "pingpong" {
            continue;
        }
        // A ping-pong case has batch 1: it pairs with the stream of batch 1.
        let at = rows.iter().position(|r| {
            r.transport == p.transport
                && r.policy == p.policy
                && r.size == p.size
                && r.batch == p.batch
                && r.touch == p.touch
        });
        let row = match at {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Row {
                    transport: &p.transport,
                    policy: &p.policy,
                    size: p.size,
                    batch: p.batch,
                    touch: &p.touch,
                    stream: None,
                    pingpong: None,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        if is_stream {
            row.stream = Some(c);
        } else {
            row.pingpong = Some(c);
        }
    }
    rows
}

/// The table of `results` as Markdown, with the floor it divides by.
pub fn markdown(results: &Results) -> String {
    let exit = median_of(&results.floor.metrics, floor::EXIT_NS);
    let remap = median_of(&results.floor.metrics, floor::REMAP_NS);
    let floor_ns = exit.zip(remap).map(|(e, r)| e + r);
    let rows = rows(results);
    let shmem = |size: u64| {
        rows.iter()
            .find(|r| r.transport == "shmem" && r.size == size && r.touch == TOUCH_ALL)
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        "host: {} (kernel {}), {}; run {} ({} repetition(s) per case; medians)",
        results.host.kvm_flavour,
        results.host.kernel,
        results.host.cpu_model,
        results.run.id,
        results.run.repetitions
    );
    let us = |v: Option<f64>| v.map_or("unavailable".to_string(), |v| format!("{:.1} us", v / 1e3));
    let _ = writeln!(
        s,
        "floor (same run): bare MMIO exit round trip {}, host page remap {}\n",
        us(exit),
        us(remap)
    );
    let _ = writeln!(
        s,
        "| transport | policy | size | userspace exits/msg | notifications/msg | exits/msg | \
         page faults fixed/msg | remote TLB flush req./page | host map ops/msg | \
         vCPU TLB flushes/msg | \
         stream time/msg ÷ floor | ping-pong one-way ÷ floor | stream ÷ shmem | ping-pong ÷ shmem |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let cell = |v: Option<f64>, digits: usize| {
        v.map_or("unavailable".to_string(), |v| format!("{v:.digits$}"))
    };
    let na = "n/a".to_string();
    for r in &rows {
        let Some(st) = r.stream else { continue };
        let base = shmem(r.size);
        let mut policy = r.policy.to_string();
        if r.batch > 1 {
            policy += &format!(" (B = {})", r.batch);
        }
        if r.touch != TOUCH_ALL {
            policy += &format!(", touch {}", r.touch);
        }
        let stream_time = median(st, m::TIME_PER_MSG_NS);
        let one_way = r.pingpong.and_then(|p| median(p, m::LATENCY_P50_NS));
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let shmem_stream = base
            .and_then(|b| b.stream)
            .and_then(|c| median(c, m::TIME_PER_MSG_NS));
        let shmem_one_way = base
            .and_then(|b| b.pingpong)
            .and_then(|c| median(c, m::LATENCY_P50_NS));
        // Per page and map operations mean something for the remap variants only.
        let remap_only = |metric: &str, digits: usize| {
            if st.params.transport_config.remaps() {
                cell(median(st, metric), digits)
            } else {
                na.clone()
            }
        };
        let pp = |v: Option<f64>| {
            if r.pingpong.is_some() {
                cell(v, 2)
            } else {
                na.clone()
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.transport,
            policy,
            r.size,
            cell(median(st, m::USERSPACE_EXITS_PER_MSG), 3),
            cell(median(st, m::NOTIFICATIONS_PER_MSG), 3),
            cell(median(st, m::EXITS_PER_MSG), 3),
            cell(median(st, m::FAULTS_PER_MSG), 2),
            remap_only(m::REMOTE_TLB_FLUSHES_PER_PAGE, 2),
            remap_only(m::MAP_OPS_PER_MSG, 1),
            cell(median(st, m::TLB_FLUSHES_PER_MSG), 2),
            cell(ratio(stream_time, floor_ns), 2),
            pp(ratio(one_way, floor_ns)),
            cell(ratio(stream_time, shmem_stream), 2),
            pp(ratio(one_way, shmem_one_way)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample;

    #[test]
    fn every_stream_case_is_a_row_with_its_ratios() {
        let results = sample::results(80_000.0);
        let table = markdown(&results);
        let streams = results
            .cases
            .iter()
            .filter(|c| c.params.workload == "stream" && c.params.vms == 2)
            .count();
        let rows = table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| transport"))
            .count();
        assert!(streams > 0);
        assert_eq!(rows, streams, "{table}");
        // The shmem row divides by itself.
        let shmem = table
            .lines()
            .find(|l| l.starts_with("| shmem | polling | 4096 |"))
            .expect("a shmem row");
        let cells: Vec<&str> = shmem.split('|').map(str::trim).collect();
        assert_eq!(cells[13], "1.00", "{shmem}");
    }

    #[test]
    fn an_unmeasured_metric_is_unavailable_not_zero() {
        let mut results = sample::results(80_000.0);
        for c in &mut results.cases {
            c.metrics.remove(m::EXITS_PER_MSG);
        }
        let table = markdown(&results);
        let row = table
            .lines()
            .find(|l| l.starts_with("| copy | immediate | 4096 |"))
            .expect("a copy row");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[6], "unavailable", "{row}");
    }
}
