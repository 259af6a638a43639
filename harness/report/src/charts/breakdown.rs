//! The per-message cost breakdown: one stacked bar per transport and size, splitting the
//! time per message into exits, host mapping, copying and the rest as shares of it (times
//! differ by orders of magnitude across sizes: on one linear time axis the small ones would
//! vanish), with the time itself and the counts that explain it (host mapping operations,
//! remote TLB flush requests, faults) beside it.

use super::axis::{Axis, Format, Scale};
use super::bars::{BarFigure, BarItem, BarRow, Segment};
use super::style::{self, LegendEntry, Swatch};
use super::{render, ChartError, ChartOut, Rendered, Title};
use crate::units;

/// One bar of the breakdown: a transport at one size, each part `None` where the results do
/// not have it.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakdownRow {
    /// The transport and policy (`remap immediate`).
    pub label: String,
    /// The message size, bytes.
    pub size: u64,
    /// Whether the transport remaps (its move time is host mapping, otherwise copying).
    pub remaps: bool,
    /// Mean time per message, ns.
    pub time_ns: Option<f64>,
    /// Userspace exits per message.
    pub exits: Option<f64>,
    /// The floor's bare exit, ns.
    pub exit_ns: Option<f64>,
    /// The VMM's move time per message, ns (remap IPC only).
    pub move_ns: Option<f64>,
    /// Host mapping operations per message (remap variants only).
    pub map_ops: Option<f64>,
    /// Remote TLB flush requests per message.
    pub flushes: Option<f64>,
    /// Page faults per message.
    pub faults: Option<f64>,
}

/// The parts of a bar, in stacking order, with their legend labels.
const PARTS: [&str; 4] = [
    "exits (userspace exits x bare exit)",
    "host mapping (VMM move time, remap)",
    "copy (VMM move time, copy)",
    "rest: guests, faults, flush re-walks",
];

impl BreakdownRow {
    /// The timed parts, ns, in [`PARTS`] order (`None`: not in the results).
    fn parts(&self) -> [Option<f64>; 4] {
        let exits = self.exits.zip(self.exit_ns).map(|(n, ns)| n * ns);
        let (mapping, copy) = if self.remaps {
            (self.move_ns, None)
        } else {
            (None, self.move_ns)
        };
        let known = exits.unwrap_or(0.0) + self.move_ns.unwrap_or(0.0);
        let rest = self.time_ns.map(|t| (t - known).max(0.0));
        [exits, mapping, copy, rest]
    }

    /// The text beside the bar: the total and the counts, `n/a` where absent.
    fn text(&self) -> String {
        let count = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), units::count);
        let total = self.time_ns.map_or_else(|| "time n/a".into(), units::nanos);
        let ops = if self.remaps {
            format!("{} map ops, ", count(self.map_ops))
        } else {
            String::new()
        };
        format!(
            "{total}: {ops}{} flushes, {} faults /msg",
            count(self.flushes),
            count(self.faults)
        )
    }
}

/// Draws the breakdown: one row per transport and size (grouped by size, in `rows`' order),
/// a stacked bar of the timed parts as percentages of the time per message, and the time and
/// counts beside it. A row without a time per message has no bar, only its text.
pub fn cost_breakdown(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    rows: &[BreakdownRow],
) -> Result<Rendered, ChartError> {
    let colors = [
        style::color(0),
        style::color(2),
        style::color(1),
        style::MUTED,
    ];
    let figure = BarFigure {
        title: title.clone(),
        axis: Axis::new(
            "share of the time per message (%)",
            Scale::Linear { from_zero: true },
            Format::Count,
        ),
        rows: rows
            .iter()
            .map(|r| {
                let total = r.time_ns.filter(|t| *t > 0.0);
                let segments: Vec<Segment> = r
                    .parts()
                    .iter()
                    .zip(colors)
                    .filter_map(|(v, color)| {
                        Some(Segment {
                            value: 100.0 * (*v)? / total?,
                            color,
                        })
                    })
                    .collect();
                let value = total.map(|_| segments.iter().map(|s| s.value).sum::<f64>());
                BarRow {
                    label: format!("{}\n{}", r.label, units::bytes(r.size as f64)),
                    bars: vec![BarItem {
                        value,
                        ci: None,
                        color: style::MUTED,
                        text: r.text(),
                        segments,
                    }],
                }
            })
            .collect(),
        legend: PARTS
            .iter()
            .zip(colors)
            .map(|(label, color)| LegendEntry {
                label: label.to_string(),
                color,
                swatch: Swatch::Bar,
            })
            .collect(),
        band: None,
        // The time and three counts beside each bar.
        text_room: 0.75,
        width: style::WIDTH + 300,
    };
    if !figure.has_data() {
        return Err(ChartError::Empty("no time per message measured".into()));
    }
    render(out, stem, &figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(remaps: bool) -> BreakdownRow {
        BreakdownRow {
            label: "remap immediate".into(),
            size: 4096,
            remaps,
            time_ns: Some(100_000.0),
            exits: Some(1.0),
            exit_ns: Some(30_000.0),
            move_ns: Some(50_000.0),
            map_ops: Some(3.0),
            flushes: Some(2.0),
            faults: None,
        }
    }

    #[test]
    fn parts_add_up_and_missing_ones_stay_missing() {
        assert_eq!(
            row(true).parts(),
            [Some(30_000.0), Some(50_000.0), None, Some(20_000.0)]
        );
        assert_eq!(
            row(false).parts(),
            [Some(30_000.0), None, Some(50_000.0), Some(20_000.0)]
        );
        let r = BreakdownRow {
            exit_ns: None,
            time_ns: None,
            ..row(true)
        };
        assert_eq!(r.parts(), [None, Some(50_000.0), None, None]);
        assert_eq!(r.text(), "time n/a: 3 map ops, 2 flushes, n/a faults /msg");
        assert_eq!(row(false).text(), "100 µs: 2 flushes, n/a faults /msg");
    }
}
