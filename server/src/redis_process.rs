//! A throwaway `redis-server` as a child process: for the shared feed's
//! tests, the deploy check and the multi-instance benchmark, never a
//! system service.
//!
//! It listens on loopback on a port of its own, keeps nothing on disk
//! (`--save '' --appendonly no`, in a directory of its own, removed
//! afterwards) and is killed when dropped, so a failing test leaves
//! nothing behind. [`RedisProcess::kill`] and [`RedisProcess::restart`]
//! make the outages the shared feed must survive.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program started.
pub const REDIS_SERVER: &str = "redis-server";

/// Why Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RedisProcessError {
    #[error("`{REDIS_SERVER}` is not installed (install: apt-get install -y redis-server)")]
    NotInstalled,
    #[error("starting {REDIS_SERVER}: {0}")]
    Io(#[from] std::io::Error),
    #[error("{REDIS_SERVER} on port {port} did not answer PING within 10 s; its output: {output}")]
    NoAnswer { port: u16, output: String },
}

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisProcess {
    /// Whether `redis-server` can be run here.
    pub fn available() -> bool {
        Command::new(REDIS_SERVER)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts one on a free loopback port and waits until it answers.
    pub fn start() -> Result<RedisProcess, RedisProcessError> {
        if !Self::available() {
            return Err(RedisProcessError::NotInstalled);
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!(
            "sse-ws-workbench-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut r = RedisProcess {
            child: None,
            port,
            dir,
        };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<(), RedisProcessError> {
        let log = std::fs::File::create(self.dir.join("redis.log"))?;
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), RedisProcessError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = self.take_output();
        self.kill();
        Err(RedisProcessError::NoAnswer {
            port: self.port,
            output,
        })
    }

    fn take_output(&mut self) -> String {
        self.kill();
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Whether it answers `PING` now.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr())
    }

    /// Kills it outright (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) -> Result<(), RedisProcessError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
