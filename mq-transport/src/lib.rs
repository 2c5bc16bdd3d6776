//! How mq's commands reach the lab host.
//!
//! Every remote step of mq goes through the [`Transport`] trait: run a command
//! and capture its output, run one on a pseudo-terminal and stream it, copy
//! files both ways. The implementations:
//!
//! * [`SshTransport`]: ONE SSH connection (libssh2) per process, every step a
//!   channel on it; honours `~/.ssh/config` (HostName, User, Port, IdentityFile,
//!   ProxyJump, ProxyCommand, known hosts, keepalives...);
//! * [`OpensshTransport`]: the system `ssh` client with a ControlMaster socket
//!   of its own, for what libssh2 cannot do (GSSAPI, security keys);
//! * [`LocalTransport`]: `sh -c` on this machine, for when mq runs on the lab
//!   host itself or the lab lives on one machine;
//! * [`fault::FaultTransport`] and [`mock::MockTransport`], for tests;
//! * [`trace::TraceTransport`], around any of them: every command and its
//!   raw reply to a file (`MQ_TRACE`).
//!
//! Every value placed in a remote command line goes through [`quote()`].
//!
//! This crate must never depend on the lock protocol, console matching, the
//! inventory or the CLI: it moves bytes and runs commands, nothing more. It is
//! blocking and usable from a plain `fn main`.
//!
//! ```
//! use mq_transport::{quote, LocalTransport, Transport};
//!
//! let host = LocalTransport::new();
//! let out = host.run(&format!("printf '%s' {}", quote("it's $(not) run"))).unwrap();
//! assert!(out.status.success());
//! assert_eq!(out.stdout, b"it's $(not) run");
//! ```
#![deny(missing_docs)]

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

mod error;
pub mod fault;
mod local;
pub mod mock;
mod openssh;
pub mod ssh;
mod status;
pub mod trace;

pub use error::{Result, TransportError};
pub use local::LocalTransport;
pub use mq_shell::fill;
pub use mq_shell::{quote, quote_all};
pub use openssh::{OpensshOptions, OpensshTransport};
pub use ssh::{SshOptions, SshTransport};
pub use status::ExitStatus;

/// What a captured command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The size of a pseudo-terminal, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtySize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for PtySize {
    fn default() -> PtySize {
        PtySize { cols: 80, rows: 24 }
    }
}

/// What one read from a running process gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were placed in the buffer.
    Data(usize),
    /// The process's output is finished.
    Eof,
    /// Nothing arrived within the timeout.
    TimedOut,
}

/// A command running on a pseudo-terminal (see [`Transport::spawn_pty`]).
///
/// Dropping it, or calling [`PtyProcess::hangup`], closes the terminal: the
/// process and its process group get SIGHUP, as when a serial console user
/// hangs up. Nothing is left running on the host.
pub trait PtyProcess: Send {
    /// Waits up to `timeout` (`None`: for ever) for output and reads it.
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome>;
    /// Sends bytes to the process's terminal (as typed input).
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Closes the terminal; the process is hung up on.
    fn hangup(&mut self) -> Result<()>;
    /// Closes the terminal at once, without the ^C a hangup may send first
    /// and wait on: for a terminal in raw mode, where ^C is data. By default,
    /// a hangup.
    fn cut(&mut self) -> Result<()> {
        self.hangup()
    }
    /// After [`ReadOutcome::Eof`] (or a hangup): waits for the exit status.
    fn wait(&mut self) -> Result<ExitStatus>;
}

/// A way to run commands on the lab host.
///
/// Implementations are `Send + Sync` so that one connection can serve a job and
/// the thread that cancels it.
pub trait Transport: Send + Sync {
    /// Runs `command` with `sh` on the host and captures stdout, stderr and
    /// the exit status (binary-safe, any size). Its stdin is empty.
    fn run(&self, command: &str) -> Result<Output>;

    /// Starts `command` on a pseudo-terminal.
    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>>;

    /// Copies the local file `local` to `remote`, streamed, calling
    /// `progress(bytes_done, bytes_total)` as it goes; when that returns
    /// `false` the copy stops with [`TransportError::Cancelled`] (the partial
    /// remote file is the caller's to remove).
    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()>;

    /// Copies the remote file `remote` to `local`, streamed, calling
    /// `progress(bytes_done, bytes_total)` as it goes; when that returns
    /// `false` the copy stops with [`TransportError::Cancelled`].
    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()>;

    /// The user commands run as on the host.
    fn user(&self) -> &str;

    /// A human description of the endpoint, for messages (`user@host:port`).
    fn describe(&self) -> String;

    /// Runs `command` on a pseudo-terminal, copying its output to `output` as
    /// it arrives and, if given, the chunks of `input` to it (a reader's
    /// thread feeds it: `mq_console::spawn_reader`); returns its exit status.
    /// When `input` closes, nothing more is sent (the terminal stays open
    /// until the command exits).
    fn run_pty(
        &self,
        command: &str,
        output: &mut dyn Write,
        input: Option<mpsc::Receiver<Vec<u8>>>,
    ) -> Result<ExitStatus> {
        let mut process = self.spawn_pty(command, PtySize::default())?;
        pump_pty(process.as_mut(), output, input)
    }
}

/// Copies a pty process's output to `output` and `input` to it until it ends.
pub fn pump_pty(
    process: &mut dyn PtyProcess,
    output: &mut dyn Write,
    typed: Option<mpsc::Receiver<Vec<u8>>>,
) -> Result<ExitStatus> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(rx) = &typed {
            while let Ok(chunk) = rx.try_recv() {
                process.write(&chunk)?;
            }
        }
        let wait = if typed.is_some() {
            Some(Duration::from_millis(20))
        } else {
            None
        };
        match process.read(&mut buf, wait)? {
            ReadOutcome::Data(n) => {
                output
                    .write_all(&buf[..n])
                    .and_then(|()| output.flush())
                    .map_err(|e| TransportError::io("writing command output", e))?;
            }
            ReadOutcome::TimedOut => {}
            ReadOutcome::Eof => return process.wait(),
        }
    }
}

/// Forwards [`Transport`] through a smart pointer.
macro_rules! forward_transport {
    ($($pointer:ty),*) => {$(
        impl<T: Transport + ?Sized> Transport for $pointer {
            fn run(&self, command: &str) -> Result<Output> {
                (**self).run(command)
            }
            fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
                (**self).spawn_pty(command, size)
            }
            fn upload(
                &self,
                local: &Path,
                remote: &str,
                progress: &mut dyn FnMut(u64, u64) -> bool,
            ) -> Result<()> {
                (**self).upload(local, remote, progress)
            }
            fn download(
                &self,
                remote: &str,
                local: &Path,
                progress: &mut dyn FnMut(u64, u64) -> bool,
            ) -> Result<()> {
                (**self).download(remote, local, progress)
            }
            fn user(&self) -> &str {
                (**self).user()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    )*};
}

use std::sync::Arc;
forward_transport!(Box<T>, Arc<T>, &T);
