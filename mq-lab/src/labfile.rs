//! The lab file: the boards a lab host runs, and how.
//!
//! ```text
//! # Comments start with '#'. One section per board.
//! [board qemu-x86-1]
//! kind = qemu
//! qemu = qemu-system-x86_64          # the emulator (default qemu-system-x86_64)
//! options = -machine pc -m 128       # its machine options (split on spaces)
//! append = console=ttyS0             # kernel command line for -L (Linux) runs
//! boot_timeout = 30                  # seconds without any output: [[Boot timeout]]
//!
//! [board sabre]
//! kind = command                     # real hardware: shell templates
//! power_on = pdu on 3
//! power_off = pdu off 3
//! stage = cp {kernel} /tftpboot/sabre/image   # optional
//! console = console sabre            # its stdout is the board's serial console
//! command_timeout = 60               # seconds each of power_on, power_off, stage may take
//! ```
//!
//! Command templates run with `sh -c`; `{board}`, `{kernel}`, `{rootserver}`,
//! `{dtb}`, `{bitstream}` and `{log}` are replaced by shell-quoted values.
//! Every problem is reported with its line: unknown sections or keys, keys
//! that do not belong to the board's kind, missing required keys, duplicate
//! boards or keys, bad numbers.

use std::path::{Path, PathBuf};

/// How a board is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardKind {
    /// An emulated board.
    Qemu {
        /// The emulator program.
        program: String,
        /// Its machine options.
        options: Vec<String>,
        /// The kernel command line for Linux (-L) runs.
        append: Option<String>,
    },
    /// A real board driven by shell commands.
    Command {
        /// Powers it on.
        power_on: String,
        /// Powers it off.
        power_off: String,
        /// Puts the images where the board boots them from (optional).
        stage: Option<String>,
        /// Attaches to its serial console (runs for the whole run).
        console: String,
    },
}

/// One board of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// Its name (the machine directory under tftpboot).
    pub name: String,
    /// How it runs.
    pub kind: BoardKind,
    /// Seconds without any output before giving up (`None`: only `-t`).
    pub boot_timeout: Option<u64>,
    /// The most bytes of console the runner's log keeps (`log_limit`, with
    /// an optional K, M or G; default [`DEFAULT_LOG_LIMIT`]): past it, the
    /// log says so and keeps the tail.
    pub log_limit: u64,
    /// The most seconds each of a command board's `power_on`, `power_off`
    /// and `stage` may take (`command_timeout`, default
    /// [`DEFAULT_COMMAND_TIMEOUT`]): a power switch that hangs ends the run
    /// (and frees the board) instead of holding it for ever.
    pub command_timeout: u64,
    /// The line of its section.
    pub line: usize,
}

/// The parsed lab file.
#[derive(Debug, Clone)]
pub struct LabFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its boards, in file order.
    pub boards: Vec<Board>,
}

/// A problem in a lab file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LabFileError {
    /// The file.
    pub file: String,
    /// The line (0: the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A command board's `command_timeout` when its section sets none.
pub const DEFAULT_COMMAND_TIMEOUT: u64 = 60;

/// A board's log limit when its section sets none: 64 MiB.
pub const DEFAULT_LOG_LIMIT: u64 = 64 << 20;

const QEMU_KEYS: [&str; 6] = [
    "kind",
    "qemu",
    "options",
    "append",
    "boot_timeout",
    "log_limit",
];
const COMMAND_KEYS: [&str; 8] = [
    "kind",
    "power_on",
    "power_off",
    "stage",
    "console",
    "command_timeout",
    "boot_timeout",
    "log_limit",
];

impl LabFile {
    /// Reads and validates a lab file.
    pub fn load(path: &Path) -> Result<LabFile, LabFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| LabFileError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        let boards = parse(&text, &path.display().to_string())?;
        Ok(LabFile {
            path: path.to_path_buf(),
            boards,
        })
    }

    /// The board called `name`.
    pub fn board(&self, name: &str) -> Option<&Board> {
        self.boards.iter().find(|b| b.name == name)
    }
}

struct Section {
    name: String,
    line: usize,
    keys: Vec<(String, String, usize)>,
}

