//! How the libraries' errors reach a person: the message, the lines scripts
//! grep on stdout (mq.sh's), and the exit status mq-core's `exit` module
//! decides.

use mq_core::exit;
use mq_core::job::JobError;
use mq_core::{LockError, QueueError};

use crate::Failure;

/// Turns queue errors into mq.sh's lines and exit codes.
pub fn failure(error: QueueError) -> Failure {
    let code = exit::of_queue_error(&error);
    match error {
        QueueError::Unreachable { host, source } => Failure {
            // Scripts grep this exact line on stdout (PROTOCOL.md).
            stdout: Some(format!("Unable to ssh to {host}")),
            message: format!(
                "mq: {source}\nhint: `mq config --ssh` shows how mq reads your SSH configuration for {host}"
            ),
            code,
        },
        QueueError::UnknownTarget(e) => Failure::stdout(e.to_string(), code),
        QueueError::Lock(LockError::VersionMismatch { .. }) => {
            Failure::stdout(error.to_string(), code)
        }
        QueueError::Lock(LockError::NotAcquired {
            ref system,
            ref detail,
        }) => Failure {
            stdout: Some(format!("Failed to acquire lock for system ({system})")),
            message: if detail.is_empty() {
                String::new()
            } else {
                format!("mq: {detail}")
            },
            code,
        },
        QueueError::Lock(ref e @ LockError::AlreadyYours { ref system, .. }) => Failure {
            stdout: Some(format!("{e}\nFailed to acquire lock for system ({system})")),
            message: String::new(),
            code,
        },
        QueueError::Lock(LockError::Interrupted { .. }) => {
            Failure::new(format!("mq: {error}"), code)
        }
        QueueError::Lock(e @ LockError::QueueTimeout { .. }) => {
            Failure::new(format!("mq: {e}"), code)
        }
        QueueError::Lock(LockError::Refused { system, reason }) => Failure::new(
            format!(
                "mq: {system} is out of service ({reason}); see `mq health {system}`, or run it with --any-health"
            ),
            code,
        ),
        QueueError::Lock(LockError::PriorityRefused { reason, .. }) => {
            Failure::new(format!("mq: --priority: {reason}"), code)
        }
        e @ QueueError::NoHealthyMember { .. } => {
            Failure::new(format!("mq: {e}; see `mq health`"), code)
        }
        QueueError::Lock(LockError::BadInput(text)) => {
            Failure::new(format!("mq: {text}"), code)
        }
        QueueError::Lock(LockError::Transport(e)) if e.is_connection_lost() => {
            Failure::new(format!("mq: {e}"), code)
        }
        other => Failure::new(format!("mq: {other}"), code),
    }
}

pub(crate) fn job_failure(error: JobError) -> Failure {
    let code = exit::of_job_error(&error);
    match error {
        JobError::Check(text) => Failure::stdout(text, code),
        JobError::UnknownTarget(e) => Failure::stdout(e.to_string(), code),
        e @ JobError::NotHolder { .. } => Failure::stdout(e.to_string(), code),
        JobError::Queue(q) => failure(q),
        JobError::Interrupted => Failure::new("mq: interrupted", code),
        other => Failure::new(format!("mq: {other}"), code),
    }
}
