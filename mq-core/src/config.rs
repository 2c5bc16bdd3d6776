//! Where mq finds its lab: the host, the lock directory on it, the inventory.
//!
//! Each setting is taken from the first of these that gives it:
//!
//! 1. a command-line option ([`Overrides`]);
//! 2. the environment: `MQ_HOST`, `MQ_BASE`, `MQ_INVENTORY`, `MQ_TRANSPORT`;
//! 3. the old client's `~/.mq`, for `HOST` and `BASE` only ([`dot_mq`]);
//! 4. the defaults of PROTOCOL.md ([`DEFAULT_HOST`], [`DEFAULT_BASE`], the
//!    built-in inventory).
//!
//! The library never reads the process environment by itself: the caller hands
//! it an [`Environment`] (usually [`Environment::from_process`]), so that
//! embedders and tests decide what mq sees.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::{Inventory, InventoryError};

/// PROTOCOL.md's default lab host.
pub const DEFAULT_HOST: &str = "tftp.keg.cse.unsw.edu.au";
/// PROTOCOL.md's default lock directory on the lab host.
pub const DEFAULT_BASE: &str = "/var/cache/machinelocks";

/// Environment variable naming the lab host.
pub const ENV_HOST: &str = "MQ_HOST";
/// Environment variable naming the lock directory.
pub const ENV_BASE: &str = "MQ_BASE";
/// Environment variable naming an inventory directory.
pub const ENV_INVENTORY: &str = "MQ_INVENTORY";
/// Environment variable choosing the transport (`ssh`, `openssh`, `local`).
pub const ENV_TRANSPORT: &str = "MQ_TRANSPORT";
/// Environment variable naming the directory of the boards' `reboot`
/// programs on the host (PROTOCOL.md's `/tftpboot`).
pub const ENV_TFTPBOOT: &str = "MQ_TFTPBOOT";
/// PROTOCOL.md's directory of the boards' `reboot` programs.
pub const DEFAULT_TFTPBOOT: &str = "/tftpboot";
/// Environment variable naming an SSH client configuration file to read
/// instead of `~/.ssh/config` and `/etc/ssh/ssh_config` (as `ssh -F`).
pub const ENV_SSH_CONFIG: &str = "MQ_SSH_CONFIG";
/// A file that gets every command sent to a lab host and its raw reply
/// ([`mq_transport::trace`]), for debugging a lab.
pub const ENV_TRACE: &str = "MQ_TRACE";

/// How mq reaches the lab host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// One libssh2 connection per process (the default).
    Ssh,
    /// The system `ssh` client with a shared ControlMaster connection, for
    /// what libssh2 cannot do (GSSAPI, security keys).
    Openssh,
    /// `sh` on this machine: mq runs on the lab host, or the lab is local.
    Local,
}

