//! Latency CDFs: the fraction of samples at or below each latency, one line per transport.

use super::axis::{Axis, Format, Scale};
use super::sweeps::{render_xy, single};
use super::xy::{Panel, XyPoint, XySeries};
use super::{ChartError, ChartOut, Rendered, Title};

/// One transport's latency distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct CdfSeries {
    /// The legend label.
    pub label: String,
    /// `(quantile, ns)` points, quantile ascending from 0 to 1 (`LatencyDistribution::cdf`).
    pub points: Vec<(f64, f64)>,
}

/// CDFs of latency on a log x axis. `what` names the samples (`one-way latency (round trip /
/// 2)`) and becomes the x axis title.
pub fn latency_cdf(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    what: &str,
    series: &[CdfSeries],
) -> Result<Rendered, ChartError> {
    let series = series
        .iter()
        .map(|s| XySeries {
            label: s.label.clone(),
            points: s
                .points
                .iter()
                .map(|&(q, ns)| XyPoint::new(ns, q))
                .collect(),
        })
        .collect();
    let panel = Panel {
        heading: None,
        x: Axis::new(format!("{what} (log scale)"), Scale::Log10, Format::Nanos),
        y: Axis::new(
            "fraction of samples at or below",
            Scale::Linear { from_zero: true },
            Format::Count,
        ),
        series,
        markers: false,
        marks: Vec::new(),
        note: None,
    };
    render_xy(
        out,
        stem,
        &single(title, panel, None),
        "no latency distribution",
    )
}
