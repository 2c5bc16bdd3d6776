//! `mq health`: the boards' health table, `set`, `log` and `check`.

use mq_core::exit;
use mq_core::health::{self, Health, State};
use mq_core::job::{Cancel, JobSpec};
use mq_core::{Config, MachineQueue};

use crate::errors::failure;
use crate::flags::{HealthArgs, HealthCommand};
use crate::sem::connect;
use crate::table::Table;
use crate::Failure;

/// `mq health ...`.
pub fn health(args: HealthArgs, config: Config) -> Result<(), Failure> {
    let inventory = config.load_inventory()?;
    match args.action {
        None => {
            let names = names(&inventory, &args.names)?;
            let queue = MachineQueue::connect_lab(config, inventory).map_err(failure)?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let lab = queue.health_lab(&names).map_err(failure)?;
            if args.json {
                crate::emit_json(&lab.answers)?;
            } else {
                crate::emit(&table(&lab.answers))?;
            }
            crate::sem::sites_down(&lab.down)
        }
        Some(HealthCommand::Set {
            system,
            state,
            reason,
        }) => {
            let state = State::parse(&state).expect("clap checks the state");
            if inventory.system(&system).is_none() {
                return Err(Failure::unknown_target(&inventory, &system));
            }
            let queue = connect(config, inventory, &[&system])?;
            queue.set_health(&system, state, &reason).map_err(failure)?;
            crate::say(format!("{system}: {state} ({reason})"));
            Ok(())
        }
        Some(HealthCommand::Log { system, json }) => {
            if let Some(s) = &system {
                if inventory.system(s).is_none() {
                    return Err(Failure::unknown_target(&inventory, s));
                }
            }
            let only: Vec<&str> = system.iter().map(String::as_str).collect();
            let queue = connect(config, inventory, &only)?;
            let log = queue.health_log(system.as_deref()).map_err(failure)?;
            if json {
                return crate::emit_json(&log);
            }
            let mut t = Table::new(["when", "system", "from", "to", "by", "reason"]);
            for c in &log {
                t.row([
                    c.at.clone(),
                    c.system.clone(),
                    c.from.clone(),
                    c.to.clone(),
                    c.by.clone(),
                    c.reason.clone(),
                ]);
            }
            crate::emit(&t.render())
        }
        Some(HealthCommand::Check {
            names,
            all,
            unknown,
            force,
        }) => check(config, inventory, &names, all.then_some(force), unknown),
    }
}

/// Systems of the names (pools give their members), or every system.
pub(crate) fn names(
    inventory: &mq_core::Inventory,
    names: &[String],
) -> Result<Vec<String>, Failure> {
    Ok(crate::listing::select(inventory, names)?
        .into_iter()
        .map(|s| s.name.clone())
        .collect())
}

/// The health table; reasons shown as they were given (a line break as
/// `\n`, so that a row stays a row).
fn table(all: &[Health]) -> String {
    let mut t = Table::new(["system", "state", "since", "by", "failures", "reason"]);
    for h in all {
        t.row([
            h.system.clone(),
            h.state.to_string(),
            h.since.clone(),
            h.by.clone(),
            h.failures.to_string(),
            health::escape(&h.reason),
        ]);
    }
    t.render()
}

