//! The nightly history: chosen metrics over the last runs, mean with its 95% CI, one panel per
//! unit.

use super::axis::{Axis, Format, Scale};
use super::style;
use super::sweeps::render_xy;
use super::xy::{Layout, Panel, XyFigure, XyPoint, XySeries};
use super::{ChartError, ChartOut, Rendered, Title};
use pageflip_results::stats::Summary;

/// One metric over runs.
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySeries {
    /// The legend label (`stream/remap/immediate/4096B/b1/2vm time_per_msg_ns`).
    pub label: String,
    /// The metric's unit (`ns`, `exits/msg`, ...): one panel per unit.
    pub unit: String,
    /// `(run label, summary)`, oldest first; the run labels of all series are the x axis.
    pub points: Vec<(String, Summary)>,
}

/// The value axis of `unit`.
fn value_axis(unit: &str) -> Axis {
    let scale = Scale::Linear { from_zero: false };
    match unit {
        "ns" => Axis::new("mean time", scale, Format::Nanos),
        _ => Axis::new(format!("mean ({unit})"), scale, Format::Count),
    }
}

/// Lines of each series' mean over the runs, 95% CI shaded; runs on x in order of first
/// appearance, labelled by their run label (date, revision).
pub fn history_chart(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    series: &[HistorySeries],
) -> Result<Rendered, ChartError> {
    let mut runs: Vec<&str> = Vec::new();
    for (run, _) in series.iter().flat_map(|s| &s.points) {
        if !runs.contains(&run.as_str()) {
            runs.push(run);
        }
    }
    let mut units: Vec<&str> = Vec::new();
    for s in series {
        if !units.contains(&s.unit.as_str()) {
            units.push(&s.unit);
        }
    }
    let x = Axis::new(
        "run (oldest to newest)",
        Scale::Categories(runs.iter().map(|r| r.to_string()).collect()),
        Format::Count,
    );
    let panels: Vec<Panel> = units
        .iter()
        .map(|unit| Panel {
            heading: (units.len() > 1).then(|| unit.to_string()),
            x: x.clone(),
            y: value_axis(unit),
            series: series
                .iter()
                .filter(|s| s.unit == *unit)
                .map(|s| XySeries {
                    label: s.label.clone(),
                    points: s
                        .points
                        .iter()
                        .filter_map(|(run, summary)| {
                            let i = runs.iter().position(|r| r == run)?;
                            Some(XyPoint::with_band(i as f64, summary.mean, summary.ci95))
                        })
                        .collect(),
                })
                .collect(),
            markers: true,
            marks: Vec::new(),
            note: None,
        })
        .collect();
    let height = style::HEIGHT.max(120 + 380 * panels.len() as u32);
    let figure = XyFigure {
        title: title.clone(),
        panels,
        layout: Layout::Rows,
        band_label: Some("shaded: 95% CI of the mean".into()),
        mark_label: None,
        size: (style::WIDTH, height),
    };
    render_xy(out, stem, &figure, "no run holds the chosen metrics")
}
