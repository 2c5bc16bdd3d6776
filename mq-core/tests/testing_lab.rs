//! mq_core::testing needs nothing but `sh`, coreutils and grep: a harness's
//! tests run on any developer machine or CI image, as a normal user, with no
//! sshd, procmail or QEMU. Checked by running a job, a busy board and a
//! cancel with PATH holding only those programs.
//!
//! This file holds one test: it sets its process's PATH.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mq_core::job::{Cancel, JobError, JobEvent, JobSpec};
use mq_core::testing::{Board, TestLab};
use mq_core::LockState;

/// A directory of links to sh, grep and every program of Debian's coreutils.
fn minimal_path(dir: &Path) -> Option<()> {
    let listed = Command::new("dpkg")
        .args(["-L", "coreutils"])
        .output()
        .ok()?;
    if !listed.status.success() {
        return mq_testkit::skip("no dpkg to list coreutils' programs (not Debian)");
    }
    let mut programs: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with("/usr/bin/") || l.starts_with("/bin/"))
        .map(str::to_string)
        .collect();
    programs.extend(["/bin/sh".to_string(), "/bin/grep".to_string()]);
    for program in programs {
        let path = Path::new(&program);
        let name = path.file_name().unwrap();
        if path.exists() && !dir.join(name).exists() {
            std::os::unix::fs::symlink(path, dir.join(name)).unwrap();
        }
    }
    Some(())
}

#[test]
fn a_harness_test_needs_only_sh_coreutils_and_grep() {
    let bin = tempfile::tempdir().unwrap();
    if minimal_path(bin.path()).is_none() {
        return;
    }
    for absent in ["lockfile", "pgrep", "ssh", "sshd", "qemu-system-x86_64"] {
        assert!(
            !bin.path().join(absent).exists(),
            "{absent} is not coreutils"
        );
    }
    // Before any thread of this test starts a program.
    std::env::set_var("PATH", bin.path());

    let lab = TestLab::builder()
        .board(
            "b1",
            Board::prints(["Booting", "All is well in the universe"]),
        )
        .board(
            "b2",
            Board::boots_then_hangs(["Booting"]).line_delay(Duration::from_millis(50)),
        )
        .pool("pool", &["b1", "b2"])
        .build();
    let queue = lab.queue();
    let spec = JobSpec {
        target: "b1".into(),
        files: vec![lab.image("image", b"image")],
        completion: Some("All is well in the.*".into()),
        timeout: Some(30),
        key: "minimal".into(),
        ..JobSpec::default()
    };
    // A job to its end: the lock taken by the scripts' own `lockfile`.
    let report = queue
        .run_job(&spec, None, &Cancel::new(), &mut |_| {})
        .unwrap();
    assert_eq!(report.exit_code, 0, "{report:?}");

    // A busy board: the wait sees the holder; a cancel ends the wait.
    let held = lab.hold("b1", "other");
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let mut saw_holder = false;
    let waiting = queue.run_job(&spec, None, &cancel, &mut |e| {
        if let JobEvent::Waiting { .. } = e {
            saw_holder = true;
            canceller.cancel();
        }
    });
    assert!(matches!(waiting, Err(JobError::Interrupted)), "{waiting:?}");
    assert!(saw_holder);
    drop(held);

    // A board that never finishes, to its timeout.
    let report = queue
        .run_job(
            &JobSpec {
                target: "b2".into(),
                timeout: Some(1),
                ..spec.clone()
            },
            None,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.exit_code, 4, "{report:?}");
    assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
    assert_eq!(lab.calls().len(), 2);
}