impl TransportKind {
    /// Parses `ssh`, `openssh` or `local`.
    pub fn parse(text: &str) -> Option<TransportKind> {
        match text {
            "ssh" => Some(TransportKind::Ssh),
            "openssh" => Some(TransportKind::Openssh),
            "local" => Some(TransportKind::Local),
            _ => None,
        }
    }

    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Ssh => "ssh",
            TransportKind::Openssh => "openssh",
            TransportKind::Local => "local",
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// MQ_TRANSPORT names no transport.
    #[error("{ENV_TRANSPORT}='{0}' is not a transport (ssh, openssh or local)")]
    BadTransport(String),
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Source {
    /// A command-line option.
    CommandLine,
    /// An environment variable (its name).
    Environment(String),
    /// An assignment in the old client's `~/.mq` (the file and line).
    DotMq {
        /// The file.
        path: PathBuf,
        /// 1-based line of the assignment that won.
        line: usize,
    },
    /// mq's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine => f.write_str("command line"),
            Source::Environment(var) => write!(f, "environment ({var})"),
            Source::DotMq { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--host`.
    pub host: Option<String>,
    /// `--base`.
    pub base: Option<String>,
    /// `--inventory`.
    pub inventory: Option<PathBuf>,
    /// `--transport`.
    pub transport: Option<TransportKind>,
    /// `--ssh-config`.
    pub ssh_config: Option<PathBuf>,
    /// `--tftpboot`.
    pub tftpboot: Option<String>,
}

/// The part of the process environment configuration looks at.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
}

impl Environment {
    /// A snapshot of this process's `MQ_*` variables and `HOME`.
    pub fn from_process() -> Environment {
        let vars = [
            ENV_HOST,
            ENV_BASE,
            ENV_INVENTORY,
            ENV_TRANSPORT,
            ENV_SSH_CONFIG,
            ENV_TFTPBOOT,
            ENV_TRACE,
        ]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
        .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Environment { vars, home }
    }

    /// An environment made of the given variables and home directory.
    pub fn new<I, K, V>(vars: I, home: Option<PathBuf>) -> Environment
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            home,
        }
    }

    /// A variable's value; an empty value counts as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The home directory, where `~/.mq` lives.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The lab host (an SSH destination: a name from `~/.ssh/config`, or `host`).
    pub host: Setting<String>,
    /// The lock directory on the host.
    pub base: Setting<String>,
    /// The inventory directory; `None` for the built-in fleet.
    pub inventory: Setting<Option<PathBuf>>,
    /// How the host is reached.
    pub transport: Setting<TransportKind>,
    /// An SSH client configuration file to read instead of the default ones.
    pub ssh_config: Setting<Option<PathBuf>>,
    /// The directory holding `MACHINE/reboot` on the host.
    pub tftpboot: Setting<String>,
    /// Where every command sent and its raw reply are written (`MQ_TRACE`).
    pub trace: Setting<Option<PathBuf>>,
    /// Things noticed while reading `~/.mq` (assignments mq will not evaluate).
    pub warnings: Vec<String>,
}

/// The transport: the command line, else `MQ_TRANSPORT` (a name mq does not
/// know is an error), else SSH.
fn transport_setting(
    overrides: &Overrides,
    env: &Environment,
) -> Result<Setting<TransportKind>, ConfigError> {
    Ok(if let Some(kind) = overrides.transport {
        Setting {
            value: kind,
            source: Source::CommandLine,
        }
    } else if let Some(name) = env.var(ENV_TRANSPORT) {
        Setting {
            value: TransportKind::parse(name)
                .ok_or_else(|| ConfigError::BadTransport(name.to_string()))?,
            source: Source::Environment(ENV_TRANSPORT.to_string()),
        }
    } else {
        Setting {
            value: TransportKind::Ssh,
            source: Source::Default,
        }
    })
}

impl Config {
    /// Resolves every setting by the precedence in this module's docs.
    pub fn resolve(overrides: &Overrides, env: &Environment) -> Result<Config, ConfigError> {
        let dot = env
            .home()
            .map(|home| dot_mq::read(&home.join(".mq")))
            .unwrap_or_default();
        let pick =
            |given: &Option<String>, var: &str, file: &Option<(String, usize)>, default: &str| {
                if let Some(value) = given {
                    Setting {
                        value: value.clone(),
                        source: Source::CommandLine,
                    }
                } else if let Some(value) = env.var(var) {
                    Setting {
                        value: value.to_string(),
                        source: Source::Environment(var.to_string()),
                    }
                } else if let (Some((value, line)), Some(path)) = (file, &dot.path) {
                    Setting {
                        value: value.clone(),
                        source: Source::DotMq {
                            path: path.clone(),
                            line: *line,
                        },
                    }
                } else {
                    Setting {
                        value: String::from(default),
                        source: Source::Default,
                    }
                }
            };
        let host = pick(&overrides.host, ENV_HOST, &dot.host, DEFAULT_HOST);
        let base = pick(&overrides.base, ENV_BASE, &dot.base, DEFAULT_BASE);
        let path_setting = |given: &Option<PathBuf>, var: &str| {
            if let Some(path) = given {
                Setting {
                    value: Some(path.clone()),
                    source: Source::CommandLine,
                }
            } else if let Some(path) = env.var(var) {
                Setting {
                    value: Some(PathBuf::from(path)),
                    source: Source::Environment(var.to_string()),
                }
            } else {
                Setting {
                    value: None,
                    source: Source::Default,
                }
            }
        };
        let tftpboot = pick(&overrides.tftpboot, ENV_TFTPBOOT, &None, DEFAULT_TFTPBOOT);
        let inventory = path_setting(&overrides.inventory, ENV_INVENTORY);
        let ssh_config = path_setting(&overrides.ssh_config, ENV_SSH_CONFIG);
        let trace = path_setting(&None, ENV_TRACE);
        let transport = transport_setting(overrides, env)?;
        Ok(Config {
            host,
            base,
            inventory,
            transport,
            ssh_config,
            tftpboot,
            trace,
            warnings: dot.warnings,
        })
    }

    /// Loads the configured inventory (the built-in fleet unless one is set).
    pub fn load_inventory(&self) -> Result<Inventory, InventoryError> {
        match &self.inventory.value {
            Some(dir) => Inventory::load_dir(dir),
            None => Ok(Inventory::builtin()),
        }
    }
}

pub mod dot_mq {
    //! The old client's `~/.mq`.
    //!
    //! mq.sh sources this file as shell. mq never executes it: it reads plain
    //! `HOST=` and `BASE=` assignments (optionally after `export`, with the value
    //! bare, 'single-quoted' or "double-quoted") and ignores every other line.
    //! A value that needs the shell to compute it (`$VAR`, `` `cmd` ``, `$(cmd)`)
    //! is not guessed at: it is skipped with a warning.

    use std::path::{Path, PathBuf};

    /// What `~/.mq` says; the last assignment of a name wins, as in the shell.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DotMq {
        /// The file read, if it exists.
        pub path: Option<PathBuf>,
        /// `HOST`'s value and the line assigning it.
        pub host: Option<(String, usize)>,
        /// `BASE`'s value and the line assigning it.
        pub base: Option<(String, usize)>,
        /// Assignments that were skipped, and why.
        pub warnings: Vec<String>,
    }

    /// Reads `path`; a missing file gives an empty [`DotMq`].
    pub fn read(path: &Path) -> DotMq {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut dot = parse(
                    &String::from_utf8_lossy(&bytes),
                    &path.display().to_string(),
                );
                dot.path = Some(path.to_path_buf());
                dot
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DotMq::default(),
            Err(e) => DotMq {
                warnings: vec![format!("{}: not read: {e}", path.display())],
                ..DotMq::default()
            },
        }
    }

    /// Parses the text of a `~/.mq`; `name` labels warnings.
    pub fn parse(text: &str, name: &str) -> DotMq {
        let mut dot = DotMq::default();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let line = line.trim_start();
            let line = line.strip_prefix("export ").map_or(line, str::trim_start);
            let Some((var, rest)) = line.split_once('=') else {
                continue;
            };
            let slot = match var {
                "HOST" => &mut dot.host,
                "BASE" => &mut dot.base,
                _ => continue,
            };
            match shell_word(rest).and_then(|value| tilde(rest, value)) {
                Ok(value) if value.is_empty() => dot
                    .warnings
                    .push(format!("{name}:{number}: empty {var}= ignored")),
                Ok(value) => *slot = Some((value, number)),
                Err(why) => dot
                    .warnings
                    .push(format!("{name}:{number}: {var}= ignored: {why}")),
            }
        }
        dot
    }

    /// A leading unquoted `~` as the shell expands it in an assignment: `~`
    /// and `~/...` are `$HOME`; `~user` is refused like other expansions.
    fn tilde(raw: &str, value: String) -> Result<String, &'static str> {
        if !raw.starts_with('~') {
            return Ok(value);
        }
        let rest = &value[1..];
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err("the value needs shell expansion (~user)");
        }
        match std::env::var("HOME") {
            Ok(home) if !home.is_empty() => Ok(format!("{home}{rest}")),
            _ => Err("the value starts with ~ and HOME is not set"),
        }
    }

    /// The first shell word of `text`, with quotes removed; refuses anything
    /// the shell would expand.
    fn shell_word(text: &str) -> Result<String, &'static str> {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                ' ' | '\t' | ';' | '&' | '|' => break,
                '#' if out.is_empty() => break,
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err("unterminated single quote"),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                            Some(c) => {
                                out.push('\\');
                                out.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some('$' | '`') => return Err("the value needs shell expansion"),
                        Some(c) => out.push(c),
                        None => return Err("unterminated double quote"),
                    }
                },
                '\\' => match chars.next() {
                    Some(c) => out.push(c),
                    None => break,
                },
                '$' | '`' => return Err("the value needs shell expansion"),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn value(text: &str) -> Option<String> {
            parse(text, "t").host.map(|(v, _)| v)
        }

