//! Cleanup when destructors never run: a run killed outright, and a Ctrl-C
//! handler that exits at once. A file of its own because both act on every
//! namespace of a process, which would pull the rug from under the other
//! test files' labs if they shared this process.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use netlab::netns::NETNS_DIR;
use support::*;

const CHILD_VAR: &str = "NETLAB_TEST_CRASH_CHILD";

/// The two tests below must not overlap: one removes every namespace of
/// this process, including those the other is creating.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// In the child process (see below): start a lab, say its names, wait to
/// be killed. As a plain test run it does nothing.
#[test]
fn crash_child() {
    if std::env::var(CHILD_VAR).is_err() {
        return;
    }
    let lab = lab("delay=1ms").expect("the parent checked support");
    println!("NAMES {} {}", lab.client().name(), lab.server().name());
    std::thread::sleep(Duration::from_secs(30));
    panic!("the parent should have killed this process");
}

#[test]
fn a_killed_run_leaves_names_that_the_next_run_removes() {
    let _serial = one_at_a_time();
    if !supported() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let names: Vec<String> = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            // libtest prints `test crash_child ... ` before the test's output.
            let (_, rest) = line.split_once("NAMES ")?;
            Some(rest.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default();
    // SIGKILL: no destructor, no handler runs.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(names.len(), 2, "the child reported its namespaces");
    for name in &names {
        assert!(exists(name), "{name} should outlive the killed run");
    }
    let lab = lab("").unwrap();
    for name in &names {
        assert!(!exists(name), "{name} of the dead run was not removed");
    }
    drop(lab);
}

#[test]
fn remove_own_namespaces_is_what_a_ctrl_c_handler_calls() {
    let _serial = one_at_a_time();
    let Some(lab) = lab("") else { return };
    let names = [
        lab.client().name().to_string(),
        lab.server().name().to_string(),
    ];
    let removed = netlab::remove_own_namespaces().unwrap();
    for name in &names {
        assert!(removed.contains(name), "{removed:?}");
        assert!(!exists(name));
    }
    // The lab still works without its names, and dropping it afterwards
    // (removing what is already gone) is fine.
    let listener = server_listener(&lab);
    let (_, took) = connect(&lab, listener.local_addr().unwrap());
    assert!(took < Duration::from_secs(1));
    drop(lab);
}
