//! Horizontal bar charts: one row per label, one or more bars per row, each with an optional
//! CI whisker and its value written beside it, plain or stacked from segments; optionally a
//! shaded vertical band (the noise threshold of a comparison).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{Axis, Ticks};
use super::style::{self, LegendEntry, Title};
use super::{DrawResult, Figure};

/// One bar.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BarItem {
    /// The value; `None` draws no bar, only the text (`n/a`).
    pub value: Option<f64>,
    /// A whisker from low to high (a 95% CI), if any.
    pub ci: Option<(f64, f64)>,
    /// The bar's colour.
    pub color: RGBColor,
    /// The text beside the bar (its value, or why there is none).
    pub text: String,
    /// Stacked parts from 0 outwards, each in its colour; empty draws one bar of `value` in
    /// `color`. A part missing from the data is left out, not drawn as 0.
    pub segments: Vec<Segment>,
}

/// One part of a stacked bar.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    /// Its length (value-axis units, not negative).
    pub value: f64,
    /// Its colour.
    pub color: RGBColor,
}

/// One row of bars; its label may hold `\n` line breaks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BarRow {
    /// The row label.
    pub label: String,
    /// The bars, drawn top to bottom.
    pub bars: Vec<BarItem>,
}

/// A shaded vertical band across every row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VBand {
    /// From, to (value-axis units).
    pub range: (f64, f64),
    /// The legend label.
    pub label: String,
}

/// A horizontal bar chart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BarFigure {
    /// The title.
    pub title: Title,
    /// The value axis (linear).
    pub axis: Axis,
    /// The rows, top to bottom.
    pub rows: Vec<BarRow>,
    /// The legend (what the bar colours mean).
    pub legend: Vec<LegendEntry>,
    /// A shaded band, if any.
    pub band: Option<VBand>,
    /// Room left for the value texts beyond the longest bar, as a share of the value axis'
    /// span ([`TEXT_ROOM`] for a number; more for a sentence).
    pub text_room: f64,
    /// Canvas width, pixels.
    pub width: u32,
}

/// The default [`BarFigure::text_room`]: enough for a number.
pub(crate) const TEXT_ROOM: f64 = 0.14;

/// Thickness of one bar, pixels.
const BAR_PX: u32 = 18;
/// Height of one row-label line, pixels.
const LINE_PX: u32 = 17;
/// Room for the title, the axis and margins, pixels.
const CHROME_PX: u32 = 170;

impl BarFigure {
    /// Whether any bar has a value to draw.
    pub(crate) fn has_data(&self) -> bool {
        self.rows
            .iter()
            .flat_map(|r| &r.bars)
            .any(|b| b.value.is_some_and(f64::is_finite))
    }

    /// Pixel height of row `row`.
    fn row_px(row: &BarRow) -> u32 {
        let bars = row.bars.len().max(1) as u32 * BAR_PX + 14;
        let lines = row.label.lines().count().max(1) as u32 * LINE_PX + 10;
        bars.max(lines)
    }
}

