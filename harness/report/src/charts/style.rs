//! What every chart shares: canvas size, text sizes, colours, the two-line title (what was
//! measured; on which host) and the legend column on the right.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::FAMILY;
use super::DrawResult;

/// Default canvas width, pixels.
pub(crate) const WIDTH: u32 = 1000;
/// Default canvas height, pixels.
pub(crate) const HEIGHT: u32 = 600;

/// Title text size.
const TITLE_SIZE: f64 = 22.0;
/// Subtitle (host line) text size.
const SUBTITLE_SIZE: f64 = 15.0;
/// Axis title size.
pub(crate) const AXIS_TITLE_SIZE: f64 = 16.0;
/// Tick label size.
pub(crate) const TICK_SIZE: f64 = 14.0;
/// Legend, value label and note size.
pub(crate) const LABEL_SIZE: f64 = 14.0;
/// Height of the title block.
const TITLE_HEIGHT: u32 = 70;
/// Height of one legend line.
const LEGEND_LINE: i32 = 20;

/// Text colour.
pub(crate) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Secondary text colour (host line, notes, "n/a").
pub(crate) const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
/// Grid line colour.
pub(crate) const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// Series colours: Tableau 10, distinguishable and print-safe.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The colour of series `i`.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Text in the charts' font at `size`, in `color`.
pub(crate) fn text(size: f64, color: RGBColor) -> TextStyle<'static> {
    let mut style = TextStyle::from((FAMILY, size).into_font());
    style.color = color.to_backend_color();
    style
}

/// `style` anchored at `h`, `v`.
pub(crate) fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// The title of a chart: what was measured, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Title {
    /// What the chart shows (`Ping-pong one-way latency vs message size`).
    pub what: String,
    /// On which host and in which run (`kvm_pvm · AMD EPYC 7B13 · 2 cores · kernel 6.18`).
    pub host: String,
}

/// How a legend entry's swatch is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Swatch {
    /// A line with a point marker (line series with markers).
    Line,
    /// A plain line (dense line series, marks).
    Stroke,
    /// A filled box (bars).
    Bar,
    /// A light filled box (bands, shaded ranges).
    Band,
}

/// One legend entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LegendEntry {
    /// The label.
    pub label: String,
    /// The colour.
    pub color: RGBColor,
    /// The swatch.
    pub swatch: Swatch,
}

/// Opacity of bands.
pub(crate) const BAND_ALPHA: f64 = 0.18;

/// Draws the white background, the title block and the legend column of `root`, and returns
/// the area left for the plot.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    legend: &[LegendEntry],
) -> DrawResult<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (width, _) = root.dim_in_pixel();
    let fit = |line: &str, size: f64| -> DrawResult<f64> {
        let mut size = size;
        while size > 10.0 {
            let (w, _) = root
                .estimate_text_size(line, &text(size, INK))
                .map_err(|e| e.to_string())?;
            if w + 40 <= width {
                break;
            }
            size -= 1.0;
        }
        Ok(size)
    };
    let size = fit(&title.what, TITLE_SIZE)?;
    root.draw(&Text::new(title.what.as_str(), (20, 12), text(size, INK)))
        .map_err(|e| e.to_string())?;
    let size = fit(&title.host, SUBTITLE_SIZE)?;
    root.draw(&Text::new(
        title.host.as_str(),
        (20, 16 + TITLE_SIZE as i32),
        text(size, MUTED),
    ))
    .map_err(|e| e.to_string())?;
    let (_, body) = root.split_vertically(TITLE_HEIGHT);
    if legend.is_empty() {
        return Ok(body);
    }
    let column = legend_width(root, legend)?;
    let (plot, legend_area) = body.split_horizontally(width - column);
    draw_legend(&legend_area, legend, column)?;
    Ok(plot)
}

/// Left edge of legend text relative to the column.
const LEGEND_TEXT_X: i32 = 40;

/// The legend column's width: the longest label (wrapped at 260 pixels) plus the swatch.
fn legend_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    legend: &[LegendEntry],
) -> DrawResult<u32> {
    let mut widest = 0;
    for entry in legend {
        for line in wrap(root, &entry.label, LEGEND_WRAP)? {
            let (w, _) = root
                .estimate_text_size(&line, &text(LABEL_SIZE, INK))
                .map_err(|e| e.to_string())?;
            widest = widest.max(w);
        }
    }
    Ok((widest + LEGEND_TEXT_X as u32 + 16).clamp(140, LEGEND_WRAP + 60))
}

/// Width legend labels are wrapped at, pixels.
const LEGEND_WRAP: u32 = 260;

/// `label` split at spaces into lines no wider than `max` pixels (a single longer word stays
/// whole).
pub(crate) fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    max: u32,
) -> DrawResult<Vec<String>> {
    let style = text(LABEL_SIZE, INK);
    let mut lines: Vec<String> = Vec::new();
    for word in label.split(' ') {
        match lines.last_mut() {
            Some(line) => {
                let candidate = format!("{line} {word}");
                let (w, _) = area
                    .estimate_text_size(&candidate, &style)
                    .map_err(|e| e.to_string())?;
                if w <= max {
                    *line = candidate;
                } else {
                    lines.push(word.to_string());
                }
            }
            None => lines.push(word.to_string()),
        }
    }
    Ok(lines)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &[LegendEntry],
    column: u32,
) -> DrawResult<()> {
    let mut y = 24;
    for entry in legend {
        let mid = y + LEGEND_LINE / 2;
        let swatch_result = match entry.swatch {
            Swatch::Line => area
                .draw(&PathElement::new(
                    vec![(8, mid), (32, mid)],
                    entry.color.stroke_width(3),
                ))
                .and_then(|_| area.draw(&Circle::new((20, mid), 4, entry.color.filled()))),
            Swatch::Stroke => area.draw(&PathElement::new(
                vec![(8, mid), (32, mid)],
                entry.color.stroke_width(3),
            )),
            Swatch::Bar => area.draw(&Rectangle::new(
                [(10, mid - 7), (30, mid + 7)],
                entry.color.filled(),
            )),
            Swatch::Band => area.draw(&Rectangle::new(
                [(8, mid - 7), (32, mid + 7)],
                entry.color.mix(BAND_ALPHA * 2.0).filled(),
            )),
        };
        swatch_result.map_err(|e| e.to_string())?;
        for line in wrap(area, &entry.label, column - LEGEND_TEXT_X as u32 - 10)? {
            area.draw(&Text::new(
                line,
                (LEGEND_TEXT_X, y + LEGEND_LINE / 2),
                anchored(text(LABEL_SIZE, INK), HPos::Left, VPos::Center),
            ))
            .map_err(|e| e.to_string())?;
            y += LEGEND_LINE;
        }
        y += 6;
    }
    Ok(())
}

/// The mesh style every chart shares: axis titles and tick labels in ink, grid lines for the
/// bold ticks only, muted axes.
pub(crate) fn mesh<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged<ValueType: std::fmt::Debug>,
    Y: Ranged<ValueType: std::fmt::Debug>,
    DB: DrawingBackend,
{
    mesh.axis_desc_style(text(AXIS_TITLE_SIZE, INK))
        .label_style(text(TICK_SIZE, INK))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
}
