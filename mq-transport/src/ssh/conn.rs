//! One established SSH session in non-blocking mode, and the waiting loop
//! every operation on it shares.
//!
//! After authentication the session is switched to non-blocking for good: an
//! operation that would block returns at once, and [`Conn::wait`] polls the
//! socket in the direction libssh2 needs, sending keepalives as it goes. That
//! lets one loop serve captures, ptys, file copies and tunnels alike, lets a
//! pty read time out, and turns a dead peer into [`TransportError::ConnectionLost`]
//! instead of a hang.

use std::any::Any;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use ssh2::{BlockDirections, ErrorCode, Session};

use crate::{Result, TransportError};

/// libssh2's "would block".
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
/// libssh2 errors that mean the connection itself is gone: SOCKET_NONE,
/// SOCKET_SEND, TIMEOUT, SOCKET_DISCONNECT, SOCKET_RECV.
const CONNECTION_GONE: [i32; 5] = [-1, -7, -9, -13, -43];

/// A live session and what keeps its transport alive.
pub(crate) struct Conn {
    pub(crate) session: Session,
    fd: RawFd,
    pub(crate) endpoint: String,
    alive_interval: Duration,
    alive_max: u32,
    alive: Mutex<Alive>,
    /// Jump sessions, tunnel threads' handles, proxy commands: dropped with us.
    _keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Conn {
    pub(crate) fn new(
        session: Session,
        fd: RawFd,
        endpoint: String,
        alive_interval: Duration,
        alive_max: u32,
        keep: Vec<Box<dyn Any + Send + Sync>>,
    ) -> Conn {
        // We time keepalives ourselves (see `keep_alive`); libssh2 only has to
        // send one whenever asked.
        session.set_keepalive(true, 1);
        session.set_timeout(0);
        session.set_blocking(false);
        Conn {
            session,
            fd,
            endpoint,
            alive_interval,
            alive_max,
            alive: Mutex::new(Alive {
                last_sent: Instant::now(),
                unanswered_since: None,
            }),
            _keep: keep,
        }
    }

    pub(crate) fn lost(&self, detail: impl Into<String>) -> TransportError {
        TransportError::ConnectionLost {
            endpoint: self.endpoint.clone(),
            detail: detail.into(),
        }
    }

    /// Classifies a libssh2 error: `None` for "would block".
    pub(crate) fn classify(&self, context: &str, e: ssh2::Error) -> Option<TransportError> {
        match e.code() {
            ErrorCode::Session(LIBSSH2_ERROR_EAGAIN) => None,
            ErrorCode::Session(code) if CONNECTION_GONE.contains(&code) => {
                Some(self.lost(format!("{context}: {}", e.message())))
            }
            _ => Some(TransportError::Ssh {
                context: context.to_string(),
                detail: e.message().to_string(),
            }),
        }
    }

    /// Classifies an I/O error from a channel stream: `None` for "would block".
    pub(crate) fn classify_io(&self, context: &str, e: io::Error) -> Option<TransportError> {
        match e.kind() {
            io::ErrorKind::WouldBlock => None,
            io::ErrorKind::Interrupted => None,
            _ => Some(self.lost(format!("{context}: {e}"))),
        }
    }

    /// Repeats `op` until it no longer would block.
    pub(crate) fn retry<T>(
        &self,
        context: &str,
        mut op: impl FnMut() -> std::result::Result<T, ssh2::Error>,
    ) -> Result<T> {
        loop {
            match op() {
                Ok(value) => return Ok(value),
                Err(e) => match self.classify(context, e) {
                    None => {
                        // Bounded: libssh2 may already hold what `op`
                        // waits for, with the socket quiet.
                        self.wait(Some(Instant::now() + super::RECHECK))?;
                    }
                    Some(error) => return Err(error),
                },
            }
        }
    }

    /// Waits until the socket is ready in the direction libssh2 last needed,
    /// or `deadline` passes (returns `false` then). Sends keepalives; a socket
    /// that hangs up, or a keepalive that cannot be sent, is a lost connection.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<bool> {
        // Always readable (the peer may speak first); writable when libssh2
        // waits to send.
        let mut flags = PollFlags::POLLIN;
        if matches!(
            self.session.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        ) {
            flags |= PollFlags::POLLOUT;
        }
        self.poll_with(&[], flags, deadline)
            .map(|ready| ready.is_some())
    }

    /// Polls our socket (with `flags`) and any `extra` descriptors; returns the
    /// revents of each (ours first), or `None` when the deadline passed.
    pub(crate) fn poll_with(
        &self,
        extra: &[(RawFd, PollFlags)],
        flags: PollFlags,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<PollFlags>>> {
        loop {
            self.keep_alive()?;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let tick = self.alive_interval.min(Duration::from_secs(1));
            let wait = deadline.map_or(tick, |d| (d - now).min(tick));
            // SAFETY: each fd stays open for the duration of this call: ours
            // is owned by the session held in `self`, the extras by the caller,
            // who passes them from objects it holds.
            let fds: Vec<BorrowedFd<'_>> = std::iter::once(self.fd)
                .chain(extra.iter().map(|(fd, _)| *fd))
                .map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
                .collect();
            let mut pollfds: Vec<PollFd<'_>> = fds
                .iter()
                .zip(std::iter::once(flags).chain(extra.iter().map(|(_, f)| *f)))
                .map(|(fd, f)| PollFd::new(*fd, f))
                .collect();
            let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
            let n = match poll(
                &mut pollfds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(TransportError::io("poll", e.into())),
            };
            let revents: Vec<PollFlags> = pollfds
                .iter()
                .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                .collect();
            if revents[0].intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) {
                return Err(self.lost("socket error"));
            }
            if revents[0].intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                // Anything from the peer answers the keepalives sent so far.
                self.alive
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unanswered_since = None;
            }
            if n > 0 {
                return Ok(Some(revents));
            }
            self.check_alive()?;
        }
    }

    /// After a quiet poll: a whole ServerAliveCountMax of intervals without a
    /// word from the peer since a keepalive went out means it is gone.
    fn check_alive(&self) -> Result<()> {
        let alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
        match alive.unanswered_since {
            Some(since) if since.elapsed() > self.alive_interval * self.alive_max => Err(self
                .lost(format!(
                    "no answer to keepalives for {} s",
                    since.elapsed().as_secs()
                ))),
            _ => Ok(()),
        }
    }

    /// Sends a keepalive when one is due. (A peer that vanished also fails
    /// the socket through TCP_USER_TIMEOUT, set to the same span as
    /// [`Conn::check_alive`]'s, for direct connections.)
    fn keep_alive(&self) -> Result<()> {
        let mut alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now - alive.last_sent >= self.alive_interval {
            alive.last_sent = now;
            alive.unanswered_since.get_or_insert(now);
            drop(alive);
            if let Err(e) = self.session.keepalive_send() {
                if let Some(err) = self.classify("keepalive", e) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }
}

/// Keepalive bookkeeping.
struct Alive {
    last_sent: Instant,
    unanswered_since: Option<Instant>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Best effort, non-blocking: a polite goodbye if the socket takes it.
        let _ = self
            .session
            .disconnect(Some(ssh2::DisconnectCode::ByApplication), "mq done", None);
    }
}
