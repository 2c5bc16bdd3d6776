//! `mq`: the machine queue's command-line client, a drop-in for seL4's `mq.sh`.
//!
//! This binary is glue: mq.sh's words are translated ([`legacy`]), clap parses
//! them ([`flags`]), mq-core does the work, and this file prints the results and
//! picks the exit code. No protocol logic lives here.

mod board;
mod completions;
mod errors;
mod flags;
mod health;
mod legacy;
mod listing;
mod queue;
mod run;
mod sem;
mod serve;
mod ssh_view;
mod status;
mod table;
mod wait_display;

use mq_core::exit;
use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use mq_core::{Config, Environment, Inventory, Overrides, TransportKind};

use crate::flags::{Cli, Command, GlobalArgs};

/// A command that failed: the line mq.sh prints on stdout where scripts grep
/// it, a clear line (or a few) for stderr, and the exit code.
#[derive(Debug)]
pub struct Failure {
    stdout: Option<String>,
    message: String,
    code: u8,
}

impl Failure {
    /// A failure reported on stderr.
    pub fn new(message: impl Into<String>, code: u8) -> Failure {
        Failure {
            stdout: None,
            message: message.into(),
            code,
        }
    }

    /// A failure whose message is one of mq.sh's stdout lines.
    pub fn stdout(line: impl Into<String>, code: u8) -> Failure {
        Failure {
            stdout: Some(line.into()),
            message: String::new(),
            code,
        }
    }

    /// mq.sh's message for a name that is neither a system nor a pool.
    pub fn unknown_target(inventory: &Inventory, name: &str) -> Failure {
        let error = inventory
            .resolve(name)
            .err()
            .map_or_else(String::new, |e| e.to_string());
        Failure::new(error, exit::USAGE)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<mq_core::InventoryError> for Failure {
    fn from(e: mq_core::InventoryError) -> Failure {
        Failure::new(format!("mq: bad inventory: {e}"), exit::USAGE)
    }
}

fn main() -> ExitCode {
    let args = legacy::translate(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(line) = &failure.stdout {
                say(line);
            }
            if !failure.message.is_empty() {
                // Failures quote host text (holders, keys, reasons).
                eprintln!("{}", mq_core::inert_lines(&failure.to_string()));
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Turns clap's verdicts into mq.sh's exit codes: help and version succeed,
/// everything else is a usage error (1, not clap's 2).
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", Cli::command().render_help());
            ExitCode::from(exit::USAGE)
        }
        ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(name)) => name.clone(),
                _ => String::from("?"),
            };
            eprint!(
                "mq: unknown command '{name}'\n\n{}",
                Cli::command().render_help()
            );
            ExitCode::from(exit::USAGE)
        }
        _ => {
            let _ = e.print();
            ExitCode::from(exit::USAGE)
        }
    }
}

fn config(global: &GlobalArgs) -> Result<Config, Failure> {
    let overrides = Overrides {
        host: global.host.clone(),
        base: global.base.clone(),
        inventory: global.inventory.clone(),
        transport: global.transport.as_deref().and_then(TransportKind::parse),
        ssh_config: global.ssh_config.clone(),
        tftpboot: global.tftpboot.clone(),
    };
    Config::resolve(&overrides, &Environment::from_process())
        .map_err(|e| Failure::new(format!("mq: {e}"), exit::USAGE))
}

/// One dispatch: each command's function, and the exit status decided once
/// (by the [`Failure`] it returns, in `main`).
fn run(cli: Cli) -> Result<(), Failure> {
    // The lab side never reads the client's configuration: a bad MQ_* or
    // ~/.mq must not change a runner's statuses (PROTOCOL.md's reboot's).
    match cli.command {
        Command::Board(flags::BoardCommand::Reboot(args)) => return board::reboot(args),
        Command::Lab(flags::LabCommand::Init(args)) => return board::lab_init(args),
        _ => {}
    }
    let config = config(&cli.global)?;
    match cli.command {
        Command::Config(args) => config_command(&config, &args),
        Command::Help => emit(&Cli::command().render_help().to_string()),
        Command::Run(args) => run::run(args, config),
        Command::Board(_) | Command::Lab(_) => unreachable!("dispatched above"),
        Command::Sem(args) => sem::sem(args, config),
        Command::Lock(args) => sem::lock(args, config),
        Command::Unlock(args) => sem::unlock(args, config),
        Command::Systems(args) => {
            let inventory = config.load_inventory()?;
            if args.json {
                emit_json(inventory.systems())
            } else if args.format.is_some() {
                emit(&inventory.systems_simple())
            } else {
                emit(&listing::systems_tables(&inventory, &config.host.value))
            }
        }
        Command::SystemTsv => emit(&config.load_inventory()?.system_tsv()),
        Command::PoolTsv => emit(&config.load_inventory()?.pool_tsv()),
        Command::Pools(args) => {
            let inventory = config.load_inventory()?;
            if args.json {
                emit_json(inventory.pools())
            } else {
                emit(&listing::pools_table(&inventory))
            }
        }
        Command::Features(args) => {
            let inventory = config.load_inventory()?;
            let systems = listing::select(&inventory, &args.names)?;
            if args.json {
                emit_json(&systems)
            } else {
                emit(&listing::features_table(&systems))
            }
        }
        Command::Health(args) => health::health(args, config),
        Command::Queue(args) => queue::queue(args, config),
        Command::Status(args) => status::status(args, config),
        Command::Serve(args) => serve::serve(args, config),
        Command::Completions(args) => {
            let inventory = config.load_inventory()?;
            let names: Vec<String> = inventory
                .systems()
                .iter()
                .map(|s| s.name.clone())
                .chain(inventory.pools().iter().map(|p| p.name.clone()))
                .collect();
            emit_bytes(&completions::script(args.shell, &names))
        }
    }
}

