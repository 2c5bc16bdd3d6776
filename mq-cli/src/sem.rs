//! `mq sem`, `mq lock`, `mq unlock`: the lock commands, with mq.sh's output
//! lines and exit codes.

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mq_core::{
    AcquireOptions, Choice, Config, Inventory, LockError, LockState, MachineQueue, QueueError,
};

use crate::errors::failure;
use crate::flags::{Checked, LockArgs, SemArgs, UnlockArgs};
use crate::wait_display::WaitDisplay;
use crate::Failure;
use mq_core::exit;

/// Signals that should stop a wait: set on ^C, SIGTERM, SIGHUP.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    mq_core::interrupt_on_signals()
}

/// Connects for a command on `targets`: to the lab host they live on (not
/// necessarily the configured one, see [`MachineQueue::connect_for`]).
pub(crate) fn connect(
    config: Config,
    inventory: Inventory,
    targets: &[&str],
) -> Result<MachineQueue, Failure> {
    // Names are checked against the inventory before connecting by the
    // callers; here the connection fails as mq.sh says.
    MachineQueue::connect_for(config, inventory, targets).map_err(failure)
}

/// Prints a pool's choice as mq.sh's sem does: the name alone.
fn choose(queue: &MachineQueue, name: &str) -> Result<String, Failure> {
    let choice = queue.choose(name).map_err(failure)?;
    if choice.pool.is_some() {
        crate::say(&choice.system);
    }
    Ok(choice.system)
}

fn json_state(system: &str, state: &LockState) -> serde_json::Value {
    let mut value = serde_json::to_value(state).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("system".into(), system.into());
    }
    value
}

