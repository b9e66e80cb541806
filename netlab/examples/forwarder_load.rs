//! The forwarder's own cost, for the record: packets per second and CPU per
//! packet. Needs root.
//!
//! ```sh
//! cargo run --release -p netlab --example forwarder_load -- bulk 3
//! cargo run --release -p netlab --example forwarder_load -- ticks 1000 5
//! ```
//!
//! `bulk SECONDS`: one TCP transfer through a transparent link, as fast as
//! the forwarder moves it (its ceiling). `ticks CONNECTIONS SECONDS`: the
//! suite's shape, each connection receiving a 200-byte message every
//! 100 ms over a 50 ms RTT link (10 events/s per connection).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netlab::{EmulatorStats, Lab, SERVER_ADDR};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGE: usize = 200;
const TICK: Duration = Duration::from_millis(100);

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> Result<u64> {
        args.get(i)
            .map(|s| s.parse().with_context(|| format!("`{s}` is not a number")))
            .unwrap_or(Ok(default))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    match args.first().map(String::as_str) {
        Some("bulk") => runtime.block_on(bulk(Duration::from_secs(number(1, 3)?))),
        Some("ticks") => runtime.block_on(ticks(
            number(1, 1000)? as usize,
            Duration::from_secs(number(2, 5)?),
        )),
        _ => bail!("usage: forwarder_load bulk [SECONDS] | ticks [CONNECTIONS] [SECONDS]"),
    }
}

async fn bulk(duration: Duration) -> Result<()> {
    let lab = Lab::start("".parse()?).context("starting the lab")?;
    let listener = listen(&lab)?;
    let target = listener.local_addr()?;
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf).await? {
                0 => return Ok::<u64, std::io::Error>(total),
                n => total += n as u64,
            }
        }
    });
    let mut stream = connect(&lab, target).await?;
    let before = lab.stats();
    let chunk = vec![0u8; 256 * 1024];
    let started = Instant::now();
    while started.elapsed() < duration {
        stream.write_all(&chunk).await.context("sending")?;
    }
    stream.shutdown().await?;
    let bytes = receiver.await??;
    let took = started.elapsed();
    let hold = lab.stats().since(&before);
    println!(
        "bulk: {:.0} Mbit/s of payload in {took:.1?}",
        bytes as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
    print_figures(&hold);
    Ok(())
}

async fn ticks(connections: usize, duration: Duration) -> Result<()> {
    let lab = Lab::start("delay=25ms".parse()?).context("starting the lab")?;
    let listener = listen(&lab)?;
    let target = listener.local_addr()?;
    let deadline = Instant::now() + duration + Duration::from_secs(60);
    // The server side: every accepted connection gets a message per tick
    // until the run's deadline.
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                let message = [b'x'; MESSAGE];
                while Instant::now() < deadline {
                    tick.tick().await;
                    if stream.write_all(&message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut readers = Vec::with_capacity(connections);
    for i in 0..connections {
        let source = lab.client_addrs()[i % lab.client_addrs().len()];
        let socket = lab.client().sockets().tokio_tcp(&target)?;
        socket.bind(SocketAddr::new(source.into(), 0))?;
        let mut stream = socket.connect(target).await.context("connecting")?;
        readers.push(tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut total = 0u64;
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        }));
    }
    // Let every connection reach its rhythm, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = lab.stats();
    tokio::time::sleep(duration).await;
    let hold = lab.stats().since(&before);
    println!(
        "ticks: {connections} connections × {} messages/s of {MESSAGE} B, 50 ms RTT, for {duration:?}",
        1000 / TICK.as_millis()
    );
    print_figures(&hold);
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

fn listen(lab: &Lab) -> Result<tokio::net::TcpListener> {
    let listener = lab
        .server()
        .sockets()
        .tcp_listener(&SocketAddr::new(SERVER_ADDR.into(), 0))
        .context("listening in the server namespace")?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

async fn connect(lab: &Lab, target: SocketAddr) -> Result<tokio::net::TcpStream> {
    let socket = lab.client().sockets().tokio_tcp(&target)?;
    socket
        .connect(target)
        .await
        .with_context(|| format!("connecting to {target} over the link"))
}

fn print_figures(hold: &EmulatorStats) {
    let report = hold.report();
    println!(
        "emulator: {:.0} packets/s ({} forwarded, {} dropped, {} overflowed in the kernel), \
         {:.2} µs CPU per packet, {:.1} % of one core",
        report.packets_per_s,
        report.total.packets_forwarded,
        report.packets_dropped,
        report.total.dropped_overflow,
        report.cpu_us_per_packet,
        report.total.cpu_us as f64 / (report.elapsed_s * 1e6) * 100.0
    );
    for (name, d) in [
        ("client->server", &report.client_to_server),
        ("server->client", &report.server_to_client),
    ] {
        println!(
            "  {name}: {} packets, {:.0} B average, {} µs CPU",
            d.packets_forwarded,
            d.bytes_forwarded as f64 / d.packets_forwarded.max(1) as f64,
            d.cpu_us
        );
    }
}