/// `mq config [--ssh] [--json]`: shown even when the inventory is bad (that
/// is when it helps most), which is then refused after it.
fn config_command(config: &Config, args: &flags::ConfigArgs) -> Result<(), Failure> {
    if args.ssh {
        return ssh_view::show(config, args.json);
    }
    show_config(config, args.json)?;
    let inventory = config.load_inventory()?;
    if !args.json {
        emit(&other_hosts(config, &inventory))?;
    }
    Ok(())
}

/// The lab hosts other than the configured one that the inventory places
/// boards on, with their boards ("" when there are none).
fn other_hosts(config: &Config, inventory: &mq_core::Inventory) -> String {
    let mut sites: std::collections::BTreeMap<(String, String), Vec<&str>> = Default::default();
    for s in inventory.systems() {
        if s.host.is_some() || s.base.is_some() {
            let host = s.host.clone().unwrap_or_else(|| config.host.value.clone());
            let base = s.base.clone().unwrap_or_else(|| config.base.value.clone());
            sites.entry((host, base)).or_default().push(&s.name);
        }
    }
    sites
        .into_iter()
        .map(|((host, base), systems)| {
            format!(
                "also host  {host} (base {base}; from the inventory): {}\n",
                systems.join(" ")
            )
        })
        .collect()
}

fn show_config(config: &Config, json: bool) -> Result<(), Failure> {
    if json {
        return emit_json(config);
    }
    let inventory = config
        .inventory
        .value
        .as_ref()
        .map_or_else(|| "built-in fleet".to_string(), |d| d.display().to_string());
    let ssh_config = config.ssh_config.value.as_ref().map_or_else(
        || "~/.ssh/config, /etc/ssh/ssh_config".to_string(),
        |f| f.display().to_string(),
    );
    let rows = [
        ("host", config.host.value.as_str(), &config.host.source),
        ("base", config.base.value.as_str(), &config.base.source),
        ("inventory", inventory.as_str(), &config.inventory.source),
        (
            "transport",
            config.transport.value.name(),
            &config.transport.source,
        ),
        ("ssh-config", ssh_config.as_str(), &config.ssh_config.source),
        (
            "tftpboot",
            config.tftpboot.value.as_str(),
            &config.tftpboot.source,
        ),
    ];
    let trace = config
        .trace
        .value
        .as_ref()
        .map(|f| format!("trace       {}  ({})\n", f.display(), config.trace.source));
    let width = rows.iter().map(|(_, v, _)| v.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value, source) in rows {
        out.push_str(&format!("{name:<11} {value:<width$}  ({source})\n"));
    }
    // Said only when set: a trace is something to notice.
    out.extend(trace);
    for warning in &config.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    emit(&out)
}

pub(crate) fn emit_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(format!("mq: cannot encode JSON: {e}"), exit::USAGE))?;
    text.push('\n');
    emit_bytes(mq_core::json_safe(&text).as_bytes())
}

/// Prints one line on stdout. A reader that went away (`mq sem -info X |
/// true`) is not worth a panic or a message: like other Unix tools, mq goes
/// on quietly (and a command that holds a board still releases it).
pub fn say(line: impl fmt::Display) {
    let _ = emit(&format!("{line}\n"));
}

/// Prints text on stdout, any control characters in it (host text from
/// other lab users) escaped: see [`mq_core::inert`].
pub(crate) fn emit(text: &str) -> Result<(), Failure> {
    emit_bytes(mq_core::inert_lines(text).as_bytes())
}

/// Writes to stdout; a reader that went away (`mq systems | head`) is not an
/// error worth a message.
fn emit_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(
            format!("mq: cannot write output: {e}"),
            exit::USAGE,
        )),
    }
}
