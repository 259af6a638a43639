//! Charts over message size: latency (p50 with a band to p99), throughput, and copy against
//! each remap variant with their crossovers; and the forwarding chain's time over K.

use super::axis::{Axis, Format, Scale};
use super::xy::{Layout, Panel, SummarySeries, VMark, XyFigure, XyPoint, XySeries};
use super::{render, style, ChartError, ChartOut, Rendered, Title};
use crate::crossover::{Crossover, CrossoverOutcome};
use crate::units;

/// p50 and p99 latency at one message size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyPoint {
    /// Message size, bytes.
    pub size: u64,
    /// Median latency (mean over repetitions), ns.
    pub p50_ns: f64,
    /// 99th percentile (mean over repetitions), ns, if measured.
    pub p99_ns: Option<f64>,
}

/// One transport's latency over message sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySeries {
    /// The legend label (`remap immediate`).
    pub label: String,
    /// The points, any order.
    pub points: Vec<LatencyPoint>,
}

/// The message-size axis.
fn size_axis() -> Axis {
    Axis::new(
        "message size (bytes, log scale)",
        Scale::Log2,
        Format::Bytes,
    )
}

/// A one-panel figure of `series` with the default size.
pub(crate) fn single(title: &Title, panel: Panel, band_label: Option<&str>) -> XyFigure {
    XyFigure {
        title: title.clone(),
        panels: vec![panel],
        layout: Layout::Rows,
        band_label: band_label.map(str::to_string),
        mark_label: None,
        size: (style::WIDTH, style::HEIGHT),
    }
}

/// Renders `figure` unless it has nothing to show.
pub(crate) fn render_xy(
    out: &ChartOut,
    stem: &str,
    figure: &XyFigure,
    what: &str,
) -> Result<Rendered, ChartError> {
    if !figure.has_data() {
        return Err(ChartError::Empty(what.to_string()));
    }
    render(out, stem, figure)
}

/// Latency vs message size per transport, log-log: a line through the p50s, shaded up to the
/// p99s.
pub fn latency_vs_size(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    series: &[LatencySeries],
) -> Result<Rendered, ChartError> {
    let series = series
        .iter()
        .map(|s| {
            let mut points: Vec<XyPoint> = s
                .points
                .iter()
                .map(|p| XyPoint {
                    x: p.size as f64,
                    y: p.p50_ns,
                    band: p.p99_ns.map(|p99| (p.p50_ns, p99)),
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            XySeries {
                label: s.label.clone(),
                points,
            }
        })
        .collect();
    let panel = Panel {
        heading: None,
        x: size_axis(),
        y: Axis::new("one-way latency (log scale)", Scale::Log10, Format::Nanos),
        series,
        markers: true,
        marks: Vec::new(),
        note: None,
    };
    let figure = single(title, panel, Some("shaded: p50 to p99"));
    render_xy(out, stem, &figure, "no latency measured")
}

/// Throughput (MiB/s) vs message size per transport, log-log, with the 95% CI of the mean
/// shaded.
pub fn throughput_vs_size(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    series: &[SummarySeries],
) -> Result<Rendered, ChartError> {
    let panel = Panel {
        heading: None,
        x: size_axis(),
        y: Axis::new("throughput (MiB/s, log scale)", Scale::Log10, Format::Count),
        series: series.iter().map(SummarySeries::to_xy).collect(),
        markers: true,
        marks: Vec::new(),
        note: None,
    };
    let figure = single(title, panel, Some("shaded: 95% CI of the mean"));
    render_xy(out, stem, &figure, "no throughput measured")
}

/// One remap variant of a crossover chart: its cost over the sizes and its crossover with
/// copy.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantCrossover {
    /// Its cost over the sizes (the legend label names the variant).
    pub series: SummarySeries,
    /// Its crossover with copy.
    pub crossover: Crossover,
}

/// Copy against each remap variant: every cost vs message size (95% CI shaded), each
/// variant's crossover with its 95% CI as a mark in the variant's colour, and a note with
/// one line per variant (its crossover, or "none in range" with its ratio at the largest
/// size).
pub fn crossover_chart(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    cost_axis: &str,
    copy: &SummarySeries,
    variants: &[VariantCrossover],
) -> Result<Rendered, ChartError> {
    let marks: Vec<VMark> = variants
        .iter()
        .filter_map(|v| match &v.crossover.outcome {
            CrossoverOutcome::At { size, ci95, .. } => Some(VMark {
                x: *size,
                band: Some(*ci95),
                label: format!("{}: {}", v.crossover.variant, units::bytes(*size)),
                series: Some(v.series.label.clone()),
            }),
            _ => None,
        })
        .collect();
    let note = variants
        .iter()
        .map(|v| format!("{}: {}", v.crossover.variant, v.crossover.short()))
        .collect::<Vec<_>>()
        .join("\n");
    let has_mark = !marks.is_empty();
    let mut series = vec![copy.to_xy()];
    series.extend(variants.iter().map(|v| v.series.to_xy()));
    let panel = Panel {
        heading: None,
        x: size_axis(),
        y: Axis::new(cost_axis, Scale::Log10, Format::Nanos),
        series,
        markers: true,
        marks,
        note: Some(note),
    };
    let mut figure = single(title, panel, Some("shaded: 95% CI of the mean"));
    figure.size.1 += 60;
    if has_mark {
        figure.mark_label =
            Some("crossover with copy, in the variant's colour (95% CI shaded)".into());
    }
    render_xy(out, stem, &figure, "no remap or copy cost measured")
}

/// The forwarding chain: time per message against K, the number of VMs in the chain, one line
/// per transport (95% CI shaded).
pub fn chain_chart(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    series: &[SummarySeries],
) -> Result<Rendered, ChartError> {
    let panel = Panel {
        heading: None,
        x: Axis::new(
            "K (VMs in the chain)",
            Scale::Linear { from_zero: false },
            Format::Count,
        ),
        y: Axis::new(
            "transfer time per message (log scale)",
            Scale::Log10,
            Format::Nanos,
        ),
        series: series.iter().map(SummarySeries::to_xy).collect(),
        markers: true,
        marks: Vec::new(),
        note: None,
    };
    let figure = single(title, panel, Some("shaded: 95% CI of the mean"));
    render_xy(out, stem, &figure, "no chain time measured")
}