/// Parses lab file text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Board>, LabFileError> {
    let error = |line: usize, message: String| LabFileError {
        file: file.to_string(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(at) => &raw[..at],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header
                .strip_suffix(']')
                .ok_or_else(|| error(n, "a section header ends with ']'".into()))?;
            let name = header
                .strip_prefix("board ")
                .map(str::trim)
                .ok_or_else(|| {
                    error(
                        n,
                        format!("unknown section [{header}]: sections are [board NAME]"),
                    )
                })?;
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !name.starts_with('.');
            if !valid {
                return Err(error(
                    n,
                    format!("board name '{name}' must be letters, digits, '-', '_' or '.'"),
                ));
            }
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(error(
                    n,
                    format!(
                        "board '{name}' is defined twice (first on line {})",
                        first.line
                    ),
                ));
            }
            sections.push(Section {
                name: name.to_string(),
                line: n,
                keys: Vec::new(),
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| error(n, format!("expected 'key = value', found '{line}'")))?;
        let (key, value) = (key.trim(), value.trim());
        let section = sections
            .last_mut()
            .ok_or_else(|| error(n, "a key before any [board NAME] section".into()))?;
        if let Some((_, _, first)) = section.keys.iter().find(|(k, _, _)| k == key) {
            return Err(error(
                n,
                format!(
                    "'{key}' is set twice for board '{}' (first on line {first})",
                    section.name
                ),
            ));
        }
        if value.is_empty() {
            return Err(error(n, format!("'{key}' has no value")));
        }
        section.keys.push((key.to_string(), value.to_string(), n));
    }
    sections.into_iter().map(|s| board(s, &error)).collect()
}

fn board(
    section: Section,
    error: &dyn Fn(usize, String) -> LabFileError,
) -> Result<Board, LabFileError> {
    let get = |key: &str| {
        section
            .keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, n)| (v.clone(), *n))
    };
    let require = |key: &str| {
        get(key).map(|(v, _)| v).ok_or_else(|| {
            error(
                section.line,
                format!("board '{}' needs '{key}'", section.name),
            )
        })
    };
    let kind = require("kind")?;
    check_keys(
        &section,
        &kind,
        get("kind").map_or(section.line, |(_, n)| n),
        error,
    )?;
    let seconds = |key: &str| match get(key) {
        None => Ok(None),
        Some((v, n)) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_SECONDS).contains(s))
            .map(Some)
            .ok_or_else(|| {
                error(
                    n,
                    format!("{key} must be a positive number of seconds, found '{v}'"),
                )
            }),
    };
    let boot_timeout = seconds("boot_timeout")?;
    let command_timeout = seconds("command_timeout")?.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
    let log_limit = match get("log_limit") {
        None => DEFAULT_LOG_LIMIT,
        Some((v, n)) => parse_size(&v).filter(|&b| b >= 4096).ok_or_else(|| {
            error(
                n,
                format!("log_limit must be a size of at least 4096 bytes (e.g. 64M), found '{v}'"),
            )
        })?,
    };
    let kind = board_kind(&kind, &get, &require, error)?;
    Ok(Board {
        name: section.name,
        kind,
        boot_timeout,
        command_timeout,
        log_limit,
        line: section.line,
    })
}

