//! Several lab hosts. Each board is attached to one lab host, which holds
//! its lock (PROTOCOL.md's lock files under that host's BASE): the inventory
//! says which (`systems.tsv`'s optional `host` and `base` columns), and mq
//! talks to that host for that board. There is no central server to lose:
//! a host that is down takes only its own boards with it.
//!
//! The configured host and BASE are the home site; the queue connects to
//! another site the first time one of its boards is needed, once, and keeps
//! the connection. Commands over the whole lab ask every site at once, in
//! parallel, and name the sites that did not answer.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;

use mq_transport::{Transport, TransportError};

use crate::inventory::Target;
use crate::{Config, Inventory, MachineQueue, QueueError};

/// Where a board's lock lives: a lab host and its lock directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Site {
    /// The lab host (an SSH destination, through the user's configuration).
    pub host: String,
    /// The lock directory there.
    pub base: String,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.base)
    }
}

/// A site that did not answer, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteDown {
    /// The site.
    #[serde(flatten)]
    pub site: Site,
    /// What went wrong.
    pub error: String,
    /// Its boards (whose state is not known).
    pub systems: Vec<String>,
}

/// The queue of one site: the home queue itself, or another site's.
pub enum SiteQueue<'a> {
    /// The configured host.
    Home(&'a MachineQueue),
    /// Another host, connected on first use.
    Other(Arc<MachineQueue>),
}

impl Deref for SiteQueue<'_> {
    type Target = MachineQueue;

    fn deref(&self) -> &MachineQueue {
        match self {
            SiteQueue::Home(q) => q,
            SiteQueue::Other(q) => q,
        }
    }
}

/// The lab host of a whole-lab command that could not be reached: it is
/// reported with the other hosts that did not answer (the first use says
/// the connection's own error), and any later use fails with this.
struct Unreached {
    host: String,
    why: String,
}

impl Unreached {
    fn error(&self) -> TransportError {
        TransportError::Io {
            context: format!("lab host {} could not be reached", self.host),
            source: std::io::Error::new(std::io::ErrorKind::NotConnected, self.why.clone()),
        }
    }
}

impl Transport for Unreached {
    fn run(&self, _: &str) -> Result<mq_transport::Output, TransportError> {
        Err(self.error())
    }

    fn spawn_pty(
        &self,
        _: &str,
        _: mq_transport::PtySize,
    ) -> Result<Box<dyn mq_transport::PtyProcess>, TransportError> {
        Err(self.error())
    }

