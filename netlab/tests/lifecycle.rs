//! What a lab makes and what it leaves: namespaces and devices, addresses
//! and routes, processes and sockets inside, cleanup after drop, after a
//! panic, and of a crashed run's leftovers. Needs root; without it every
//! test prints SKIPPED (or fails with WORKBENCH_REQUIRE_NETLAB=1).

mod support;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use netlab::netns::NETNS_DIR;
use netlab::{Netns, SERVER_ADDR, TUN_NAME};
use support::*;

fn exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

fn mounted(name: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|line| line.contains(&format!("{NETNS_DIR}/{name} ")))
}

/// IPv4 routes of the calling thread's namespace: (destination, prefix, device).
fn routes() -> Vec<(Ipv4Addr, u32, String)> {
    fs::read_to_string("/proc/thread-self/net/route")
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).unwrap();
            // /proc shows addresses in host (little-endian) byte order.
            let dest = Ipv4Addr::from(hex(f[1]).swap_bytes());
            (dest, hex(f[7]).count_ones(), f[0].to_string())
        })
        .collect()
}

/// IPv4 addresses of `device` in the calling thread's namespace.
fn addresses(device: &str) -> Vec<Ipv4Addr> {
    let mut found: Vec<Ipv4Addr> = nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter(|a| a.interface_name == device)
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
        .collect();
    found.sort();
    found
}

#[test]
fn each_side_has_lo_and_its_tun_with_lab_addresses_only() {
    let Some(lab) = lab("") else { return };
    let client = lab
        .client()
        .netns()
        .run(|| (interfaces(), addresses(TUN_NAME), routes()))
        .unwrap();
    assert_eq!(client.0, vec!["lo".to_string(), TUN_NAME.to_string()]);
    assert_eq!(client.1, lab.client_addrs().to_vec());
    assert_eq!(lab.client_addrs().len(), netlab::DEFAULT_CLIENT_ADDRS);
    assert_eq!(lab.client_addrs()[0], Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(
        client.2,
        vec![(Ipv4Addr::new(198, 18, 0, 0), 15, TUN_NAME.to_string())],
        "one route, the lab's range through the TUN device; no default route"
    );
    let server = lab
        .server()
        .netns()
        .run(|| (addresses(TUN_NAME), routes()))
        .unwrap();
    assert_eq!(server.0, vec![SERVER_ADDR]);
    assert_eq!(server.1, client.2);
    // Loopback is up on both sides (the server talks to itself over it).
    for side in [lab.client(), lab.server()] {
        let local = side
            .netns()
            .run(|| {
                let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                std::net::TcpStream::connect(listener.local_addr()?).map(|_| ())
            })
            .unwrap();
        assert!(local.is_ok(), "{}: {local:?}", side.name());
    }

    // The test's own namespace (the root one) gained nothing.
    assert!(!interfaces().contains(&TUN_NAME.to_string()));
    assert!(routes()
        .iter()
        .all(|(dest, _, _)| !(dest.octets()[0] == 198 && dest.octets()[1] & 0xfe == 18)));
}

#[test]
fn drop_removes_namespaces_and_devices() {
    let Some(lab) = lab("delay=1ms") else { return };
    let names = [
        lab.client().name().to_string(),
        lab.server().name().to_string(),
    ];
    // Hold the namespaces open past the lab, to look inside afterwards.
    let held: Vec<Netns> = names.iter().map(|n| Netns::open(n).unwrap()).collect();
    for ns in &held {
        assert!(ns.run(interfaces).unwrap().contains(&TUN_NAME.to_string()));
    }
    drop(lab);
    for (name, ns) in names.iter().zip(&held) {
        assert!(!exists(name), "{name} still in {NETNS_DIR}");
        assert!(!mounted(name), "{name} still mounted");
        assert_eq!(
            ns.run(interfaces).unwrap(),
            vec!["lo".to_string()],
            "{name}'s TUN device is gone"
        );
    }
}

#[test]
fn a_panic_with_the_lab_up_leaves_nothing() {
    if !supported() {
        return;
    }
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = names.clone();
    let outcome = std::thread::spawn(move || {
        let lab = lab("delay=1ms").unwrap();
        seen.lock().unwrap().push(lab.client().name().to_string());
        seen.lock().unwrap().push(lab.server().name().to_string());
        panic!("a test failing while its lab is up");
    })
    .join();
    assert!(outcome.is_err());
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 2);
    for name in names.iter() {
        assert!(!exists(name), "{name} survived the panic");
    }
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed_at_start_and_live_ones_kept() {
    if !supported() {
        return;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        assert!(
            !required(),
            "WORKBENCH_REQUIRE_NETLAB=1 but `ip` is missing (apt-get install -y iproute2)"
        );
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: `ip` not found (install: apt-get install -y iproute2)\n",
        );
        return;
    }
    // A pid that certainly ended, and one that is certainly alive (init).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("wbnet-{dead}-0-c");
    let live = format!("wbnet-1-{dead}-s");
    for name in [&stale, &live] {
        let status = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
    }
    let lab = lab("").unwrap();
    let stale_left = exists(&stale);
    let live_left = exists(&live);
    let _ = Command::new("ip").args(["netns", "del", &live]).status();
    drop(lab);
    assert!(!stale_left, "the dead run's {stale} was not removed");
    assert!(live_left, "the live process's {live} was removed");
}

