//! Taking a lock: PROTOCOL.md's acquire, in every member's line of a
//! pool at once, with a run's commands riding on its session.

use crate::*;

/// What an acquire waits for and writes.
#[derive(Debug, Clone)]
pub struct AcquireOptions {
    /// The key to store (`0`: none).
    pub key: String,
    /// Seconds between attempts (default 1; mq.sh's is 8).
    pub retry_seconds: u32,
    /// Retries after the first attempt; negative: for ever (the default).
    pub retries: i64,
    /// The reclaim timeout written into the lock once held (PROTOCOL.md's
    /// NEWTIMEOUT): waiters may remove the lock when it is older than this.
    /// `None` writes nothing, as mq.sh's `run` does (never reclaimable);
    /// `sem -wait` writes its `-T` value, default 0.
    pub reclaim_timeout: Option<u64>,
    /// Set from another thread to stop waiting (the remote wait is killed).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Use the plain-`sh` exclusive-create wait even where `lockfile` exists.
    pub force_fallback: bool,
    /// With [`LockClient::acquire_any`]: touch the lock every this often
    /// while the returned [`Kept`] lives, so that a waiter never reclaims a
    /// lock whose holder is still running (lockfile's `-l` goes by the lock
    /// file's age). Whole seconds, at least 1.
    pub keep_fresh: Option<Duration>,
    /// `sh` commands run on the host before the wait (in the same round
    /// trip); calling `mq_refuse REASON` ends the acquire with
    /// [`LockError::Refused`]. Empty for none.
    pub precheck: String,
    /// Place in line among mq waiters: higher first; equal priorities in
    /// arrival order; a waiter gains one point every ten minutes it waits.
    pub priority: i32,
    /// Give up after this many seconds of waiting
    /// ([`LockError::QueueTimeout`]), leaving nothing behind.
    pub queue_timeout: Option<u64>,
    /// The pool this wait is for, shown in the line (empty: none).
    pub pool: String,
}

/// A lock kept fresh from the host while this value lives: the acquire's
/// own session on the host touches the lock file periodically, and ends when
/// this is dropped (or the connection, or the process, dies), after which
/// the lock ages again and is reclaimable its timeout later.
pub struct Kept {
    /// The system whose lock was taken (for [`LockClient::acquire_any`],
    /// the member that came free first).
    pub system: String,
    /// What the `then` commands printed.
    pub lines: Vec<String>,
    session: Option<Box<dyn PtyProcess>>,
    /// Output of the session read past the hand-over mark.
    leftover: Vec<u8>,
}

impl Kept {
    /// The session handed over by [`LockClient::acquire_any`]'s hand-over (and
    /// the output already read from it), now the caller's: the lock is no
    /// longer this value's to keep fresh or stop. `None` after an acquire
    /// without a hand-over that ended at once.
    pub fn into_session(mut self) -> Option<(Box<dyn PtyProcess>, Vec<u8>)> {
        let session = self.session.take()?;
        Some((session, std::mem::take(&mut self.leftover)))
    }

    /// Whether the host is keeping the lock fresh.
    pub fn is_kept_fresh(&self) -> bool {
        self.session.is_some()
    }

    /// Stops keeping the lock fresh: closes the host's session at once (its
    /// shell dies of the hangup), without waiting for the host to say so.
    pub fn stop(&mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = session.cut();
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("system", &self.system)
            .field("lines", &self.lines)
            .field("kept_fresh", &self.is_kept_fresh())
            .finish()
    }
}

impl Default for AcquireOptions {
    fn default() -> AcquireOptions {
        AcquireOptions {
            key: "0".into(),
            retry_seconds: 1,
            retries: -1,
            reclaim_timeout: Some(0),
            cancel: None,
            force_fallback: false,
            keep_fresh: None,
            precheck: String::new(),
            priority: 0,
            queue_timeout: None,
            pool: String::new(),
        }
    }
}

/// The lines an acquire script prints, sorted as they come.
#[derive(Default)]
pub(crate) struct AcquireLines {
    /// Lines before the lock was taken (preflight, failures), for the error.
    pub(crate) before: Vec<String>,
    /// Lines the `then` commands printed, once the lock was taken.
    pub(crate) then: Option<Vec<String>>,
    /// The system taken.
    pub(crate) system: Option<String>,
}

