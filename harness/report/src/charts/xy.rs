//! Line charts: one or more panels of series over x, each point with an optional shaded band
//! (a CI or a percentile range), vertical marks (a crossover and its CI) and a note.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{Axis, Scale, Ticks};
use super::style::{self, LegendEntry, Swatch, Title};
use super::{DrawResult, Figure};

/// One point of a series: `y` at `x`, with an optional shaded range `(low, high)` around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XyPoint {
    /// x, in data units.
    pub x: f64,
    /// y, in data units.
    pub y: f64,
    /// The shaded range at x (a 95% CI, or p50 to p99), if any.
    pub band: Option<(f64, f64)>,
}

impl XyPoint {
    /// A point without a band.
    pub fn new(x: f64, y: f64) -> XyPoint {
        XyPoint { x, y, band: None }
    }

    /// A point with a band.
    pub fn with_band(x: f64, y: f64, band: (f64, f64)) -> XyPoint {
        XyPoint {
            x,
            y,
            band: Some(band),
        }
    }
}

/// One line: its legend label and points, x ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct XySeries {
    /// The legend label (`remap immediate`).
    pub label: String,
    /// The points.
    pub points: Vec<XyPoint>,
}

/// A vertical mark at `x`, with an optional shaded range.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VMark {
    /// Where, in data units.
    pub x: f64,
    /// The shaded range, in data units (an infinite end runs to the plot's edge).
    pub band: Option<(f64, f64)>,
    /// The text beside the mark.
    pub label: String,
    /// The series (legend label) whose colour the mark takes; `None`: the mark colour.
    pub series: Option<String>,
}

/// One panel: axes, series, marks and a note.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Panel {
    /// A heading above the panel (when a figure has several).
    pub heading: Option<String>,
    /// The x axis.
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<XySeries>,
    /// Point markers on the lines (off for dense lines such as CDFs).
    pub markers: bool,
    /// Vertical marks.
    pub marks: Vec<VMark>,
    /// Text in the panel's top-left corner.
    pub note: Option<String>,
}

/// How panels are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Stacked, one above the other.
    Rows,
    /// Side by side.
    Columns,
}

/// A line chart of one or more panels sharing one legend (a label has one colour throughout).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct XyFigure {
    /// The title.
    pub title: Title,
    /// The panels.
    pub panels: Vec<Panel>,
    /// Their arrangement.
    pub layout: Layout,
    /// What the bands are, for the legend (`shaded: p50 to p99`).
    pub band_label: Option<String>,
    /// What the marks are, for the legend.
    pub mark_label: Option<String>,
    /// Canvas size.
    pub size: (u32, u32),
}

/// Colour of vertical marks.
const MARK: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// Height of one line of a note or of the marks' labels, pixels.
const NOTE_LINE: i32 = 18;

impl XyFigure {
    /// The distinct series labels in order of appearance: the legend, and the colour index.
    fn labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.series) {
            if !labels.contains(&s.label.as_str()) {
                labels.push(&s.label);
            }
        }
        labels
    }

    /// Whether any panel has a point that its axes can show.
    pub(crate) fn has_data(&self) -> bool {
        self.panels.iter().any(|p| {
            p.series
                .iter()
                .flat_map(|s| &s.points)
                .any(|pt| p.x.to_plot(pt.x).is_some() && p.y.to_plot(pt.y).is_some())
        })
    }
}

impl Figure for XyFigure {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()> {
        let labels = self.labels();
        let swatch = if self.panels.iter().any(|p| p.markers) {
            Swatch::Line
        } else {
            Swatch::Stroke
        };
        let mut legend: Vec<LegendEntry> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| LegendEntry {
                label: l.to_string(),
                color: style::color(i),
                swatch,
            })
            .collect();
        if let Some(band) = &self.band_label {
            legend.push(LegendEntry {
                label: band.clone(),
                color: style::MUTED,
                swatch: Swatch::Band,
            });
        }
        if let Some(mark) = &self.mark_label {
            legend.push(LegendEntry {
                label: mark.clone(),
                color: MARK,
                swatch: Swatch::Stroke,
            });
        }
        let body = style::frame(root, &self.title, &legend)?;
        let areas = match self.layout {
            Layout::Rows => body.split_evenly((self.panels.len(), 1)),
            Layout::Columns => body.split_evenly((1, self.panels.len())),
        };
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(area, panel, &labels)?;
        }
        Ok(())
    }
}

