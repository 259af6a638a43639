//! Chart axes: linear, logarithmic or categorical, with tick positions and labels computed
//! here rather than by plotters, so that log axes get readable ticks (1-2-5 decades, powers of
//! two for sizes) and every label carries its unit.
//!
//! Charts plot in *plot coordinates*: the value itself on a linear axis, its logarithm on a log
//! axis, the category's index on a categorical one. [`Axis::to_plot`] maps a value there and
//! refuses what the axis cannot show (non-positive values on a log axis, NaN).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, KeyPointWeight, Ranged};

use crate::units;

/// How values are placed along an axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    /// Linear.
    Linear {
        /// Whether the axis always includes 0 (counts, bars).
        from_zero: bool,
    },
    /// Base-10 logarithmic, ticks at 1-2-5 steps of each decade.
    Log10,
    /// Base-2 logarithmic, ticks at powers of two (message sizes, batch sizes).
    Log2,
    /// One tick per named category, at 0, 1, 2, ...
    Categories(Vec<String>),
}

/// How tick values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Bytes (`64 B`, `4 KiB`).
    Bytes,
    /// Nanoseconds (`850 ns`, `34.9 µs`).
    Nanos,
    /// A plain number (`0.031`, `12k`).
    Count,
    /// A relative change (`+5%`).
    Percent,
}

impl Format {
    /// `v` written in this format.
    pub fn write(self, v: f64) -> String {
        match self {
            Format::Bytes => units::bytes(v),
            Format::Nanos => units::nanos(v),
            Format::Count => units::count(v),
            Format::Percent => units::percent(v),
        }
    }
}

/// One axis: its label (with the unit), scale and tick format.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The axis title, naming the unit (`message size (bytes)`).
    pub label: String,
    /// Placement.
    pub scale: Scale,
    /// Tick format.
    pub format: Format,
}

/// The visible range of an axis and its ticks, in plot coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    /// The visible range.
    pub range: Range<f64>,
    /// Tick (and grid line) positions.
    pub at: Vec<f64>,
}

/// plotters draws on [`Ticks`] directly: a linear f64 coordinate whose grid lines are our
/// ticks (and no light lines).
impl Ranged for Ticks {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let share = (v - self.range.start) / span;
        limit.0 + ((limit.1 - limit.0) as f64 * share + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.at.clone(),
            KeyPointWeight::Any => Vec::new(),
        }
    }
}

/// Most ticks an axis gets before they are thinned out.
const MAX_TICKS: usize = 10;

impl Axis {
    /// A new axis.
    pub fn new(label: impl Into<String>, scale: Scale, format: Format) -> Axis {
        Axis {
            label: label.into(),
            scale,
            format,
        }
    }

    /// Where `v` goes in plot coordinates; `None` if the axis cannot show it.
    pub fn to_plot(&self, v: f64) -> Option<f64> {
        let p = match self.scale {
            Scale::Linear { .. } | Scale::Categories(_) => v,
            Scale::Log10 if v > 0.0 => v.log10(),
            Scale::Log2 if v > 0.0 => v.log2(),
            Scale::Log10 | Scale::Log2 => return None,
        };
        p.is_finite().then_some(p)
    }

    /// The value at plot coordinate `p`.
    pub fn from_plot(&self, p: f64) -> f64 {
        match self.scale {
            Scale::Linear { .. } | Scale::Categories(_) => p,
            Scale::Log10 => 10f64.powf(p),
            Scale::Log2 => p.exp2(),
        }
    }

    /// The tick label at plot coordinate `p`.
    pub fn tick_label(&self, p: f64) -> String {
        match &self.scale {
            Scale::Categories(names) => {
                let i = p.round();
                if (p - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            _ => self.format.write(self.from_plot(p)),
        }
    }

    /// The visible range and ticks for `values` (data coordinates; those the axis cannot show
    /// are left out), or `None` if none can be shown.
    pub fn ticks(&self, values: impl IntoIterator<Item = f64>) -> Option<Ticks> {
        if let Scale::Categories(names) = &self.scale {
            return (!names.is_empty()).then(|| Ticks {
                range: -0.5..names.len() as f64 - 0.5,
                at: (0..names.len()).map(|i| i as f64).collect(),
            });
        }
        let (lo, hi) = values.into_iter().filter_map(|v| self.to_plot(v)).fold(
            None,
            |acc: Option<(f64, f64)>, p| match acc {
                None => Some((p, p)),
                Some((lo, hi)) => Some((lo.min(p), hi.max(p))),
            },
        )?;
        Some(match self.scale {
            Scale::Linear { from_zero } => linear_ticks(lo, hi, from_zero),
            Scale::Log10 => log10_ticks(lo, hi),
            Scale::Log2 => log2_ticks(lo, hi),
            Scale::Categories(_) => unreachable!("handled above"),
        })
    }
}

/// Ticks of a linear axis from `lo` to `hi`: about 6 at a 1-2-2.5-5 step.
fn linear_ticks(mut lo: f64, mut hi: f64, from_zero: bool) -> Ticks {
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        // One value (or all zero): a range around it.
        if hi == 0.0 {
            hi = 1.0;
            if !from_zero {
                lo = -1.0;
            }
        } else {
            let pad = hi.abs() * 0.1;
            lo -= pad;
            hi += pad;
        }
    }
    let step = nice_step((hi - lo) / 6.0);
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let at: Vec<f64> = (0..=((last - first) as i64))
        .map(|k| (first + k as f64) * step)
        .collect();
    Ticks {
        range: at[0]..*at.last().expect("at least one tick"),
        at,
    }
}

/// The 1, 2, 2.5 or 5 times a power of ten nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * magnitude)
}

