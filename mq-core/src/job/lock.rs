//! Taking the board's lock for a job (a pool's members at once, the plan
//! riding on the acquire's session), or checking it is held (`-n`).

use super::*;

impl MachineQueue {
    /// Takes the system's lock (or checks that the caller holds it, with
    /// `reuse_held_lock`). A run's directory is made in the same round trip,
    /// and the run's commands ride on the acquire's own session when they
    /// fit one exec request: no session of their own to open. Otherwise
    /// the returned [`Kept`] keeps a lock with a reclaim timeout fresh.
    /// How a job waits for its lock: its key, retries, reclaim timeout and
    /// keeping fresh, the health check of a system named by itself, its
    /// priority and line.
    fn acquire_options(
        &self,
        spec: &JobSpec,
        first: &str,
        pool: Option<&str>,
        cancel: &Cancel,
    ) -> AcquireOptions {
        AcquireOptions {
            key: spec.key.clone(),
            retry_seconds: spec.retry_seconds,
            retries: spec.retries,
            reclaim_timeout: spec.timeout.map(|d| d + RECLAIM_MARGIN),
            cancel: Some(cancel.flag()),
            force_fallback: false,
            // Without a reclaim timeout nobody reclaims the lock: its
            // time stays the time it was taken.
            keep_fresh: spec.timeout.map(|_| KEEP_FRESH_PERIOD),
            // A system named directly must be in service (a pool's choice
            // was made among those that are), checked before the wait.
            precheck: if pool.is_none() && !spec.any_health {
                health::precheck_script(&self.config().base.value, first)
            } else {
                String::new()
            },
            priority: spec.priority,
            queue_timeout: spec.queue_timeout,
            pool: pool.unwrap_or_default().to_string(),
        }
    }

    pub(crate) fn take_lock(
        &self,
        spec: &JobSpec,
        members: &[System],
        pool: Option<&str>,
        mut plans: Vec<Option<Plan>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<(System, Held, Option<Kept>), JobError> {
        let first = &members[0];
        if spec.reuse_held_lock {
            self.check_holder(&first.name, &spec.key)?;
            let held = Held {
                lines: None,
                session: None,
                plan: plans.swap_remove(0),
            };
            return Ok((first.clone(), held, None));
        }
        let lock_started = Instant::now();
        events(JobEvent::Acquiring {
            system: &first.name,
        });
        let options = self.acquire_options(spec, &first.name, pool, cancel);
        let then = plans[0]
            .as_ref()
            .map(|_| make_temp_dir())
            .unwrap_or_default();
        let scripts = handover_scripts(&plans, members.len());
        let handovers: Vec<&str> = scripts.iter().map(String::as_str).collect();
        let mut waiting = |e| match e {
            WaitEvent::Holder { owner, since } => events(JobEvent::Waiting {
                owner: &owner,
                since: &since,
            }),
            WaitEvent::Place(place) => events(JobEvent::InLine { place: &place }),
        };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let mut kept =
            self.locks()
                .acquire_any(&names, &options, &then, &handovers, &mut waiting)?;
        let taken = names.iter().position(|n| *n == kept.system).unwrap_or(0);
        let system = members[taken].clone();
        if let (Some(pool), true) = (pool, taken != 0) {
            events(JobEvent::Selected {
                system: &system.name,
                pool,
            });
        }
        let plan = plans.swap_remove(taken);
        let lines = Some(std::mem::take(&mut kept.lines));
        events(JobEvent::Acquired {
            system: &system.name,
            waited: lock_started.elapsed(),
        });
        if !handovers.is_empty() {
            let session = kept.into_session();
            let held = Held {
                lines,
                session,
                plan,
            };
            return Ok((system, held, None));
        }
        let held = Held {
            lines,
            session: None,
            plan,
        };
        Ok((system, held, Some(kept)))
    }

    /// `-n`: the lock must be ours (and hold the key, if one was given).
    pub(crate) fn check_holder(&self, system: &str, key: &str) -> Result<(), JobError> {
        let state = self.info(system)?;
        let me = self.locks().preflight()?.user;
        let ours = match &state {
            LockState::Held(h) => h.owner == me && (key == "0" || h.key == key),
            LockState::Free => false,
        };
        if ours {
            Ok(())
        } else {
            Err(JobError::NotHolder {
                system: system.into(),
                info: state.info_line(system),
            })
        }
    }
}

/// Every member's run, to ride on the acquire as its hand-over when they
/// all fit one exec request together (the taken member's runs); none when
/// they do not (the run then starts a session of its own).
fn handover_scripts(plans: &[Option<Plan>], members: usize) -> Vec<String> {
    let scripts: Vec<String> = plans
        .iter()
        .flatten()
        .map(|p| format!("[ -n \"$mq_d\" ] || exit 76\n{}", p.script))
        .collect();
    let room = ACQUIRE_SCRIPT_ALLOWANCE + ACQUIRE_MEMBER_ALLOWANCE * members;
    let fits = scripts.iter().map(String::len).sum::<usize>() + room <= MAX_ACQUIRE_COMMAND;
    if fits {
        scripts
    } else {
        Vec::new()
    }
}
