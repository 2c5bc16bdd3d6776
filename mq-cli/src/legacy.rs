//! mq.sh's spellings, rewritten into the flags of [`crate::flags`] before clap
//! parses anything.
//!
//! mq.sh takes single-dash words (`mq.sh sem -info X`) and bare `help` words
//! (`mq.sh run help`) that a clap parser would read as bundles of short flags
//! or as positional values. Rather than bending clap, the argument list is
//! translated once, here, by a table: a later command only adds rows.
//!
//! Words are rewritten only behind their own command, never where they are the
//! value of an option (`-k -info` keeps its key), and `help` only as the
//! command's first argument.

use std::ffi::OsString;

/// `(command, legacy word, replacement)`: the word as mq.sh's users type it and
/// what clap is given instead.
const WORDS: &[(&str, &str, &str)] = &[
    ("sem", "-info", "--info"),
    ("sem", "-mr-info", "--mr-info"),
    ("sem", "-signal", "--signal"),
    ("sem", "-wait", "--wait"),
    ("sem", "-cancel", "--cancel"),
    ("sem", "-dumpall", "--dumpall"),
    ("sem", "dumpall", "--dumpall"),
    // The same actions as words, the modern spelling.
    ("sem", "info", "--info"),
    ("sem", "mr-info", "--mr-info"),
    ("sem", "signal", "--signal"),
    ("sem", "wait", "--wait"),
    ("sem", "cancel", "--cancel"),
    ("sem", "cleanup", "--cleanup"),
];

/// The options that take a value: the root's (the global options, for
/// finding the command word behind them: `mq --host h sem -info x`) or a
/// command's, with mq.sh's words that stand for one of them. Read from the
/// clap command itself, so that a new option can never be forgotten here.
fn value_options(command: Option<&str>) -> Vec<String> {
    use clap::CommandFactory;
    let root = crate::flags::Cli::command();
    let cmd = match command {
        None => &root,
        Some(name) => match root.find_subcommand(name) {
            Some(sub) => sub,
            None => return Vec::new(),
        },
    };
    let mut names: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .flat_map(|a| {
            let shorts = a
                .get_short_and_visible_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(|c| format!("-{c}"));
            let longs = a
                .get_long_and_visible_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(|l| format!("--{l}"));
            shorts.chain(longs).collect::<Vec<_>>()
        })
        .collect();
    if let Some(name) = command {
        let legacy: Vec<String> = WORDS
            .iter()
            .filter(|(cmd, _, new)| *cmd == name && names.iter().any(|n| n == new))
            .map(|(_, old, _)| old.to_string())
            .collect();
        names.extend(legacy);
    }
    names
}

/// Rewrites mq.sh's spellings in `args` (including `argv[0]`).
pub fn translate(args: Vec<OsString>) -> Vec<OsString> {
    let Some(command_at) = command_position(&args) else {
        return args;
    };
    let command = args[command_at].to_string_lossy().into_owned();
    let mut out = args;
    if let Some(first) = out.get_mut(command_at + 1) {
        // `mq COMMAND help` is mq.sh's way of asking for a command's help.
        if first == "help" && command != "help" {
            *first = OsString::from("--help");
        }
    }
    let value_options = value_options(Some(&command));
    let mut value_next = false;
    for arg in out.iter_mut().skip(command_at + 1) {
        if std::mem::take(&mut value_next) {
            continue;
        }
        let Some(text) = arg.to_str() else { continue };
        value_next = value_options.iter().any(|o| o == text);
        if let Some((_, _, new)) = WORDS
            .iter()
            .find(|(cmd, old, _)| *cmd == command && *old == text)
        {
            *arg = OsString::from(*new);
        }
    }
    out
}

/// Where the command word is: the first argument after `argv[0]` that is not
/// a global option or its value.
fn command_position(args: &[OsString]) -> Option<usize> {
    let global = value_options(None);
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if global.iter().any(|g| *g == arg) {
            i += 2;
        } else if arg.starts_with('-') {
            i += 1;
        } else {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(args: &[&str]) -> Vec<String> {
        translate(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn command_help_word_becomes_the_help_flag() {
        assert_eq!(tr(&["mq", "systems", "help"]), ["mq", "systems", "--help"]);
        assert_eq!(
            tr(&["mq", "--host", "systems", "features", "help"]),
            ["mq", "--host", "systems", "features", "--help"]
        );
        assert_eq!(tr(&["mq", "help"]), ["mq", "help"]);
    }

    #[test]
    fn help_is_only_rewritten_as_the_first_argument() {
        assert_eq!(
            tr(&["mq", "features", "x", "help"]),
            ["mq", "features", "x", "help"]
        );
    }

    #[test]
    fn sem_words_in_any_position_but_never_values() {
        assert_eq!(
            tr(&["mq", "sem", "-k", "-info", "-wait", "wait"]),
            ["mq", "sem", "-k", "-info", "--wait", "wait"]
        );
        assert_eq!(
            tr(&["mq", "--host", "h", "sem", "dumpall"]),
            ["mq", "--host", "h", "sem", "--dumpall"]
        );
        assert_eq!(
            tr(&["mq", "sem", "info", "sabre", "-T", "5"]),
            ["mq", "sem", "--info", "sabre", "-T", "5"]
        );
        // Other commands keep their words.
        assert_eq!(tr(&["mq", "lock", "wait"]), ["mq", "lock", "wait"]);
    }

    #[test]
    fn every_global_option_with_a_value_is_known() {
        // --tftpboot was once missing: its value was taken for the command.
        assert_eq!(
            tr(&["mq", "--tftpboot", "/tb", "sem", "-info", "x"]),
            ["mq", "--tftpboot", "/tb", "sem", "--info", "x"]
        );
        let global = value_options(None);
        for option in [
            "--host",
            "--base",
            "--inventory",
            "--transport",
            "--ssh-config",
            "--tftpboot",
        ] {
            assert!(global.iter().any(|g| g == option), "{option}: {global:?}");
        }
        // A run's values are never translated.
        assert_eq!(
            tr(&["mq", "run", "-c", "-info"]),
            ["mq", "run", "-c", "-info"]
        );
    }

    #[test]
    fn nothing_to_translate() {
        assert_eq!(tr(&["mq"]), ["mq"]);
        assert_eq!(tr(&["mq", "--version"]), ["mq", "--version"]);
    }
}
