//! Which proxy: nginx or HAProxy, the Debian packages, and how each is run
//! in the foreground as a child of ours.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::EdgeError;

/// A reverse proxy the edge can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// nginx (Debian 12: 1.22).
    Nginx,
    /// HAProxy (Debian 12: 2.6).
    Haproxy,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 2] = [EdgeKind::Nginx, EdgeKind::Haproxy];

    /// `nginx`, `haproxy`: the name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Nginx => "nginx",
            EdgeKind::Haproxy => "haproxy",
        }
    }

    /// The executable's file name.
    pub fn binary(self) -> &'static str {
        self.name()
    }

    /// The Debian package that ships it.
    pub fn package(self) -> &'static str {
        self.name()
    }

    /// What `apt-get` needs, for messages.
    pub fn install_hint(self) -> String {
        format!("apt-get install -y {}", self.package())
    }

    /// The `tuned` config template (see `configs/`).
    pub(crate) fn tuned_template(self) -> &'static str {
        match self {
            EdgeKind::Nginx => include_str!("../configs/nginx-tuned.conf"),
            EdgeKind::Haproxy => include_str!("../configs/haproxy-tuned.cfg"),
        }
    }

    /// The `naive` config template (see `configs/`).
    pub(crate) fn naive_template(self) -> &'static str {
        match self {
            EdgeKind::Nginx => include_str!("../configs/nginx-naive.conf"),
            EdgeKind::Haproxy => include_str!("../configs/haproxy-naive.cfg"),
        }
    }

    /// The installed executable: on PATH, or in the sbin directories a
    /// non-root PATH often lacks.
    pub fn locate(self) -> Result<PathBuf, EdgeError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
            .map(|dir| dir.join(self.binary()))
            .find(|candidate| is_executable(candidate))
            .ok_or(EdgeError::NotInstalled {
                kind: self,
                binary: self.binary(),
                package: self.package(),
            })
    }

    /// The arguments that run the proxy in the foreground on `config`, with
    /// every file it writes inside `dir` (never the system service's).
    pub(crate) fn args(self, config: &Path, dir: &Path) -> Vec<String> {
        let show = |p: &Path| p.display().to_string();
        match self {
            // -p: prefix for relative paths; -e: the startup error log
            // (otherwise Debian's /var/log/nginx/error.log); the pid file and
            // foreground mode from the command line, so a user's config
            // cannot point them at the system service's.
            EdgeKind::Nginx => vec![
                "-p".into(),
                show(dir),
                "-c".into(),
                show(config),
                "-e".into(),
                show(&dir.join("error.log")),
                "-g".into(),
                format!("daemon off; pid {};", dir.join("nginx.pid").display()),
            ],
            // -db: foreground, one process (threads); its log lines go to
            // stderr (`log stderr` in the config), which we keep in a file.
            // -dR: no SO_REUSEPORT, which HAProxy sets by default: two
            // HAProxys given the same free port would then share it
            // silently, each taking the other's connections.
            EdgeKind::Haproxy => vec![
                "-db".into(),
                "-dR".into(),
                "-f".into(),
                show(config),
                "-p".into(),
                show(&dir.join("haproxy.pid")),
            ],
        }
    }

    /// The file name of the rendered config.
    pub(crate) fn config_file_name(self) -> &'static str {
        match self {
            EdgeKind::Nginx => "nginx.conf",
            EdgeKind::Haproxy => "haproxy.cfg",
        }
    }

    /// The log files the proxy writes in `dir`, most useful first.
    pub(crate) fn log_files(self, dir: &Path) -> Vec<PathBuf> {
        match self {
            EdgeKind::Nginx => vec![
                dir.join("error.log"),
                dir.join("stderr.log"),
                dir.join("access.log"),
            ],
            EdgeKind::Haproxy => vec![dir.join("stderr.log")],
        }
    }
}

/// For tests that need `kind`: whether it is installed. If not, prints a
/// loud `SKIPPED: …` with the install command (the test then passes), or
/// panics when `WORKBENCH_REQUIRE_EDGE=1` (CI, where it must run).
pub fn installed_or_skip(kind: EdgeKind) -> bool {
    match kind.locate() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("WORKBENCH_REQUIRE_EDGE").as_deref() == Ok("1") {
                panic!("WORKBENCH_REQUIRE_EDGE=1 but {e}");
            }
            // Straight to stderr: the test harness would hide a passing
            // test's captured output.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {e}");
            false
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EdgeKind {
    type Err = EdgeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EdgeKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| EdgeError::UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for k in EdgeKind::ALL {
            assert_eq!(k.name().parse::<EdgeKind>().unwrap(), k);
        }
        assert_eq!("HAProxy".parse::<EdgeKind>().unwrap(), EdgeKind::Haproxy);
        let err = "envoy".parse::<EdgeKind>().unwrap_err().to_string();
        assert!(err.contains("nginx or haproxy"), "{err}");
    }

    #[test]
    fn a_missing_binary_says_how_to_install() {
        let err = EdgeError::NotInstalled {
            kind: EdgeKind::Haproxy,
            binary: "haproxy",
            package: "haproxy",
        };
        assert!(err.to_string().contains("apt-get install -y haproxy"));
    }
}
