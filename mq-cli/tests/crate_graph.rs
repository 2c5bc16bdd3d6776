//! The crate graph keeps its word: each crate's rules (the "may depend on"
//! paragraph of its `lib.rs`, and ARCHITECTURE.md) as the dependencies
//! `cargo metadata` reports between the workspace's crates. A new edge is a
//! decision: make it here, in the crate's docs and in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};

/// Each crate and the workspace crates it may use at run time (normal
/// dependencies; tests and benches may use more).
const ALLOWED: [(&str, &[&str]); 8] = [
    ("mq-shell", &[]),
    ("mq-transport", &["mq-shell"]),
    ("mq-lock", &["mq-transport"]),
    ("mq-console", &[]),
    ("mq-core", &["mq-console", "mq-lock", "mq-transport"]),
    ("mq-lab", &["mq-console", "mq-shell"]),
    ("mq-cli", &["mq-core", "mq-lab"]),
    ("mq-testkit", &[]),
];

#[test]
fn each_crate_depends_on_what_its_rules_allow_and_nothing_more() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = mq_testkit::sh(
        &cargo,
        &[
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--no-deps",
        ],
    );
    let meta: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ours: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let edges = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|d| ours.contains(d))
            .collect();
        found.insert(name.to_string(), edges);
    }
    let allowed: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(found, allowed, "the crate graph changed");
}

#[test]
fn the_lab_side_links_no_ssh_and_no_lock_protocol() {
    // What mq-lab pulls in at run time, all the way down.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = mq_testkit::sh(
        &cargo,
        &[
            "tree",
            "--offline",
            "-p",
            "mq-lab",
            "-e",
            "normal",
            "--prefix",
            "none",
        ],
    );
    for crate_name in [
        "ssh2",
        "libssh2-sys",
        "openssl-sys",
        "mq-lock",
        "mq-core",
        "mq-transport",
    ] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{crate_name} "))),
            "mq-lab pulls in {crate_name}:\n{tree}"
        );
    }
}
