//! The report's charts, drawn with plotters, each written as `<stem>.svg` and `<stem>.png`.
//!
//! The public chart builders ([`sweeps`], [`counts`], [`cdf`], [`batch`], [`breakdown`],
//! [`delta`], [`history`]) take plain data, not a results file, and refuse to draw an empty chart. They
//! build one of two figure kinds — lines over x ([`xy`]) or horizontal bars ([`bars`]) — on the
//! shared [`style`] (title naming what and where, legend column, axis titles with units) and
//! [`axis`] ticks. PNG text needs DejaVu Sans on the machine ([`font`]); SVG needs no font.

pub mod axis;
mod backend;
pub mod bars;
pub mod batch;
pub mod breakdown;
pub mod cdf;
pub mod counts;
pub mod delta;
pub mod font;
pub mod history;
pub mod style;
pub mod sweeps;
pub mod xy;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

pub use font::FontError;
pub use style::Title;

/// A drawing step's outcome; the error is plotters' message.
pub(crate) type DrawResult<T> = Result<T, String>;

/// Something drawable on any plotters backend.
pub(crate) trait Figure {
    /// Canvas size, pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()>;
}

/// Where charts go and in which formats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartOut {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// Whether to write a PNG beside each SVG (needs [`font::DEJAVU_SANS`]).
    pub png: bool,
}

impl ChartOut {
    /// SVG and PNG charts into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ChartOut {
        ChartOut {
            dir: dir.into(),
            png: true,
        }
    }
}

/// The files one chart was written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The file stem (`latency-vs-size`).
    pub stem: String,
    /// The SVG file.
    pub svg: PathBuf,
    /// The PNG file, if PNGs were asked for.
    pub png: Option<PathBuf>,
}

/// Why a chart was not written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// There is nothing to draw: an empty chart is never written.
    #[error("nothing to draw: {0}")]
    Empty(String),
    /// The PNG font is missing or bad.
    #[error(transparent)]
    Font(#[from] FontError),
    /// The output directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// plotters failed to draw or write the file.
    #[error("cannot draw {path}: {why}")]
    Draw {
        /// The file.
        path: PathBuf,
        /// plotters' message.
        why: String,
    },
}

/// Writes `figure` as `<stem>.svg` (and `<stem>.png`) under `out.dir`.
pub(crate) fn render(
    out: &ChartOut,
    stem: &str,
    figure: &impl Figure,
) -> Result<Rendered, ChartError> {
    std::fs::create_dir_all(&out.dir).map_err(|source| ChartError::Dir {
        path: out.dir.clone(),
        source,
    })?;
    let size = figure.size();
    let svg = out.dir.join(format!("{stem}.svg"));
    let drawn = |path: &Path, result: DrawResult<()>| {
        result.map_err(|why| ChartError::Draw {
            path: path.to_path_buf(),
            why,
        })
    };
    {
        let root = backend::SvgText(SVGBackend::new(&svg, size)).into_drawing_area();
        drawn(&svg, figure.draw(&root))?;
        drawn(&svg, root.present().map_err(|e| e.to_string()))?;
    }
    let png = if out.png {
        font::ensure_registered()?;
        let png = out.dir.join(format!("{stem}.png"));
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            drawn(&png, figure.draw(&root))?;
            drawn(&png, root.present().map_err(|e| e.to_string()))?;
        }
        Some(png)
    } else {
        None
    };
    Ok(Rendered {
        stem: stem.to_string(),
        svg,
        png,
    })
}
