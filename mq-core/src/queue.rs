//! [`MachineQueue`]: one connection to the lab host, the inventory, and the
//! lock operations on boards named as users name them (systems or pools).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use mq_lock::{AcquireOptions, Holder, LockClient, LockError, LockState, WaitEvent};
use mq_transport::{
    LocalTransport, OpensshOptions, OpensshTransport, SshOptions, SshTransport, Transport,
    TransportError,
};

use crate::config::{Config, TransportKind};
use crate::health::{self, Health, State};
use crate::inventory::{Inventory, InventoryError, Target, UnknownTarget};
use crate::sites::{Site, SiteQueue};

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The inventory is unusable.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The name is neither a system nor a pool (checked before connecting).
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    /// The lab host could not be reached (PROTOCOL.md: `Unable to ssh to HOST`).
    #[error("Unable to ssh to {host}")]
    Unreachable {
        /// The configured host.
        host: String,
        /// Why.
        source: Box<TransportError>,
    },
    /// A lock operation failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Every member of the pool is out of service (bad, in maintenance,
    /// retired); the text says which and why.
    #[error("Pool {pool} has no member in service: {detail}")]
    NoHealthyMember {
        /// The pool.
        pool: String,
        /// Each member's state and reason.
        detail: String,
    },
    /// Changing a board's health on its host failed (the host's words say
    /// why: a file another user made, a full disk).
    #[error("setting the health of {system} on {host} failed: {detail}")]
    Health {
        /// The system.
        system: String,
        /// The host.
        host: String,
        /// What the host said.
        detail: String,
    },
}

/// A board chosen for a name: the system, and the pool it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The system.
    pub system: String,
    /// The pool named, if a pool was named.
    pub pool: Option<String>,
    /// Every system a wait for the name may take, in the order to try them:
    /// `system` first, then a pool's other members in service (free ones
    /// first, each group in random order). A wait for a pool is in every
    /// member's line and takes the first that comes to it.
    pub members: Vec<String>,
    /// Something to say about the choice (no good member: a suspect one).
    pub note: Option<String>,
}

/// The SSH options the configuration gives for its lab host (the `ssh`
/// transport's, and what `mq config --ssh` shows).
pub fn ssh_options(config: &Config) -> SshOptions {
    let options = SshOptions::new(&config.host.value);
    match &config.ssh_config.value {
        Some(file) => options.config_file(file),
        None => options,
    }
}

/// Opens the transport the configuration asks for.
pub fn open_transport(config: &Config) -> Result<Arc<dyn Transport>, TransportError> {
    open_transport_with(config, false)
}

/// [`open_transport`]; `quick_reads` for a queue that only reads (a
/// whole-lab status): a command that goes a ConnectTimeout without an
/// answer is given up ([`SshTransport::bound_replies`]; the SSH transport
/// only).
pub(crate) fn open_transport_with(
    config: &Config,
    quick_reads: bool,
) -> Result<Arc<dyn Transport>, TransportError> {
    let transport = open_plain(config, quick_reads)?;
    match &config.trace.value {
        Some(path) => Ok(Arc::new(
            mq_transport::trace::TraceTransport::new(transport, path).map_err(|e| {
                TransportError::Io {
                    context: format!("cannot write the trace {} (MQ_TRACE)", path.display()),
                    source: e,
                }
            })?,
        )),
        None => Ok(transport),
    }
}

fn open_plain(config: &Config, quick_reads: bool) -> Result<Arc<dyn Transport>, TransportError> {
    let host = &config.host.value;
    Ok(match config.transport.value {
        TransportKind::Ssh if quick_reads => {
            Arc::new(SshTransport::connect(&ssh_options(config))?.bound_replies())
        }
        TransportKind::Ssh => Arc::new(SshTransport::connect(&ssh_options(config))?),
        TransportKind::Openssh => {
            let mut options = OpensshOptions::new(host);
            options.config_file = config.ssh_config.value.clone();
            Arc::new(OpensshTransport::connect(options)?)
        }
        TransportKind::Local => Arc::new(LocalTransport::new()),
    })
}

