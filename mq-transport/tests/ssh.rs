//! SshTransport against real sshd servers: configuration, jump hosts, proxy
//! commands, the agent, host keys, authentication failures, timeouts and
//! connections that die.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mq_testkit::{descendants_of, keygen_with, ServerOptions, SshServer};
use mq_transport::{PtySize, ReadOutcome, SshOptions, SshTransport, Transport, TransportError};
use nix::sys::signal::Signal;

/// Options that read only `config` and use no agent, with HOME in `home`.
fn options(dest: &str, config: &Path, home: &Path) -> SshOptions {
    let mut o = SshOptions::new(dest).config_file(config).agent(None);
    o.home = home.to_path_buf();
    o
}

fn write(path: &Path, text: &str) -> PathBuf {
    fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn connect(dest: &str, config: &Path, home: &Path) -> Result<SshTransport, TransportError> {
    SshTransport::connect(&options(dest, config, home))
}

fn host_fingerprint(server: &SshServer) -> String {
    let out = mq_testkit::sh(
        "ssh-keygen",
        &[
            "-lf",
            server.dir.path().join("host_ed25519.pub").to_str().unwrap(),
        ],
    );
    out.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn proxy_jump_through_one_and_two_hops() {
    let jump_options = ServerOptions {
        extra_config: vec!["LogLevel DEBUG1".into()],
    };
    let Some(jump1) = SshServer::start_with(jump_options.clone()) else {
        return;
    };
    let Some(jump2) = SshServer::start_with(jump_options) else {
        return;
    };
    let Some(target) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut text = String::new();
    text.push_str(&jump1.config_block("jump1"));
    text.push_str(&jump2.config_block("jump2"));
    text.push_str(&target.config_block("one-hop"));
    text.push_str("  ProxyJump jump1\n");
    text.push_str(&target.config_block("two-hops"));
    text.push_str("  ProxyJump jump1,jump2\n");
    let config = write(&home.path().join("config"), &text);

    let t = connect("one-hop", &config, home.path()).unwrap();
    assert_eq!(t.run("echo via-jump").unwrap().stdout, b"via-jump\n");
    let to_target = format!("127.0.0.1 port {}", target.port);
    assert!(
        jump1.log().contains("direct-tcpip") && jump1.log().contains(&to_target),
        "jump1 forwarded to the target: {}",
        jump1.log()
    );
    drop(t);

    let t = connect("two-hops", &config, home.path()).unwrap();
    let out = t.run("printf %s two-hops").unwrap();
    assert_eq!(out.stdout, b"two-hops");
    let to_jump2 = format!("127.0.0.1 port {}", jump2.port);
    assert!(jump1.log().contains(&to_jump2), "jump1 forwarded to jump2");
    assert!(
        jump2.log().contains(&to_target),
        "jump2 forwarded to the target"
    );
    // A pty and a file copy through two tunnels.
    let mut out = Vec::new();
    assert!(t.run_pty("echo console", &mut out, None).unwrap().success());
    assert!(String::from_utf8_lossy(&out).contains("console"));
    let file = home.path().join("payload");
    fs::write(&file, vec![7u8; 3 << 20]).unwrap();
    let remote = home.path().join("payload.remote");
    t.upload(&file, remote.to_str().unwrap(), &mut |_, _| true)
        .unwrap();
    assert_eq!(fs::read(&remote).unwrap().len(), 3 << 20);
}

#[test]
fn proxy_command_with_tokens() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let text = format!(
        "{}  ProxyCommand bash -c 'exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3'\n",
        server.config_block("proxied")
    );
    let config = write(&home.path().join("config"), &text);
    let t = connect("proxied", &config, home.path()).unwrap();
    assert_eq!(t.run("echo proxied").unwrap().stdout, b"proxied\n");
}

#[test]
fn agent_identities_are_used_first() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // A key only the agent holds: its file is gone once added.
    let key = home.path().join("agent_key");
    let public = keygen_with(&key, "ed25519", "");
    server.authorize(&server.user, &public);
    let socket = home.path().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    assert!(mq_testkit::eventually(Duration::from_secs(5), || socket.exists()));
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    fs::remove_file(&key).unwrap();

    let text = format!(
        "Host lab\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
        server.port,
        server.user,
        server.known_hosts.display()
    );
    let config = write(&home.path().join("config"), &text);
    let options = options("lab", &config, home.path()).agent(Some(socket.clone()));
    let t = SshTransport::connect(&options).unwrap();
    assert_eq!(t.run("echo agent").unwrap().stdout, b"agent\n");

    // Without the agent the same configuration has nothing to offer.
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(matches!(err, TransportError::AuthFailed { .. }), "{err}");
}

