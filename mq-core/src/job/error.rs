//! How a job fails, and how another thread (or a signal) stops one.

use super::*;

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A check failed before anything happened on the host.
    #[error("{0}")]
    Check(String),
    /// The name is neither a system nor a pool.
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    /// `-n` was given but the lock is not ours (or has another key).
    #[error("Failed to run because you said you own the lock (-n flag), but you don't!\n{info}")]
    NotHolder {
        /// The system.
        system: String,
        /// Its info line.
        info: String,
    },
    /// A queue operation failed (connection, lock).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The connection failed during the job (cleanup was attempted).
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// Cleanup after the job left something on the host (the text says
    /// exactly what, and how to release it).
    #[error("{0}")]
    LeftBehind(String),
    /// The host could not do what the job needed once the lock was held
    /// (a temporary directory).
    #[error("{0}")]
    Host(String),
    /// The console could not be read (a local failure, not the connection).
    #[error("console: {0}")]
    Console(String),
    /// The log (`-l`) could not be written during or after the run.
    #[error("cannot write the log {}: {message}", path.display())]
    Log {
        /// The log.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Stopped by the cancellation handle (^C, SIGTERM, SIGHUP) before the
    /// board started (waiting, uploading); once it started, `run_job`
    /// returns its report with [`Outcome::Interrupted`] and exit code 130.
    #[error("interrupted")]
    Interrupted,
}

impl From<LockError> for JobError {
    fn from(e: LockError) -> JobError {
        match e {
            LockError::Interrupted { .. } => JobError::Interrupted,
            other => JobError::Queue(QueueError::Lock(other)),
        }
    }
}

/// Stops a job from another thread (or a signal handler's flag). The job
/// cleans up fully (the board stopped, its files removed, the lock given
/// back) before it returns: [`JobError::Interrupted`] when the board had not
/// started yet (waiting in line, uploading), else its [`JobReport`] with
/// [`Outcome::Interrupted`], class `interrupted` and exit code 130.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A handle over an existing flag (e.g. one a signal handler sets).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }

    /// Cancels.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
