//! Giving a lock back, cancelling waits, and a cancelled CI job's cleanup.

use crate::*;

/// The count of the cancel script's `MQ-CANCELLED <n>` line.
pub(crate) fn cancelled_count(text: &str) -> Option<usize> {
    text.lines()
        .find_map(|l| l.strip_prefix(script::CANCELLED_MARK))
        .and_then(|n| n.trim().parse().ok())
}

impl<T: Transport> LockClient<T> {
    /// Releases `system`'s lock: without `force`, only if it is ours and holds
    /// `key` (PROTOCOL.md's release).
    pub fn release(&self, system: &str, key: &str, force: bool) -> Result<(), LockError> {
        self.release_after(system, key, force, "").map(|_| ())
    }

    /// Runs `before` (`sh` commands, e.g. removing a job's temporary files)
    /// on the host, then [`release`](Self::release)s, in one round trip.
    /// Returns what `before` printed on stdout (lines starting `MQ-` are
    /// reserved). It runs whether or not the lock turns out to be ours.
    pub fn release_after(
        &self,
        system: &str,
        key: &str,
        force: bool,
        before: &str,
    ) -> Result<String, LockError> {
        let script = self.release_script(system, key, force, before)?;
        let (status, body, stderr) = self.run("releasing the lock", &script)?;
        self.release_outcome(system, &status, &String::from_utf8_lossy(&body), &stderr)
    }

    /// The script [`release_after`](Self::release_after) runs, for a caller
    /// that runs it at the end of a script of its own (a job's host-side
    /// finish): it ends the script with its verdict as the exit status. Read
    /// that with [`release_outcome`](Self::release_outcome).
    pub fn release_script(
        &self,
        system: &str,
        key: &str,
        force: bool,
        before: &str,
    ) -> Result<String, LockError> {
        check_system(system)?;
        check_key(key)?;
        Ok(script::release(
            &self.base,
            system,
            key,
            force,
            before,
            self.known().as_deref(),
        ))
    }

    /// What a [`release_script`](Self::release_script) that ended with
    /// `status`, printing `stdout` and `stderr`, did: `Ok` with what `before`
    /// printed, or why the lock was not released.
    pub fn release_outcome(
        &self,
        system: &str,
        status: &ExitStatus,
        stdout: &str,
        stderr: &str,
    ) -> Result<String, LockError> {
        match status.code() {
            Some(0) => Ok(stdout.to_string()),
            Some(script::code::NOT_YOURS) => {
                let owner = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(script::OWNER_MARK))
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty());
                Err(LockError::NotYours {
                    system: system.into(),
                    owner,
                })
            }
            Some(script::code::WRONG_KEY) => Err(LockError::WrongKey {
                system: system.into(),
            }),
            _ => Err(self.remote(
                &format!("releasing the lock of {system}"),
                if stderr.trim().is_empty() {
                    status.to_string()
                } else {
                    stderr.trim().to_string()
                },
            )),
        }
    }

    /// Kills this user's processes on the host waiting for `system`'s lock
    /// with `key` (old clients' waits too); returns how many there were.
    pub fn cancel(&self, system: &str, key: &str) -> Result<usize, LockError> {
        check_system(system)?;
        check_key(key)?;
        self.cancelled(&script::cancel(
            &self.base,
            Some(system),
            key,
            self.known().as_deref(),
        ))
    }

    pub(crate) fn cancelled(&self, script: &str) -> Result<usize, LockError> {
        let (status, body, stderr) = self.run("cancelling waits", script)?;
        match cancelled_count(&String::from_utf8_lossy(&body)) {
            Some(n) if status.success() => Ok(n),
            _ => Err(self.remote("cancelling waits", stderr.trim())),
        }
    }

    /// After a CI job was cancelled: kills this user's waits with `key` on
    /// any system, then releases every lock among `systems` that this user
    /// holds with `key`. One round trip; returns the systems released.
    pub fn cleanup(&self, key: &str, systems: &[&str]) -> Result<(usize, Vec<String>), LockError> {
        check_key(key)?;
        for s in systems {
            check_system(s)?;
        }
        let (status, body, stderr) = self.run(
            "cleaning up",
            &script::cleanup(&self.base, key, systems, self.known().as_deref()),
        )?;
        if !status.success() {
            return Err(self.remote("cleaning up", stderr.trim()));
        }
        let text = String::from_utf8_lossy(&body);
        let cancelled = cancelled_count(&text).unwrap_or(0);
        let released = text
            .lines()
            .filter_map(|l| l.strip_prefix(script::RELEASED_MARK))
            .map(str::to_string)
            .collect();
        Ok((cancelled, released))
    }
}