/// Plot coordinates of a panel: both axes f64 with our own ticks.
type Coords = Cartesian2d<Ticks, Ticks>;

/// Every x and y value of a panel (points, bands, marks), in data units.
fn extent(panel: &Panel) -> (Vec<f64>, Vec<f64>) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for pt in panel.series.iter().flat_map(|s| &s.points) {
        if panel.x.to_plot(pt.x).is_none() || panel.y.to_plot(pt.y).is_none() {
            continue;
        }
        xs.push(pt.x);
        ys.push(pt.y);
        if let Some((lo, hi)) = pt.band {
            ys.extend([lo, hi]);
        }
    }
    for m in &panel.marks {
        xs.push(m.x);
        if let Some((lo, hi)) = m.band {
            xs.extend([lo, hi].into_iter().filter(|v| v.is_finite()));
        }
    }
    (xs, ys)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    labels: &[&str],
) -> DrawResult<()> {
    let (xs, ys) = extent(panel);
    let (Some(xt), Some(mut yt)) = (panel.x.ticks(xs), panel.y.ticks(ys)) else {
        return area
            .draw(&Text::new(
                "no data",
                (40, 40),
                style::text(style::LABEL_SIZE, style::MUTED),
            ))
            .map_err(|e| e.to_string());
    };
    let note = match &panel.note {
        Some(note) => {
            // Each line of the note wrapped on its own.
            let (w, _) = area.dim_in_pixel();
            let mut lines = Vec::new();
            for line in note.lines() {
                lines.extend(style::wrap(area, line, (w * 3 / 4).max(200))?);
            }
            lines
        }
        None => Vec::new(),
    };
    if !note.is_empty() {
        // Headroom for the note and the marks' labels below it above the data: about 7% of
        // the height per line.
        let span = yt.range.end - yt.range.start;
        yt.range.end += span * 0.07 * (note.len() + panel.marks.len()) as f64;
    }
    let y_tick_width = widest(area, yt.at.iter().map(|&p| panel.y.tick_label(p)))?;
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(if panel.heading.is_some() { 6 } else { 12 })
        .margin_right(24)
        .margin_left(8)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(y_tick_width + 42);
    if let Some(heading) = &panel.heading {
        builder.caption(heading, style::text(style::AXIS_TITLE_SIZE, style::INK));
    }
    let x_at = category_ticks(area, panel, &xt)?;
    let mut chart = builder
        .build_cartesian_2d(
            Ticks {
                range: xt.range.clone(),
                at: x_at,
            },
            yt.clone(),
        )
        .map_err(|e| e.to_string())?;
    let x_label = |p: &f64| panel.x.tick_label(*p);
    let y_label = |p: &f64| panel.y.tick_label(*p);
    style::mesh(&mut chart.configure_mesh())
        .x_desc(panel.x.label.as_str())
        .y_desc(panel.y.label.as_str())
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    // Mark labels stack below the note's lines, one line each.
    let first_label = 36 + NOTE_LINE * note.len() as i32;
    for (k, mark) in panel.marks.iter().enumerate() {
        let color = mark
            .series
            .as_ref()
            .and_then(|s| labels.iter().position(|l| l == s))
            .map_or(MARK, style::color);
        let dy = first_label + NOTE_LINE * k as i32;
        draw_mark(&mut chart, panel, (&xt, &yt), mark, (color, dy))?;
    }
    for series in &panel.series {
        let i = labels.iter().position(|l| *l == series.label).unwrap_or(0);
        draw_series(&mut chart, panel, series, style::color(i))?;
    }
    for (k, line) in note.into_iter().enumerate() {
        chart
            .plotting_area()
            .draw(
                &(EmptyElement::at((xt.range.start, yt.range.end))
                    + Text::new(
                        line,
                        (10, 10 + NOTE_LINE * k as i32),
                        style::text(style::LABEL_SIZE, style::INK),
                    )),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The pixel width of the widest of `labels` at tick size.
fn widest<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = String>,
) -> DrawResult<u32> {
    let style = style::text(style::TICK_SIZE, style::INK);
    let mut widest = 0;
    for label in labels {
        let (w, _) = area
            .estimate_text_size(&label, &style)
            .map_err(|e| e.to_string())?;
        widest = widest.max(w);
    }
    Ok(widest)
}

/// The x ticks: on a categorical axis every k-th category, so that labels do not overlap.
fn category_ticks<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    xt: &Ticks,
) -> DrawResult<Vec<f64>> {
    let Scale::Categories(names) = &panel.x.scale else {
        return Ok(xt.at.clone());
    };
    let label_width = widest(area, names.iter().cloned())? + 16;
    let (w, _) = area.dim_in_pixel();
    let per_category = (w.saturating_sub(140) / names.len().max(1) as u32).max(1);
    let k = label_width.div_ceil(per_category).max(1) as usize;
    Ok(xt.at.iter().copied().step_by(k).collect())
}

fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coords>,
    panel: &Panel,
    series: &XySeries,
    color: RGBColor,
) -> DrawResult<()> {
    let at = |x: f64, y: f64| Some((panel.x.to_plot(x)?, panel.y.to_plot(y)?));
    let points: Vec<(f64, f64)> = series.points.iter().filter_map(|p| at(p.x, p.y)).collect();
    // Bands: a polygon over each run of consecutive points with a band; an error bar for a
    // point alone.
    let banded: Vec<Option<(f64, f64, f64)>> = series
        .points
        .iter()
        .map(|p| {
            let (lo, hi) = p.band?;
            at(p.x, p.y)?;
            Some((
                panel.x.to_plot(p.x)?,
                panel.y.to_plot(lo)?,
                panel.y.to_plot(hi)?,
            ))
        })
        .collect();
    for run in banded.split(Option::is_none) {
        let run: Vec<(f64, f64, f64)> = run.iter().flatten().copied().collect();
        match run.len() {
            0 => {}
            1 => {
                let (x, lo, hi) = run[0];
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(
                        x,
                        lo,
                        (lo + hi) / 2.0,
                        hi,
                        color.stroke_width(2),
                        8,
                    )))
                    .map_err(|e| e.to_string())?;
            }
            _ => {
                let outline: Vec<(f64, f64)> = run
                    .iter()
                    .map(|&(x, _, hi)| (x, hi))
                    .chain(run.iter().rev().map(|&(x, lo, _)| (x, lo)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(style::BAND_ALPHA).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    if panel.markers {
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draws `mark` in `color`, its label `dy` pixels below the plot's top.
fn draw_mark<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coords>,
    panel: &Panel,
    (xt, yt): (&Ticks, &Ticks),
    mark: &VMark,
    (color, dy): (RGBColor, i32),
) -> DrawResult<()> {
    let Some(x) = panel.x.to_plot(mark.x) else {
        return Ok(());
    };
    let clamp = |v: f64| -> f64 {
        if v == f64::INFINITY {
            xt.range.end
        } else {
            panel.x.to_plot(v).unwrap_or(xt.range.start)
        }
        .clamp(xt.range.start, xt.range.end)
    };
    if let Some((lo, hi)) = mark.band {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(clamp(lo), yt.range.start), (clamp(hi), yt.range.end)],
                color.mix(0.12).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x, yt.range.start), (x, yt.range.end)],
            color.stroke_width(2),
        )))
        .map_err(|e| e.to_string())?;
    let right_half = x > (xt.range.start + xt.range.end) / 2.0;
    let (dx, h) = if right_half {
        (-8, HPos::Right)
    } else {
        (8, HPos::Left)
    };
    chart
        .plotting_area()
        .draw(
            &(EmptyElement::at((x, yt.range.end))
                + Text::new(
                    mark.label.clone(),
                    (dx, dy),
                    style::anchored(style::text(style::LABEL_SIZE, color), h, VPos::Top),
                )),
        )
        .map_err(|e| e.to_string())
}

/// One series of summarized metrics: the mean at each x, its 95% CI as the band.
#[derive(Clone, Debug, PartialEq)]
pub struct SummarySeries {
    /// The legend label.
    pub label: String,
    /// `(x, summary)` points, any order.
    pub points: Vec<(f64, pageflip_results::stats::Summary)>,
}

impl SummarySeries {
    /// The line: means, with the CIs as bands, x ascending.
    pub(crate) fn to_xy(&self) -> XySeries {
        let mut points: Vec<XyPoint> = self
            .points
            .iter()
            .map(|(x, s)| XyPoint::with_band(*x, s.mean, s.ci95))
            .collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        XySeries {
            label: self.label.clone(),
            points,
        }
    }
}