        #[test]
        fn bare_and_quoted_values() {
            assert_eq!(value("HOST=lab.example"), Some("lab.example".into()));
            assert_eq!(value("HOST='lab one'"), Some("lab one".into()));
            assert_eq!(value("HOST=\"lab\\\"two\""), Some("lab\"two".into()));
            assert_eq!(value("export HOST=lab # comment"), Some("lab".into()));
            assert_eq!(value("  HOST=lab; echo hi"), Some("lab".into()));
            assert_eq!(value("HOST=a'b c'd"), Some("ab cd".into()));
            // A leading unquoted ~ is $HOME, as the shell has it; quoted, it
            // stays; ~user is not guessed at.
            let home = std::env::var("HOME").unwrap();
            assert_eq!(value("HOST=~/base"), Some(format!("{home}/base")));
            assert_eq!(value("HOST='~/base'"), Some("~/base".into()));
            assert_eq!(value("HOST=~other/base"), None);
        }

        #[test]
        fn last_assignment_wins_and_others_are_ignored() {
            let dot = parse(
                "# mine\nHOST=one\nUSER=x\nBASE=/b\necho hi\nHOST=two\n",
                "t",
            );
            assert_eq!(dot.host, Some(("two".into(), 6)));
            assert_eq!(dot.base, Some(("/b".into(), 4)));
            assert!(dot.warnings.is_empty());
        }

