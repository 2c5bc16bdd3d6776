//! Commands on this machine: `sh -c`, and a real pseudo-terminal.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::status::signal_name;
use crate::{
    ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport, TransportError,
};

/// Runs commands with `sh -c` on this machine: for mq on the lab host itself,
/// and for labs that live on one machine.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    user: String,
    /// Variables set for every command, over this process's own.
    env: Vec<(String, String)>,
}

impl LocalTransport {
    /// A transport for this machine, as the user running this process.
    pub fn new() -> LocalTransport {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        LocalTransport {
            user,
            env: Vec::new(),
        }
    }

    /// Sets `name` to `value` for every command this transport runs (a
    /// test lab's own `TMPDIR`, say), leaving this process's environment alone.
    pub fn env(mut self, name: &str, value: &str) -> LocalTransport {
        self.env.push((name.to_string(), value.to_string()));
        self
    }
}

impl Default for LocalTransport {
    fn default() -> LocalTransport {
        LocalTransport::new()
    }
}

fn status_of(status: std::process::ExitStatus) -> ExitStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal_name(signal)),
        (None, None) => ExitStatus::Code(-1),
    }
}

/// Copies `from` to `to` in chunks, reporting progress against `total`;
/// `Ok(false)` when the progress callback asked to stop.
pub(crate) fn copy_with_progress(
    from: &mut dyn Read,
    to: &mut dyn Write,
    total: u64,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> io::Result<bool> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    if !progress(0, total) {
        return Ok(false);
    }
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        done += n as u64;
        if !progress(done, total.max(done)) {
            return Ok(false);
        }
    }
    to.flush()?;
    Ok(true)
}

fn copy_file(from: &Path, to: &Path, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<()> {
    let mut src = File::open(from).map_err(TransportError::local_file(from))?;
    let total = src
        .metadata()
        .map_err(TransportError::local_file(from))?
        .len();
    let mut dst = File::create(to).map_err(TransportError::local_file(to))?;
    let finished = copy_with_progress(&mut src, &mut dst, total, progress)
        .map_err(TransportError::local_file(to))?;
    if finished {
        Ok(())
    } else {
        Err(TransportError::cancelled(
            "copy to",
            &to.display().to_string(),
        ))
    }
}

impl Transport for LocalTransport {
    fn run(&self, command: &str) -> Result<Output> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TransportError::io("running sh", e))?;
        Ok(Output {
            status: status_of(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
        let winsize = Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty =
            openpty(Some(&winsize), None).map_err(|e| TransportError::io("openpty", e.into()))?;
        // openpty(3) leaves both ends inheritable: a child holding the master
        // would keep the terminal from hanging up when mq dies (even of
        // SIGKILL), and the job and its wait would outlive it.
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .map_err(|e| TransportError::io("marking the pty close-on-exec", e.into()))?;
        }
        let slave = |what| {
            pty.slave
                .try_clone()
                .map(Stdio::from)
                .map_err(|e| TransportError::io(what, e))
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(slave("pty stdin")?)
            .stdout(slave("pty stdout")?)
            .stderr(slave("pty stderr")?);
        // SAFETY: the closure runs in the forked child between fork and exec.
        // It only calls setsid(2) and ioctl(2), both async-signal-safe, touches
        // no memory shared with the parent and allocates nothing. Making the
        // child a session leader with the pty as its controlling terminal is
        // what makes closing the master hang it up (SIGHUP), like ssh's pty.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| TransportError::io("starting sh on a pty", e))?;
        drop(pty.slave);
        Ok(Box::new(LocalPty {
            master: Some(pty.master),
            child,
            status: None,
        }))
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        copy_file(local, Path::new(remote), progress)
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        copy_file(Path::new(remote), local, progress)
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn describe(&self) -> String {
        format!("{}@localhost (local sh)", self.user)
    }
}

/// Reads what `fd` has, waiting up to `timeout` (`None`: for ever).
/// End of file, and Linux's EIO for a pty whose other side is all closed,
/// are [`ReadOutcome::Eof`].
pub(crate) fn read_fd(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Option<Duration>,
    what: &str,
) -> Result<ReadOutcome> {
    use nix::errno::Errno;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(left.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(ReadOutcome::TimedOut)
            }
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(TransportError::io(format!("polling {what}"), e.into())),
        }
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(0) | Err(Errno::EIO) => return Ok(ReadOutcome::Eof),
            Ok(n) => return Ok(ReadOutcome::Data(n)),
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(TransportError::io(format!("reading {what}"), e.into())),
        }
    }
}

/// A local command on a pty; the master side is ours.
struct LocalPty {
    master: Option<OwnedFd>,
    child: Child,
    status: Option<ExitStatus>,
}

impl LocalPty {
    fn group(&self) -> Pid {
        // The child called setsid(): its pid is its process group id.
        Pid::from_raw(self.child.id() as i32)
    }
}

impl PtyProcess for LocalPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        match &self.master {
            Some(master) => read_fd(master.as_fd(), buf, timeout, "the pty"),
            None => Ok(ReadOutcome::Eof),
        }
    }

    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        let Some(master) = &self.master else {
            return Err(TransportError::io(
                "writing the pty",
                io::Error::from(io::ErrorKind::BrokenPipe),
            ));
        };
        while !data.is_empty() {
            match nix::unistd::write(master, data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(TransportError::io("writing the pty", e.into())),
            }
        }
        Ok(())
    }

    fn hangup(&mut self) -> Result<()> {
        if self.master.take().is_some() && self.status.is_none() {
            // Closing the master already sends SIGHUP to the session; say it
            // to the whole group too, for processes that left the foreground.
            let _ = killpg(self.group(), Signal::SIGHUP);
        }
        Ok(())
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = &self.status {
            return Ok(status.clone());
        }
        let status = status_of(
            self.child
                .wait()
                .map_err(|e| TransportError::io("waiting for the pty command", e))?,
        );
        self.master = None;
        self.status = Some(status.clone());
        Ok(status)
    }
}

impl Drop for LocalPty {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = self.hangup();
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // Reap it on a thread: a command that ignores SIGHUP gets SIGKILL a
        // moment later, and leaves no zombie behind either way.
        let group = self.group();
        std::thread::spawn(move || {
            use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => {}
                    _ => return,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(group, Signal::SIGKILL);
            let _ = waitpid(group, None);
        });
    }
}