    fn upload(
        &self,
        _: &std::path::Path,
        _: &str,
        _: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<(), TransportError> {
        Err(self.error())
    }

    fn download(
        &self,
        _: &str,
        _: &std::path::Path,
        _: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<(), TransportError> {
        Err(self.error())
    }

    fn user(&self) -> &str {
        ""
    }

    fn describe(&self) -> String {
        self.host.clone()
    }
}

/// Waits for `attempt`, checking `cancel` every 50 ms: `Interrupted` when
/// it is set first (the attempt is left to end by itself).
fn wait_or_cancel<T>(
    attempt: std::thread::JoinHandle<T>,
    cancel: &crate::job::Cancel,
) -> Result<T, crate::job::JobError> {
    while !attempt.is_finished() {
        if cancel.is_cancelled() {
            return Err(crate::job::JobError::Interrupted);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    attempt.join().map_err(|_| {
        crate::job::JobError::Queue(QueueError::Lock(mq_lock::LockError::BadInput(
            "a connection's thread panicked".into(),
        )))
    })
}

/// How long a whole-lab queue leaves a host that did not answer before
/// trying it again: a dashboard refreshing every 2 s is not slowed to one
/// ConnectTimeout a read by a host that is down.
pub const RETRY_DOWN: std::time::Duration = std::time::Duration::from_secs(30);

/// Where `system` lives by the inventory, `home` filling what it leaves out.
fn inventory_site(system: &crate::inventory::System, home: &Site) -> Site {
    Site {
        host: system.host.clone().unwrap_or_else(|| home.host.clone()),
        base: system.base.clone().unwrap_or_else(|| home.base.clone()),
    }
}

/// A queue for `site`: the configuration with its host and BASE
/// (`quick_reads` as [`MachineQueue::connect_reading`]'s).
fn connect_site(
    config: &Config,
    inventory: &Inventory,
    site: &Site,
    quick_reads: bool,
) -> Result<MachineQueue, QueueError> {
    let mut config = config.clone();
    config.host.value = site.host.clone();
    config.base.value = site.base.clone();
    MachineQueue::connect_reading(config, inventory.clone(), quick_reads)
}

impl MachineQueue {
    /// For a command on `targets` (systems or pools): connects to the one
    /// lab host they all live on, which need not be the configured one: a
    /// board on another host does not need the configured host up (nor
    /// configured at all). The inventory's other systems keep their own
    /// sites. Targets on several hosts, or none, connect to the configured
    /// host (the others on first use), as
    /// [`connect_with`](Self::connect_with) does.
    pub fn connect_for(
        config: Config,
        inventory: Inventory,
        targets: &[&str],
    ) -> Result<MachineQueue, QueueError> {
        let home = Site {
            host: config.host.value.clone(),
            base: config.base.value.clone(),
        };
        let mut sites: Vec<Site> = targets
            .iter()
            .flat_map(|name| match inventory.target(name) {
                Some(Target::System(s)) => vec![inventory_site(s, &home)],
                Some(Target::Pool(_)) => inventory
                    .pool_members(name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| inventory_site(s, &home))
                    .collect(),
                None => vec![home.clone()],
            })
            .collect();
        sites.sort();
        sites.dedup();
        match sites.as_slice() {
            [site] if *site != home => {
                let placed = inventory
                    .systems()
                    .iter()
                    .map(|s| (s.name.clone(), inventory_site(s, &home)))
                    .collect();
                let mut queue = connect_site(&config, &inventory, site, false)?;
                queue.place(placed);
                Ok(queue)
            }
            _ => MachineQueue::connect_with(config, inventory),
        }
    }

    /// For a command over the whole lab: connects to the configured host
    /// and, at the same time, to every other host the inventory names. A
    /// host that cannot be reached, the configured one included, is left
    /// for [`across`](Self::across) to report with the others that did not
    /// answer (each tried once): only when none answers is it an error.
    /// Its connections are for quick reads: a command that gets no answer
    /// for a host's ConnectTimeout is given up and the host reported down
    /// ([`mq_transport::SshTransport::bound_replies`]), so that one stuck
    /// host costs a whole-lab command one ConnectTimeout at most.
    pub fn connect_lab(config: Config, inventory: Inventory) -> Result<MachineQueue, QueueError> {
        let home = Site {
            host: config.host.value.clone(),
            base: config.base.value.clone(),
        };
        let mut others: Vec<Site> = inventory
            .systems()
            .iter()
            .filter(|s| s.host.is_some() || s.base.is_some())
            .map(|s| inventory_site(s, &home))
            .filter(|s| *s != home)
            .collect();
        others.sort();
        others.dedup();
        std::thread::scope(|scope| {
            let connecting: Vec<_> = others
                .iter()
                .map(|site| {
                    let (config, inventory) = (&config, &inventory);
                    scope.spawn(move || connect_site(config, inventory, site, true))
                })
                .collect();
            let (queue, home_failed) =
                match MachineQueue::connect_reading(config.clone(), inventory.clone(), true) {
                    Ok(queue) => (queue, None),
                    Err(e @ QueueError::Unreachable { .. }) => {
                        let down = Unreached {
                            host: home.host.clone(),
                            why: e.to_string(),
                        };
                        let mut queue = MachineQueue::with_transport(
                            config.clone(),
                            inventory.clone(),
                            Arc::new(down),
                        );
                        queue.set_quick_reads();
                        (queue, Some(e))
                    }
                    Err(e) => return Err(e),
                };
            {
                let mut cache = queue.site_cache().lock().unwrap_or_else(|p| p.into_inner());
                let mut failed = queue
                    .site_failures()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(e) = home_failed {
                    failed.insert(home.clone(), e);
                }
                for (site, handle) in others.iter().zip(connecting) {
                    match handle.join() {
                        Ok(Ok(q)) => {
                            cache.insert(site.clone(), Arc::new(q));
                        }
                        // Said by the first use, not tried twice.
                        Ok(Err(e)) => {
                            failed.insert(site.clone(), e);
                        }
                        Err(_) => {}
                    }
                }
            }
            Ok(queue)
        })
    }

    /// [`connect_for`](Self::connect_for), given up at once when `cancel`
    /// is: a host that takes the connection and never answers cannot hold
    /// the caller for its ConnectTimeout. The attempt given up ends by itself
    /// (within that timeout) on a thread of its own; what it connected is
    /// dropped.
    pub fn connect_cancellable(
        config: Config,
        inventory: Inventory,
        targets: &[&str],
        cancel: &crate::job::Cancel,
    ) -> Result<MachineQueue, crate::job::JobError> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let attempt = std::thread::spawn(move || {
            let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
            MachineQueue::connect_for(config, inventory, &targets)
        });
        wait_or_cancel(attempt, cancel)?.map_err(crate::job::JobError::from)
    }

    /// Connects, at once and each on a thread of its own, to the hosts of
    /// `systems` this queue has no connection to yet (what a pool's choice
    /// is about to ask), giving up when `cancel` is; a host that cannot be
    /// reached is left for its first use to report, without a second try.
    pub(crate) fn connect_sites(
        &self,
        systems: &[&str],
        cancel: &crate::job::Cancel,
    ) -> Result<(), crate::job::JobError> {
        let home = self.home();
        let mut wanted: Vec<Site> = systems
            .iter()
            .map(|s| self.site_of(s))
            .filter(|s| *s != home)
            .filter(|s| {
                !self
                    .site_cache()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(s)
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        // Every host at once: a pool with several silent members costs one
        // ConnectTimeout, not one each.
        let attempts: Vec<_> = wanted
            .into_iter()
            .map(|site| {
                let (config, inventory, quick) = (
                    self.config().clone(),
                    self.inventory().clone(),
                    self.quick_reads(),
                );
                let to = site.clone();
                let attempt =
                    std::thread::spawn(move || connect_site(&config, &inventory, &to, quick));
                (site, attempt)
            })
            .collect();
        for (site, attempt) in attempts {
            match wait_or_cancel(attempt, cancel)? {
                Ok(queue) => {
                    self.site_cache()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(site, Arc::new(queue));
                }
                Err(e) => {
                    self.site_failures()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(site, e);
                }
            }
        }
        Ok(())
    }

    /// The configured host and BASE.
    pub fn home(&self) -> Site {
        Site {
            host: self.config().host.value.clone(),
            base: self.config().base.value.clone(),
        }
    }

    /// Where `system` lives: the embedder's map ([`MachineQueue::place`]),
    /// else the inventory's `host` and `base`, else the configured ones.
    pub fn site_of(&self, system: &str) -> Site {
        if let Some(site) = self.placed().get(system) {
            return site.clone();
        }
        let home = self.home();
        match self.inventory().system(system) {
            Some(s) => inventory_site(s, &home),
            None => home,
        }
    }

    /// Says where systems live, over what the inventory says (for embedders
    /// with their own map of the lab).
    pub fn place(&mut self, map: HashMap<String, Site>) {
        self.set_placed(map);
    }

    /// The queue of `site`: this one for the home site, or one connected to
    /// `site` (once; later calls share it). A site that
    /// [`connect_lab`](Self::connect_lab) could not reach answers its
    /// failure once, without a second try (a silent host would cost a
    /// second ConnectTimeout); later calls try again.
    pub fn at(&self, site: &Site) -> Result<SiteQueue<'_>, QueueError> {
        if let Some((why, tried)) = self.resting().get(site) {
            if tried.elapsed() < RETRY_DOWN {
                return Err(QueueError::Unreachable {
                    host: site.host.clone(),
                    source: Box::new(TransportError::Io {
                        context: format!("not tried again yet (every {} s)", RETRY_DOWN.as_secs()),
                        source: std::io::Error::new(std::io::ErrorKind::NotConnected, why.clone()),
                    }),
                });
            }
        }
        let failed = self
            .site_failures()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(site);
        if let Some(e) = failed {
            return Err(e);
        }
        if *site == self.home() {
            return Ok(SiteQueue::Home(self));
        }
        if let Some(q) = self
            .site_cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(site)
        {
            return Ok(SiteQueue::Other(Arc::clone(q)));
        }
        // Connected without holding the cache: sites connect in parallel.
        let queue = Arc::new(connect_site(
            self.config(),
            self.inventory(),
            site,
            self.quick_reads(),
        )?);
        let mut cache = self.site_cache().lock().unwrap_or_else(|p| p.into_inner());
        let queue = cache.entry(site.clone()).or_insert(queue);
        Ok(SiteQueue::Other(Arc::clone(queue)))
    }

    /// The queue of the site `system` lives at.
    pub fn for_system(&self, system: &str) -> Result<SiteQueue<'_>, QueueError> {
        self.at(&self.site_of(system))
    }

    /// `systems` by site, sites in order (the home site first).
    pub fn by_site<'s>(&self, systems: &[&'s str]) -> Vec<(Site, Vec<&'s str>)> {
        let home = self.home();
        let mut sites: BTreeMap<(bool, Site), Vec<&'s str>> = BTreeMap::new();
        for system in systems {
            let site = self.site_of(system);
            sites.entry((site != home, site)).or_default().push(system);
        }
        sites.into_iter().map(|((_, site), s)| (site, s)).collect()
    }

    /// Runs `f` on each site's queue with that site's share of `systems`,
    /// every site at once; the results in the order of
    /// [`by_site`](Self::by_site).
    pub fn across<T: Send>(
        &self,
        systems: &[&str],
        f: impl Fn(&MachineQueue, &[&str]) -> Result<T, QueueError> + Sync,
    ) -> Vec<(Site, Vec<String>, Result<T, QueueError>)> {
        let groups = self.by_site(systems);
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|(site, systems)| {
                    let f = &f;
                    scope.spawn(move || {
                        let queue = self.at(site)?;
                        f(&queue, systems)
                    })
                })
                .collect();
            groups
                .iter()
                .zip(handles)
                .map(|((site, systems), h)| {
                    let result = h.join().unwrap_or_else(|_| {
                        Err(QueueError::Lock(mq_lock::LockError::BadInput(
                            "a site's thread panicked".into(),
                        )))
                    });
                    // A host that failed is connected afresh next time; for
                    // quick reads, not before RETRY_DOWN.
                    match &result {
                        Err(e) => {
                            self.site_cache()
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(site);
                            if self.quick_reads() {
                                let mut resting = self.resting();
                                let why = resting
                                    .get(site)
                                    .map_or_else(|| e.to_string(), |(why, _)| why.clone());
                                let tried = match resting.get(site) {
                                    Some((_, t)) if t.elapsed() < RETRY_DOWN => *t,
                                    _ => std::time::Instant::now(),
                                };
                                resting.insert(site.clone(), (why, tried));
                            }
                        }
                        Ok(_) => {
                            self.resting().remove(site);
                        }
                    }
                    (
                        site.clone(),
                        systems.iter().map(|s| s.to_string()).collect(),
                        result,
                    )
                })
                .collect()
        })
    }
}

