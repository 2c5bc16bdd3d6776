//! mq run the way a user runs it: as a real Unix user whose only SSH set-up
//! is a `~/.ssh/config` block for the lab host, with no `--ssh-config` and no
//! `MQ_SSH_CONFIG`, so the machine's own stock `/etc/ssh/ssh_config` (Debian's
//! `GSSAPIAuthentication yes` among it) is read after the user's file.
//! OpenSSH, run as the same user with the same files, is the oracle.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mq_testkit::{sh, LabHost};

/// Runs `program args...` as `user` through `su`, with a clean environment
/// (no MQ_* variables, no agent) and `path` as PATH.
fn as_user(user: &str, path: &str, program: &Path, args: &[&str]) -> Output {
    // su by its path: PATH is the one the user's program gets.
    Command::new("/bin/su")
        .args(["-s", "/bin/sh", "-c", "exec \"$0\" \"$@\"", user, "--"])
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("su runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_user_with_only_a_config_block_on_a_stock_debian_machine() {
    let stock = fs::read_to_string("/etc/ssh/ssh_config").unwrap_or_default();
    if !stock
        .lines()
        .any(|l| l.trim() == "GSSAPIAuthentication yes")
    {
        mq_testkit::skip::<()>(
            "/etc/ssh/ssh_config is not the stock Debian file (reinstall openssh-client)",
        );
        return;
    }
    let Some(lab) = LabHost::start(1) else { return };
    let user = &lab.users[0];
    let server = &lab.server;

    // What a user does: a key, the host's key in known_hosts, one block.
    let ssh_dir = user.home.join(".ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    fs::copy(&server.user_key, ssh_dir.join("id_lab")).unwrap();
    fs::write(
        ssh_dir.join("known_hosts"),
        format!("[127.0.0.1]:{} {}\n", server.port, server.host_key),
    )
    .unwrap();
    fs::write(
        ssh_dir.join("config"),
        format!(
            "Host lab\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile ~/.ssh/id_lab\n",
            server.port
        ),
    )
    .unwrap();
    let owner = format!("{0}:{0}", user.name);
    sh("chown", &["-R", &owner, ssh_dir.to_str().unwrap()]);
    sh("chmod", &["600", ssh_dir.join("id_lab").to_str().unwrap()]);

    let path = "/usr/local/bin:/usr/bin:/bin";
    // The oracle: OpenSSH connects with these files.
    let ssh = as_user(
        &user.name,
        path,
        Path::new("/usr/bin/ssh"),
        &["-o", "BatchMode=yes", "lab", "true"],
    );
    assert!(ssh.status.success(), "ssh lab true: {}", text(&ssh));

    let mq = assert_cmd::cargo::cargo_bin("mq");
    let info = [
        "--host",
        "lab",
        "--base",
        lab.base_str(),
        "sem",
        "-info",
        "sabre",
    ];
    let before = server.connections();
    let out = as_user(&user.name, path, &mq, &info);
    assert!(out.status.success(), "mq sem -info: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Lock for sabre currently free\n"
    );
    assert_eq!(server.connections(), before + 1, "one connection");

    // The line and the lab's status, the same way (the stock files, default
    // paths): a lock taken, mq status and mq queue see it; sem -info is the
    // oracle for the holder.
    let with = |args: &[&str]| {
        let mut all = vec!["--host", "lab", "--base", lab.base_str()];
        all.extend_from_slice(args);
        as_user(&user.name, path, &mq, &all)
    };
    let out = with(&["sem", "-wait", "sabre", "-k", "mine"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = with(&["status", "sabre", "--json"]);
    assert!(out.status.success(), "mq status: {}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["boards"][0]["holder"]["owner"], user.name.as_str());
    assert_eq!(status["boards"][0]["holder"]["key"], "mine");
    let out = with(&["sem", "-info", "sabre"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("held by {}", user.name)),
        "{}",
        text(&out)
    );
    let out = with(&["queue", "sabre", "--json"]);
    assert!(out.status.success(), "mq queue: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = with(&["sem", "-signal", "sabre", "-k", "mine"]);
    assert!(out.status.success(), "{}", text(&out));

    // mq config --ssh says what it followed and what it skipped, with the
    // stock file's line.
    let out = as_user(&user.name, path, &mq, &["--host", "lab", "config", "--ssh"]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        shown.contains(&format!("{}@127.0.0.1:{}", user.name, server.port)),
        "{shown}"
    );
    assert!(shown.contains("resolved by /usr/bin/ssh -G"), "{shown}");
    let gssapi_line = stock
        .lines()
        .position(|l| l.trim() == "GSSAPIAuthentication yes")
        .unwrap()
        + 1;
    assert!(
        shown.contains(&format!(
            "/etc/ssh/ssh_config:{gssapi_line}: GSSAPIAuthentication yes (libssh2 has no GSSAPI)"
        )),
        "{shown}"
    );

    // With no ssh client on PATH, the built-in parser reads the same files
    // and connects the same way.
    let empty = tempfile::tempdir().unwrap();
    mq_testkit::set_mode(empty.path(), 0o755);
    let no_ssh = empty.path().to_str().unwrap();
    let out = as_user(&user.name, no_ssh, &mq, &info);
    assert!(
        out.status.success(),
        "mq sem -info without ssh: {}",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Lock for sabre currently free\n"
    );
    let out = as_user(
        &user.name,
        no_ssh,
        &mq,
        &["--host", "lab", "config", "--ssh"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("built-in ssh_config parser"),
        "{}",
        text(&out)
    );

    // A host the user's file does not name fails as ssh does, and the
    // message points to mq config --ssh.
    let out = as_user(
        &user.name,
        path,
        &mq,
        &[
            "--host",
            "127.0.0.1:1",
            "--base",
            lab.base_str(),
            "sem",
            "-info",
            "sabre",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Unable to ssh to 127.0.0.1:1\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mq config --ssh"),
        "{}",
        text(&out)
    );
}
