//! A real terminal for tests: a private tmux server (its own socket, no
//! user configuration) running one command in a window of a known size.
//! The test reads the screen as a user sees it, and the server is stopped
//! by its process id when the value is dropped.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{eventually, skip};

/// A tmux server running one command on a terminal.
pub struct Tmux {
    dir: tempfile::TempDir,
    pid: u32,
}

/// `text` as one shell word.
fn shell_word(text: &OsStr) -> String {
    let text = String::from_utf8_lossy(text.as_bytes());
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Tmux {
    /// Runs `cmd` (its program, arguments and environment changes; not its
    /// standard streams, which are the terminal's) in a 160×40 window.
    /// The window stays once the command ends, for its last screen and its
    /// exit status. Skips (fails under CI) without tmux.
    pub fn run(cmd: &Command) -> Option<Tmux> {
        let found = Command::new("sh")
            .args(["-c", "command -v tmux"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return skip("no tmux (install tmux)");
        }
        let dir = tempfile::tempdir().expect("a directory for the tmux socket");
        let conf = dir.path().join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g history-limit 5000\n",
        )
        .expect("tmux.conf");
        // env's options (-u) come before its assignments.
        let mut line = String::from("env");
        for (name, value) in cmd.get_envs() {
            if value.is_none() {
                line += &format!(" -u {}", shell_word(name));
            }
        }
        for (name, value) in cmd.get_envs() {
            if let Some(value) = value {
                let mut pair = name.to_os_string();
                pair.push("=");
                pair.push(value);
                line += &format!(" {}", shell_word(&pair));
            }
        }
        line += &format!(" {}", shell_word(cmd.get_program()));
        for arg in cmd.get_args() {
            line += &format!(" {}", shell_word(arg));
        }
        // The pane's shell records the exit status itself (tmux 3.3a does not
        // always learn it); `trap :` keeps the shell through a ^C meant for
        // the command (a handler, unlike an ignored signal, is not passed on).
        let status_file = dir.path().join("status");
        let line = format!(
            "trap : INT; {line}; echo $? > {}",
            shell_word(status_file.as_os_str())
        );
        let mut tmux = Tmux { dir, pid: 0 };
        let out = tmux
            .command()
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-x", "160", "-y", "40", "-s", "t"])
            .arg(line)
            .output()
            .expect("tmux runs");
        assert!(out.status.success(), "tmux: {out:?}");
        tmux.pid = tmux
            .display("#{pid}")
            .parse()
            .expect("the tmux server's pid");
        Some(tmux)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(self.socket());
        cmd
    }

    /// A tmux format (`#{pane_pid}`...) of the window, expanded.
    pub fn display(&self, format: &str) -> String {
        let out = self
            .command()
            .args(["display-message", "-p", "-t", "t", format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// What the terminal shows now, line by line (trailing blanks cut).
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        lines.join("\n").trim_end().to_string()
    }

    /// Waits up to `timeout` for the screen to contain `text`; the screen.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Result<String, String> {
        let mut last = String::new();
        if eventually(timeout, || {
            last = self.screen();
            last.contains(text)
        }) {
            Ok(last)
        } else {
            Err(last)
        }
    }

    /// Types keys, as tmux's `send-keys` names them (`C-c`, `Enter`).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// The command's exit status, once it has ended.
    pub fn exit_status(&self, timeout: Duration) -> Option<i32> {
        let file = self.dir.path().join("status");
        let mut status = None;
        eventually(timeout, || {
            status = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            status.is_some()
        });
        status
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if self.pid > 0 {
            crate::signal(self.pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}
