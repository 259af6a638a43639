//! Tests of the report site on the synthetic results of [`super::sample`].

use std::path::Path;

use super::plan::{plan, ChartData};
use super::sample;
use super::*;
use pageflip_results::{metric, Results};

/// The charts the sample gives, all drawn.
const SAMPLE_CHARTS: [&str; 10] = [
    "latency-vs-size",
    "throughput-vs-size",
    "exits-per-message",
    "tlb-flushes-per-message",
    "crossover-stream-immediate",
    "crossover-pingpong-immediate",
    "cost-breakdown",
    "chain",
    "batch-sweep",
    "latency-cdf-pingpong",
];

fn generate_into(results: &Results, dir: &Path, png: bool) -> Site {
    generate(
        results,
        &ChartOut {
            dir: dir.to_path_buf(),
            png,
        },
    )
    .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_sample_is_a_valid_results_file() {
    // (serde_json's default float parsing may differ in the last bit: compare the shape.)
    let r = sample::results(80_000.0);
    let back = Results::parse(&r.to_json()).unwrap();
    assert_eq!(back.cases.len(), r.cases.len());
    assert_eq!(back.run, r.run);
    assert_eq!(back.host, r.host);
}

#[test]
fn every_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let site = generate_into(&sample::results(80_000.0), dir.path(), true);
    let drawn: Vec<&str> = site
        .charts
        .iter()
        .filter(|c| c.files.is_some())
        .map(|c| c.stem.as_str())
        .collect();
    assert_eq!(drawn, SAMPLE_CHARTS, "{:#?}", site.charts);
    for stem in SAMPLE_CHARTS {
        let svg = dir.path().join(format!("{stem}.svg"));
        assert!(read(&svg).contains("<svg"), "{stem}");
        let png = std::fs::read(dir.path().join(format!("{stem}.png"))).unwrap();
        assert!(png.len() > 10_000, "{stem}: {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}");
    }
    assert!(dir.path().join("summary.md").is_file());
    assert!(dir.path().join("index.html").is_file());
}

#[test]
fn svg_only_needs_no_png() {
    let dir = tempfile::tempdir().unwrap();
    generate_into(&sample::results(80_000.0), dir.path(), false);
    assert!(dir.path().join("latency-vs-size.svg").is_file());
    let pngs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs, 0);
}