impl Figure for BarFigure {
    fn size(&self) -> (u32, u32) {
        let rows: u32 = self.rows.iter().map(BarFigure::row_px).sum();
        (self.width, (CHROME_PX + rows).max(style::HEIGHT))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()> {
        let mut legend = self.legend.clone();
        if let Some(band) = &self.band {
            legend.push(LegendEntry {
                label: band.label.clone(),
                color: style::MUTED,
                swatch: style::Swatch::Band,
            });
        }
        let body = style::frame(root, &self.title, &legend)?;
        let label_style = style::text(style::LABEL_SIZE, style::INK);
        let mut label_width = 0;
        for line in self.rows.iter().flat_map(|r| r.label.lines()) {
            let (w, _) = body
                .estimate_text_size(line, &label_style)
                .map_err(|e| e.to_string())?;
            label_width = label_width.max(w);
        }
        let (body_width, _) = body.dim_in_pixel();
        let label_width = (label_width + 16).min(body_width * 2 / 5);

        let mut values: Vec<f64> = vec![0.0];
        for bar in self.rows.iter().flat_map(|r| &r.bars) {
            values.extend(bar.value);
            if let Some((lo, hi)) = bar.ci {
                values.extend([lo, hi]);
            }
        }
        if let Some(band) = &self.band {
            values.extend([band.range.0, band.range.1]);
        }
        let ticks = self
            .axis
            .ticks(values.iter().copied())
            .ok_or("no value to draw")?;
        // Room for the value texts beyond the longest bars.
        let span = ticks.range.end - ticks.range.start;
        let min = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::min);
        let room = self.text_room * span;
        let x_range = if min < 0.0 {
            ticks.range.start - room..ticks.range.end + room
        } else {
            ticks.range.start..ticks.range.end + room
        };

        let n = self.rows.len();
        let mut chart = ChartBuilder::on(&body)
            .margin_top(12)
            .margin_right(16)
            .margin_left(8)
            .x_label_area_size(52)
            .y_label_area_size(label_width)
            .build_cartesian_2d(
                Ticks {
                    range: x_range.clone(),
                    at: ticks.at.clone(),
                },
                Ticks {
                    range: -0.5..n as f64 - 0.5,
                    at: Vec::new(),
                },
            )
            .map_err(|e| e.to_string())?;
        let x_label = |v: &f64| self.axis.tick_label(*v);
        style::mesh(&mut chart.configure_mesh())
            .x_desc(self.axis.label.as_str())
            .x_label_formatter(&x_label)
            .draw()
            .map_err(|e| e.to_string())?;
        let top = n as f64 - 0.5;
        let bottom = -0.5;
        if let Some(band) = &self.band {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(band.range.0, bottom), (band.range.1, top)],
                    style::MUTED.mix(style::BAND_ALPHA).filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
        if n > 1 {
            chart
                .draw_series((1..n).map(|i| {
                    let y = i as f64 - 0.5;
                    PathElement::new(vec![(x_range.start, y), (x_range.end, y)], style::GRID)
                }))
                .map_err(|e| e.to_string())?;
        }
        for (i, row) in self.rows.iter().enumerate() {
            let center = (n - 1 - i) as f64;
            draw_row(&mut chart, row, center)?;
            // The row label, right-aligned left of the plot, one text per line.
            let lines: Vec<&str> = row.label.lines().collect();
            let (px, py) = chart.backend_coord(&(x_range.start, center));
            let (bx, by) = body.get_base_pixel();
            let first = py - by - (lines.len() as i32 - 1) * LINE_PX as i32 / 2;
            for (k, line) in lines.iter().enumerate() {
                body.draw(&Text::new(
                    line.to_string(),
                    (px - bx - 8, first + k as i32 * LINE_PX as i32),
                    style::anchored(label_style.clone(), HPos::Right, VPos::Center),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, bottom), (0.0, top)],
                style::INK.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn draw_row<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Ticks, Ticks>>,
    row: &BarRow,
    center: f64,
) -> DrawResult<()> {
    let k = row.bars.len().max(1) as f64;
    let thickness = 0.8 / k;
    for (j, bar) in row.bars.iter().enumerate() {
        let top = center + 0.4 - j as f64 * thickness;
        let bottom = top - thickness * 0.9;
        let mid = (top + bottom) / 2.0;
        let value = bar.value.filter(|v| v.is_finite());
        if let Some(v) = value {
            let mut parts: Vec<(f64, f64, RGBColor)> = Vec::new();
            if bar.segments.is_empty() {
                parts.push((0.0, v, bar.color));
            } else {
                let mut from = 0.0;
                for s in bar.segments.iter().filter(|s| s.value > 0.0) {
                    parts.push((from, from + s.value, s.color));
                    from += s.value;
                }
            }
            chart
                .draw_series(
                    parts
                        .into_iter()
                        .map(|(a, b, c)| Rectangle::new([(a, bottom), (b, top)], c.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        if let (Some(_), Some((lo, hi))) = (value, bar.ci) {
            // The whisker: a line from lo to hi with caps a fifth of the bar high.
            let cap = thickness * 0.18;
            chart
                .draw_series(
                    [
                        vec![(lo, mid), (hi, mid)],
                        vec![(lo, mid - cap), (lo, mid + cap)],
                        vec![(hi, mid - cap), (hi, mid + cap)],
                    ]
                    .into_iter()
                    .map(|path| PathElement::new(path, style::INK.stroke_width(1))),
                )
                .map_err(|e| e.to_string())?;
        }
        let v = value.unwrap_or(0.0);
        let (lo, hi) = bar.ci.unwrap_or((v, v));
        let (at, dx, h) = if v < 0.0 {
            (v.min(lo), -6, HPos::Right)
        } else {
            (v.max(hi), 6, HPos::Left)
        };
        let color = if value.is_some() {
            style::INK
        } else {
            style::MUTED
        };
        chart
            .plotting_area()
            .draw(
                &(EmptyElement::at((at, mid))
                    + Text::new(
                        bar.text.clone(),
                        (dx, 0),
                        style::anchored(
                            style::text(style::LABEL_SIZE - 1.0, color),
                            h,
                            VPos::Center,
                        ),
                    )),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