/// A board's kind and its settings (each command template's placeholders
/// checked, with its line).
fn board_kind(
    kind: &str,
    get: &dyn Fn(&str) -> Option<(String, usize)>,
    require: &dyn Fn(&str) -> Result<String, LabFileError>,
    error: &dyn Fn(usize, String) -> LabFileError,
) -> Result<BoardKind, LabFileError> {
    if kind == "qemu" {
        return Ok(BoardKind::Qemu {
            program: get("qemu").map_or_else(|| "qemu-system-x86_64".to_string(), |(v, _)| v),
            options: get("options")
                .map(|(v, _)| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            append: get("append").map(|(v, _)| v),
        });
    }
    for key in ["power_on", "power_off", "stage", "console"] {
        if let Some((template, n)) = get(key) {
            check_placeholders(&template).map_err(|m| error(n, format!("{key}: {m}")))?;
        }
    }
    Ok(BoardKind::Command {
        power_on: require("power_on")?,
        power_off: require("power_off")?,
        stage: get("stage").map(|(v, _)| v),
        console: require("console")?,
    })
}

/// The board's kind is known and every key is one of its settings.
fn check_keys(
    section: &Section,
    kind: &str,
    kind_line: usize,
    error: &dyn Fn(usize, String) -> LabFileError,
) -> Result<(), LabFileError> {
    let allowed: &[&str] = match kind {
        "qemu" => &QEMU_KEYS,
        "command" => &COMMAND_KEYS,
        other => {
            return Err(error(
                kind_line,
                format!("unknown kind '{other}' (qemu or command)"),
            ))
        }
    };
    match section
        .keys
        .iter()
        .find(|(key, _, _)| !allowed.contains(&key.as_str()))
    {
        Some((key, _, n)) => Err(error(
            *n,
            format!(
                "'{key}' is not a setting of a {kind} board (settings: {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// What a command template may name: each is replaced by a quoted value.
pub const PLACEHOLDERS: [&str; 6] = ["board", "kernel", "rootserver", "dtb", "bitstream", "log"];

/// Every `{word}` of a template is a known placeholder: a misspelt one
/// (`{kernal}`) would otherwise reach the shell as it is. `${VAR}` is the
/// shell's, and braces around anything but a lowercase word (`{ cmd; }`,
/// `{a,b}`) are not placeholders.
fn check_placeholders(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        let after = &rest[at + 1..];
        let word_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..word_len];
        let shells = rest[..at].ends_with('$');
        if !shells
            && !word.is_empty()
            && after[word_len..].starts_with('}')
            && !PLACEHOLDERS.contains(&word)
        {
            return Err(format!(
                "unknown placeholder {{{word}}} (placeholders: {})",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
            ));
        }
        rest = after;
    }
    Ok(())
}

/// The longest time setting a lab file takes (ten years).
pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// `4096`, `512K`, `64M`, `1G` (binary units).
fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "lab.conf").unwrap_err().to_string()
    }

    #[test]
    fn log_limits_take_binary_units() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999G"), None, "overflow is refused");
    }

    #[test]
    fn both_kinds_parse() {
        let boards = parse(
            "# a lab\n[board q1]\nkind = qemu\noptions = -machine pc -m 128 # comment\nboot_timeout = 30\n\n\
             [board sabre]\nkind = command\npower_on = pdu on 3\npower_off = pdu off 3\nconsole = console sabre\n",
            "lab.conf",
        )
        .unwrap();
        assert_eq!(boards.len(), 2);
        assert_eq!(boards[0].boot_timeout, Some(30));
        match &boards[0].kind {
            BoardKind::Qemu {
                program,
                options,
                append,
            } => {
                assert_eq!(program, "qemu-system-x86_64");
                assert_eq!(options, &["-machine", "pc", "-m", "128"]);
                assert_eq!(append, &None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &boards[1].kind,
            BoardKind::Command { stage: None, .. }
        ));
        assert_eq!(boards[1].line, 7);
        assert_eq!(boards[1].command_timeout, DEFAULT_COMMAND_TIMEOUT);
    }

    #[test]
    fn every_problem_names_its_line() {
        assert_eq!(
            err("kind = qemu\n"),
            "lab.conf:1: a key before any [board NAME] section"
        );
        assert_eq!(
            err("[boards x]\n"),
            "lab.conf:1: unknown section [boards x]: sections are [board NAME]"
        );
        assert_eq!(
            err("[board a/b]\n"),
            "lab.conf:1: board name 'a/b' must be letters, digits, '-', '_' or '.'"
        );
        assert_eq!(
            err("[board a]\nkind = qemu\n[board a]\n"),
            "lab.conf:3: board 'a' is defined twice (first on line 1)"
        );
        assert_eq!(
            err("[board a]\nkind = qemu\nkind = qemu\n"),
            "lab.conf:3: 'kind' is set twice for board 'a' (first on line 2)"
        );
        assert_eq!(
            err("\n[board a]\noptions = x\n"),
            "lab.conf:2: board 'a' needs 'kind'"
        );
        assert_eq!(
            err("[board a]\nkind = telnet\n"),
            "lab.conf:2: unknown kind 'telnet' (qemu or command)"
        );
        assert!(err("[board a]\nkind = qemu\nconsole = x\n")
            .starts_with("lab.conf:3: 'console' is not a setting of a qemu board"));
        assert_eq!(
            err("[board a]\nkind = command\npower_on = x\npower_off = y\n"),
            "lab.conf:1: board 'a' needs 'console'"
        );
        assert_eq!(
            err("[board a]\nkind = qemu\nboot_timeout = soon\n"),
            "lab.conf:3: boot_timeout must be a positive number of seconds, found 'soon'"
        );
        assert_eq!(
            err("[board a]\nkind = command\ncommand_timeout = 0\n"),
            "lab.conf:3: command_timeout must be a positive number of seconds, found '0'"
        );
        assert_eq!(
            err("[board a]\nkind = command\npower_on = pdu on {board}\npower_off = x\nconsole = cat {kernal}\n"),
            "lab.conf:5: console: unknown placeholder {kernal} (placeholders: {board} {kernel} {rootserver} {dtb} {bitstream} {log})"
        );
        assert!(parse(
            "[board a]\nkind = command\npower_on = { pdu on; } && echo ${HOME} {a,b}\npower_off = x\nconsole = y\n",
            "lab.conf"
        )
        .is_ok());
        assert_eq!(
            err("[board a]\nkind qemu\n"),
            "lab.conf:2: expected 'key = value', found 'kind qemu'"
        );
        assert_eq!(
            err("[board a]\nkind =\n"),
            "lab.conf:2: 'kind' has no value"
        );
    }
}
