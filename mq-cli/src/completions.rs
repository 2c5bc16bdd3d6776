//! Shell completion scripts that know the lab's system and pool names.

use clap::builder::PossibleValuesParser;
use clap::{Command, CommandFactory};
use clap_complete::Shell as Target;

use crate::flags::{Cli, Shell, SYSTEM_VALUE_NAME};

/// The completion script for `shell`, offering `names` wherever a system or
/// pool name is taken.
pub fn script(shell: Shell, names: &[String]) -> Vec<u8> {
    let mut command = offer_names(Cli::command(), names);
    let target = match shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(target, &mut command, "mq", &mut out);
    if let Shell::Fish = shell {
        fish_positional_names(&command, names, &mut out);
    }
    out
}

/// clap_complete's fish script completes option values but not positional
/// ones; add a line for each command whose positional arguments are names.
fn fish_positional_names(command: &Command, names: &[String], out: &mut Vec<u8>) {
    for sub in command.get_subcommands() {
        let positional_names = sub.get_positionals().any(takes_system);
        if positional_names {
            out.extend_from_slice(
                format!(
                    "complete -c mq -n \"__fish_mq_using_subcommand {}\" -f -a \"{}\"\n",
                    sub.get_name(),
                    names.join(" ")
                )
                .as_bytes(),
            );
        }
    }
}

fn takes_system(arg: &clap::Arg) -> bool {
    arg.get_value_names()
        .is_some_and(|v| v.iter().any(|n| n.as_str() == SYSTEM_VALUE_NAME))
}

/// Gives every `SYSTEM` argument the names as possible values. This is done
/// for the completion script only: the real parser leaves names to mq-core,
/// which answers an unknown one with mq.sh's message and the list of names.
fn offer_names(command: Command, names: &[String]) -> Command {
    command
        .mut_args(|arg| {
            if takes_system(&arg) {
                arg.value_parser(PossibleValuesParser::new(names.to_vec()))
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| offer_names(sub, names))
}
