//! Cleaning up after a job: what the host's finish did not, tried again
//! over a connection of its own when the job's was lost.

use super::*;

/// Why a cleanup did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CleanupError {
    #[error(transparent)]
    Transport(TransportError),
    #[error(transparent)]
    Lock(LockError),
    /// The run's temporary files are still on the host (what removing them
    /// said).
    #[error("removing temporary files on {host} failed: {detail}")]
    FilesLeft { host: String, detail: String },
}

pub(crate) fn is_connection_lost(e: &CleanupError) -> bool {
    match e {
        CleanupError::Transport(t) | CleanupError::Lock(LockError::Transport(t)) => {
            t.is_connection_lost() || t.is_connect_failure()
        }
        CleanupError::Lock(_) | CleanupError::FilesLeft { .. } => false,
    }
}

/// Removes the temporary directory and releases the lock, in one round trip
/// when there are both; clears from `left` what is done.
pub(crate) fn clean_with<T: Transport>(
    locks: &LockClient<T>,
    left: &mut Leftovers,
    key: &str,
) -> Result<(), CleanupError> {
    // Prints nothing when the directory is gone.
    let remove = left
        .temp_dir
        .as_deref()
        .map(|dir| remove_temp_dir(&quote(dir)));
    let said = if left.release {
        match locks.release_after(&left.system, key, false, remove.as_deref().unwrap_or("")) {
            Ok(said) => said,
            // Not ours any more (taken over after its reclaim timeout, or
            // released by hand): nothing of ours to release. The directory
            // went first, in the same script.
            Err(LockError::NotYours { .. }) => String::new(),
            Err(e) => return Err(CleanupError::Lock(e)),
        }
    } else if let Some(remove) = &remove {
        let out = locks
            .transport()
            .run(remove)
            .map_err(CleanupError::Transport)?;
        out.stdout_text()
    } else {
        String::new()
    };
    left.release = false;
    if said.trim().is_empty() {
        left.temp_dir = None;
        Ok(())
    } else {
        Err(CleanupError::FilesLeft {
            host: locks.transport().describe(),
            detail: said.trim().to_string(),
        })
    }
}

impl MachineQueue {
    /// What the host's finish did: what it removed and released is off the
    /// leftovers; anything else stays for [`clean_up`](Self::clean_up),
    /// which tries again and says exactly what is left.
    pub(crate) fn take_host_cleanup(
        &self,
        host: HostFinish,
        leftovers: &mut Leftovers,
        events: &mut dyn FnMut(JobEvent),
    ) {
        let Some(report) = host.report else {
            return;
        };
        for change in report
            .said
            .lines()
            .filter_map(|l| l.strip_prefix(health::CHANGED_MARK))
        {
            let (state, reason) = change.split_once(' ').unwrap_or((change, ""));
            let text = format!(
                "{} is now {state} (board health): {reason}",
                leftovers.system
            );
            events(JobEvent::Warning(&text));
        }
        let left_dir = report.said.lines().any(|l| l.starts_with(STILL_THERE_MARK));
        if !left_dir {
            leftovers.temp_dir = None;
        }
        if !leftovers.release {
            return;
        }
        let verdict = self.locks().release_outcome(
            &leftovers.system,
            &host.status,
            &report.said,
            &report.said,
        );
        // Released; or not ours any more (taken over after its reclaim
        // timeout, or released by hand): nothing of ours to release.
        if matches!(verdict, Ok(_) | Err(LockError::NotYours { .. })) {
            leftovers.release = false;
        }
    }

    /// Removes the temporary files and releases the lock (one round trip);
    /// reconnects up to [`CLEANUP_ATTEMPTS`] times if the connection is gone.
    /// On failure, says exactly what is left and how to release it.
    pub(crate) fn clean_up(&self, mut left: Leftovers, key: &str) -> Result<(), String> {
        let mut last_error = match clean_with(self.locks(), &mut left, key) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        for attempt in 0..CLEANUP_ATTEMPTS {
            if !is_connection_lost(&last_error) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1 << attempt));
            match open_transport(self.config()) {
                Ok(transport) => {
                    let locks = LockClient::new(transport, &self.config().base.value);
                    match clean_with(&locks, &mut left, key) {
                        Ok(()) => return Ok(()),
                        Err(e) => last_error = e,
                    }
                }
                Err(e) => last_error = CleanupError::Transport(e),
            }
        }
        let mut text = format!(
            "could not clean up on {}: {last_error}",
            self.config().host.value
        );
        if left.release {
            text.push_str(&format!(
                "\n  the lock of {} may still be held: release it with: mq sem -signal {} -k {}",
                left.system,
                left.system,
                quote(key)
            ));
        }
        if let Some(dir) = &left.temp_dir {
            text.push_str(&format!("\n  temporary files left on the host: {dir}"));
        }
        Err(text)
    }
}