#[test]
fn encrypted_key_without_agent_names_the_key() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("locked_key");
    let public = keygen_with(&key, "ed25519", "secret passphrase");
    server.authorize(&server.user, &public);
    let text = server.config_block("lab").replace(
        &server.user_key.display().to_string(),
        &key.display().to_string(),
    );
    let config = write(&home.path().join("config"), &text);
    let err = connect("lab", &config, home.path()).unwrap_err();
    match &err {
        TransportError::EncryptedKey { path } => assert_eq!(path, &key),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("locked_key"));
    assert!(err.to_string().contains("ssh-add"));
}

#[test]
fn wrong_key_is_refused_clearly() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("stranger");
    keygen_with(&key, "ed25519", "");
    let text = server.config_block("lab").replace(
        &server.user_key.display().to_string(),
        &key.display().to_string(),
    );
    let config = write(&home.path().join("config"), &text);
    let err = connect("lab", &config, home.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, TransportError::AuthFailed { .. }));
    assert!(
        message.starts_with(&format!("permission denied for {}@127.0.0.1", server.user)),
        "{message}"
    );
    assert!(message.contains("stranger"), "{message}");
}

#[test]
fn unknown_host_is_refused_under_yes_and_ask() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let empty = write(&home.path().join("known_hosts"), "");
    for policy in ["yes", "ask"] {
        let text = server
            .config_block("lab")
            .replace(
                &server.known_hosts.display().to_string(),
                &empty.display().to_string(),
            )
            .replace(
                "StrictHostKeyChecking yes",
                &format!("StrictHostKeyChecking {policy}"),
            );
        let config = write(&home.path().join("config"), &text);
        let err = connect("lab", &config, home.path()).unwrap_err();
        let message = err.to_string();
        match &err {
            TransportError::UnknownHostKey {
                host,
                key_type,
                fingerprint,
                known_hosts,
                ..
            } => {
                assert_eq!(host, &format!("[127.0.0.1]:{}", server.port));
                assert_eq!(key_type, "ssh-ed25519");
                assert_eq!(fingerprint, &host_fingerprint(&server));
                assert_eq!(known_hosts, &empty);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(message.contains(&host_fingerprint(&server)));
        assert!(message.contains(&empty.display().to_string()));
    }
    assert_eq!(fs::read_to_string(&empty).unwrap(), "", "nothing recorded");
}

#[test]
fn accept_new_records_the_host_then_yes_accepts_it() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let known = home.path().join("fresh_known_hosts");
    let text = server.config_block("lab").replace(
        &server.known_hosts.display().to_string(),
        &known.display().to_string(),
    );
    let accept_new = write(
        &home.path().join("config-new"),
        &text.replace(
            "StrictHostKeyChecking yes",
            "StrictHostKeyChecking accept-new",
        ),
    );
    let t = connect("lab", &accept_new, home.path()).unwrap();
    assert!(t.run("true").unwrap().status.success());
    let recorded = fs::read_to_string(&known).unwrap();
    assert_eq!(
        recorded.trim(),
        format!(
            "[127.0.0.1]:{} {}",
            server.port,
            server
                .host_key
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        )
    );
    // OpenSSH itself accepts what we recorded.
    let strict = write(&home.path().join("config-yes"), &text);
    let out = Command::new("ssh")
        .args(["-F", strict.to_str().unwrap(), "lab", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(connect("lab", &strict, home.path()).is_ok());
}

#[test]
fn hashed_known_hosts_entries_are_recognised() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let known = home.path().join("hashed");
    fs::copy(&server.known_hosts, &known).unwrap();
    mq_testkit::sh("ssh-keygen", &["-q", "-H", "-f", known.to_str().unwrap()]);
    assert!(fs::read_to_string(&known).unwrap().starts_with("|1|"));
    let text = server.config_block("lab").replace(
        &server.known_hosts.display().to_string(),
        &known.display().to_string(),
    );
    let config = write(&home.path().join("config"), &text);
    assert!(connect("lab", &config, home.path()).is_ok());
}

#[test]
fn changed_host_key_is_refused_under_every_setting() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let other = home.path().join("other_host_key");
    let other_pub = keygen_with(&other, "ed25519", "");
    let known = write(
        &home.path().join("known_hosts"),
        &format!("# first line\n[127.0.0.1]:{} {other_pub}\n", server.port),
    );
    for policy in ["yes", "accept-new", "no", "ask"] {
        let text = server
            .config_block("lab")
            .replace(
                &server.known_hosts.display().to_string(),
                &known.display().to_string(),
            )
            .replace(
                "StrictHostKeyChecking yes",
                &format!("StrictHostKeyChecking {policy}"),
            );
        let config = write(&home.path().join("config"), &text);
        let err = connect("lab", &config, home.path()).unwrap_err();
        let message = err.to_string();
        match &err {
            TransportError::HostKeyMismatch {
                known_hosts,
                line,
                fingerprint,
                ..
            } => {
                assert_eq!((known_hosts, *line), (&known, 2), "{policy}");
                assert_eq!(fingerprint, &host_fingerprint(&server));
            }
            other => panic!("{policy}: unexpected {other}"),
        }
        assert!(message.contains("HAS CHANGED"));
        assert!(message.contains(&format!("{}:2", known.display())));
        assert!(message.contains("ssh-keygen -R"));
    }
}

