//! Checks, before touching anything, that this process can build a lab, so
//! a missing privilege is one clear message instead of a failed mount.

use std::fs::OpenOptions;

use caps::{CapSet, Capability};

use crate::error::NetlabError;

const TUN_PATH: &str = "/dev/net/tun";

/// `Ok` when this process can create namespaces and TUN devices. Tests call
/// it to decide whether to skip; [`crate::Lab::start`] calls it first.
pub fn check_support() -> Result<(), NetlabError> {
    let mut missing = Vec::new();
    for (cap, name) in [
        (Capability::CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (Capability::CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ] {
        match caps::has_cap(None, CapSet::Effective, cap) {
            Ok(true) => {}
            Ok(false) => missing.push(name.to_string()),
            Err(e) => missing.push(format!("{name} (cannot read capabilities: {e})")),
        }
    }
    if !missing.is_empty() {
        return Err(NetlabError::NotPrivileged {
            missing: format!("{} missing", missing.join(" and ")),
        });
    }
    // Opening the clone device without TUNSETIFF creates nothing.
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_PATH)
        .map_err(|source| NetlabError::NoTun {
            path: TUN_PATH,
            source,
        })?;
    Ok(())
}
