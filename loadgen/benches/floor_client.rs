//! The least an SSE reader on HTTP/1.1 can do per event, for comparing the
//! load generator's CPU per event with a floor (see `floor.sh` beside this
//! file, which runs both against one server in turn).
//!
//! `floor_client HOST:PORT CONNECTIONS SECONDS SERVER_PID` opens
//! CONNECTIONS streams on `/sse`, waits until each has had its first bytes,
//! then for SECONDS counts events (`\n\n`, the end of an SSE event), its
//! `recv` and `epoll_wait` calls, and reads its own CPU time and the
//! server's from procfs. It prints one JSON line.
//!
//! What it does per event is what the kernel needs and no more: one
//! edge-triggered readiness from epoll (mio), one `recv` into one buffer
//! shared by every connection, and a scan for the event's end. The buffer
//! is 1 KiB, the load generator's resting read size, and `reads_per_event`
//! in the output shows whether it read one event per `recv` as the load
//! generator does when it keeps up (a reader that falls behind reads
//! several events per `recv`, which costs less per event: the figure would
//! then flatter the floor). It does not
//! decode the chunked framing, parse the event, read a clock or record
//! anything, and it runs on one thread with no task runtime. So its CPU per
//! event is the kernel's receive path (the copy, the ACK, epoll) plus a
//! little: what a reader of one `recv` per event cannot go below.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use loadgen::measure::{ProcessFigures, ProcessProbe};
use mio::{Events, Interest, Poll, Token};

/// How long the streams may take to open and deliver their first bytes.
const OPEN_WITHIN: Duration = Duration::from_secs(60);
/// Settling time after every stream has started, before the count.
const SETTLE: Duration = Duration::from_secs(1);
/// The load generator's resting read size.
const READ_SIZE: usize = 1024;

struct Stream {
    socket: mio::net::TcpStream,
    /// The last byte read was `\n` (an event's end may span two reads).
    after_newline: bool,
    started: bool,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("floor_client: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [addr, connections, seconds, server_pid] = &args[..] else {
        return Err("usage: floor_client HOST:PORT CONNECTIONS SECONDS SERVER_PID".into());
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("HOST:PORT {addr:?}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    let connections: usize = match connections.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "CONNECTIONS must be a positive whole number, not {connections:?}"
            ))
        }
    };
    let hold = match seconds.parse::<f64>().map(Duration::try_from_secs_f64) {
        Ok(Ok(hold)) if hold > Duration::ZERO && hold < Duration::from_secs(3600) => hold,
        _ => {
            return Err(format!(
                "SECONDS must be more than 0 and less than 3600, not {seconds:?}"
            ))
        }
    };
    let server = ProcessProbe::new(
        server_pid
            .parse()
            .map_err(|e| format!("SERVER_PID {server_pid:?}: {e}"))?,
    );
    let own = ProcessProbe::new(std::process::id());

    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let request = format!(
        "GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    let mut streams = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut socket = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        socket
            .write_all(request.as_bytes())
            .map_err(|e| format!("writing the request: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("non-blocking: {e}"))?;
        let mut socket = mio::net::TcpStream::from_std(socket);
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .map_err(|e| format!("epoll: {e}"))?;
        streams.push(Stream {
            socket,
            after_newline: false,
            started: false,
        });
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_SIZE];
    let mut received = 0u64;
    let mut recvs = 0u64;
    let mut waits = 0u64;
    let mut started = 0usize;
    let open_by = Instant::now() + OPEN_WITHIN;
    let mut phase = Phase::Opening;
    let mut before = None;
    loop {
        let now = Instant::now();
        let deadline = match phase {
            Phase::Opening => open_by,
            Phase::Settling(until) | Phase::Counting(until) => until,
        };
        if now >= deadline {
            match phase {
                Phase::Opening => {
                    return Err(format!(
                        "only {started} of {connections} streams had their first bytes within {OPEN_WITHIN:?}"
                    ))
                }
                Phase::Settling(_) => {
                    before = Some(Counts {
                        own: read(&own)?,
                        server: read(&server)?,
                        events: received,
                        recvs,
                        waits,
                        at: Instant::now(),
                    });
                    phase = Phase::Counting(now + hold);
                }
                Phase::Counting(_) => break,
            }
            continue;
        }
        waits += 1;
        match poll.poll(&mut events, Some(deadline - now)) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other.map_err(|e| format!("epoll: {e}"))?,
        }
        for event in events.iter() {
            let i = event.token().0;
            let stream = &mut streams[i];
            loop {
                recvs += 1;
                match stream.socket.read(&mut buf) {
                    Ok(0) => return Err(format!("the server closed stream {i}")),
                    Ok(n) => {
                        if !stream.started {
                            if !buf[..n].starts_with(b"HTTP/1.1 200") {
                                let head = String::from_utf8_lossy(&buf[..n.min(80)]);
                                return Err(format!("stream {i} was answered {head:?}"));
                            }
                            stream.started = true;
                            started += 1;
                            if started == connections {
                                phase = Phase::Settling(Instant::now() + SETTLE);
                            }
                        }
                        received += count_ends(&buf[..n], &mut stream.after_newline);
                        // A short read emptied the socket; epoll reports
                        // the next bytes (edge-triggered).
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("stream {i}: {e}")),
                }
            }
        }
    }
    let start = before.expect("counting started before it ended");
    let (own1, server1) = (read(&own)?, read(&server)?);
    let events = received - start.events;
    if events == 0 {
        return Err("no event arrived while counting".into());
    }
    if server1.cpu_us == start.server.cpu_us {
        return Err(
            "the server used no CPU time while counting (is SERVER_PID the server?)".into(),
        );
    }
    let per_event = |a: ProcessFigures, b: ProcessFigures| {
        b.cpu_us.saturating_sub(a.cpu_us) as f64 / events as f64
    };
    let client = per_event(start.own, own1);
    let server = per_event(start.server, server1);
    let reads_per_event = (recvs - start.recvs) as f64 / events as f64;
    let events_per_wait = events as f64 / (waits - start.waits).max(1) as f64;
    println!(
        "{{\"connections\":{connections},\"seconds\":{:.2},\"events\":{events},\"reads_per_event\":{reads_per_event:.3},\"events_per_epoll_wait\":{events_per_wait:.1},\"client_cpu_us_per_event\":{client:.3},\"server_cpu_us_per_event\":{server:.3},\"ratio\":{:.3}}}",
        start.at.elapsed().as_secs_f64(),
        client / server
    );
    Ok(())
}

/// What was counted when the count started.
struct Counts {
    own: ProcessFigures,
    server: ProcessFigures,
    events: u64,
    recvs: u64,
    waits: u64,
    at: Instant,
}

#[derive(Clone, Copy)]
enum Phase {
    Opening,
    Settling(Instant),
    Counting(Instant),
}

fn read(probe: &ProcessProbe) -> Result<ProcessFigures, String> {
    probe.read().map_err(|e| e.to_string())
}

/// Events ended in `bytes` (`\n\n`, also across two reads).
fn count_ends(bytes: &[u8], after_newline: &mut bool) -> u64 {
    let mut ends = 0;
    for at in memchr::memchr_iter(b'\n', bytes) {
        let after = match at {
            0 => *after_newline,
            _ => bytes[at - 1] == b'\n',
        };
        ends += u64::from(after);
    }
    *after_newline = bytes.last() == Some(&b'\n');
    ends
}