/// `mq health check`: each system's check runs under its lock (whatever
/// its health), and sets it good or bad. Named systems are checked
/// whatever their state, waiting in line for a held one (and saying so).
/// `--all` (`Some(force)`) and `--unknown` check what is idle: a board
/// someone holds is skipped and named, and `--all` skips boards an admin
/// put in maintenance or retired unless forced.
fn check(
    config: Config,
    inventory: mq_core::Inventory,
    names: &[String],
    all: Option<bool>,
    unknown: bool,
) -> Result<(), Failure> {
    let sweep = all.is_some() || unknown;
    let Some(dir) = config.inventory.value.clone() else {
        return Err(Failure::new(
            "mq: health checks are declared in an inventory directory's health.tsv; the built-in fleet has none",
            exit::USAGE,
        ));
    };
    let checks = health::load_checks(&dir, &inventory)
        .map_err(|e| Failure::new(format!("mq: bad health checks: {e}"), exit::USAGE))?;
    let wanted: Vec<String> = if sweep {
        checks.iter().map(|c| c.system.clone()).collect()
    } else {
        if names.is_empty() {
            return Err(Failure::new(
                "mq health check needs SYSTEM, POOL, --all or --unknown",
                exit::USAGE,
            ));
        }
        self::names(&inventory, names)?
    };
    for system in &wanted {
        if !checks.iter().any(|c| &c.system == system) {
            return Err(Failure::new(
                format!(
                    "mq: no health check for {system} in {}",
                    dir.join("health.tsv").display()
                ),
                exit::USAGE,
            ));
        }
    }
    let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let queue = connect(config, inventory, &names)?;
    let targets = if sweep {
        sweep_targets(&queue, wanted, all == Some(true), unknown)?
    } else {
        wanted
    };
    let mut failed = false;
    for system in &targets {
        let check = checks
            .iter()
            .find(|c| &c.system == system)
            .expect("checked");
        // Never a silent wait: a sweep leaves a held board alone, a board
        // asked for by name waits in line, and says so.
        if let mq_core::LockState::Held(holder) = queue.info(system).map_err(failure)? {
            if sweep {
                crate::say(format!(
                    "{system}: skipped: held by {} (key {}); check it by name to wait",
                    holder.owner, holder.key
                ));
                continue;
            }
            eprintln!(
                "mq: {system} is held by {} (key {}); waiting in line to check it (^C to stop)",
                holder.owner,
                mq_core::inert(&holder.key)
            );
        }
        let (state, reason) = run_check(&queue, check)?;
        queue.set_health(system, state, &reason).map_err(failure)?;
        crate::say(format!("{system}: {state} ({reason})"));
        failed |= state != State::Good;
    }
    if failed {
        return Err(Failure::new("", exit::ERROR_TEXT));
    }
    Ok(())
}

/// What a sweep (`--all`, `--unknown`) checks of `wanted`: with
/// `--unknown` the unknown boards only; with `--all` every board but those an
/// admin put in maintenance or retired (unless `force`), each skip said.
fn sweep_targets(
    queue: &MachineQueue,
    wanted: Vec<String>,
    force: bool,
    unknown: bool,
) -> Result<Vec<String>, Failure> {
    let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let states = queue.health(&names).map_err(failure)?;
    Ok(states
        .into_iter()
        .filter(|h| match h.state {
            State::Unknown => true,
            _ if unknown => false,
            State::Maintenance | State::Retired if !force => {
                crate::say(format!(
                    "{}: skipped: {} (--force to check it too)",
                    h.system, h.state
                ));
                false
            }
            _ => true,
        })
        .map(|h| h.system)
        .collect())
}

/// Runs one check; the state it earns, and why.
fn run_check(
    queue: &MachineQueue,
    check: &health::HealthCheck,
) -> Result<(State, String), Failure> {
    let spec = JobSpec {
        target: check.system.clone(),
        files: check.files.clone(),
        completion: Some(check.completion.clone()),
        timeout: Some(check.timeout),
        key: format!("mq-health-check-{}", std::process::id()),
        any_health: true,
        ..JobSpec::default()
    };
    let cancel = Cancel::from_flag(crate::sem::interrupt_flag());
    match queue.run_job(&spec, None, &cancel, &mut |_| {}) {
        Ok(report) if report.exit_code == 0 => Ok((State::Good, "health check passed".into())),
        Ok(report) => {
            let outcome = report
                .outcome
                .as_ref()
                .map_or_else(|| "no outcome".to_string(), |o| o.summary());
            Ok((State::Bad, format!("health check failed: {outcome}")))
        }
        Err(mq_core::JobError::Interrupted) => {
            Err(Failure::new("mq: interrupted", exit::INTERRUPTED))
        }
        Err(e) => Ok((State::Bad, format!("health check could not run: {e}"))),
    }
}
