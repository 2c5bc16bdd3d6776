//! Cleaning up after a job: what the host's finish did not, tried again
//! over a connection of its own when the job's was lost.

use super::*;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CleanupError {
    #[error(transparent)]
    Transport(TransportError),
    #[error(transparent)]
    Lock(LockError),
}

pub(crate) fn is_connection_lost(e: &CleanupError) -> bool {
    match e {
        CleanupError::Transport(t) | CleanupError::Lock(LockError::Transport(t)) => {
            t.is_connection_lost() || t.is_connect_failure()
        }
        CleanupError::Lock(_) => false,
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
        Err(CleanupError::Lock(LockError::Remote {
            context: "removing temporary files".into(),
            host: locks.transport().describe(),
            detail: said.trim().to_string(),
        }))
    }
}
