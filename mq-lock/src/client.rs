//! The lock client: one transport, one BASE, the preflight (BASE/VERSION)
//! folded into the first request, and scripts run under the safe head.

use crate::*;

/// What the first command learned about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The remote user (`whoami` on the host).
    pub user: String,
}

/// Lock operations on one host's lock directory.
pub struct LockClient<T> {
    pub(crate) host: T,
    pub(crate) base: String,
    pub(crate) preflight: Mutex<Option<Preflight>>,
}

impl<T: Transport> LockClient<T> {
    /// Locks in `base` on `host`. Nothing is sent until the first operation.
    pub fn new(host: T, base: &str) -> LockClient<T> {
        let trimmed = base.trim_end_matches('/');
        LockClient {
            host,
            base: if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            },
            preflight: Mutex::new(None),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.host
    }

    /// The lock directory.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The preflight's findings, running it if no operation has yet.
    pub fn preflight(&self) -> Result<Preflight, LockError> {
        if let Some(p) = self.cached() {
            return Ok(p);
        }
        self.records(&[])?;
        self.cached()
            .ok_or_else(|| self.remote("preflight", "no answer"))
    }

    pub(crate) fn cached(&self) -> Option<Preflight> {
        self.preflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The remote user if the preflight has run (scripts then skip it).
    pub(crate) fn known(&self) -> Option<String> {
        self.cached().map(|p| p.user)
    }

    pub(crate) fn remote(&self, context: &str, detail: impl Into<String>) -> LockError {
        LockError::Remote {
            context: context.into(),
            host: self.host.describe(),
            detail: detail.into(),
        }
    }

    /// Takes the preflight line off the front of `text` (if it is there),
    /// recording the user, and fails on a version mismatch.
    pub(crate) fn take_preflight<'a>(
        &self,
        text: &'a [u8],
        status: &ExitStatus,
    ) -> Result<&'a [u8], LockError> {
        let Some(rest) = text.strip_prefix(script::PREFLIGHT_MARK.as_bytes()) else {
            return Ok(text);
        };
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..end])
            .trim_end_matches('\r')
            .to_string();
        let (user, version) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if status.code() == Some(script::code::VERSION) || version != PROTOCOL_VERSION {
            return Err(LockError::VersionMismatch {
                host: self.host.describe(),
                base: self.base.clone(),
                found: version.to_string(),
            });
        }
        *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) = Some(Preflight {
            user: user.to_string(),
        });
        Ok(&rest[(end + 1).min(rest.len())..])
    }

    /// Runs a capture script, handling the preflight line.
    pub(crate) fn run(
        &self,
        context: &str,
        script: &str,
    ) -> Result<(ExitStatus, Vec<u8>, String), LockError> {
        let out = self.host.run(script)?;
        let body = self.take_preflight(&out.stdout, &out.status)?.to_vec();
        if out.status.code().is_none() {
            return Err(self.remote(context, out.status.to_string()));
        }
        let stderr = out.stderr_text();
        Ok((out.status, body, stderr))
    }

    /// Runs a script of the caller's own on the host after the
    /// [`script_head`](Self::script_head) (BASE as `$b`, the user as
    /// `$mq_me`, the safe file and history functions), with PROTOCOL.md's
    /// preflight folded in until it has run: a BASE without the right
    /// `VERSION` is refused before `body` runs, as every lock operation
    /// refuses it. Returns the status, stdout (the preflight line taken
    /// off) and stderr; a script killed by a signal is an error.
    pub fn run_script(
        &self,
        context: &str,
        body: &str,
    ) -> Result<(ExitStatus, Vec<u8>, String), LockError> {
        self.run(context, &format!("{}{body}", self.script_head()))
    }

    /// What every [`release_script`](Self::release_script) starts with
    /// (BASE, the user, the safe file and history functions): a caller that
    /// joins it to its own scripts sends this once, then the release script
    /// with this prefix stripped.
    pub fn script_head(&self) -> String {
        script::head(&self.base, self.known().as_deref())
    }
}
