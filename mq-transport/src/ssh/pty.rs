//! A command on a remote pseudo-terminal: reading its console, typing into
//! it, and hanging it up as a terminal's user would.

use super::*;

/// A command on a remote pseudo-terminal.
pub(super) struct SshPty {
    pub(super) conn: Arc<Conn>,
    pub(super) channel: ssh2::Channel,
    pub(super) closed: bool,
}

impl PtyProcess for SshPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.channel.read(buf) {
                Ok(0) if self.channel.eof() => return Ok(ReadOutcome::Eof),
                Ok(0) => {}
                Ok(n) => return Ok(ReadOutcome::Data(n)),
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("reading the console", e) {
                        return Err(error);
                    }
                    if self.channel.eof() {
                        return Ok(ReadOutcome::Eof);
                    }
                }
            }
            let recheck = Instant::now() + RECHECK;
            let until = deadline.map_or(recheck, |d| d.min(recheck));
            if !self.conn.wait(Some(until))? && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(ReadOutcome::TimedOut);
            }
        }
    }

    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match self.channel.write(data) {
                Ok(n) => data = &data[n..],
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("writing to the console", e) {
                        return Err(error);
                    }
                    self.conn.wait(Some(Instant::now() + RECHECK))?;
                }
            }
        }
        Ok(())
    }

    fn hangup(&mut self) -> Result<()> {
        self.hang_up_within(HANGUP_LIMIT)
    }

    fn cut(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        // The close goes out now; its answer is not waited for long.
        self.close_by(Instant::now() + Duration::from_millis(500))
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let conn = Arc::clone(&self.conn);
        let deadline = Instant::now() + Duration::from_secs(10);
        let hung_up = self.closed;
        // The output ends when the command exits (or, hung up, is killed).
        match self.drain_to_eof(deadline) {
            Err(e) if !hung_up => return Err(e),
            _ => {}
        }
        if !self.closed {
            self.closed = true;
            let channel = &mut self.channel;
            conn.retry("closing the console", || channel.close())?;
        }
        if self.channel.eof() {
            loop {
                match self.channel.wait_close() {
                    Ok(()) => break,
                    Err(e) => {
                        if conn.classify("closing the console", e).is_some() {
                            break;
                        }
                    }
                }
                if !conn.wait(Some(deadline))? {
                    break;
                }
            }
        }
        match exit_status(&self.channel) {
            // libssh2 reports 0 when no status came; a hung-up command that
            // sent none was killed by the hangup.
            Ok(ExitStatus::Code(0)) | Err(_) if hung_up => Ok(ExitStatus::Signal("HUP".into())),
            other => other,
        }
    }
}

impl Drop for SshPty {
    fn drop(&mut self) {
        // Hang the remote side up now rather than when the connection ends,
        // but never wait long on a connection that may be gone.
        let _ = self.hang_up_within(Duration::from_secs(2));
    }
}

/// How long a wait on a quiet socket lasts before libssh2 is asked again:
/// it may hold (an EOF, data of another stream) what the socket no longer
/// signals.
pub(crate) const RECHECK: Duration = Duration::from_millis(100);

/// How long a hangup waits for the remote side to end.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);

impl SshPty {
    /// Reads and drops the output until the remote end's EOF (its command
    /// ended) or `deadline`; an error when the connection failed on the way.
    fn drain_to_eof(&mut self, deadline: Instant) -> Result<()> {
        let mut scratch = [0u8; 4096];
        while !self.channel.eof() {
            match self.channel.read(&mut scratch) {
                Ok(0) if self.channel.eof() => break,
                Ok(_) => continue,
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("finishing the console", e) {
                        return Err(error);
                    }
                }
            }
            let until = deadline.min(Instant::now() + RECHECK);
            if !self.conn.wait(Some(until))? && Instant::now() >= deadline {
                break;
            }
        }
        Ok(())
    }

    /// Hangs the remote side up as the terminal's user would: ^C (the line
    /// discipline sends SIGINT to the foreground job, as `ssh -t` passes a
    /// user's ^C; sshd does not hang a pty up on a channel close while its
    /// process lives), then waits up to `limit` for the remote end to finish
    /// (its output is drained and dropped), then closes the channel.
    fn hang_up_within(&mut self, limit: Duration) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        // Best effort: a full window or a dead connection only means the
        // deadline decides.
        let _ = self.channel.write(b"\x03");
        let _ = self.drain_to_eof(deadline);
        self.close_by(deadline)
    }

    /// Sends the channel's close, retrying a busy session until `deadline`.
    fn close_by(&mut self, deadline: Instant) -> Result<()> {
        self.closed = true;
        loop {
            match self.channel.close() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(error) = self.conn.classify("closing the console", e) {
                        return Err(error);
                    }
                }
            }
            if !self.conn.wait(Some(deadline))? {
                return Ok(());
            }
        }
    }
}