impl AcquireLines {
    /// Takes one line; true when the script says it now holds the lock open
    /// (keeping it fresh), which ends the acquire.
    fn hear(&mut self, text: String, events: &mut dyn FnMut(WaitEvent)) -> bool {
        if let Some(holder) = text.strip_prefix(script::HOLDER_MARK) {
            let (owner, since) = holder.split_once(' ').unwrap_or((holder, ""));
            events(WaitEvent::Holder {
                owner: owner.to_string(),
                since: since.to_string(),
            });
        } else if let Some(place) = text.strip_prefix(script::PLACE_MARK) {
            if let Some(place) = Place::parse(place) {
                events(WaitEvent::Place(place));
            }
        } else if let Some(system) = text.strip_prefix(script::ACQUIRED_MARK) {
            self.system = Some(system.to_string());
            self.then = Some(Vec::new());
        } else if text == script::HOLDING_MARK {
            return true;
        } else if text.starts_with(script::PREFLIGHT_MARK) {
            self.before.push(text);
        } else if let Some(lines) = self.then.as_mut() {
            lines.push(text);
        } else if !text.is_empty() {
            self.before.push(text);
        }
        false
    }

    /// A precheck's reason for refusing.
    fn refusal(&self) -> String {
        self.before
            .iter()
            .find_map(|l| l.strip_prefix(script::REFUSED_MARK))
            .unwrap_or("refused")
            .to_string()
    }

    /// The lock-file format version the host reported.
    fn found_version(&self) -> String {
        self.before
            .iter()
            .find_map(|l| l.strip_prefix(script::PREFLIGHT_MARK))
            .and_then(|l| l.split_once(' '))
            .map_or(String::new(), |(_, v)| v.to_string())
    }