/// What the lab's hosts said, and the sites that did not answer.
#[derive(Debug, Clone)]
pub struct Lab<T> {
    /// What the sites that answered said, merged.
    pub answers: T,
    /// The sites that did not.
    pub down: Vec<SiteDown>,
}

impl MachineQueue {
    /// Every system of the inventory, by name.
    fn all_systems(&self) -> Vec<&str> {
        self.inventory()
            .systems()
            .iter()
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Every lock held in the lab: each site's, asked all at once; the home
    /// site's locks of systems the inventory does not know as well.
    pub fn dump_lab(&self) -> Result<Lab<Vec<(String, mq_lock::Holder)>>, QueueError> {
        let all = self.all_systems();
        let home = self.home();
        let answers = self.across(&all, |q, systems| {
            let held = q.locks().dump_all()?;
            let home_site = q.home() == home;
            Ok(held
                .into_iter()
                .filter(|(name, _)| {
                    systems.contains(&name.as_str())
                        || (home_site && self.inventory().system(name).is_none())
                })
                .collect::<Vec<_>>())
        });
        let (held, down, first_error) = gather(answers);
        let mut lab = Lab {
            answers: held.into_iter().flatten().collect::<Vec<_>>(),
            down,
        };
        if let Some(e) = first_error {
            return Err(e);
        }
        lab.answers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(lab)
    }
}

impl MachineQueue {
    /// The health of `systems` from every lab host they are on, at once;
    /// the hosts that did not answer are named, their boards left out.
    pub fn health_lab(
        &self,
        systems: &[&str],
    ) -> Result<Lab<Vec<crate::health::Health>>, QueueError> {
        let (answers, down, first_error) = gather(self.across(systems, |q, s| q.health(s)));
        match first_error {
            Some(e) => Err(e),
            None => Ok(Lab {
                answers: in_order(systems, answers.into_iter().flatten(), |h| &h.system),
                down,
            }),
        }
    }