#[test]
fn connection_refused_and_handshake_timeout() {
    let home = tempfile::tempdir().unwrap();
    // Nothing listens on a port we just released.
    let port = mq_testkit::free_port();
    let config = write(
        &home.path().join("config"),
        &format!("Host lab\n  HostName 127.0.0.1\n  Port {port}\n  ConnectTimeout 2\n"),
    );
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    assert!(err.is_connect_failure());

    // Something listens but never speaks SSH: the handshake times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = write(
        &home.path().join("config"),
        &format!("Host lab\n  HostName 127.0.0.1\n  Port {port}\n  ConnectTimeout 1\n"),
    );
    let started = Instant::now();
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by ConnectTimeout"
    );
}

#[test]
fn preferences_are_skipped_requirements_refused_algorithms_applied() {
    let Some(server) = SshServer::start_with(ServerOptions {
        extra_config: vec!["LogLevel DEBUG1".into()],
    }) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // GSSAPI is a preference (Debian's stock ssh_config): skipped, listed
    // with its line, and the connection is made.
    let text = format!(
        "{}  GSSAPIAuthentication yes\n  Ciphers aes256-ctr\n",
        server.config_block("lab")
    );
    let config = write(&home.path().join("config"), &text);
    let t = connect("lab", &config, home.path()).unwrap();
    assert_eq!(
        t.notes(),
        [format!(
            "{}:12: GSSAPIAuthentication yes (libssh2 has no GSSAPI)",
            config.display()
        )]
    );
    assert_eq!(t.run("echo ok").unwrap().stdout, b"ok\n");
    assert!(
        server.log().contains("cipher: aes256-ctr"),
        "the configured cipher was negotiated: {}",
        server.log()
    );
    drop(t);

    // A cipher list libssh2 cannot meet at all names its line.
    let text = format!("{}  Ciphers 3des-cbc\n", server.config_block("lab"));
    let config = write(&home.path().join("config"), &text);
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}:12: none of these algorithms",
            config.display()
        )),
        "{err}"
    );

    // What would change how mq connects is refused with its line.
    let text = format!(
        "{}  ProxyCommand nc %h %p\n  ProxyUseFdpass yes\n",
        server.config_block("lab")
    );
    let config = write(&home.path().join("config"), &text);
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(matches!(err, TransportError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{}:13: ProxyUseFdpass yes", config.display())),
        "{err}"
    );
    assert!(err.to_string().contains("MQ_TRANSPORT=openssh"));

    // PubkeyAuthentication no: no key is offered, and the error says so.
    let text = format!("{}  PubkeyAuthentication no\n", server.config_block("lab"));
    let config = write(&home.path().join("config"), &text);
    let err = connect("lab", &config, home.path()).unwrap_err();
    assert!(matches!(err, TransportError::AuthFailed { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "{}:12: PubkeyAuthentication no (no key is offered)",
            config.display()
        )),
        "{err}"
    );
}

#[test]
fn destination_user_and_port_override_the_configuration() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let text = server
        .config_block("lab")
        .replace(&format!("Port {}", server.port), "Port 1")
        .replace(&format!("User {}", server.user), "User nobody-at-all");
    let config = write(&home.path().join("config"), &text);
    let dest = format!("{}@lab:{}", server.user, server.port);
    let t = connect(&dest, &config, home.path()).unwrap();
    assert_eq!(t.user(), server.user);
    assert!(t.describe().contains(&format!(":{}", server.port)));
}