/// The machine queue: the inventory and one connection to the lab host.
pub struct MachineQueue {
    config: Config,
    inventory: Inventory,
    locks: LockClient<Arc<dyn Transport>>,
    /// Queues of the other lab hosts, connected on first use (see
    /// [`crate::sites`]).
    sites: std::sync::Mutex<HashMap<Site, Arc<MachineQueue>>>,
    /// Where systems live, when the embedder says so.
    placed: HashMap<String, Site>,
    /// Hosts [`MachineQueue::connect_lab`] could not reach, until said.
    site_failures: std::sync::Mutex<HashMap<Site, QueueError>>,
    /// Made by [`MachineQueue::connect_lab`]: every host's connection,
    /// this one's and those made later, gives up a read that gets no
    /// answer (see [`open_transport_with`]).
    quick_reads: bool,
    /// With `quick_reads`: sites that did not answer, and when they were
    /// last tried (see [`crate::sites`]).
    resting: std::sync::Mutex<HashMap<Site, (String, std::time::Instant)>>,
}

impl MachineQueue {
    /// Loads the inventory and opens ONE connection to the configured host.
    pub fn connect(config: Config) -> Result<MachineQueue, QueueError> {
        let inventory = config.load_inventory()?;
        MachineQueue::connect_with(config, inventory)
    }

    /// Opens ONE connection to the configured host, with an inventory the
    /// caller has already loaded.
    pub fn connect_with(config: Config, inventory: Inventory) -> Result<MachineQueue, QueueError> {
        MachineQueue::connect_reading(config, inventory, false)
    }

    /// [`connect_with`](Self::connect_with); `quick_reads` as
    /// [`open_transport_with`]'s, for this queue and the other sites'.
    pub(crate) fn connect_reading(
        config: Config,
        inventory: Inventory,
        quick_reads: bool,
    ) -> Result<MachineQueue, QueueError> {
        let transport = open_transport_with(&config, quick_reads).map_err(|source| {
            QueueError::Unreachable {
                host: config.host.value.clone(),
                source: Box::new(source),
            }
        })?;
        let mut queue = MachineQueue::with_transport(config, inventory, transport);
        queue.quick_reads = quick_reads;
        Ok(queue)
    }

    pub(crate) fn quick_reads(&self) -> bool {
        self.quick_reads
    }

