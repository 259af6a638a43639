//! The delta chart of `report compare`: the relative change of every compared metric, its 95%
//! CI, coloured by verdict, against the noise threshold.

use plotters::style::RGBColor;

use super::axis::{Axis, Format, Scale};
use super::bars::{BarFigure, BarItem, BarRow, VBand, TEXT_ROOM};
use super::style::{self, LegendEntry, Swatch};
use super::{render, ChartError, ChartOut, Rendered, Title};
use crate::units;
use pageflip_results::stats::Verdict;

/// One compared (case, metric).
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaRow {
    /// The row label (case and metric; `\n` breaks lines).
    pub label: String,
    /// Relative change of B's mean over A's (0.2 = 20% more).
    pub relative_change: f64,
    /// 95% CI of the relative change.
    pub ci95: (f64, f64),
    /// The verdict.
    pub verdict: Verdict,
}

/// Colour of improvements.
const IMPROVED: RGBColor = RGBColor(0x2e, 0x8b, 0x57);
/// Colour of regressions.
const REGRESSED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
/// Colour of unchanged metrics.
const UNCHANGED: RGBColor = RGBColor(0x9a, 0xa5, 0xb1);

fn verdict_color(v: Verdict) -> RGBColor {
    match v {
        Verdict::Improved => IMPROVED,
        Verdict::Regressed => REGRESSED,
        Verdict::Unchanged => UNCHANGED,
    }
}

/// Horizontal bars of relative change, one row per (case, metric), with the effect CI as a
/// whisker, coloured by verdict, over a shaded band of ±`noise` (the noise threshold, e.g.
/// 0.05). Rows whose change is not finite are written as `n/a`.
pub fn delta_chart(
    out: &ChartOut,
    stem: &str,
    title: &Title,
    rows: &[DeltaRow],
    noise: f64,
) -> Result<Rendered, ChartError> {
    let bar_rows = rows
        .iter()
        .map(|r| {
            let finite = r.relative_change.is_finite();
            BarRow {
                label: r.label.clone(),
                bars: vec![BarItem {
                    value: finite.then_some(r.relative_change),
                    ci: (r.ci95.0.is_finite() && r.ci95.1.is_finite()).then_some(r.ci95),
                    color: verdict_color(r.verdict),
                    text: if finite {
                        units::percent(r.relative_change)
                    } else {
                        "n/a".into()
                    },
                    segments: Vec::new(),
                }],
            }
        })
        .collect();
    let legend = [
        (Verdict::Improved, "improved"),
        (Verdict::Regressed, "regressed"),
        (Verdict::Unchanged, "unchanged"),
    ]
    .into_iter()
    .map(|(v, label)| LegendEntry {
        label: label.into(),
        color: verdict_color(v),
        swatch: Swatch::Bar,
    })
    .collect();
    let figure = BarFigure {
        title: title.clone(),
        axis: Axis::new(
            "relative change of the mean, B vs A (whisker: 95% CI)",
            Scale::Linear { from_zero: true },
            Format::Percent,
        ),
        rows: bar_rows,
        legend,
        band: Some(VBand {
            range: (-noise, noise),
            label: format!(
                "noise threshold ±{}",
                units::percent(noise).trim_start_matches('+')
            ),
        }),
        text_room: TEXT_ROOM,
        width: style::WIDTH,
    };
    if !figure.has_data() {
        return Err(ChartError::Empty("no compared metric".into()));
    }
    render(out, stem, &figure)
}