    /// What the host said about a failed acquire, markers left out.
    fn detail(self) -> String {
        self.before
            .into_iter()
            .filter(|l| !l.starts_with(script::MARK_PREFIX))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl<T: Transport> LockClient<T> {
    /// Takes `system`'s lock, waiting as `options` say; `events` hears who
    /// holds it meanwhile.
    pub fn acquire(
        &self,
        system: &str,
        options: &AcquireOptions,
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<(), LockError> {
        let options = AcquireOptions {
            keep_fresh: None,
            ..options.clone()
        };
        self.acquire_any(&[system], &options, "", &[], events)
            .map(|_| ())
    }

    /// Takes the lock of whichever of `systems` (a pool's members, or one
    /// system) comes to this wait first: the wait is in every member's line,
    /// tries a member only when nobody is ahead of it there, and leaves every
    /// line once it holds one. [`Kept::system`] says which.
    ///
    /// Once the lock is held, `then` (`sh` commands) runs in the same round
    /// trip, on the acquire's terminal; [`Kept::lines`] holds what it
    /// printed (its failure does not give the lock back). With
    /// `options.keep_fresh`, the host keeps the lock fresh from the
    /// background while the returned [`Kept`] lives (no extra round trip:
    /// the acquire's own session stays open; its pid in `$mq_keeper`).
    ///
    /// `handovers` is empty, or one hand-over for each of `systems`: `sh`
    /// commands the taken member's run in the same session once the lock is
    /// held, with the session handed over ([`Kept::into_session`]) and the
    /// hand-over's default signal handling (a hangup ends it). Its exit
    /// status and what it does with the lock are its own.
    ///
    /// PROTOCOL.md's "already yours" check is made only for a single
    /// system: a pool's members already held count as busy.
    pub fn acquire_any(
        &self,
        systems: &[&str],
        options: &AcquireOptions,
        then: &str,
        handovers: &[&str],
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<Kept, LockError> {
        if systems.is_empty() {
            return Err(LockError::BadInput("nothing to wait for".into()));
        }
        for system in systems {
            check_system(system)?;
        }
        check_key(&options.key)?;
        assert!(
            handovers.is_empty() || handovers.len() == systems.len(),
            "one hand-over for each system"
        );
        let name = match (systems, options.pool.as_str()) {
            ([one], _) => one.to_string(),
            (_, "") => systems.join(","),
            (_, pool) => pool.to_string(),
        };
        let script = self.acquire_script(systems, options, then, handovers);
        let mut process = self.host.spawn_pty(&script, PtySize::default())?;
        let mut pending = Vec::new();
        let mut said = AcquireLines::default();
        let mut buf = [0u8; 4096];
        loop {
            if options
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                process.hangup()?;
                drop(process);
                self.undo_if_taken(systems, &options.key);
                return Err(LockError::Interrupted { system: name });
            }
            match process.read(&mut buf, Some(Duration::from_millis(100)))? {
                ReadOutcome::Data(n) => pending.extend_from_slice(&buf[..n]),
                ReadOutcome::TimedOut => continue,
                ReadOutcome::Eof => break,
            }
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                if text.starts_with(script::PREFLIGHT_MARK) {
                    // A version mismatch is known for sure only from the
                    // exit status; record the user now, judge at the end.
                    let _ =
                        self.take_preflight(format!("{text}\n").as_bytes(), &ExitStatus::Code(0));
                }
                if said.hear(text, events) {
                    return Ok(Kept {
                        system: said.system.take().unwrap_or(name),
                        lines: said.then.unwrap_or_default(),
                        session: Some(process),
                        leftover: pending,
                    });
                }
            }
        }
        let status = process.wait()?;
        self.acquire_outcome(&name, status, said, options.queue_timeout)
    }

    /// The host script for an acquire.
    pub(crate) fn acquire_script(
        &self,
        systems: &[&str],
        options: &AcquireOptions,
        then: &str,
        handover: &[&str],
    ) -> String {
        let new_timeout = options
            .reclaim_timeout
            .map(|t| t.to_string())
            .unwrap_or_default();
        script::acquire(
            &script::Acquire {
                base: &self.base,
                systems,
                key: &options.key,
                retry_seconds: options.retry_seconds.max(1),
                retries: options.retries,
                new_timeout: &new_timeout,
                force_fallback: options.force_fallback,
                then,
                keep_fresh: options
                    .keep_fresh
                    .map(|d| d.as_secs().clamp(1, u32::MAX as u64) as u32),
                handover,
                precheck: &options.precheck,
                priority: options.priority,
                queue_timeout: options.queue_timeout,
                pool: &options.pool,
            },
            self.known().as_deref(),
        )
    }

    /// What the acquire script's exit status means, once it has ended.
    pub(crate) fn acquire_outcome(
        &self,
        system: &str,
        status: ExitStatus,
        said: AcquireLines,
        timeout: Option<u64>,
    ) -> Result<Kept, LockError> {
        match status.code() {
            Some(0) => Ok(Kept {
                system: said.system.unwrap_or_else(|| system.to_string()),
                lines: said.then.unwrap_or_default(),
                session: None,
                leftover: Vec::new(),
            }),
            Some(script::code::OWN) => Err(LockError::AlreadyYours {
                system: system.into(),
                with_key: false,
            }),
            Some(script::code::OWN_KEY) => Err(LockError::AlreadyYours {
                system: system.into(),
                with_key: true,
            }),
            Some(script::code::QUEUE_TIMEOUT) => Err(LockError::QueueTimeout {
                system: system.into(),
                seconds: timeout.unwrap_or(0),
            }),
            Some(script::code::REFUSED) => Err(LockError::Refused {
                system: system.into(),
                reason: said.refusal(),
            }),
            Some(script::code::PRIORITY) => Err(LockError::PriorityRefused {
                system: system.into(),
                reason: said.refusal(),
            }),
            Some(script::code::VERSION) => {
                *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(LockError::VersionMismatch {
                    host: self.host.describe(),
                    base: self.base.clone(),
                    found: said.found_version(),
                })
            }
            _ => Err(LockError::NotAcquired {
                system: system.into(),
                detail: said.detail(),
            }),
        }
    }

    /// After an interrupted wait: the hangup may have come just after
    /// `lockfile` succeeded (the script finishes writing the key then, by
    /// design). If the lock is ours with our key, give it back, so that an
    /// interrupted acquire never leaves a lock behind. (Another wait of the
    /// same user with the same key is the same holder as far as PROTOCOL.md
    /// goes: its "already yours" rule cannot tell them apart either.)
    pub(crate) fn undo_if_taken(&self, systems: &[&str], key: &str) {
        let Ok(user) = self.preflight().map(|p| p.user) else {
            return;
        };
        // Give the script's last few commands a moment to finish.
        std::thread::sleep(Duration::from_millis(100));
        let Ok(states) = self.info_many(systems) else {
            return;
        };
        for (system, state) in states {
            if let LockState::Held(h) = state {
                if h.owner == user && h.key == key {
                    let _ = self.release(&system, key, false);
                }
            }
        }
    }
}