/// Padding around data on a log axis: 4% of the span, at least 0.08 (a fifth of a 1-2-5
/// step).
fn log_padding(lo: f64, hi: f64) -> f64 {
    ((hi - lo) * 0.04).max(0.08)
}

/// Ticks of a log10 axis over `lo..hi` (log10 of the data): decades, then 2 and 5 between
/// them when the range is short, then every integer multiple.
fn log10_ticks(lo: f64, hi: f64) -> Ticks {
    let pad = log_padding(lo, hi);
    let range = (lo - pad)..(hi + pad);
    let decades = range.start.floor() as i32..=range.end.ceil() as i32;
    let candidates = |multiples: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|d| multiples.iter().map(move |m| (m * 10f64.powi(d)).log10()))
            .filter(|p| range.contains(p))
            .collect()
    };
    let mut at = candidates(&[1.0]);
    if at.len() < 3 {
        at = candidates(&[1.0, 2.0, 5.0]);
    }
    if at.len() < 3 {
        at = candidates(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }
    Ticks {
        at: thin(at),
        range,
    }
}

/// Ticks of a log2 axis over `lo..hi` (log2 of the data): the powers of two.
fn log2_ticks(lo: f64, hi: f64) -> Ticks {
    let pad = ((hi - lo) * 0.04).max(0.25);
    let range = (lo - pad)..(hi + pad);
    let at = (range.start.ceil() as i32..=range.end.floor() as i32)
        .map(f64::from)
        .collect();
    Ticks {
        at: thin(at),
        range,
    }
}

/// Every k-th tick of `at` so that at most [`MAX_TICKS`] remain, keeping the first.
fn thin(at: Vec<f64>) -> Vec<f64> {
    let k = at.len().div_ceil(MAX_TICKS).max(1);
    at.into_iter().step_by(k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis, values: &[f64]) -> Vec<String> {
        let ticks = axis.ticks(values.iter().copied()).unwrap();
        for t in &ticks.at {
            assert!(
                ticks.range.contains(t) || *t == ticks.range.end,
                "{ticks:?}"
            );
        }
        ticks.at.iter().map(|&p| axis.tick_label(p)).collect()
    }

    #[test]
    fn size_axis_ticks_are_powers_of_two() {
        let axis = Axis::new("size", Scale::Log2, Format::Bytes);
        assert_eq!(
            labels(&axis, &[64.0, 4096.0, 65536.0]),
            ["64 B", "256 B", "1 KiB", "4 KiB", "16 KiB", "64 KiB"]
        );
        let axis = Axis::new("batch", Scale::Log2, Format::Count);
        assert_eq!(
            labels(&axis, &[1.0, 8.0, 32.0]),
            ["1", "2", "4", "8", "16", "32"]
        );
    }

    #[test]
    fn log10_ticks_are_decades_or_1_2_5() {
        let axis = Axis::new("latency", Scale::Log10, Format::Nanos);
        assert_eq!(
            labels(&axis, &[150.0, 2.0e6]),
            ["1 µs", "10 µs", "100 µs", "1 ms"]
        );
        assert_eq!(
            labels(&axis, &[30_000.0, 300_000.0]),
            ["50 µs", "100 µs", "200 µs"]
        );
        // A single value still gets ticks around it.
        let one = labels(&axis, &[34_900.0]);
        assert!(one.len() >= 2, "{one:?}");
    }

    #[test]
    fn log_axes_refuse_what_they_cannot_show() {
        let axis = Axis::new("x", Scale::Log10, Format::Count);
        assert_eq!(axis.to_plot(0.0), None);
        assert_eq!(axis.to_plot(-1.0), None);
        assert_eq!(axis.to_plot(f64::NAN), None);
        assert_eq!(axis.to_plot(100.0), Some(2.0));
        assert!(axis.ticks([0.0, f64::NAN]).is_none());
        assert!((axis.from_plot(2.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn linear_ticks_are_round_and_include_zero() {
        let axis = Axis::new("exits", Scale::Linear { from_zero: true }, Format::Count);
        assert_eq!(labels(&axis, &[0.03, 3.9]), ["0", "1", "2", "3", "4"]);
        let t = axis.ticks([5.0]).unwrap();
        assert_eq!(t.range.start, 0.0);
        assert!(t.range.end >= 5.0);
        // All zero: still a usable range.
        let t = axis.ticks([0.0, 0.0]).unwrap();
        assert!(t.range.end > t.range.start, "{t:?}");
        let delta = Axis::new("change", Scale::Linear { from_zero: true }, Format::Percent);
        assert_eq!(
            labels(&delta, &[-0.1, 0.2]),
            ["-10%", "-5%", "0%", "+5%", "+10%", "+15%", "+20%"]
        );
    }

    #[test]
    fn categories_are_their_indices() {
        let axis = Axis::new(
            "run",
            Scale::Categories(vec!["a".into(), "b".into(), "c".into()]),
            Format::Count,
        );
        let t = axis.ticks([]).unwrap();
        assert_eq!(t.at, [0.0, 1.0, 2.0]);
        assert_eq!(axis.tick_label(1.0), "b");
        assert_eq!(axis.tick_label(1.5), "");
    }
}
