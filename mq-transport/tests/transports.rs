//! The same trait tests against every transport: local, SSH (libssh2) to a
//! real sshd on 127.0.0.1, OpenSSH through its ControlMaster, and SSH wrapped
//! in the fault injector with no faults set.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mq_testkit::{eventually, processes_matching, SshServer};
use mq_transport::fault::FaultTransport;
use mq_transport::{
    quote, ExitStatus, LocalTransport, OpensshOptions, OpensshTransport, PtySize, ReadOutcome,
    SshOptions, SshTransport, Transport,
};
use sha2::{Digest, Sha256};

/// A transport under test and whatever must live as long as it.
struct Fixture {
    transport: Box<dyn Transport>,
    _server: Option<SshServer>,
    dir: tempfile::TempDir,
    /// OpenSSH reports a remote death by signal as its own failure (255).
    reports_signals: bool,
}

fn local() -> Option<Fixture> {
    Some(Fixture {
        transport: Box::new(LocalTransport::new()),
        _server: None,
        dir: tempfile::tempdir().unwrap(),
        reports_signals: true,
    })
}

fn ssh() -> Option<Fixture> {
    let server = SshServer::start()?;
    let config = server.write_config("lab");
    let transport = SshTransport::connect(&SshOptions::new("lab").config_file(config)).unwrap();
    Some(Fixture {
        transport: Box::new(transport),
        _server: Some(server),
        dir: tempfile::tempdir().unwrap(),
        reports_signals: true,
    })
}

fn fault_free() -> Option<Fixture> {
    let mut fixture = ssh()?;
    let transport = std::mem::replace(&mut fixture.transport, Box::new(LocalTransport::new()));
    fixture.transport = Box::new(FaultTransport::new(transport));
    Some(fixture)
}

/// Ends the OpenSSH master when the test ends.
struct Master(OpensshTransport);

impl Transport for Master {
    fn run(&self, command: &str) -> mq_transport::Result<mq_transport::Output> {
        self.0.run(command)
    }
    fn spawn_pty(
        &self,
        command: &str,
        size: PtySize,
    ) -> mq_transport::Result<Box<dyn mq_transport::PtyProcess>> {
        self.0.spawn_pty(command, size)
    }
    fn upload(
        &self,
        l: &Path,
        r: &str,
        p: &mut dyn FnMut(u64, u64) -> bool,
    ) -> mq_transport::Result<()> {
        self.0.upload(l, r, p)
    }
    fn download(
        &self,
        r: &str,
        l: &Path,
        p: &mut dyn FnMut(u64, u64) -> bool,
    ) -> mq_transport::Result<()> {
        self.0.download(r, l, p)
    }
    fn user(&self) -> &str {
        self.0.user()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.0.close_master();
    }
}

fn openssh() -> Option<Fixture> {
    let server = SshServer::start()?;
    let config = server.write_config("lab");
    let mut options = OpensshOptions::new("lab");
    options.config_file = Some(config);
    options.control_dir = server.dir.path().join("cm");
    let transport = OpensshTransport::connect(options).unwrap();
    Some(Fixture {
        transport: Box::new(Master(transport)),
        _server: Some(server),
        dir: tempfile::tempdir().unwrap(),
        reports_signals: false,
    })
}

fn sha256_file(path: &Path) -> String {
    let data = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(&data))
}

fn exit_statuses(f: &Fixture) {
    let t = &f.transport;
    assert_eq!(t.run("true").unwrap().status, ExitStatus::Code(0));
    assert_eq!(t.run("exit 3").unwrap().status, ExitStatus::Code(3));
    let out = t.run("echo out; echo err >&2; exit 1").unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(1));
    if f.reports_signals {
        let out = t.run("kill -TERM $$").unwrap();
        assert_eq!(out.status, ExitStatus::Signal("TERM".into()));
    }
    assert_eq!(t.user(), mq_testkit::current_user());
    assert!(!t.describe().is_empty());
}

