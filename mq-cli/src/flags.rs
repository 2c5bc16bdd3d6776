//! Every flag and command of `mq`, defined in one place.
//!
//! mq.sh's own spellings (`mq systems help`, single-dash words) are rewritten
//! into these by [`crate::legacy`] before clap sees the arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The value name that marks an argument as "a system or pool name"; shell
/// completions offer the inventory's names for every argument carrying it.
pub const SYSTEM_VALUE_NAME: &str = "SYSTEM";

#[derive(Debug, Parser)]
#[command(
    name = "mq",
    version = concat!(env!("CARGO_PKG_VERSION"), " (machine queue protocol 5)"),
    about = "Machine Queue: take a shared test board, boot an image on it, watch its console, hand it back",
    long_about = None,
    arg_required_else_help = true,
    disable_help_subcommand = true,
    after_help = "Use 'mq COMMAND help' or 'mq COMMAND --help' to get detailed help for each command.\n\
                  Configuration: --host/--base/--inventory, else MQ_HOST/MQ_BASE/MQ_INVENTORY, else ~/.mq, else defaults ('mq config' shows them)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Lab host to reach over SSH (overrides MQ_HOST and ~/.mq's HOST)
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,

    /// Lock directory on the lab host (overrides MQ_BASE and ~/.mq's BASE)
    #[arg(long, global = true, value_name = "DIR")]
    pub base: Option<String>,

    /// Directory holding systems.tsv and pools.tsv (overrides MQ_INVENTORY; default: the built-in fleet)
    #[arg(long, global = true, value_name = "DIR")]
    pub inventory: Option<PathBuf>,

    /// How to reach the host: ssh (libssh2, default), openssh (the ssh client), local (overrides MQ_TRANSPORT)
    #[arg(long, global = true, value_name = "KIND", value_parser = ["ssh", "openssh", "local"])]
    pub transport: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Query information on available machines (a table of systems, then of pools)
    #[command(after_help = "'mq systems simple' prints one system name a line, as mq.sh does.")]
    Systems(SystemsArgs),

    /// Print every system as tab-separated values with a header (as mq.sh)
    #[command(name = "system-tsv")]
    SystemTsv,

    /// Print every pool and its members as tab-separated values (as mq.sh)
    #[command(name = "pool-tsv")]
    PoolTsv,

    /// List the pools and their members
    Pools(JsonArgs),

    /// Show which systems can PXE-boot Linux (run -L) and take a custom DTB (run -b)
    Features(FeaturesArgs),

    /// Show the effective configuration and where each value came from
    Config(JsonArgs),

    /// Print a shell completion script (commands, flags, system and pool names)
    #[command(
        after_help = "bash: mq completions bash > ~/.local/share/bash-completion/completions/mq\n\
                      zsh:  mq completions zsh > ~/.zfunc/_mq  (with ~/.zfunc in fpath)\n\
                      fish: mq completions fish > ~/.config/fish/completions/mq.fish\n\
                      System and pool names are those of the inventory configured when the script is made."
    )]
    Completions(CompletionsArgs),

    /// Print this usage
    Help,
}

#[derive(Debug, Args)]
pub struct SystemsArgs {
    /// 'simple': print one system name a line instead of the tables
    #[arg(value_parser = ["simple"])]
    pub format: Option<String>,

    /// Print an array of objects with every inventory column
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Systems or pools to show (default: all systems)
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub names: Vec<String>,

    /// Print an array of objects with every inventory column
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