/// `mq sem ...`.
pub fn sem(args: SemArgs, config: Config) -> Result<(), Failure> {
    let checked = args.options.check()?;
    // Unknown names fail before any connection, with mq.sh's message.
    let inventory = config.load_inventory()?;
    let targets: Vec<&str> = [
        &args.info,
        &args.mr_info,
        &args.signal,
        &args.wait,
        &args.cancel,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect();
    for name in &targets {
        inventory
            .resolve(name)
            .map_err(|e| Failure::stdout(e.to_string(), exit::USAGE))?;
    }
    // A command over the whole lab connects to every lab host at once; one
    // on a board, to that board's host.
    let queue = if args.dumpall {
        MachineQueue::connect_lab(config, inventory).map_err(failure)?
    } else {
        connect(config, inventory, &targets)?
    };
    if let Some(name) = &args.info {
        info(&queue, name, args.json, LockState::info_line)
    } else if let Some(name) = &args.mr_info {
        info(&queue, name, args.json, LockState::mr_info_line)
    } else if args.dumpall {
        dump_all(&queue, args.json)
    } else if let Some(name) = &args.signal {
        signal(&queue, name, &checked.key, args.force)
    } else if let Some(name) = &args.wait {
        wait(&queue, name, &checked)
    } else if let Some(name) = &args.cancel {
        let system = choose(&queue, name)?;
        let n = queue.cancel(&system, &checked.key).map_err(failure)?;
        if std::io::stderr().is_terminal() {
            eprintln!(
                "mq: cancelled {n} wait(s) for {system} with key '{}'",
                checked.key
            );
        }
        Ok(())
    } else if args.cleanup {
        cleanup(&queue, &checked.key)
    } else {
        Ok(())
    }
}

/// `-info` and `-mr-info`: one system's lock, as `line` words it (or JSON).
fn info(
    queue: &MachineQueue,
    name: &str,
    json: bool,
    line: fn(&LockState, &str) -> String,
) -> Result<(), Failure> {
    let system = choose(queue, name)?;
    let state = queue.info(&system).map_err(failure)?;
    if json {
        crate::say(json_state(&system, &state));
    } else {
        crate::say(line(&state, &system));
    }
    Ok(())
}

/// `-dumpall`: every lock held.
fn dump_all(queue: &MachineQueue, json: bool) -> Result<(), Failure> {
    let lab = queue.dump_lab().map_err(failure)?;
    let all = lab.answers;
    if json {
        let items: Vec<_> = all
            .iter()
            .map(|(s, h)| json_state(s, &LockState::Held(h.clone())))
            .collect();
        crate::say(serde_json::Value::Array(items));
    } else {
        for (system, holder) in &all {
            crate::say(holder.mr_info_line(system));
        }
    }
    sites_down(&lab.down)
}

/// Names the lab hosts that did not answer (on stderr) and makes the exit
/// status say the answer is partial.
pub(crate) fn sites_down(down: &[mq_core::sites::SiteDown]) -> Result<(), Failure> {
    if down.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = down
        .iter()
        .map(|d| {
            format!(
                "mq: lab host {} did not answer, so its boards are missing: {} ({})",
                d.site.host,
                d.systems.join(" "),
                d.error
            )
        })
        .collect();
    Err(Failure::new(text.join("\n"), exit::PARTIAL))
}

/// `-signal`: releases the lock (a pool's member this user holds).
fn signal(queue: &MachineQueue, name: &str, key: &str, force: bool) -> Result<(), Failure> {
    let Some(system) = signalled(queue, name, key, force)? else {
        return Ok(());
    };
    match queue.release(&system, key, force) {
        Ok(()) => Ok(()),
        // mq.sh prints these and exits 0; scripts rely on it.
        Err(QueueError::Lock(e @ (LockError::NotYours { .. } | LockError::WrongKey { .. }))) => {
            crate::say(e);
            Ok(())
        }
        Err(e) => Err(failure(e)),
    }
}

/// `-cleanup`: a CI job's end, every wait and lock with the key.
fn cleanup(queue: &MachineQueue, key: &str) -> Result<(), Failure> {
    let (cancelled, released) = queue.cleanup(key).map_err(failure)?;
    for system in &released {
        crate::say(format!("Released {system}"));
    }
    eprintln!(
        "mq: cancelled {cancelled} wait(s) and released {} lock(s) with key '{key}'",
        released.len(),
    );
    Ok(())
}

/// The system `sem -signal NAME` releases: NAME itself, or for a pool the
/// one member this user holds with the key (printed first, as a pool's
/// choice is). `None` when the pool has no such member (said, exit 0 like
/// mq.sh's other refusals to signal).
fn signalled(
    queue: &MachineQueue,
    name: &str,
    key: &str,
    force: bool,
) -> Result<Option<String>, Failure> {
    if queue.inventory().pool(name).is_none() {
        return Ok(Some(name.to_string()));
    }
    if force {
        return Err(Failure::new(
            format!(
                "mq: -signal -f needs a system, not the pool {name}: name the board to release"
            ),
            exit::USAGE,
        ));
    }
    let held = queue.held_in_pool(name, key).map_err(failure)?;
    match held.as_slice() {
        [one] => {
            crate::say(one);
            Ok(Some(one.clone()))
        }
        [] => {
            crate::say(format!(
                "You do not hold any member of pool {name} with key '{key}'"
            ));
            Ok(None)
        }
        many => Err(Failure::new(
            format!(
                "mq: you hold {} of pool {name} with key '{key}': name the one to release",
                many.join(", ")
            ),
            exit::USAGE,
        )),
    }
}

/// `mq lock SYSTEM`.
pub fn lock(args: LockArgs, config: Config) -> Result<(), Failure> {
    let checked = args.options.check()?;
    let inventory = config.load_inventory()?;
    inventory
        .resolve(&args.system)
        .map_err(|e| Failure::stdout(e.to_string(), exit::USAGE))?;
    let queue = connect(config, inventory, &[&args.system])?;
    wait(&queue, &args.system, &checked)
}

/// `mq unlock SYSTEM`.
pub fn unlock(args: UnlockArgs, config: Config) -> Result<(), Failure> {
    mq_core::check_key(&args.key).map_err(|e| Failure::new(format!("mq: -k: {e}"), exit::USAGE))?;
    let inventory = config.load_inventory()?;
    if inventory.system(&args.system).is_none() {
        let message = match inventory.resolve(&args.system) {
            Err(e) => e.to_string(),
            Ok(_) => format!(
                "mq: '{}' is a pool: unlock the system you hold",
                args.system
            ),
        };
        return Err(Failure::stdout(message, exit::USAGE));
    }
    let queue = connect(config, inventory, &[&args.system])?;
    match queue.release(&args.system, &args.key, args.force) {
        Ok(()) => Ok(()),
        Err(QueueError::Lock(e @ (LockError::NotYours { .. } | LockError::WrongKey { .. }))) => {
            Err(Failure::stdout(e.to_string(), exit::REFUSED))
        }
        Err(e) => Err(failure(e)),
    }
}

/// Takes the lock of a system, or of whichever of a pool's members comes
/// first (then says which, as mq.sh's sem says its choice), showing the
/// wait: on a terminal one line updated in place (place in line, holder,
/// estimate, time waited); otherwise a plain line whenever they change.
fn wait(queue: &MachineQueue, name: &str, checked: &Checked) -> Result<(), Failure> {
    let choice: Choice = queue.choose(name).map_err(failure)?;
    let stop = interrupt_flag();
    let options = AcquireOptions {
        key: checked.key.clone(),
        retry_seconds: checked.retry_seconds,
        retries: checked.retries,
        reclaim_timeout: Some(checked.timeout),
        cancel: Some(Arc::clone(&stop)),
        force_fallback: false,
        // sem -wait ends once it holds the lock: nothing of it lives on to
        // vouch for the holder (as with mq.sh).
        keep_fresh: None,
        // A system named directly is taken whatever its health: an admin
        // takes a board for maintenance this way. Pools skip those out of
        // service when they choose.
        precheck: String::new(),
        priority: checked.priority,
        queue_timeout: checked.queue_timeout,
        pool: String::new(),
    };
    let display = WaitDisplay::start(name);
    let result = queue.acquire_choice(&choice, &options, &mut |event| display.event(event));
    display.finish();
    let system = result.map_err(failure)?;
    if choice.pool.is_some() {
        crate::say(&system);
    }
    Ok(())
}
