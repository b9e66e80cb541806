//! Why a report could not be made or written.

use std::path::Path;

use super::document::Chart;
use crate::result::HistogramError;
use crate::wire::Wire;

/// Why a report could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A stored histogram could not be decoded.
    #[error("scenario `{scenario}`, wire {wire}: {source}")]
    Histogram {
        scenario: String,
        wire: Wire,
        source: HistogramError,
    },
    /// plotters refused to draw.
    #[error("drawing the chart `{chart}`: {reason}")]
    Chart { chart: String, reason: String },
    /// A folder could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Writes `text` to `path`, naming the path on failure.
pub fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// A drawn chart named `file`, or the error naming the chart plotters
/// refused to draw.
pub fn drawn(
    file: String,
    title: String,
    svg: Result<String, String>,
) -> Result<Chart, ReportError> {
    svg.map(|svg| Chart {
        file: file.clone(),
        title,
        svg,
    })
    .map_err(|reason| ReportError::Chart {
        chart: file,
        reason,
    })
}