    /// The lines of waiters of `systems` from every lab host they are on,
    /// at once; as [`health_lab`](Self::health_lab).
    pub fn line_lab(&self, systems: &[&str]) -> Result<Lab<Vec<mq_lock::Ticket>>, QueueError> {
        let (answers, down, first_error) =
            gather(self.across(systems, |q, s| Ok(q.locks().line(s)?)));
        match first_error {
            Some(e) => Err(e),
            None => Ok(Lab {
                answers: answers.into_iter().flatten().collect(),
                down,
            }),
        }
    }
}

/// `items` in the order of `systems` (by `name`), each system's together.
fn in_order<T>(
    systems: &[&str],
    items: impl Iterator<Item = T>,
    name: impl Fn(&T) -> &String,
) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_by_key(|i| systems.iter().position(|s| *s == name(i).as_str()));
    items
}

/// An error and what caused it, on one line: "Unable to ssh to lab3" says
/// which host, its cause says why.
fn with_causes(e: &QueueError) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Splits what [`MachineQueue::across`] returned into the answers and the
/// sites down; the first error too when no site answered at all.
pub(crate) fn gather<T>(
    results: Vec<(Site, Vec<String>, Result<T, QueueError>)>,
) -> (Vec<T>, Vec<SiteDown>, Option<QueueError>) {
    let mut answers = Vec::new();
    let mut down = Vec::new();
    let mut first_error = None;
    for (site, systems, result) in results {
        match result {
            Ok(a) => answers.push(a),
            Err(e) => {
                down.push(SiteDown {
                    site,
                    error: with_causes(&e),
                    systems,
                });
                first_error.get_or_insert(e);
            }
        }
    }
    let none = answers.is_empty();
    (answers, down, first_error.filter(|_| none))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, Overrides};
    use crate::{Config, Inventory};
    use mq_transport::mock::MockTransport;

    const SYSTEMS: &str = "name\tmachine\tarch\tsel4_plat\tisa\tsoc\tcpu\tcores\tram\tmax_clk\tnum_files\tnum_files_linux\tpxe_linux\tdtb\thost\tbase\n\
        a\ta\tarm\tp\ti\ts\tc\t1\t1\t1\t1\t1\tno\tno\t\t\n\
        b\tb\tarm\tp\ti\ts\tc\t1\t1\t1\t1\t1\tno\tno\tfar\t/srv/locks\n\
        c\tc\tarm\tp\ti\ts\tc\t1\t1\t1\t1\t1\tno\tno\tfar\t\n";

    fn queue() -> MachineQueue {
        let config = Config::resolve(
            &Overrides::default(),
            &Environment::new(Vec::<(String, String)>::new(), None),
        )
        .unwrap();
        let inventory = Inventory::parse(
            SYSTEMS,
            "systems.tsv",
            "",
            "pools.tsv",
            crate::inventory::Origin::BuiltIn,
        )
        .unwrap();
        MachineQueue::with_transport(config, inventory, Arc::new(MockTransport::new("me")))
    }

    #[test]
    fn the_inventory_says_where_each_board_lives() {
        let mut q = queue();
        let home = q.home();
        assert_eq!(q.site_of("a"), home);
        let far = Site {
            host: "far".into(),
            base: "/srv/locks".into(),
        };
        assert_eq!(q.site_of("b"), far);
        // A host without a base: that host, the configured BASE.
        assert_eq!(q.site_of("c").host, "far");
        assert_eq!(q.site_of("c").base, home.base);
        // Grouped by site, home first, the order kept within a site.
        let groups = q.by_site(&["c", "b", "a"]);
        let names: Vec<(String, Vec<&str>)> =
            groups.into_iter().map(|(s, v)| (s.host, v)).collect();
        assert_eq!(names[0], (home.host.clone(), vec!["a"]));
        assert_eq!(names.len(), 3);
        // An embedder's own map wins.
        q.place(HashMap::from([("a".to_string(), far.clone())]));
        assert_eq!(q.site_of("a"), far);
        // The home site needs no connection of its own.
        assert!(matches!(q.at(&home), Ok(SiteQueue::Home(_))));
    }
}