fn quoting(f: &Fixture) {
    for value in [
        "plain",
        "two words",
        "it's",
        "\"double\" 'single'",
        "$(touch /tmp/mq-transport-pwned)",
        "`touch /tmp/mq-transport-pwned`",
        "a; touch /tmp/mq-transport-pwned",
        "line1\nline2\n\n",
        "tab\tand\\backslash",
        "-e",
        "",
    ] {
        let out = f
            .transport
            .run(&format!("printf '%s' {}", quote(value)))
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
    }
    assert!(!Path::new("/tmp/mq-transport-pwned").exists());
}

fn big_and_binary_files(f: &Fixture) {
    let t = &f.transport;
    // Every byte value, many times over, and 64 MiB of pseudo-random data.
    let every: Vec<u8> = (0..=255u8).cycle().take(256 * 1024 + 17).collect();
    let small = f.dir.path().join("every-byte");
    std::fs::write(&small, &every).unwrap();
    let big = f.dir.path().join("big");
    let mut file = std::fs::File::create(&big).unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..64 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        file.write_all(&block).unwrap();
    }
    drop(file);

    let remote_dir = tempfile::tempdir().unwrap();
    for local in [&small, &big] {
        let remote = remote_dir.path().join("uploaded");
        let remote = remote.to_str().unwrap();
        let mut calls = 0;
        let mut last = (0, 0);
        t.upload(local, remote, &mut |done, total| {
            calls += 1;
            last = (done, total);
            true
        })
        .unwrap();
        let size = std::fs::metadata(local).unwrap().len();
        assert_eq!(last, (size, size));
        assert!(calls >= 2);
        let remote_sum = t
            .run(&format!("sha256sum {}", quote(remote)))
            .unwrap()
            .stdout_text();
        assert_eq!(
            remote_sum.split_whitespace().next().unwrap(),
            sha256_file(local)
        );

        let back = f.dir.path().join("downloaded");
        let mut last = (0, 0);
        t.download(remote, &back, &mut |done, total| {
            last = (done, total);
            true
        })
        .unwrap();
        assert_eq!(last, (size, size));
        assert_eq!(sha256_file(&back), sha256_file(local));
    }
    // A progress callback that says stop cancels the copy mid-way, and the
    // connection stays usable.
    let remote = remote_dir.path().join("cancelled");
    let mut seen = 0;
    let err = t
        .upload(&big, remote.to_str().unwrap(), &mut |done, _| {
            seen = done;
            done < 2 << 20
        })
        .unwrap_err();
    assert!(
        matches!(err, mq_transport::TransportError::Cancelled { .. }),
        "{err}"
    );
    assert!(seen < 8 << 20, "stopped early, after {seen} bytes");
    let back = f.dir.path().join("cancelled-download");
    let uploaded = remote_dir.path().join("uploaded");
    let err = t
        .download(uploaded.to_str().unwrap(), &back, &mut |done, _| {
            done < 1 << 20
        })
        .unwrap_err();
    assert!(
        matches!(err, mq_transport::TransportError::Cancelled { .. }),
        "{err}"
    );
    assert!(
        t.run("true").unwrap().status.success(),
        "the connection is still usable"
    );
    // Binary-safe capture of stdout.
    let remote = remote_dir.path().join("uploaded-small");
    t.upload(&small, remote.to_str().unwrap(), &mut |_, _| true)
        .unwrap();
    let out = t
        .run(&format!("cat {}", quote(remote.to_str().unwrap())))
        .unwrap();
    assert!(out.stdout == every);

    let missing = t.download(
        "/nonexistent/mq-file",
        &f.dir.path().join("x"),
        &mut |_, _| true,
    );
    let message = missing.unwrap_err().to_string();
    assert!(message.contains("/nonexistent/mq-file"), "{message}");
    let bad = t.upload(&small, "/nonexistent/dir/file", &mut |_, _| true);
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("/nonexistent/dir/file"));
}

