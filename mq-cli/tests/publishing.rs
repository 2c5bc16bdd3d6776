//! The crates are ready to publish: the declared `rust-version` holds (no
//! dependency a user of the crates gets asks for a newer Rust; mq's own code
//! is held to it by clippy's `incompatible_msrv` lint, which reads the same
//! field, in `cargo clippy -- -D warnings`), and each package holds its
//! sources, README and needed data only.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

fn version(text: &str) -> Vec<u32> {
    text.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[test]
fn no_dependency_needs_a_newer_rust_than_declared() {
    // cargo finds the workspace from the package's directory.
    let out = mq_testkit::cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--filter-platform",
        "x86_64-unknown-linux-gnu",
    ]);
    let meta: Value = serde_json::from_str(&out).unwrap();
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let ours: Vec<&Value> = packages
        .values()
        .filter(|p| p["source"].is_null() && p["publish"] != serde_json::json!([]))
        .copied()
        .collect();
    let declared = ours
        .iter()
        .find(|p| p["name"] == "mq-core")
        .and_then(|p| p["rust_version"].as_str())
        .expect("mq-core declares rust-version");
    for p in &ours {
        if p["name"] != "mq-testkit" {
            assert_eq!(p["rust_version"].as_str(), Some(declared), "{}", p["name"]);
        }
    }
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = ours
        .iter()
        .filter(|p| !matches!(p["name"].as_str(), Some("mq-testkit")))
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(stack.len() >= 6, "the library crates and the CLI");
    let mut too_new = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        if let Some(needs) = package["rust_version"].as_str() {
            if version(needs) > version(declared) {
                too_new.push(format!(
                    "{} {} needs {needs}",
                    package["name"], package["version"]
                ));
            }
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let shipped = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if shipped {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    assert!(seen.len() > 20, "the walk reached the dependencies");
    assert!(
        too_new.is_empty(),
        "rust-version {declared} is too old: {too_new:?}"
    );
}

#[test]
fn packages_hold_sources_readme_and_needed_data_only() {
    for (krate, data) in [
        ("mq-shell", &[][..]),
        ("mq-transport", &[]),
        ("mq-lock", &[]),
        ("mq-console", &[]),
        ("mq-core", &["data/systems.tsv", "data/pools.tsv"]),
        ("mq-lab", &[]),
        ("mq-cli", &[]),
    ] {
        let list = mq_testkit::cargo(&["package", "--list", "--allow-dirty", "-p", krate]);
        let files: Vec<&str> = list.lines().collect();
        for needed in ["Cargo.toml", "README.md", "src/lib.rs"] {
            let needed = if krate == "mq-cli" && needed == "src/lib.rs" {
                "src/main.rs"
            } else {
                needed
            };
            assert!(files.contains(&needed), "{krate} lacks {needed}: {files:?}");
        }
        for file in &files {
            let expected = file.starts_with("src/")
                || data.contains(file)
                || matches!(
                    *file,
                    "Cargo.toml"
                        | "Cargo.toml.orig"
                        | "Cargo.lock"
                        | "README.md"
                        | ".cargo_vcs_info.json"
                );
            assert!(expected, "{krate} would publish {file}");
        }
    }
}
