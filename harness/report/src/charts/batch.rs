//! The batch-size sweep of deferred exits: exits per message and time per message vs the
//! batch size (immediate sends are batch 1).

use super::axis::{Axis, Format, Scale};
use super::style;
use super::sweeps::render_xy;
use super::xy::{Layout, Panel, SummarySeries, XyFigure};
use super::{ChartError, ChartOut, Rendered, Title};

/// Two panels side by side over the batch size (log2): VM exits per message, and transfer
/// time per message; one line per transport, 95% CIs shaded. Each series' x is the batch.
pub fn batch_sweep(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    exits: &[SummarySeries],
    time: &[SummarySeries],
) -> Result<Rendered, ChartError> {
    let batch = || {
        Axis::new(
            "batch size (messages per doorbell, log scale)",
            Scale::Log2,
            Format::Count,
        )
    };
    let panel = |heading: &str, y: Axis, series: &[SummarySeries]| Panel {
        heading: Some(heading.to_string()),
        x: batch(),
        y,
        series: series.iter().map(SummarySeries::to_xy).collect(),
        markers: true,
        marks: Vec::new(),
        note: None,
    };
    let figure = XyFigure {
        title: title.clone(),
        panels: vec![
            panel(
                "VM exits per message",
                Axis::new("exits per message (log scale)", Scale::Log10, Format::Count),
                exits,
            ),
            panel(
                "transfer time per message",
                Axis::new("time per message (log scale)", Scale::Log10, Format::Nanos),
                time,
            ),
        ],
        layout: Layout::Columns,
        band_label: Some("shaded: 95% CI of the mean".into()),
        mark_label: None,
        size: (style::WIDTH + 200, style::HEIGHT),
    };
    render_xy(out, stem, &figure, "no deferred batch measured")
}