fn pty_streams_before_the_command_ends(f: &Fixture) {
    let mut p = f
        .transport
        .spawn_pty("echo first; sleep 3; echo second", PtySize::default())
        .unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("first") {
        match p.read(&mut buf, Some(Duration::from_secs(5))).unwrap() {
            ReadOutcome::Data(n) => seen.extend_from_slice(&buf[..n]),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "output arrived before the end"
    );
    // A read with a short timeout returns in time while the command sleeps.
    let t0 = Instant::now();
    assert_eq!(
        p.read(&mut buf, Some(Duration::from_millis(200))).unwrap(),
        ReadOutcome::TimedOut
    );
    assert!(t0.elapsed() < Duration::from_millis(800));
    loop {
        match p.read(&mut buf, Some(Duration::from_secs(10))).unwrap() {
            ReadOutcome::Data(n) => seen.extend_from_slice(&buf[..n]),
            ReadOutcome::Eof => break,
            ReadOutcome::TimedOut => panic!("no EOF"),
        }
    }
    assert!(String::from_utf8_lossy(&seen).contains("second"));
    assert_eq!(p.wait().unwrap(), ExitStatus::Code(0));

    let mut out = Vec::new();
    let status = f.transport.run_pty("exit 7", &mut out, None).unwrap();
    assert_eq!(status, ExitStatus::Code(7));
}

fn pty_forwards_input(f: &Fixture) {
    let mut out = Vec::new();
    let (typed, input) = std::sync::mpsc::channel();
    typed.send(b"hello board\n".to_vec()).unwrap();
    drop(typed);
    let status = f
        .transport
        .run_pty(
            "stty -echo; read line; echo \"got:$line\"",
            &mut out,
            Some(input),
        )
        .unwrap();
    assert!(status.success());
    assert!(
        String::from_utf8_lossy(&out).contains("got:hello board"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

fn remote_process_dies_with_the_channel(f: &Fixture, tag: u32) {
    let marker = format!("{}", 424200 + tag);
    let mut p = f
        .transport
        .spawn_pty(&format!("exec sleep {marker}"), PtySize::default())
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !processes_matching(&format!(
            "sleep {marker}"
        ))
        .is_empty()),
        "the command started"
    );
    p.hangup().unwrap();
    drop(p);
    assert!(
        eventually(Duration::from_secs(5), || processes_matching(&format!(
            "sleep {marker}"
        ))
        .is_empty()),
        "the remote command outlived its channel"
    );
}

macro_rules! trait_suite {
    ($($name:ident: $make:expr, $tag:expr;)*) => {$(
        mod $name {
            use super::*;
            fn fixture() -> Option<Fixture> {
                $make
            }
            #[test]
            fn exit_status_stdout_and_stderr() {
                let Some(f) = fixture() else { return };
                exit_statuses(&f);
            }
            #[test]
            fn hostile_values_arrive_byte_identical() {
                let Some(f) = fixture() else { return };
                quoting(&f);
            }
            #[test]
            fn files_up_and_down_64mib_and_every_byte() {
                let Some(f) = fixture() else { return };
                big_and_binary_files(&f);
            }
            #[test]
            fn pty_output_streams() {
                let Some(f) = fixture() else { return };
                pty_streams_before_the_command_ends(&f);
            }
            #[test]
            fn pty_stdin_is_forwarded() {
                let Some(f) = fixture() else { return };
                pty_forwards_input(&f);
            }
            #[test]
            fn no_orphans_when_the_channel_closes() {
                let Some(f) = fixture() else { return };
                remote_process_dies_with_the_channel(&f, $tag);
            }
        }
    )*};
}

trait_suite! {
    local_transport: local(), 1;
    ssh_transport: ssh(), 2;
    openssh_transport: openssh(), 3;
    fault_transport_without_faults: fault_free(), 4;
}
