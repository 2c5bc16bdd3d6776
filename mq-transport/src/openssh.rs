//! [`OpensshTransport`]: the system `ssh` client, over a ControlMaster socket
//! of mq's own.
//!
//! For setups libssh2 cannot do (GSSAPI, security keys, `Match exec`...):
//! OpenSSH reads the configuration itself. The first `mq` starts a master
//! connection (`ControlPersist` 300 s) that every later step and every later
//! `mq` invocation within those five minutes shares, so each step costs a
//! channel, not a connection. [`OpensshTransport::close_master`] ends it early.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::local::{copy_with_progress, read_fd};
use crate::ssh::{copy_result, download_command, upload_command, SizedDownload};
use crate::{
    ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport, TransportError,
};

/// How long the shared master outlives its last user.
pub const CONTROL_PERSIST_SECONDS: u32 = 300;

/// Options of the OpenSSH transport.
#[derive(Debug, Clone)]
pub struct OpensshOptions {
    /// The destination, as given to `ssh`.
    pub destination: String,
    /// A configuration file for `ssh -F` (default: ssh's own).
    pub config_file: Option<PathBuf>,
    /// Where the control socket lives (must be private to the user).
    pub control_dir: PathBuf,
    /// The `ssh` program.
    pub program: PathBuf,
}

impl OpensshOptions {
    /// Options for `destination`; the control socket goes under
    /// `$XDG_RUNTIME_DIR/mq`, else `/tmp/mq-UID`.
    pub fn new(destination: &str) -> OpensshOptions {
        let control_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d).join("mq"))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/mq-{}", nix::unistd::getuid())));
        OpensshOptions {
            destination: destination.to_string(),
            config_file: None,
            control_dir,
            program: PathBuf::from("ssh"),
        }
    }
}

/// Commands over the system `ssh` client and a shared master connection.
#[derive(Debug)]
pub struct OpensshTransport {
    options: OpensshOptions,
    control_path: PathBuf,
    user: String,
    description: String,
}

