//! The report of one results file: a directory with every chart (SVG and PNG), `summary.md`
//! and a self-contained `index.html` (`report RESULTS.json`).
//!
//! [`plan`] decides which charts the results give and extracts their plain data (or why a
//! chart is skipped); the [`crate::charts`] builders draw them; [`document`] turns results and
//! charts into blocks that [`markdown`] and [`html`] both write, so the two files hold the
//! same tables.

pub mod document;
pub mod html;
pub mod markdown;
pub mod plan;
#[cfg(test)]
pub(crate) mod sample;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::charts::{
    self, batch, breakdown, cdf, counts, sweeps, ChartError, ChartOut, Rendered, Title,
};
use pageflip_results::Results;
use plan::{ChartData, PlannedChart};

/// One chart of a report: drawn, or skipped with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartEntry {
    /// The file stem.
    pub stem: String,
    /// What it shows.
    pub what: String,
    /// How to read it.
    pub caption: String,
    /// Its files, if drawn.
    pub files: Option<Rendered>,
    /// Why it was not drawn, if skipped.
    pub skipped: Option<String>,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The charts, drawn and skipped.
    pub charts: Vec<ChartEntry>,
    /// `summary.md`.
    pub summary: PathBuf,
    /// `index.html`.
    pub index: PathBuf,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// A chart failed (font missing, directory, drawing).
    #[error("chart {stem}: {source}")]
    Chart {
        /// The chart's stem.
        stem: String,
        /// What failed.
        #[source]
        source: ChartError,
    },
    /// The PNG font is missing.
    #[error(transparent)]
    Font(#[from] charts::FontError),
    /// A file could not be written or read back.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Draws one planned chart.
fn draw(
    out: &ChartOut,
    chart: &PlannedChart,
    data: &ChartData,
    host: &str,
) -> Result<Rendered, ChartError> {
    let title = Title {
        what: chart.what.clone(),
        host: host.to_string(),
    };
    let stem = chart.stem.as_str();
    match data {
        ChartData::LatencyVsSize(series) => sweeps::latency_vs_size(out, stem, &title, series),
        ChartData::ThroughputVsSize(series) => {
            sweeps::throughput_vs_size(out, stem, &title, series)
        }
        ChartData::Counts {
            axis,
            counters,
            groups,
        } => {
            let counters: Vec<&str> = counters.iter().map(String::as_str).collect();
            counts::per_message_counts(out, stem, &title, axis, &counters, groups)
        }
        ChartData::Crossover {
            cost_axis,
            copy,
            variants,
        } => sweeps::crossover_chart(out, stem, &title, cost_axis, copy, variants),
        ChartData::Breakdown(rows) => breakdown::cost_breakdown(out, stem, &title, rows),
        ChartData::Chain(series) => sweeps::chain_chart(out, stem, &title, series),
        ChartData::BatchSweep { exits, time } => batch::batch_sweep(out, stem, &title, exits, time),
        ChartData::Cdf { what, series } => cdf::latency_cdf(out, stem, &title, what, series),
    }
}

/// Writes the report of `results` into `out.dir`: every chart, `summary.md` and `index.html`.
/// With `out.png` the font is checked first, so a missing font fails before anything is
/// written.
pub fn generate(results: &Results, out: &ChartOut) -> Result<Site, SiteError> {
    if out.png {
        charts::font::ensure_registered()?;
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SiteError::Io { path, source }
    };
    std::fs::create_dir_all(&out.dir).map_err(io(&out.dir))?;
    let host = document::host_line(results);
    let plan = plan::plan(results);
    let mut charts = Vec::new();
    for chart in &plan {
        let outcome = match &chart.data {
            Ok(data) => match draw(out, chart, data, &host) {
                Ok(files) => Ok(files),
                Err(ChartError::Empty(why)) => Err(why),
                Err(source) => {
                    return Err(SiteError::Chart {
                        stem: chart.stem.clone(),
                        source,
                    })
                }
            },
            Err(why) => Err(why.clone()),
        };
        charts.push(ChartEntry {
            stem: chart.stem.clone(),
            what: chart.what.clone(),
            caption: chart.caption.clone(),
            skipped: outcome.as_ref().err().cloned(),
            files: outcome.ok(),
        });
    }
    let blocks = document::build(results, &plan, &charts);
    let summary = out.dir.join("summary.md");
    std::fs::write(&summary, markdown::render(&blocks)).map_err(io(&summary))?;
    let index = out.dir.join("index.html");
    let page = html::render(
        &format!("pageflip benchmark report: {}", results.run.id),
        &blocks,
        |svg| std::fs::read_to_string(svg),
    )
    .map_err(io(&index))?;
    std::fs::write(&index, page).map_err(io(&index))?;
    Ok(Site {
        charts,
        summary,
        index,
    })
}
