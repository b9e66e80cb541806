//! The emulator between two real kernels' TCP/UDP stacks: delay, loss,
//! rate, jitter ordering and outages, measured from the outside. Bounds are
//! loose: this machine is shared and timings are noisy. Needs root; without
//! it every test prints SKIPPED (or fails with WORKBENCH_REQUIRE_NETLAB=1).

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn tcp_connect_takes_one_round_trip() {
    let Some(lab) = lab("delay=25ms") else { return };
    let rtt = ms(50);
    // The kernel completes handshakes in the backlog; no accept needed.
    let listener = server_listener(&lab);
    let addr = listener.local_addr().unwrap();
    let mut times: Vec<Duration> = (0..7).map(|_| connect(&lab, addr).1).collect();
    times.sort();
    eprintln!("connect times over a 50 ms RTT link: {times:?}");
    for t in &times {
        assert!(*t >= rtt, "a handshake took {t:?}, less than the RTT");
    }
    let median = times[times.len() / 2];
    assert!(
        median <= rtt * 3 / 2 + ms(5),
        "median handshake {median:?} is over 1.5 × RTT + 5 ms"
    );
}

#[test]
fn loss_drops_near_the_asked_fraction_and_counts_every_packet() {
    let Some(lab) = lab("loss=10%") else { return };
    let (client, server) = udp_pair(&lab);
    let before = lab.stats();
    let n = 3000;
    let receiver = thread::spawn(move || receive_numbers(&server, ms(500)));
    send_numbers(&client, 0..n, Duration::from_micros(50));
    let got = receiver.join().unwrap();
    let up = lab.stats().since(&before).client_to_server;
    assert_eq!(
        up.packets_forwarded + up.dropped_loss,
        n,
        "every datagram is either forwarded or counted as lost: {up:?}"
    );
    assert_eq!(
        got.len() as u64,
        up.packets_forwarded,
        "what was forwarded arrived"
    );
    let fraction = up.dropped_loss as f64 / n as f64;
    // Binomial σ for n = 3000, p = 0.1 is 0.0055: ±0.03 is over 5σ.
    assert!(
        (fraction - 0.10).abs() < 0.03,
        "dropped {fraction:.4} of packets"
    );
    assert_eq!(up.dropped_outage + up.dropped_queue, 0);
}

#[test]
fn bulk_throughput_stays_near_the_rate() {
    let Some(lab) = lab("delay=5ms,rate=20mbit") else {
        return;
    };
    let before = lab.stats();
    let (goodput, took) = bulk_transfer(&lab, 2_500_000);
    let rate = 20e6;
    eprintln!(
        "2.5 MB over 20 Mbit/s: {:.2} Mbit/s goodput in {took:?}",
        goodput / 1e6
    );
    assert!(goodput <= rate * 1.02, "goodput {goodput} exceeds the rate");
    assert!(
        goodput >= rate * 0.6,
        "goodput {goodput} is far below the rate"
    );
    let report = lab.report(&lab.stats().since(&before));
    assert_eq!(report.rate_bps, Some(20_000_000));
    assert!(report.emulator.client_to_server.packets_forwarded > 1500);
    assert!(
        report.emulator.server_to_client.packets_forwarded > 0,
        "ACKs flow back"
    );
    assert!(
        report.emulator.total.cpu_us > 0,
        "the forwarder's CPU time is measured"
    );
    assert_eq!(
        report.emulator.total.dropped_overflow, 0,
        "the emulator kept up"
    );
}

#[test]
fn mobile_link_has_its_round_trip_and_rate() {
    let Some(lab) = lab("delay=75ms,rate=1.5mbit") else {
        return;
    };
    let listener = server_listener(&lab);
    let (_, handshake) = connect(&lab, listener.local_addr().unwrap());
    drop(listener);
    assert!(
        handshake >= ms(150),
        "handshake {handshake:?} under the 150 ms RTT"
    );
    let bytes = 150_000;
    let (goodput, took) = bulk_transfer(&lab, bytes);
    eprintln!(
        "150 kB over 1.5 Mbit/s, 150 ms RTT: {:.2} Mbit/s in {took:?}",
        goodput / 1e6
    );
    // 150 kB at 1.5 Mbit/s is 0.8 s of serialization alone.
    assert!(took >= ms(790), "{took:?} is faster than the rate allows");
    assert!(goodput <= 1.5e6 * 1.02);
}

#[test]
fn a_full_bottleneck_queue_tail_drops_and_counts() {
    // 1 Mbit/s drains 125 bytes per ms: a 20 ms queue holds about 2.5 kB.
    let Some(lab) = lab("rate=1mbit,queue=20ms") else {
        return;
    };
    let (client, server) = udp_pair(&lab);
    let receiver = thread::spawn(move || receive_numbers(&server, ms(500)));
    for i in 0..200u64 {
        let mut datagram = [0u8; 1000];
        datagram[..8].copy_from_slice(&i.to_be_bytes());
        client.send(&datagram).unwrap();
    }
    let got = receiver.join().unwrap();
    let up = lab.stats().client_to_server;
    assert_eq!(up.packets_forwarded + up.dropped_queue, 200, "{up:?}");
    assert!(
        up.dropped_queue >= 150,
        "a burst 10× the queue mostly drops: {up:?}"
    );
    assert_eq!(got.len() as u64, up.packets_forwarded);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "survivors keep their order"
    );
    assert!(lab.is_forwarding());
}