#[test]
fn index_html_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    generate_into(&sample::results(80_000.0), dir.path(), false);
    let html = read(&dir.path().join("index.html"));
    for external in [
        "src=\"http",
        "href=\"http",
        "<link",
        "<script",
        "<img",
        "url(",
    ] {
        assert!(!html.contains(external), "index.html holds {external}");
    }
    assert_eq!(html.matches("<svg").count(), SAMPLE_CHARTS.len());
    assert!(!html.contains("<?xml"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    // The same tables as summary.md: every case id's row, the floor, the cross-check.
    let md = read(&dir.path().join("summary.md"));
    for needle in [
        "Cross-checks that disagree",
        "the guest counted 10 fewer doorbells",
        "exit_ns",
        "34900 [",
        "Workload: pingpong",
        "host_tlb_flushes_per_msg",
        "perf tlb:tlb_flush could not be opened (not root)",
        "4ff41a2",
        "bench run --profile sample --out results.json",
    ] {
        assert!(md.contains(needle), "summary.md lacks {needle:?}");
        assert!(
            html.contains(&html::escape(needle)),
            "index.html lacks {needle:?}"
        );
    }
}

#[test]
fn a_crossover_is_reported_with_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    generate_into(&sample::results(80_000.0), dir.path(), false);
    let md = read(&dir.path().join("summary.md"));
    // Remap: 80 000 + 0.5 s; copy: 60 000 + 3 s: equal at 8 000 bytes, between the measured
    // 4 and 16 KiB. remap-per-page never catches up; remap-huge is cheaper wherever it runs.
    let line: String = md
        .lines()
        .filter(|l| l.starts_with("- Remap variants vs copy, stream (immediate)"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(line.lines().count(), 3, "{line}");
    assert!(
        line.contains("remap: crossover at")
            && line.contains("remap is cheaper than copy above it"),
        "{line}"
    );
    assert!(line.contains("95% CI"), "{line}");
    assert!(
        line.contains(
            "remap-per-page: none in range: copy is cheaper than remap-per-page at every \
             measured size (64 B to 8 MiB); remap-per-page costs"
        ),
        "{line}"
    );
    assert!(
        line.contains(
            "remap-huge: none in range: remap-huge is cheaper than copy at every measured size \
             (2 MiB to 8 MiB); remap-huge costs 0.0"
        ),
        "{line}"
    );
}

#[test]
fn no_crossover_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let site = generate_into(&sample::results(30_000_000.0), dir.path(), false);
    let md = read(&dir.path().join("summary.md"));
    assert!(
        md.contains(
            "remap: none in range: copy is cheaper than remap at every measured size (64 B to \
             8 MiB); remap costs"
        ),
        "{md}"
    );
    // The chart is still drawn (both lines), saying so in a note.
    let chart = site
        .charts
        .iter()
        .find(|c| c.stem == "crossover-stream-immediate")
        .unwrap();
    let svg = read(&chart.files.as_ref().unwrap().svg);
    assert!(svg.contains("remap: none in range:"), "{svg}");
}

#[test]
fn a_chart_without_data_is_skipped_and_said_so() {
    let mut r = sample::results(80_000.0);
    // One message size only: nothing to draw over sizes, and no crossover.
    r.cases.retain(|c| c.params.size == 4096);
    let dir = tempfile::tempdir().unwrap();
    let site = generate_into(&r, dir.path(), false);
    let skipped: Vec<&str> = site
        .charts
        .iter()
        .filter(|c| c.skipped.is_some())
        .map(|c| c.stem.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["latency-vs-size", "throughput-vs-size", "crossover"],
        "{:#?}",
        site.charts
    );
    assert!(!dir.path().join("latency-vs-size.svg").exists());
    // The batch sweep and the per-message counts still have their data.
    assert!(dir.path().join("batch-sweep.svg").exists());
    assert!(dir.path().join("exits-per-message.svg").exists());
    let md = read(&dir.path().join("summary.md"));
    assert!(
        md.contains(
            "not drawn, no ping-pong transport has latency_p50_ns at two or more message sizes"
        ),
        "{md}"
    );
    let html = read(&dir.path().join("index.html"));
    assert!(html.contains("not drawn"));
}

#[test]
fn no_cases_at_all_draws_nothing() {
    let mut r = sample::results(80_000.0);
    r.cases.clear();
    let dir = tempfile::tempdir().unwrap();
    let site = generate_into(&r, dir.path(), false);
    assert!(
        site.charts.iter().all(|c| c.files.is_none()),
        "{:#?}",
        site.charts
    );
    assert!(read(&dir.path().join("index.html")).contains("not drawn"));
}

#[test]
fn nan_and_absent_metrics_are_left_out_not_zero() {
    let mut r = sample::results(80_000.0);
    for c in r.cases.iter_mut().filter(|c| c.params.transport == "shmem") {
        if let Some(m) = c.metrics.get_mut(metric::LATENCY_P50_NS) {
            *m = pageflip_results::Metric::new("ns", false, vec![f64::NAN]);
        }
        c.metrics.remove(metric::THROUGHPUT_MIB);
    }
    for chart in plan(&r) {
        match chart.data {
            Ok(ChartData::LatencyVsSize(series)) => {
                assert!(
                    series.iter().all(|s| !s.label.starts_with("shmem")),
                    "{series:?}"
                );
                assert_eq!(series.len(), 6);
            }
            Ok(ChartData::ThroughputVsSize(series)) => {
                assert!(series.iter().all(|s| !s.label.starts_with("shmem")));
            }
            _ => {}
        }
    }
}

#[test]
fn a_counter_unavailable_for_some_transports_says_so() {
    let mut r = sample::results(80_000.0);
    for c in r.cases.iter_mut().filter(|c| c.params.transport == "shmem") {
        c.metrics.remove(metric::USERSPACE_EXITS_PER_MSG);
        c.unavailable
            .insert(metric::USERSPACE_EXITS_PER_MSG.into(), "not counted".into());
    }
    let exits = plan(&r)
        .into_iter()
        .find(|c| c.stem == "exits-per-message")
        .unwrap();
    let Ok(ChartData::Counts { groups, .. }) = exits.data else {
        panic!("{exits:?}")
    };
    for g in groups {
        assert_eq!(g.values[1].is_none(), g.label.starts_with("shmem"), "{g:?}");
        assert!(g.values[0].is_some());
    }
}

#[test]
fn the_counts_chart_leaves_out_counters_nobody_has() {
    let r = sample::results(80_000.0);
    let counts = plan(&r)
        .into_iter()
        .find(|c| c.stem == "tlb-flushes-per-message")
        .unwrap();
    assert_eq!(counts.what, "TLB flushes per message, stream at 4 KiB");
    // Host TLB flushes are unavailable everywhere: not drawn, and the caption says why.
    assert!(
        counts.caption.contains(
            "Not shown: host TLB flushes (perf tlb:tlb_flush), unavailable: perf tlb:tlb_flush \
             could not be opened (not root)."
        ),
        "{}",
        counts.caption
    );
    let Ok(ChartData::Counts {
        counters, groups, ..
    }) = counts.data
    else {
        panic!("{counts:?}")
    };
    assert_eq!(counters.len(), 2);
    assert!(groups.iter().all(|g| g.values.len() == 2));
    // Deferred cases are represented by their most common batch (ties: the larger).
    let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
    assert!(labels.contains(&"remap deferred B=32"), "{labels:?}");
}

#[test]
fn the_crossover_chart_draws_copy_against_each_remap_variant() {
    let r = sample::results(80_000.0);
    let chart = plan(&r)
        .into_iter()
        .find(|c| c.stem == "crossover-stream-immediate")
        .unwrap();
    let Ok(ChartData::Crossover { copy, variants, .. }) = chart.data else {
        panic!("{chart:?}")
    };
    assert_eq!(copy.label, "copy immediate");
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v.crossover.variant.as_str())
        .collect();
    assert_eq!(names, ["remap", "remap-per-page", "remap-huge"]);
    use crate::crossover::CrossoverOutcome as O;
    assert!(matches!(variants[0].crossover.outcome, O::At { .. }));
    assert_eq!(variants[1].crossover.outcome, O::CopyAlwaysCheaper);
    assert_eq!(variants[2].crossover.outcome, O::RemapAlwaysCheaper);
    // remap-huge runs at 2 and 8 MiB only: its crossover is over those.
    assert_eq!(variants[2].crossover.sizes, [2 << 20, 8 << 20]);
    let ratio = variants[1].crossover.ratio_at_largest.unwrap();
    assert!(ratio > 1.0, "{ratio}");
    assert!(variants[1]
        .crossover
        .short()
        .starts_with("none in range: 12"));
}

