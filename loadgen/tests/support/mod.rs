//! Shared by the load generator's tests that need the link emulator.

use std::io::Write as _;

/// Whether links can be emulated here (root, `/dev/net/tun`); when not,
/// prints a loud `SKIPPED` for `test` and returns false, or fails when
/// `WORKBENCH_REQUIRE_NETLAB=1` says the test must run.
pub fn netlab_or_skip(test: &str) -> bool {
    let Err(e) = netlab::check_support() else {
        return true;
    };
    if std::env::var("WORKBENCH_REQUIRE_NETLAB").as_deref() == Ok("1") {
        panic!("{test}: WORKBENCH_REQUIRE_NETLAB=1 but the link emulator cannot run: {e}");
    }
    // Straight to stderr: the harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\nSKIPPED: {test}: the link emulator cannot run here: {e} (run the tests as root on a kernel with /dev/net/tun)\n********\n"
    );
    false
}
