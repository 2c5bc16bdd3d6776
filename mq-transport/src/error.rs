//! What can go wrong on the way to the lab host.

use std::io;
use std::path::PathBuf;

/// A transport failure, with variants a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TCP connection (or proxy) to the host could not be made.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// `host:port` (or the proxy) tried.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// The SSH handshake failed (not an SSH server, or no common algorithms).
    #[error("SSH handshake with {endpoint} failed: {detail}")]
    Handshake {
        /// The endpoint.
        endpoint: String,
        /// What libssh2 said.
        detail: String,
    },
    /// The host's key is not in any known_hosts file and the configuration
    /// (StrictHostKeyChecking yes, or ask without a terminal) refuses it.
    #[error(
        "host key for {host} is not known ({key_type} {fingerprint}); refusing to connect \
         (StrictHostKeyChecking {policy}).\n\
         hint: if this is the right host, add its key to {}, e.g. by connecting once with \
         `ssh` or with StrictHostKeyChecking accept-new",
        known_hosts.display()
    )]
    UnknownHostKey {
        /// The host as looked up (`[host]:port` when the port is not 22).
        host: String,
        /// The key type the server presented.
        key_type: String,
        /// `SHA256:...` as OpenSSH prints it.
        fingerprint: String,
        /// The file that would hold it.
        known_hosts: PathBuf,
        /// The policy in force.
        policy: String,
    },
    /// The host presented a key that differs from the one recorded for it.
    #[error(
        "HOST KEY FOR {host} HAS CHANGED: it presented {key_type} {fingerprint}, which does not \
         match {}:{line}. Someone could be intercepting the connection, or the host was \
         reinstalled; refusing to connect.\n\
         hint: if the change is expected, remove the old entry with \
         `ssh-keygen -R '{host}' -f {}`",
        known_hosts.display(),
        known_hosts.display()
    )]
    HostKeyMismatch {
        /// The host as looked up.
        host: String,
        /// The key type presented.
        key_type: String,
        /// Its fingerprint.
        fingerprint: String,
        /// The file holding the old key.
        known_hosts: PathBuf,
        /// The line of the old key.
        line: usize,
    },
    /// The host's key is marked @revoked.
    #[error("host key for {host} ({fingerprint}) is REVOKED in {}:{line}; refusing to connect", known_hosts.display())]
    HostKeyRevoked {
        /// The host.
        host: String,
        /// Its fingerprint.
        fingerprint: String,
        /// The file.
        known_hosts: PathBuf,
        /// The line.
        line: usize,
    },
    /// No identity was accepted.
    #[error(
        "permission denied for {user}@{host} (tried: {}){}",
        if tried.is_empty() { "no identities found".to_string() } else { tried.join(", ") },
        untried_text(untried)
    )]
    AuthFailed {
        /// The user.
        user: String,
        /// The host.
        host: String,
        /// What was tried.
        tried: Vec<String>,
        /// Ways to authenticate the configuration asks for that mq did not
        /// try, each with its file and line and why.
        untried: Vec<String>,
    },
    /// A key file is encrypted and no agent holds it.
    #[error(
        "key {} is protected by a passphrase and no ssh-agent offered it; mq does not prompt.\n\
         hint: run `ssh-add {}` (with SSH_AUTH_SOCK set) and try again",
        path.display(),
        path.display()
    )]
    EncryptedKey {
        /// The key file.
        path: PathBuf,
    },
    /// The SSH configuration asks for something this transport cannot do.
    #[error(
        "the SSH configuration for {host} asks for what libssh2 cannot do:\n  {}\n\
         hint: use the system ssh client instead (--transport openssh or MQ_TRANSPORT=openssh)",
        directives.join("\n  ")
    )]
    Unsupported {
        /// The host.
        host: String,
        /// Each directive, as `file:line: Directive value (why)`.
        directives: Vec<String>,
    },
    /// The SSH configuration could not be read or parsed.
    #[error("{file}:{line}: {message}")]
    Config {
        /// The file.
        file: String,
        /// The line (0 when the whole file is at fault).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An established connection died (peer gone, keepalives unanswered).
    #[error("connection to {endpoint} lost: {detail}")]
    ConnectionLost {
        /// The endpoint.
        endpoint: String,
        /// What was seen.
        detail: String,
    },
    /// A file transfer failed on the remote side.
    #[error("{operation} {path} on {endpoint} failed: {detail}")]
    RemoteFile {
        /// `upload to` or `download of`.
        operation: &'static str,
        /// The remote path.
        path: String,
        /// The endpoint.
        endpoint: String,
        /// The remote error text or exit status.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    LocalFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Any other SSH protocol error.
    #[error("{context}: {detail}")]
    Ssh {
        /// What was being done.
        context: String,
        /// What libssh2 said.
        detail: String,
    },
    /// Any other I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        source: io::Error,
    },
    /// A copy was stopped by its progress callback.
    #[error("{operation} {path} was cancelled")]
    Cancelled {
        /// `upload to` or `download of`.
        operation: &'static str,
        /// The remote path.
        path: String,
    },
    /// An injected fault (see [`crate::fault`]).
    #[error("injected fault: {0}")]
    Injected(String),
}

impl TransportError {
    /// Whether the connection itself is gone (as opposed to a refused or failed
    /// operation on a live one): the caller may reconnect and retry cleanup.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectionLost { .. } | TransportError::Injected(_)
        )
    }

    /// Whether the connection could not be made at all (PROTOCOL.md's
    /// `Unable to ssh to HOST` case).
    pub fn is_connect_failure(&self) -> bool {
        !self.is_connection_lost()
            && !matches!(
                self,
                TransportError::RemoteFile { .. }
                    | TransportError::LocalFile { .. }
                    | TransportError::Cancelled { .. }
            )
    }

    /// A mapper for I/O errors on the local file `path` (a file being sent
    /// or received), for `map_err`.
    pub fn local_file(path: &std::path::Path) -> impl Fn(io::Error) -> TransportError + Copy + '_ {
        move |source| TransportError::LocalFile {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn cancelled(operation: &'static str, path: &str) -> TransportError {
        TransportError::Cancelled {
            operation,
            path: path.to_string(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> TransportError {
        TransportError::Io {
            context: context.into(),
            source,
        }
    }
}

fn untried_text(untried: &[String]) -> String {
    if untried.is_empty() {
        return String::new();
    }
    format!(
        "\nnot tried:\n  {}\nhint: --transport openssh (MQ_TRANSPORT=openssh) uses the system ssh client, \
         which can; `mq config --ssh` shows how mq reads the configuration",
        untried.join("\n  ")
    )
}

/// Shorthand for transport results.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;