#[test]
fn the_breakdown_shows_missing_parts_as_missing() {
    let mut r = sample::results(80_000.0);
    for c in r.cases.iter_mut().filter(|c| c.params.transport == "copy") {
        c.metrics.remove(metric::MOVE_NS_PER_MSG);
    }
    let chart = plan(&r)
        .into_iter()
        .find(|c| c.stem == "cost-breakdown")
        .unwrap();
    assert_eq!(
        chart.what,
        "Where the time per message goes, stream at 4 KiB, 64 KiB, 2 MiB"
    );
    let Ok(ChartData::Breakdown(rows)) = chart.data else {
        panic!("{chart:?}")
    };
    // Six transports at 4 and 64 KiB (remap-huge at 2 MiB only), the four over the queues
    // at 2 MiB (virtio and shmem stop at 64 KiB); no touch or deferred case.
    assert_eq!(rows.len(), 2 * 6 + 4, "{rows:#?}");
    for row in &rows {
        let remap = row.label.starts_with("remap");
        assert_eq!(row.remaps, remap, "{row:?}");
        assert_eq!(row.map_ops.is_some(), remap, "{row:?}");
        assert_eq!(row.move_ns.is_some(), remap, "{row:?}");
        assert_eq!(
            row.faults.is_none(),
            row.label.starts_with("virtio-userspace"),
            "{row:?}"
        );
        assert!(row.time_ns.is_some() && row.exit_ns.is_some(), "{row:?}");
    }
}

#[test]
fn the_chain_chart_appears_only_with_chain_cases() {
    let r = sample::results(80_000.0);
    let chart = plan(&r).into_iter().find(|c| c.stem == "chain").unwrap();
    assert_eq!(
        chart.what,
        "Forwarding chain: time per message vs K VMs at 64 KiB"
    );
    let Ok(ChartData::Chain(series)) = chart.data else {
        panic!("{chart:?}")
    };
    assert_eq!(series.len(), 5);
    for s in &series {
        let ks: Vec<f64> = s.points.iter().map(|p| p.0).collect();
        assert_eq!(ks, [2.0, 3.0, 4.0, 6.0, 8.0], "{}", s.label);
    }
    let mut r = r;
    r.cases.retain(|c| c.params.workload != "chain");
    assert!(plan(&r).iter().all(|c| c.stem != "chain"));
    let dir = tempfile::tempdir().unwrap();
    let site = generate_into(&r, dir.path(), false);
    assert!(site.charts.iter().all(|c| c.stem != "chain"));
    assert!(!read(&dir.path().join("summary.md")).contains("chain"));
}

#[test]
fn touch_cases_have_their_own_ids_and_lines() {
    let r = sample::results(80_000.0);
    assert!(r
        .case("stream/remap/immediate/2097152B/b1/2vm/touch-header")
        .is_some());
    assert!(r.case("stream/remap/immediate/2097152B/b1/2vm").is_some());
    let ids: std::collections::BTreeSet<&str> = r.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), r.cases.len());
    // A touch case (one size) draws no line of its own over sizes.
    for chart in plan(&r) {
        if let Ok(ChartData::ThroughputVsSize(series)) = chart.data {
            assert!(series.iter().all(|s| !s.label.contains("touch")));
        }
    }
}

/// Writes the sample report into `$PAGEFLIP_SAMPLE_REPORT` (a directory), to look at its
/// charts: `PAGEFLIP_SAMPLE_REPORT=/tmp/sample cargo test -p pageflip-report -- --ignored
/// write_the_sample_report`.
#[test]
#[ignore = "writes files outside a temporary directory; run by hand"]
fn write_the_sample_report() {
    let dir = std::env::var_os("PAGEFLIP_SAMPLE_REPORT").expect("PAGEFLIP_SAMPLE_REPORT");
    let results = sample::results(80_000.0);
    generate_into(&results, Path::new(&dir), true);
    std::fs::write(Path::new(&dir).join("results.json"), results.to_json()).unwrap();
}