#[test]
fn children_and_threads_run_inside_the_namespace() {
    let Some(lab) = lab("") else { return };
    let ns = lab.server().netns();
    let expected = format!("net:[{}]", fs::metadata(ns.path()).unwrap().ino());

    let mut std_child = Command::new("readlink");
    std_child.arg("/proc/self/ns/net");
    ns.configure_command(&mut std_child);
    let out = std_child.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut tokio_child = tokio::process::Command::new("readlink");
    tokio_child.arg("/proc/self/ns/net");
    ns.configure_tokio_command(&mut tokio_child);
    let out = runtime
        .block_on(async { tokio_child.output().await })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);

    // A thread inside, and a process it starts without any configuration.
    let thread = ns
        .spawn_thread("inside", || {
            let own = fs::read_link("/proc/thread-self/ns/net").unwrap();
            let child = Command::new("readlink")
                .arg("/proc/self/ns/net")
                .output()
                .unwrap();
            (
                own,
                String::from_utf8_lossy(&child.stdout).trim().to_string(),
            )
        })
        .unwrap();
    let (own, child) = thread.join().unwrap();
    assert_eq!(own.to_string_lossy(), expected);
    assert_eq!(child, expected);
    // The caller's thread never moved.
    assert_ne!(
        fs::read_link("/proc/thread-self/ns/net")
            .unwrap()
            .to_string_lossy(),
        expected
    );
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_sockets_from_every_client_address_reach_the_server() {
    let Some(lab) = lab("delay=2ms") else { return };
    let listener = server_listener(&lab);
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let target = listener.local_addr().unwrap();
    for &source in lab.client_addrs() {
        let socket = lab.client().sockets().tokio_tcp(&target).unwrap();
        socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
        let connecting = tokio::time::timeout(ms(5000), socket.connect(target));
        let (accepted, connected) = tokio::join!(listener.accept(), connecting);
        let (_, peer) = accepted.unwrap();
        connected.expect("connect within 5 s").unwrap();
        assert_eq!(peer.ip(), source);
    }
    // Many sockets in one trip.
    let batch = lab
        .client()
        .sockets()
        .sockets(socket2::Domain::IPV4, socket2::Type::STREAM, None, 100)
        .unwrap();
    assert_eq!(batch.len(), 100);
}

#[test]
fn bad_configurations_are_refused_before_anything_is_made() {
    let mut config = config("");
    config.client_addresses = 0;
    let err = netlab::Lab::with_config(config).unwrap_err().to_string();
    assert!(err.contains("client addresses"), "{err}");
    let mut config = support::config("");
    config.mtu = 100;
    let err = netlab::Lab::with_config(config).unwrap_err().to_string();
    assert!(err.contains("MTU"), "{err}");
}