        #[test]
        fn expansions_are_not_evaluated() {
            for text in [
                "HOST=$(hostname)",
                "HOST=`hostname`",
                "HOST=\"$LAB\"",
                "HOST=${X:-y}",
            ] {
                let dot = parse(text, "t");
                assert_eq!(dot.host, None, "{text}");
                assert_eq!(dot.warnings.len(), 1, "{text}");
            }
            // Single quotes make `$` literal, as in the shell.
            assert_eq!(value("HOST='$x'"), Some("$x".into()));
        }

        #[test]
        fn lookalikes_are_not_assignments() {
            assert_eq!(value("MYHOST=a\nHOST =b\n#HOST=c\n"), None);
            assert_eq!(parse("HOST='open", "t").warnings.len(), 1);
            assert_eq!(parse("HOST=", "t").warnings.len(), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(dot_mq: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = dot_mq {
            std::fs::write(dir.path().join(".mq"), text).unwrap();
        }
        dir
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let home = home_with(None);
        let config = Config::resolve(
            &Overrides::default(),
            &Environment::new(Vec::<(String, String)>::new(), Some(home.path().into())),
        )
        .unwrap();
        assert_eq!(config.host.value, DEFAULT_HOST);
        assert_eq!(config.host.source, Source::Default);
        assert_eq!(config.base.value, DEFAULT_BASE);
        assert_eq!(config.inventory.value, None);
        assert_eq!(config.transport.value, TransportKind::Ssh);
    }

    #[test]
    fn transport_from_flag_or_environment() {
        let env = Environment::new([("MQ_TRANSPORT", "openssh")], None);
        let c = Config::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(c.transport.value, TransportKind::Openssh);
        let flag = Overrides {
            transport: Some(TransportKind::Local),
            ..Overrides::default()
        };
        assert_eq!(
            Config::resolve(&flag, &env).unwrap().transport.value,
            TransportKind::Local
        );
        let bad = Environment::new([("MQ_TRANSPORT", "telnet")], None);
        assert_eq!(
            Config::resolve(&Overrides::default(), &bad)
                .unwrap_err()
                .to_string(),
            "MQ_TRANSPORT='telnet' is not a transport (ssh, openssh or local)"
        );
    }

    #[test]
    fn each_level_beats_the_next() {
        let home = home_with(Some("HOST=file-host\nBASE=/file/base\n"));
        let env = |vars: &[(&str, &str)]| Environment::new(vars.to_vec(), Some(home.path().into()));
        let dot_source = |line| Source::DotMq {
            path: home.path().join(".mq"),
            line,
        };

        let c = Config::resolve(&Overrides::default(), &env(&[])).unwrap();
        assert_eq!(
            (c.host.value.as_str(), &c.host.source),
            ("file-host", &dot_source(1))
        );
        assert_eq!(
            (c.base.value.as_str(), &c.base.source),
            ("/file/base", &dot_source(2))
        );

        let c = Config::resolve(
            &Overrides::default(),
            &env(&[("MQ_HOST", "env-host"), ("MQ_INVENTORY", "/inv")]),
        )
        .unwrap();
        assert_eq!(c.host.value, "env-host");
        assert_eq!(c.host.source, Source::Environment("MQ_HOST".into()));
        assert_eq!(c.base.value, "/file/base");
        assert_eq!(c.inventory.value, Some(PathBuf::from("/inv")));

        let overrides = Overrides {
            host: Some("cli-host".into()),
            base: None,
            inventory: Some("/cli-inv".into()),
            transport: None,
            ssh_config: None,
            tftpboot: None,
        };
        let c = Config::resolve(
            &overrides,
            &env(&[("MQ_HOST", "env-host"), ("MQ_BASE", "/env")]),
        )
        .unwrap();
        assert_eq!(c.host.value, "cli-host");
        assert_eq!(c.host.source, Source::CommandLine);
        assert_eq!(c.base.value, "/env");
        assert_eq!(c.inventory.value, Some(PathBuf::from("/cli-inv")));
        assert_eq!(c.inventory.source, Source::CommandLine);
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let home = home_with(Some("HOST=file-host\n"));
        let c = Config::resolve(
            &Overrides::default(),
            &Environment::new([("MQ_HOST", "")], Some(home.path().into())),
        )
        .unwrap();
        assert_eq!(c.host.value, "file-host");
    }
}
