//! Golden files of every script mq assembles for a lab host, in each shape,
//! exactly as sent (`mq-core/tests/golden/*.sh.golden`: data, not code): a change to the remote
//! protocol shows in review as a diff of the text the host runs.
//!
//! `MQ_UPDATE_GOLDEN=1 cargo test -p mq-core --lib golden` writes them
//! afresh; without it, any difference fails the test with the file's name.
//! Values that differ per run (a lab's temporary path, the end mark's
//! nonce) are replaced by fixed words first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mq_lock::{AcquireOptions, LockClient};
use mq_transport::mock::MockTransport;

use crate::health::{self, Change, Health, State};
use crate::job::JobSpec;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The lock client's scripts: each operation's commands, as a mock host
/// records them (its answers are empty, so an operation may stop early;
/// what it sent first is what matters).
fn lock_scripts() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut record = |name: &'static str, f: &dyn Fn(&LockClient<Arc<MockTransport>>)| {
        let host = Arc::new(MockTransport::new("alice"));
        let client = LockClient::new(Arc::clone(&host), "/var/cache/machinelocks");
        f(&client);
        out.push((name, host.commands().join("\n### next command\n")));
    };
    record("lock-info", &|c| {
        let _ = c.info("sabre");
    });
    record("lock-info-many", &|c| {
        let _ = c.info_many(&["sabre", "haswell3"]);
    });
    record("lock-line", &|c| {
        let _ = c.line(&["sabre"]);
    });
    record("lock-dump-all", &|c| {
        let _ = c.dump_all();
    });
    record("lock-release", &|c| {
        let _ = c.release("sabre", "ci-1", false);
    });
    record("lock-release-forced", &|c| {
        let _ = c.release("sabre", "0", true);
    });
    record("lock-cancel", &|c| {
        let _ = c.cancel("sabre", "ci-1");
    });
    record("lock-cleanup", &|c| {
        let _ = c.cleanup("ci-1", &["sabre", "haswell3"]);
    });
    record("lock-acquire", &|c| {
        let options = AcquireOptions {
            key: "ci-1".into(),
            retries: 0,
            reclaim_timeout: Some(900),
            ..AcquireOptions::default()
        };
        let _ = c.acquire("sabre", &options, &mut |_| {});
    });
    out
}

/// The health scripts, with fixed values.
fn health_scripts() -> Vec<(&'static str, String)> {
    let health = Health {
        state: State::Maintenance,
        reason: "new PSU".into(),
        by: "alice".into(),
        since: "2026-12-06T12:00:00Z".into(),
        ..Health::good("sabre")
    };
    let change = Change {
        at: health.since.clone(),
        system: "sabre".into(),
        from: "good".into(),
        to: "maintenance".into(),
        by: "alice".into(),
        reason: "new PSU".into(),
        run: String::new(),
    };
    vec![
        (
            "health-read",
            health::read_script("/var/cache/machinelocks", &["sabre", "haswell3"]),
        ),
        ("health-set", health::set_script(&health, &change)),
        (
            "health-update",
            health::update_script(
                "sabre",
                "\"$mq_d\"/log",
                "ci-1",
                Some("All is well"),
                Some("FAILED"),
            ),
        ),
        (
            "health-precheck",
            health::precheck_script("/var/cache/machinelocks", "sabre"),
        ),
        ("health-log", health::log_script()),
        ("status", crate::status::script("/var/cache/machinelocks")),
    ]
}

/// A run's plan (receive, guard, invocation, finish) in its shapes.
fn job_scripts() -> Vec<(&'static str, String)> {
    let lab = crate::testing::TestLab::new();
    let queue = lab.queue();
    let system = queue.inventory().system("board1").unwrap().clone();
    let mut out = Vec::new();
    for (name, log, reuse, keep_alive) in [
        ("run", true, false, false),
        ("run-held-keep-alive", false, true, true),
    ] {
        let spec = JobSpec {
            target: "board1".into(),
            files: vec![lab.image("kernel", b"k")],
            completion: Some("All is well".into()),
            error: Some("FAILED".into()),
            timeout: Some(60),
            log: log.then(|| lab.path().join("log")),
            reuse_held_lock: reuse,
            keep_alive,
            key: "ci-1".into(),
            ..JobSpec::default()
        };
        let plan = queue.plan(&spec, &system).unwrap().unwrap();
        let text = plan
            .script
            .replace(&lab.path().display().to_string(), "/LAB")
            .replace(&lab.config().base.value, "/LAB/base");
        out.push((name, text));
    }
    out
}

/// `MQ-END-` and its 16 hex digits: a nonce per run.
fn fixed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("MQ-END-") {
        out.push_str(&rest[..at]);
        out.push_str("MQ-END-NONCE");
        let after = &rest[at + "MQ-END-".len()..];
        let hex = after
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(after.len());
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_script_sent_to_a_lab_host_is_its_golden_file() {
    let update = std::env::var_os("MQ_UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    let mut differ = Vec::new();
    let all: Vec<(&str, String)> = lock_scripts()
        .into_iter()
        .chain(health_scripts())
        .chain(job_scripts())
        .collect();
    for (name, text) in &all {
        let path = dir.join(format!("{name}.sh.golden"));
        let text = fixed(text) + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            differ.push(path.display().to_string());
        }
    }
    assert!(
        differ.is_empty(),
        "these scripts changed; review and regenerate with MQ_UPDATE_GOLDEN=1: {differ:?}"
    );
    // Every golden file is one the test makes (none left from an old shape).
    let names: Vec<String> = all.iter().map(|(n, _)| format!("{n}.sh.golden")).collect();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(&file),
            "{file} is made by no test: remove it"
        );
    }
}
