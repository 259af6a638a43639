//! Per-message counts (VM exits, TLB flushes) of several transports side by side: one row per
//! transport, one bar per counter, 95% CI whiskers, unavailable counters written as such.

use super::axis::{Axis, Format, Scale};
use super::bars::{BarFigure, BarItem, BarRow, TEXT_ROOM};
use super::style::{self, LegendEntry, Swatch};
use super::{render, ChartError, ChartOut, Rendered, Title};
use crate::units;
use pageflip_results::stats::Summary;

/// One transport's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct CountGroup {
    /// The row label (`remap immediate`; `\n` breaks lines).
    pub label: String,
    /// One summary per counter of the chart (same order as its `counters`); `None` if the
    /// counter is unavailable for this transport.
    pub values: Vec<Option<Summary>>,
}

/// Horizontal grouped bars of per-message counters. `counters` name the bars (legend);
/// `axis` is the value axis title with its unit.
pub fn per_message_counts(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    axis: &str,
    counters: &[&str],
    groups: &[CountGroup],
) -> Result<Rendered, ChartError> {
    let rows = groups
        .iter()
        .map(|g| BarRow {
            label: g.label.clone(),
            bars: (0..counters.len())
                .map(|k| {
                    let s = g
                        .values
                        .get(k)
                        .copied()
                        .flatten()
                        .filter(|s| s.mean.is_finite());
                    BarItem {
                        value: s.map(|s| s.mean),
                        ci: s
                            .map(|s| s.ci95)
                            .filter(|(a, b)| a.is_finite() && b.is_finite()),
                        color: style::color(k),
                        text: s.map_or("unavailable".into(), |s| units::sig(s.mean, 3)),
                        segments: Vec::new(),
                    }
                })
                .collect(),
        })
        .collect();
    let figure = BarFigure {
        title: title.clone(),
        axis: Axis::new(axis, Scale::Linear { from_zero: true }, Format::Count),
        rows,
        legend: counters
            .iter()
            .enumerate()
            .map(|(k, c)| LegendEntry {
                label: c.to_string(),
                color: style::color(k),
                swatch: Swatch::Bar,
            })
            .collect(),
        band: None,
        text_room: TEXT_ROOM,
        width: style::WIDTH,
    };
    if !figure.has_data() {
        return Err(ChartError::Empty(format!(
            "no {} measured",
            counters.join(" or ")
        )));
    }
    render(out, stem, &figure)
}