#[test]
fn jitter_never_reorders_unless_asked() {
    let Some(lab) = lab("delay=20ms,jitter=10ms") else {
        return;
    };
    let (client, server) = udp_pair(&lab);
    let receiver = thread::spawn(move || receive_numbers(&server, ms(300)));
    send_numbers(&client, 0..300, ms(1));
    let got = receiver.join().unwrap();
    assert_eq!(got, (0..300).collect::<Vec<_>>(), "all arrive, in order");

    lab.control()
        .set_link("delay=20ms,jitter=10ms,reorder=yes".parse().unwrap())
        .unwrap();
    let (client, server) = udp_pair(&lab);
    let receiver = thread::spawn(move || receive_numbers(&server, ms(300)));
    send_numbers(&client, 0..300, ms(1));
    let mut got = receiver.join().unwrap();
    assert!(got.windows(2).any(|w| w[1] < w[0]), "reorder=yes reorders");
    got.sort();
    assert_eq!(got, (0..300).collect::<Vec<_>>(), "and still loses nothing");
}

#[test]
fn a_cut_link_passes_nothing_and_flows_again_after_restore() {
    let Some(lab) = lab("delay=5ms") else { return };
    let (client, server) = udp_pair(&lab);
    send_numbers(&client, 0..20, Duration::ZERO);
    assert_eq!(receive_numbers(&server, ms(200)).len(), 20, "link up");

    let before = lab.stats();
    lab.control().cut();
    send_numbers(&client, 20..70, ms(1));
    assert!(
        receive_numbers(&server, ms(300)).is_empty(),
        "nothing passes a cut link"
    );
    let during = lab.stats().since(&before);
    assert_eq!(during.client_to_server.packets_forwarded, 0);
    assert_eq!(during.client_to_server.dropped_outage, 50);

    lab.control().restore();
    send_numbers(&client, 70..90, Duration::ZERO);
    assert_eq!(
        receive_numbers(&server, ms(200)),
        (70..90).collect::<Vec<_>>()
    );
}

#[test]
fn tcp_survives_an_outage_by_retransmitting() {
    let Some(lab) = lab("delay=10ms") else { return };
    let listener = server_listener(&lab);
    let (mut client, _) = connect(&lab, listener.local_addr().unwrap());
    let (mut server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();

    let cut_at = lab.control().cut();
    client.write_all(&[7u8; 10_000]).unwrap();
    thread::sleep(ms(1000));
    let restored_at = lab.control().restore();
    let mut buf = vec![0u8; 10_000];
    server
        .read_exact(&mut buf)
        .expect("the data arrives after the outage");
    eprintln!(
        "10 kB written during a 1 s cut arrived {:?} after restore",
        restored_at.elapsed()
    );
    assert!(buf.iter().all(|b| *b == 7));
    assert!(cut_at.elapsed() >= ms(1000));
}

#[test]
fn scheduled_outage_drops_only_inside_its_window() {
    let Some(lab) = lab("delay=10ms,outage=400ms@300ms") else {
        return;
    };
    let (client, server) = udp_pair(&lab);
    let receiver = thread::spawn(move || receive_numbers(&server, ms(500)));
    let start = lab.control().start_outages();
    // Each datagram carries the microsecond it was sent, from the start.
    while start.elapsed() < ms(1200) {
        let offset = start.elapsed().as_micros() as u64;
        send_numbers(&client, offset..offset + 1, ms(5));
    }
    let got = receiver.join().unwrap();
    let inside: Vec<u64> = got
        .iter()
        .copied()
        .filter(|us| (300_000..=690_000).contains(us))
        .collect();
    assert!(
        inside.is_empty(),
        "sent during the outage yet arrived: {inside:?}"
    );
    assert!(
        got.iter().any(|us| *us < 280_000),
        "before the outage traffic flows"
    );
    assert!(
        got.iter().any(|us| *us > 720_000),
        "after the outage traffic flows again"
    );
    let up = lab.stats().client_to_server;
    assert!(up.dropped_outage >= 50, "{up:?}");
}

#[test]
fn set_link_changes_the_delay_of_a_running_lab() {
    let Some(lab) = lab("delay=5ms") else { return };
    let listener = server_listener(&lab);
    let addr = listener.local_addr().unwrap();
    let (_, fast) = connect(&lab, addr);
    lab.control()
        .set_link("delay=40ms".parse().unwrap())
        .unwrap();
    let (_, slow) = connect(&lab, addr);
    assert!(fast < ms(40), "{fast:?}");
    assert!(slow >= ms(80), "{slow:?}");
    assert_eq!(lab.report(&lab.stats()).delay_ms, 40.0);
}

#[test]
fn report_serialises_for_result_json() {
    let Some(lab) = lab("delay=25ms,jitter=5ms,loss=1%,rate=10mbit,outage=2s@5s") else {
        return;
    };
    let json = serde_json::to_value(lab.report(&lab.stats())).unwrap();
    assert_eq!(json["delay_ms"], 25.0);
    assert_eq!(json["jitter_ms"], 5.0);
    assert_eq!(json["loss"], 0.01);
    assert_eq!(json["rate_bps"], 10_000_000);
    assert_eq!(json["outages"][0]["start_s"], 5.0);
    assert_eq!(json["outages"][0]["duration_s"], 2.0);
    for key in [
        "packets_forwarded",
        "packets_dropped",
        "cpu_us",
        "packets_per_s",
    ] {
        assert!(json["emulator"][key].is_number(), "{key}");
    }
    let back: netlab::LinkReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.loss, 0.01);
    let start = Instant::now();
    let final_stats = lab.shutdown();
    assert!(start.elapsed() < ms(500), "shutdown is prompt");
    assert_eq!(final_stats.packets_dropped(), 0);
}