/// The sshd processes serving our connection (everything below the listener).
fn session_processes(server: &SshServer) -> Vec<u32> {
    descendants_of(server.pid())
}

#[test]
fn a_killed_server_side_is_a_lost_connection() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let config = server.write_config("lab");
    let t = connect("lab", &config, home.path()).unwrap();
    let mut p = t.spawn_pty("sleep 30", PtySize::default()).unwrap();
    assert!(mq_testkit::eventually(Duration::from_secs(5), || {
        !session_processes(&server).is_empty()
    }));
    for pid in session_processes(&server) {
        mq_testkit::signal(pid, Signal::SIGKILL);
    }
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let err = loop {
        match p.read(&mut buf, Some(Duration::from_secs(20))) {
            Ok(ReadOutcome::Data(_)) => continue,
            Ok(other) => panic!("expected an error, got {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(err.is_connection_lost(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(t.run("true").unwrap_err().is_connection_lost());
}

#[test]
fn a_frozen_server_is_detected_by_keepalives() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let text = format!(
        "{}  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
        server.config_block("lab")
    );
    let config = write(&home.path().join("config"), &text);
    let t = connect("lab", &config, home.path()).unwrap();
    let mut p = t.spawn_pty("sleep 60", PtySize::default()).unwrap();
    assert!(mq_testkit::eventually(
        Duration::from_secs(5),
        || session_processes(&server).len() >= 2
    ));
    let frozen = session_processes(&server);
    for &pid in &frozen {
        mq_testkit::signal(pid, Signal::SIGSTOP);
    }
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let result = p.read(&mut buf, Some(Duration::from_secs(30)));
    let waited = started.elapsed();
    for &pid in &frozen {
        mq_testkit::signal(pid, Signal::SIGKILL);
        mq_testkit::signal(pid, Signal::SIGCONT);
    }
    let err = result.expect_err("a frozen server is not a live one");
    assert!(err.is_connection_lost(), "{err}");
    assert!(err.to_string().contains("keepalive"), "{err}");
    assert!(waited < Duration::from_secs(6), "reported after {waited:?}");
}

/// mq-core sends a run's whole plan with its acquire as one exec request of
/// up to 28 KiB (`MAX_ACQUIRE_COMMAND`): a command that long arrives whole,
/// on a terminal and without one. (libssh2 refuses to send one of 60 KiB:
/// "Unable to send channel request"; its packets stop at about 35,000 bytes.)
#[test]
fn a_28_kib_command_runs_in_one_exec_request() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let config = server.write_config("lab");
    let t = connect("lab", &config, home.path()).unwrap();
    let filler = format!(": '{}'\n", "x".repeat(28 * 1024 - 40));
    let command = format!("{filler}echo got-it-all");
    assert!(command.len() >= 28 * 1024 - 30 && command.len() <= 28 * 1024);
    assert_eq!(t.run(&command).unwrap().stdout, b"got-it-all\n");
    let mut p = t.spawn_pty(&command, PtySize::default()).unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(ReadOutcome::Data(n)) = p.read(&mut buf, Some(Duration::from_secs(10))) {
        said.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&said).contains("got-it-all"),
        "{said:?}"
    );
}

/// A HostKeyAlias names the host in known_hosts as it stands, off port 22
/// too (OpenSSH's get_hostfile_hostname_ipaddr): the file `ssh` accepts is
/// the one mq accepts, and `[alias]:port` is not it.
#[test]
fn a_host_key_alias_is_looked_up_as_ssh_looks_it_up() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (entry, ok) in [
        ("labhost-key".to_string(), true),
        (format!("[labhost-key]:{}", server.port), false),
    ] {
        let known = write(
            &home.path().join("known_hosts"),
            &format!("{entry} {}\n", server.host_key),
        );
        let text = server.config_block("lab").replace(
            &server.known_hosts.display().to_string(),
            &known.display().to_string(),
        ) + "  HostKeyAlias labhost-key\n";
        let config = write(&home.path().join("config"), &text);
        let oracle = Command::new("ssh")
            .args(["-F", config.to_str().unwrap(), "lab", "true"])
            .output()
            .unwrap();
        assert_eq!(oracle.status.success(), ok, "ssh with {entry}");
        let mq = connect("lab", &config, home.path());
        assert_eq!(mq.is_ok(), ok, "mq with {entry}: {:?}", mq.err());
    }
}
