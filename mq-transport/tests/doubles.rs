//! The transports for tests: fault injection around a real transport, and the
//! scripted mock.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mq_transport::fault::FaultTransport;
use mq_transport::mock::{Call, MockTransport};
use mq_transport::{ExitStatus, LocalTransport, PtySize, ReadOutcome, Transport};

#[test]
fn fails_the_nth_operation_only() {
    let t = FaultTransport::new(LocalTransport::new());
    t.fail_operation(3);
    assert!(t.run("true").is_ok());
    assert!(t.run("true").is_ok());
    let err = t.run("true").unwrap_err();
    assert!(err.is_connection_lost());
    assert!(err.to_string().contains("operation 3"));
    assert!(t.run("true").is_ok());
    assert_eq!(t.operations(), 4);
}

#[test]
fn cuts_a_console_mid_stream_and_stays_cut_until_healed() {
    let t = FaultTransport::new(LocalTransport::new());
    t.cut_after_bytes(1000);
    let mut p = t
        .spawn_pty(
            "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done; sleep 5",
            PtySize::default(),
        )
        .unwrap();
    let mut buf = [0u8; 64];
    let mut got = 0;
    let err = loop {
        match p.read(&mut buf, Some(Duration::from_secs(5))) {
            Ok(ReadOutcome::Data(n)) => got += n,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(err.is_connection_lost());
    assert_eq!(got, 1000, "exactly the bytes before the cut got through");
    assert!(t.run("true").unwrap_err().is_connection_lost());
    t.heal();
    assert!(t.run("true").is_ok());
}

#[test]
fn cuts_an_upload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, vec![1u8; 2 << 20]).unwrap();
    let t = FaultTransport::new(LocalTransport::new());
    t.cut_after_bytes(100_000);
    let dest = dir.path().join("g");
    let err = t
        .upload(&file, dest.to_str().unwrap(), &mut |_, _| true)
        .unwrap_err();
    assert!(err.is_connection_lost());
}

#[test]
fn adds_latency() {
    let t = FaultTransport::new(LocalTransport::new());
    t.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    t.run("true").unwrap();
    t.run("true").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn mock_records_and_answers_from_its_script() {
    let m = MockTransport::new("ci");
    m.answer("whoami", "ci\n", 0).answer("false", "", 1);
    assert_eq!(m.run("whoami").unwrap().stdout, b"ci\n");
    assert_eq!(m.run("x; false").unwrap().status, ExitStatus::Code(1));
    let unscripted = m.run("reboot").unwrap();
    assert_eq!(unscripted.status, ExitStatus::Code(127));
    assert!(unscripted
        .stderr_text()
        .contains("nothing scripted for: reboot"));

    m.answer("/tftpboot/sabre/reboot", "booting\nAll is well\n", 0);
    let mut out = Vec::new();
    let status = m
        .run_pty("stty isig; /tftpboot/sabre/reboot -c x", &mut out, None)
        .unwrap();
    assert!(status.success());
    assert_eq!(out, b"booting\nAll is well\n");

    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("image");
    std::fs::write(&local, b"elf").unwrap();
    m.upload(&local, "/tmp/remote-image", &mut |_, _| true)
        .unwrap();
    m.answer("/tmp/log", "console log", 0);
    let back = dir.path().join("log");
    m.download("/tmp/log", &back, &mut |_, _| true).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"console log");

    assert_eq!(
        m.commands(),
        [
            "whoami",
            "x; false",
            "reboot",
            "stty isig; /tftpboot/sabre/reboot -c x"
        ]
    );
    assert_eq!(
        m.calls()[4],
        Call::Upload {
            local: local.clone(),
            remote: "/tmp/remote-image".into()
        }
    );
    assert_eq!(
        m.calls()[5],
        Call::Download {
            remote: "/tmp/log".into(),
            local: PathBuf::from(&back)
        }
    );
}

#[test]
fn mock_answers_can_be_used_up() {
    let m = MockTransport::new("ci");
    m.answer_with(
        "lockfile",
        mq_transport::Output {
            status: ExitStatus::Code(73),
            stdout: Vec::new(),
            stderr: Vec::new(),
        },
        Some(1),
    );
    m.answer("lockfile", "", 0);
    assert_eq!(m.run("lockfile a").unwrap().status.code(), Some(73));
    assert_eq!(m.run("lockfile a").unwrap().status.code(), Some(0));
}
