//! What the benches share: their start, the median, the floor.

#![allow(dead_code)] // each bench uses its own part of it

use std::process::Command;

use mq_testkit::LabHost;

/// The middle sample.
pub fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    samples.sort();
    samples[samples.len() / 2]
}

/// A lab host with `users` throwaway users, when run as a bench (`cargo
/// bench`, not `cargo test`) where there can be one.
pub fn lab(users: usize) -> Option<LabHost> {
    if !std::env::args().any(|a| a == "--bench") {
        return None;
    }
    let lab = LabHost::start(users);
    if lab.is_none() {
        eprintln!("nothing measured: needs root and sshd");
    }
    lab
}

/// The floor: a bare OpenSSH `ssh HOST true` as `user`.
pub fn floor_command(lab: &LabHost, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F").arg(lab.config_for(user)).args(["lab", "true"]);
    c
}
