//! Which config the edge runs: `tuned`, `naive`, or a user's file.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::EdgeError;
use crate::kind::EdgeKind;

/// The config an edge runs with (`--edge-config`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EdgeProfile {
    /// What a careful operator writes: no buffering, long read and tunnel
    /// timeouts, the `Upgrade`/`Connection` lines, HTTP/1.1 keep-alive
    /// upstream (`configs/*-tuned.*`).
    #[default]
    Tuned,
    /// What a first tutorial gives: just `proxy_pass` / a bare `backend`;
    /// every default stays (`configs/*-naive.*`).
    Naive,
    /// A user's template, with the same placeholders.
    File(PathBuf),
}

impl EdgeProfile {
    /// `tuned`, `naive`, or the file's path: for reports.
    pub fn label(&self) -> String {
        match self {
            EdgeProfile::Tuned => "tuned".into(),
            EdgeProfile::Naive => "naive".into(),
            EdgeProfile::File(p) => p.display().to_string(),
        }
    }

    /// The template text and where it came from (for error messages).
    pub(crate) fn template(&self, kind: EdgeKind) -> Result<(String, String), EdgeError> {
        Ok(match self {
            EdgeProfile::Tuned => (kind.tuned_template().into(), format!("{kind} tuned")),
            EdgeProfile::Naive => (kind.naive_template().into(), format!("{kind} naive")),
            EdgeProfile::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| EdgeError::ReadConfig {
                        path: path.clone(),
                        source,
                    })?;
                (text, path.display().to_string())
            }
        })
    }
}

impl fmt::Display for EdgeProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl FromStr for EdgeProfile {
    type Err = String;
    /// `tuned`, `naive`, or any other text as a file path (checked when
    /// the edge starts, where the error names it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err("an edge config is tuned, naive or a file path".into()),
            "tuned" => Ok(EdgeProfile::Tuned),
            "naive" => Ok(EdgeProfile::Naive),
            path => Ok(EdgeProfile::File(PathBuf::from(path))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files() {
        assert_eq!("tuned".parse::<EdgeProfile>().unwrap(), EdgeProfile::Tuned);
        assert_eq!("naive".parse::<EdgeProfile>().unwrap(), EdgeProfile::Naive);
        assert_eq!(
            "my.conf".parse::<EdgeProfile>().unwrap(),
            EdgeProfile::File("my.conf".into())
        );
        assert!("".parse::<EdgeProfile>().is_err());
        let err = EdgeProfile::File("/nonexistent/e.conf".into())
            .template(EdgeKind::Nginx)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/e.conf"), "{err}");
    }
}
