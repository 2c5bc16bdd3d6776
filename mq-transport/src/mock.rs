//! A transport that runs nothing: it records every command it is given and
//! answers from a script.
//!
//! For tests that check the exact command lines mq sends (PROTOCOL.md's
//! patterns, quoting) and for harness authors testing without a lab.
//!
//! ```
//! use mq_transport::mock::MockTransport;
//! use mq_transport::Transport;
//!
//! let host = MockTransport::new("alice");
//! host.answer("cat '/var/cache/machinelocks/VERSION'", "5\n", 0);
//! let out = host.run("cat '/var/cache/machinelocks/VERSION'").unwrap();
//! assert_eq!(out.stdout, b"5\n");
//! assert_eq!(host.commands(), ["cat '/var/cache/machinelocks/VERSION'"]);
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::{
    ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport, TransportError,
};

/// One thing the transport was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A captured command.
    Run(String),
    /// A command on a pty.
    Pty(String),
    /// An upload.
    Upload {
        /// The local file.
        local: PathBuf,
        /// The remote path.
        remote: String,
    },
    /// A download.
    Download {
        /// The remote path.
        remote: String,
        /// The local file.
        local: PathBuf,
    },
}

struct Rule {
    needle: String,
    output: Output,
    uses_left: Option<usize>,
}

/// Records calls; answers commands containing a scripted text.
pub struct MockTransport {
    user: String,
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<Vec<Call>>,
}

impl MockTransport {
    /// A mock host where commands run as `user`.
    pub fn new(user: &str) -> MockTransport {
        MockTransport {
            user: user.to_string(),
            rules: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Answers every command containing `needle` with `stdout` and exit `code`
    /// (the first rule added that matches wins).
    pub fn answer(&self, needle: &str, stdout: &str, code: i32) -> &MockTransport {
        self.answer_with(
            needle,
            Output {
                status: ExitStatus::Code(code),
                stdout: stdout.as_bytes().to_vec(),
                stderr: Vec::new(),
            },
            None,
        )
    }

    /// Answers commands containing `needle` with `output`, `uses` times
    /// (`None`: always). Downloads of a path containing `needle` receive its
    /// stdout as the file's content.
    pub fn answer_with(&self, needle: &str, output: Output, uses: Option<usize>) -> &MockTransport {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rule {
                needle: needle.to_string(),
                output,
                uses_left: uses,
            });
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The command lines of every run and pty call so far.
    pub fn commands(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Run(cmd) | Call::Pty(cmd) => Some(cmd),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: Call) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call);
    }

    fn respond(&self, text: &str) -> Output {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for rule in rules.iter_mut() {
            if !text.contains(&rule.needle) || rule.uses_left == Some(0) {
                continue;
            }
            if let Some(left) = &mut rule.uses_left {
                *left -= 1;
            }
            return rule.output.clone();
        }
        Output {
            status: ExitStatus::Code(127),
            stdout: Vec::new(),
            stderr: format!("mock: nothing scripted for: {text}\n").into_bytes(),
        }
    }
}

impl Transport for MockTransport {
    fn run(&self, command: &str) -> Result<Output> {
        self.record(Call::Run(command.to_string()));
        Ok(self.respond(command))
    }

    fn spawn_pty(&self, command: &str, _size: PtySize) -> Result<Box<dyn PtyProcess>> {
        self.record(Call::Pty(command.to_string()));
        let output = self.respond(command);
        Ok(Box::new(MockPty {
            data: output.stdout,
            at: 0,
            status: output.status,
        }))
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.record(Call::Upload {
            local: local.to_path_buf(),
            remote: remote.to_string(),
        });
        let size = std::fs::metadata(local)
            .map_err(TransportError::local_file(local))?
            .len();
        if progress(size, size) {
            Ok(())
        } else {
            Err(TransportError::cancelled("upload to", remote))
        }
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.record(Call::Download {
            remote: remote.to_string(),
            local: local.to_path_buf(),
        });
        let output = self.respond(remote);
        if !output.status.success() {
            return Err(TransportError::RemoteFile {
                operation: "download of",
                path: remote.to_string(),
                endpoint: self.describe(),
                detail: output.stderr_text(),
            });
        }
        std::fs::write(local, &output.stdout).map_err(TransportError::local_file(local))?;
        let size = output.stdout.len() as u64;
        if progress(size, size) {
            Ok(())
        } else {
            Err(TransportError::cancelled("download of", remote))
        }
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn describe(&self) -> String {
        format!("{}@mock", self.user)
    }
}

/// Plays back a scripted console.
struct MockPty {
    data: Vec<u8>,
    at: usize,
    status: ExitStatus,
}

impl PtyProcess for MockPty {
    fn read(&mut self, buf: &mut [u8], _timeout: Option<Duration>) -> Result<ReadOutcome> {
        if self.at >= self.data.len() {
            return Ok(ReadOutcome::Eof);
        }
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(ReadOutcome::Data(n))
    }

    fn write(&mut self, _data: &[u8]) -> Result<()> {
        Ok(())
    }

    fn hangup(&mut self) -> Result<()> {
        self.at = self.data.len();
        Ok(())
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        Ok(self.status.clone())
    }
}