impl OpensshTransport {
    /// Starts (or reuses) the master connection to `options.destination`.
    pub fn connect(options: OpensshOptions) -> Result<OpensshTransport> {
        std::fs::create_dir_all(&options.control_dir)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    &options.control_dir,
                    std::fs::Permissions::from_mode(0o700),
                )
            })
            .map_err(|source| TransportError::LocalFile {
                path: options.control_dir.clone(),
                source,
            })?;
        // `ssh -G` prints the effective configuration without connecting.
        let effective = Command::new(&options.program)
            .args(config_args(&options))
            .arg("-G")
            .arg(&options.destination)
            .output()
            .map_err(|e| TransportError::Connect {
                endpoint: options.destination.clone(),
                source: e,
            })?;
        let text = String::from_utf8_lossy(&effective.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
                .map(str::to_string)
        };
        let user = value("user").unwrap_or_default();
        let hostname = value("hostname").unwrap_or_else(|| options.destination.clone());
        let port = value("port").unwrap_or_else(|| "22".into());
        // %C is a hash of the connection's identity, short enough for a
        // socket path and the same for every mq aimed at the same place.
        let control_path = options.control_dir.join("cm-%C");
        let transport = OpensshTransport {
            description: format!("{user}@{hostname}:{port} (openssh)"),
            user,
            control_path,
            options,
        };
        if !transport.master_alive() {
            transport.start_master()?;
        }
        Ok(transport)
    }

    fn ssh(&self) -> Command {
        let mut cmd = Command::new(&self.options.program);
        // A process group of its own: a ^C on mq's terminal goes to mq,
        // which hangs the console up in order, not to ssh, which would end
        // the connection under it.
        cmd.process_group(0);
        cmd.args(config_args(&self.options))
            .arg("-o")
            .arg(format!("ControlPath={}", self.control_path.display()))
            .arg("-o")
            .arg("BatchMode=yes");
        cmd
    }

    fn master_alive(&self) -> bool {
        self.ssh()
            .args(["-O", "check"])
            .arg(&self.options.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start_master(&self) -> Result<()> {
        let out = self
            .ssh()
            .args(["-o", "ControlMaster=yes"])
            .arg("-o")
            .arg(format!("ControlPersist={CONTROL_PERSIST_SECONDS}"))
            .args(["-f", "-N"])
            .arg(&self.options.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| TransportError::Connect {
                endpoint: self.options.destination.clone(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(TransportError::Connect {
                endpoint: self.options.destination.clone(),
                source: std::io::Error::other(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ),
            });
        }
        Ok(())
    }

    /// Stops the shared master connection now.
    pub fn close_master(&self) {
        let _ = self
            .ssh()
            .args(["-O", "exit"])
            .arg(&self.options.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A command on the host through the master (`-T`: no pty).
    fn remote(&self, command: &str) -> Command {
        let mut cmd = self.ssh();
        cmd.args(["-o", "ControlMaster=no", "-T"])
            .arg(&self.options.destination)
            .arg("--")
            .arg(command);
        cmd
    }

    fn spawn(&self, mut cmd: Command, stdin: Stdio) -> Result<Child> {
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TransportError::io("running ssh", e))
    }
}

fn config_args(options: &OpensshOptions) -> Vec<String> {
    match &options.config_file {
        Some(file) => vec!["-F".into(), file.display().to_string()],
        None => Vec::new(),
    }
}

/// ssh exits 255 for its own failures (and when the connection drops).
const SSH_FAILED: i32 = 255;

fn child_status(
    status: std::process::ExitStatus,
    stderr: &[u8],
    endpoint: &str,
) -> Result<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(SSH_FAILED), _) => Err(TransportError::ConnectionLost {
            endpoint: endpoint.to_string(),
            detail: String::from_utf8_lossy(stderr).trim().to_string(),
        }),
        (Some(code), _) => Ok(ExitStatus::Code(code)),
        (None, Some(signal)) => Ok(ExitStatus::Signal(crate::status::signal_name(signal))),
        (None, None) => Ok(ExitStatus::Code(-1)),
    }
}

impl Transport for OpensshTransport {
    fn run(&self, command: &str) -> Result<Output> {
        let out = self
            .remote(command)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TransportError::io("running ssh", e))?;
        Ok(Output {
            status: child_status(out.status, &out.stderr, &self.description)?,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
        // -tt: a remote pty even though our side is a pipe. The size is set
        // on it before the command starts.
        let sized = format!(
            "stty cols {} rows {} 2>/dev/null; {command}",
            size.cols, size.rows
        );
        let mut cmd = self.ssh();
        // -e none: no escape character; the console and the images sent
        // through it are data, and "~." at a line start is not a disconnect.
        cmd.args(["-o", "ControlMaster=no", "-tt", "-e", "none"])
            .arg(&self.options.destination)
            .arg("--")
            .arg(sized);
        let mut child = self.spawn(cmd, Stdio::piped())?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        Ok(Box::new(OpensshPty {
            child,
            stdin,
            stdout,
            endpoint: self.description.clone(),
        }))
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let local_error = TransportError::local_file(local);
        let mut file = File::open(local).map_err(local_error)?;
        let total = file.metadata().map_err(local_error)?.len();
        let mut child = self.spawn(self.remote(&upload_command(remote)), Stdio::piped())?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let copied = copy_with_progress(&mut file, &mut stdin, total, progress);
        drop(stdin);
        if let Ok(false) = copied {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TransportError::cancelled("upload to", remote));
        }
        let out = child
            .wait_with_output()
            .map_err(|e| TransportError::io("running ssh", e))?;
        let status = child_status(out.status, &out.stderr, &self.description)?;
        if let Err(e) = copied {
            return Err(TransportError::ConnectionLost {
                endpoint: self.description.clone(),
                detail: format!("upload interrupted: {e}"),
            });
        }
        copy_result("upload to", remote, self.describe(), &status, &out.stderr)
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let local_error = TransportError::local_file(local);
        let mut file = File::create(local).map_err(local_error)?;
        let mut child = self.spawn(self.remote(&download_command(remote)), Stdio::null())?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let mut sink = SizedDownload::new(&mut file, progress);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !sink.feed(&buf[..n]) {
                        let _ = child.kill();
                        let _ = child.wait();
                        let _ = std::fs::remove_file(local);
                        return Err(TransportError::cancelled("download of", remote));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::io("reading from ssh", e)),
            }
        }
        let write_error = sink.error.take();
        let status = child
            .wait()
            .map_err(|e| TransportError::io("running ssh", e))?;
        let stderr = errors.join().unwrap_or_default();
        let status = child_status(status, &stderr, &self.description)?;
        if let Some(e) = write_error {
            return Err(local_error(e));
        }
        if !status.success() {
            let _ = std::fs::remove_file(local);
        }
        copy_result("download of", remote, self.describe(), &status, &stderr)?;
        Ok(())
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// `ssh -tt` running a command; killing it closes the channel, which hangs
/// the remote pty up.
struct OpensshPty {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    endpoint: String,
}

impl PtyProcess for OpensshPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        match &self.stdout {
            Some(out) => read_fd(out.as_fd(), buf, timeout, "ssh's output"),
            None => Ok(ReadOutcome::Eof),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(stdin) = &mut self.stdin else {
            return Ok(());
        };
        stdin
            .write_all(data)
            .and_then(|()| stdin.flush())
            .map_err(|e| TransportError::ConnectionLost {
                endpoint: self.endpoint.clone(),
                detail: format!("console input: {e}"),
            })
    }

    fn hangup(&mut self) -> Result<()> {
        // ^C on the remote terminal first (ssh -tt passes it through; the
        // remote line discipline makes it SIGINT), as a user of mq.sh would
        // stop a board; then, if ssh has not ended within a few seconds,
        // ssh itself is stopped.
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(b"\x03").and_then(|()| stdin.flush());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.cut()
    }

    fn cut(&mut self) -> Result<()> {
        self.stdin = None;
        self.stdout = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        Ok(())
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        self.stdin = None;
        let mut stderr = Vec::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_end(&mut stderr);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| TransportError::io("waiting for ssh", e))?;
        child_status(status, &stderr, &self.endpoint)
    }
}

impl Drop for OpensshPty {
    fn drop(&mut self) {
        let _ = self.hangup();
        let _ = self.child.wait();
    }
}