    pub(crate) fn resting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Site, (String, std::time::Instant)>> {
        self.resting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_quick_reads(&mut self) {
        self.quick_reads = true;
    }

    /// A queue over a transport the caller made (tests, custom setups).
    pub fn with_transport(
        config: Config,
        inventory: Inventory,
        transport: Arc<dyn Transport>,
    ) -> MachineQueue {
        let locks = LockClient::new(transport, &config.base.value);
        MachineQueue {
            config,
            inventory,
            locks,
            sites: std::sync::Mutex::new(HashMap::new()),
            placed: HashMap::new(),
            site_failures: std::sync::Mutex::new(HashMap::new()),
            quick_reads: false,
            resting: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn site_cache(&self) -> &std::sync::Mutex<HashMap<Site, Arc<MachineQueue>>> {
        &self.sites
    }

    pub(crate) fn site_failures(&self) -> &std::sync::Mutex<HashMap<Site, QueueError>> {
        &self.site_failures
    }

    pub(crate) fn placed(&self) -> &HashMap<String, Site> {
        &self.placed
    }

    pub(crate) fn set_placed(&mut self, map: HashMap<String, Site>) {
        self.placed = map;
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The inventory in use.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The lock client (for operations on systems already chosen).
    pub fn locks(&self) -> &LockClient<Arc<dyn Transport>> {
        &self.locks
    }

    /// The connection.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        self.locks.transport()
    }

    /// The system a name stands for: itself, or for a pool a random member
    /// that is not locked (or, all being locked, a random member), as
    /// PROTOCOL.md says. A pool costs one round trip to read its locks.
    pub fn choose(&self, name: &str) -> Result<Choice, QueueError> {
        match self.inventory.resolve(name)? {
            Target::System(system) => Ok(Choice {
                system: system.name.clone(),
                pool: None,
                note: None,
                members: vec![system.name.clone()],
            }),
            Target::Pool(pool) => {
                let all: Vec<&str> = pool.members.iter().map(String::as_str).collect();
                // Each site's members' health and locks, every site at
                // once (one round trip each for the health, one for the
                // locks); a site that does not answer is left out.
                let answers = self.across(&all, |q, systems| {
                    Ok((q.health(systems)?, q.locks.info_many(systems)?))
                });
                let mut health = Vec::new();
                let mut states = HashMap::new();
                let mut first_error = None;
                let mut notes = Vec::new();
                for (site, systems, answer) in answers {
                    match answer {
                        Ok((h, s)) => {
                            health.extend(h);
                            states.extend(s);
                        }
                        Err(e) => {
                            notes.push(format!(
                                "{} did not answer ({e}); its members are left out: {}",
                                site.host,
                                systems.join(" ")
                            ));
                            first_error.get_or_insert(e);
                        }
                    }
                }
                if health.is_empty() {
                    return Err(first_error.expect("a pool has members"));
                }
                let (members, note) = in_service(&pool.name, &health)?;
                notes.extend(note);
                let (mut free, mut busy) = (Vec::new(), Vec::new());
                for system in members {
                    match states.get(&system) {
                        Some(LockState::Free) => free.push(system),
                        _ => busy.push(system),
                    }
                }
                shuffle(&mut free);
                shuffle(&mut busy);
                free.append(&mut busy);
                // A wait is in the lines of the chosen member's host only.
                let site = self.site_of(&free[0]);
                free.retain(|m| self.site_of(m) == site);
                Ok(Choice {
                    system: free[0].clone(),
                    pool: Some(pool.name.clone()),
                    note: (!notes.is_empty()).then(|| notes.join("; ")),
                    members: free,
                })
            }
        }
    }

    /// The health of `systems`, in their order: one round trip to each lab
    /// host they are on, all at once.
    pub fn health(&self, systems: &[&str]) -> Result<Vec<Health>, QueueError> {
        let groups = self.by_site(systems);
        if groups.len() < 2 && groups.first().is_none_or(|(site, _)| *site == self.home()) {
            return self.health_here(systems);
        }
        let mut found = HashMap::new();
        for (_, _, answer) in self.across(systems, |q, s| q.health_here(s)) {
            found.extend(answer?.into_iter().map(|h| (h.system.clone(), h)));
        }
        Ok(systems
            .iter()
            .map(|s| found.remove(*s).unwrap_or_else(|| Health::good(s)))
            .collect())
    }

    /// [`health`](Self::health) on this queue's host (one round trip).
    fn health_here(&self, systems: &[&str]) -> Result<Vec<Health>, QueueError> {
        for s in systems {
            mq_lock::check_system(s)?;
        }
        let script = health::read_script(&self.config.base.value, systems);
        let (_, out, _) = self.locks.run_script("reading health", &script)?;
        Ok(health::parse_read(systems, &String::from_utf8_lossy(&out)))
    }

    /// Sets `system`'s health as an admin does (`by` this connection's user),
    /// logging the change.
    pub fn set_health(&self, system: &str, state: State, reason: &str) -> Result<(), QueueError> {
        let q = self.for_system(system)?;
        mq_lock::check_system(system)?;
        let at = crate::job::format_rfc3339(std::time::SystemTime::now());
        let by = q.transport().user().to_string();
        let health = Health {
            system: system.to_string(),
            state,
            since: at.clone(),
            by: by.clone(),
            reason: reason.to_string(),
            run: String::new(),
            failures: 0,
        };
        let change = health::Change {
            at,
            system: system.to_string(),
            from: String::new(),
            to: state.name().to_string(),
            by,
            reason: reason.to_string(),
            run: String::new(),
        };
        let context = format!("setting the health of {system}");
        let (status, _, stderr) = q
            .locks
            .run_script(&context, &health::set_script(&health, &change))?;
        if !status.success() {
            return Err(QueueError::Health {
                system: system.to_string(),
                host: q.transport().describe(),
                detail: stderr.trim().to_string(),
            });
        }
        Ok(())
    }

    /// The health log: every change of state, oldest first (`system`'s only
    /// when given).
    pub fn health_log(&self, system: Option<&str>) -> Result<Vec<health::Change>, QueueError> {
        let q = match system {
            Some(s) => self.for_system(s)?,
            None => SiteQueue::Home(self),
        };
        let (_, out, _) = q
            .locks
            .run_script("reading the health log", &health::log_script())?;
        Ok(health::parse_log(&String::from_utf8_lossy(&out))
            .into_iter()
            .filter(|c| system.is_none_or(|s| c.system == s))
            .collect())
    }

    /// The members of `pool` this connection's user holds with `key` (one
    /// round trip), for releasing "the pool" as the member one holds.
    pub fn held_in_pool(&self, pool: &str, key: &str) -> Result<Vec<String>, QueueError> {
        let Target::Pool(pool) = self.inventory.resolve(pool)? else {
            return Ok(Vec::new());
        };
        let members: Vec<&str> = pool.members.iter().map(String::as_str).collect();
        let mut held = Vec::new();
        for (_, _, answer) in self.across(&members, |q, systems| {
            let me = q.transport().user().to_string();
            Ok(q.locks
                .info_many(systems)?
                .into_iter()
                .filter(
                    |(_, state)| matches!(state, LockState::Held(h) if h.owner == me && h.key == key),
                )
                .map(|(system, _)| system)
                .collect::<Vec<_>>())
        }) {
            held.extend(answer?);
        }
        Ok(held)
    }

    /// The lock state of a system.
    pub fn info(&self, system: &str) -> Result<LockState, QueueError> {
        Ok(self.for_system(system)?.locks.info(system)?)
    }

    /// Every locked system of the inventory (lock files of other names are
    /// ignored, as PROTOCOL.md's dumpall says).
    pub fn dump_all(&self) -> Result<Vec<(String, Holder)>, QueueError> {
        let all = self.locks.dump_all()?;
        Ok(all
            .into_iter()
            .filter(|(name, _)| self.inventory.system(name).is_some())
            .collect())
    }

    /// Takes a system's lock.
    pub fn acquire(
        &self,
        system: &str,
        options: &AcquireOptions,
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<(), QueueError> {
        Ok(self
            .for_system(system)?
            .locks
            .acquire(system, options, events)?)
    }

    /// Takes the lock of one of a choice's members: the system named, or
    /// for a pool whichever member comes to this wait first (it waits in
    /// every member's line); returns the system taken.
    pub fn acquire_choice(
        &self,
        choice: &Choice,
        options: &AcquireOptions,
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<String, QueueError> {
        let q = self.for_system(&choice.system)?;
        let members: Vec<&str> = choice.members.iter().map(String::as_str).collect();
        let options = AcquireOptions {
            keep_fresh: None,
            pool: choice.pool.clone().unwrap_or_default(),
            ..options.clone()
        };
        let kept = q.locks.acquire_any(&members, &options, "", &[], events)?;
        Ok(kept.system.clone())
    }

    /// Releases a system's lock.
    pub fn release(&self, system: &str, key: &str, force: bool) -> Result<(), QueueError> {
        Ok(self.for_system(system)?.locks.release(system, key, force)?)
    }

    /// Kills this user's waits for a system's lock with `key`.
    pub fn cancel(&self, system: &str, key: &str) -> Result<usize, QueueError> {
        Ok(self.for_system(system)?.locks.cancel(system, key)?)
    }

    /// A cancelled CI job's cleanup: cancel every wait of this user with
    /// `key`, release every lock of the inventory this user holds with it.
    pub fn cleanup(&self, key: &str) -> Result<(usize, Vec<String>), QueueError> {
        let systems: Vec<&str> = self
            .inventory
            .systems()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        Ok(self.locks.cleanup(key, &systems)?)
    }
}

/// The members of `pool` that take jobs, from their `health`: the good ones,
/// or (when none is good) the suspect ones, with a note saying so.
fn in_service(pool: &str, health: &[Health]) -> Result<(Vec<String>, Option<String>), QueueError> {
    let with = |state: State| -> Vec<String> {
        health
            .iter()
            .filter(|h| h.state == state)
            .map(|h| h.system.clone())
            .collect()
    };
    let good = with(State::Good);
    if !good.is_empty() {
        return Ok((good, None));
    }
    let unknown = with(State::Unknown);
    if !unknown.is_empty() {
        let note = format!(
            "no member of {pool} is known good; using a suspect one ({})",
            unknown.join(" ")
        );
        return Ok((unknown, Some(note)));
    }
    let detail = health
        .iter()
        .map(|h| format!("{} {} ({})", h.system, h.state, h.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Err(QueueError::NoHealthyMember {
        pool: pool.to_string(),
        detail,
    })
}

/// Puts `items` in random order (Fisher-Yates).
fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random_index(i + 1));
    }
}

/// A random index below `n` (n > 0), from the standard library's randomly
/// seeded hasher: pool choice needs no more than that.
fn random_index(n: usize) -> usize {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, Overrides};
    use mq_transport::mock::MockTransport;

    fn queue(host: Arc<dyn Transport>) -> MachineQueue {
        let config = Config::resolve(
            &Overrides::default(),
            &Environment::new(Vec::<(String, String)>::new(), None),
        )
        .unwrap();
        MachineQueue::with_transport(config, Inventory::builtin(), host)
    }

    #[test]
    fn a_system_needs_no_round_trip_and_an_unknown_name_none_either() {
        let host = Arc::new(MockTransport::new("me"));
        let q = queue(host.clone());
        assert_eq!(
            q.choose("sabre").unwrap(),
            Choice {
                system: "sabre".into(),
                pool: None,
                note: None,
                members: vec!["sabre".into()],
            }
        );
        assert!(matches!(
            q.choose("nope"),
            Err(QueueError::UnknownTarget(_))
        ));
        assert!(host.calls().is_empty());
    }

    #[test]
    fn a_pool_picks_a_free_member() {
        let host = Arc::new(MockTransport::new("me"));
        // sabre and sabre4 are held; sabre2 is the only free member.
        let records = "MQ-PRE me 5\nsabre\0alice\0d t z\0\x000\0sabre4\0bob\0d t z\0\x000\0";
        host.answer("mq_rec", records, 0);
        let q = queue(host.clone());
        for _ in 0..5 {
            let choice = q.choose("sabre_pool").unwrap();
            assert_eq!(choice.system, "sabre2");
            assert_eq!(choice.pool.as_deref(), Some("sabre_pool"));
            // The free member first, then the busy ones: the wait is in
            // every line.
            assert_eq!(choice.members[0], "sabre2");
            let mut rest = choice.members[1..].to_vec();
            rest.sort();
            assert_eq!(rest, ["sabre", "sabre4"]);
        }
    }

    #[test]
    fn a_fully_locked_pool_still_picks_a_member() {
        let host = Arc::new(MockTransport::new("me"));
        let records = "MQ-PRE me 5\nmaaxboard1\0a\0d t z\0\x000\0maaxboard2\0b\0d t z\0\x000\0";
        host.answer("mq_rec", records, 0);
        let q = queue(host);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            seen.insert(q.choose("maaxboard_pool").unwrap().system);
        }
        assert_eq!(seen.len(), 2, "both members get picked: {seen:?}");
    }
}
