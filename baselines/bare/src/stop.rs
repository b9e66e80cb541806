//! When the process should stop: SIGTERM, SIGINT (Ctrl-C), or stdin closing
//! (the parent that started it went away, or closed the pipe on purpose).

use std::io::{self, Read};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

/// Waits for a reason to stop and names it.
pub async fn requested(watch_stdin: bool) -> io::Result<&'static str> {
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let stdin = if watch_stdin {
        Some(stdin_closed()?)
    } else {
        None
    };
    let closed = async {
        match stdin {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    };
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = closed => "stdin closed",
    })
}

/// Resolves when stdin reaches its end (or fails).
///
/// A plain thread, not tokio's stdin: tokio reads stdin on its blocking
/// pool with a read that cannot be cancelled, which would hold up the
/// runtime's shutdown after a SIGTERM until stdin delivered something.
fn stdin_closed() -> io::Result<oneshot::Receiver<()>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut sink = [0u8; 256];
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        })?;
    Ok(rx)
}
