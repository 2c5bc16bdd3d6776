//! The fleet: systems (boards) and pools of systems.
//!
//! An inventory is two tab-separated files, in the formats of the upstream
//! fleet that is built in (`data/systems.tsv`, `data/pools.tsv`):
//!
//! * `systems.tsv` has a header line naming the fourteen columns of [`System`],
//!   then one board a line;
//! * `pools.tsv` has no header: a pool name, then its members, tab-separated
//!   (exactly what `mq pool-tsv` prints).
//!
//! Parsing validates everything a later command relies on and reports the
//! first problem with its file and line.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The built-in fleet's `systems.tsv`, kept byte for byte as upstream has it.
pub const BUILTIN_SYSTEMS_TSV: &str = include_str!("../data/systems.tsv");
/// The built-in fleet's `pools.tsv`, kept byte for byte as upstream has it.
pub const BUILTIN_POOLS_TSV: &str = include_str!("../data/pools.tsv");

/// File names of an inventory directory.
pub const SYSTEMS_FILE: &str = "systems.tsv";
/// See [`SYSTEMS_FILE`].
pub const POOLS_FILE: &str = "pools.tsv";

/// The columns of `systems.tsv`, in order; the header line must name them so.
pub const SYSTEM_COLUMNS: [&str; 14] = [
    "name",
    "machine",
    "arch",
    "sel4_plat",
    "isa",
    "soc",
    "cpu",
    "cores",
    "ram",
    "max_clk",
    "num_files",
    "num_files_linux",
    "pxe_linux",
    "dtb",
];

/// Two optional columns of `systems.tsv`, after [`SYSTEM_COLUMNS`]: where a
/// system lives when that is not the configured lab host and BASE (see
/// [`System::host`]).
pub const SITE_COLUMNS: [&str; 2] = ["host", "base"];

/// One board of the fleet: every column of `systems.tsv`.
///
/// The descriptive columns (`cpu`, `ram`, ...) are free text as the lab wrote
/// them (`4(8)`, `?`, `2.3Ghz`); only the columns mq acts on are typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct System {
    /// The name users and lock files use, e.g. `odroidc4_1`.
    pub name: String,
    /// The board's directory under `/tftpboot/` on the lab host, e.g. `odroidc4-1`.
    pub machine: String,
    /// Architecture family: `arm`, `x86`, `riscv`.
    pub arch: String,
    /// seL4 platform name (`PLAT[:BOARD]`).
    pub sel4_plat: String,
    /// Instruction set, e.g. `armv8-a`.
    pub isa: String,
    /// System on chip.
    pub soc: String,
    /// CPU model.
    pub cpu: String,
    /// Core count as the lab wrote it.
    pub cores: String,
    /// Memory as the lab wrote it.
    pub ram: String,
    /// Maximum clock as the lab wrote it.
    pub max_clk: String,
    /// How many image files a run takes (1, or 2: kernel + root server).
    pub num_files: u8,
    /// How many image files a Linux (`-L`) run takes.
    pub num_files_linux: u8,
    /// Whether the board can PXE-boot Linux (`run -L`).
    pub pxe_linux: bool,
    /// Whether the board accepts a custom device tree (`run -b`).
    pub dtb: bool,
    /// The lab host it is attached to (a name for the SSH configuration,
    /// like the configured one); `None`: the configured host.
    pub host: Option<String>,
    /// Its lock directory on that host; `None`: the configured BASE.
    pub base: Option<String>,
}

/// A named group of systems; a pool name stands wherever a system name may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The pool's name, e.g. `x86_pool`.
    pub name: String,
    /// Member system names, in file order.
    pub members: Vec<String>,
}

/// What a name given on the command line refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A single board.
    System(&'a System),
    /// A pool of boards.
    Pool(&'a Pool),
}

/// A name that is neither a system nor a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "System or pool '{name}' does not exist. Valid systems are\n{}\nValid pools are\n{}",
    systems.join(" "),
    pools.join(" ")
)]
pub struct UnknownTarget {
    /// The name given.
    pub name: String,
    /// Every valid system name.
    pub systems: Vec<String>,
    /// Every valid pool name.
    pub pools: Vec<String>,
}

/// Where an inventory came from, for messages and `mq config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The fleet compiled into mq.
    BuiltIn,
    /// A directory holding `systems.tsv` and `pools.tsv`.
    Directory(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in fleet"),
            Origin::Directory(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// Why an inventory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// An inventory file could not be read.
    #[error("cannot read inventory file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line of an inventory file is wrong.
    #[error("{file}:{line}: {problem}")]
    Invalid {
        /// The file, as a path or `built-in systems.tsv`.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with an inventory line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The header of `systems.tsv` does not name the expected columns.
    #[error(
        "header must be the {} columns `{}`, optionally followed by `{}`",
        SYSTEM_COLUMNS.len(),
        SYSTEM_COLUMNS.join(" "),
        SITE_COLUMNS.join(" ")
    )]
    BadHeader,
    /// A line has the wrong number of tab-separated fields.
    #[error("expected {expected} tab-separated columns, found {found}")]
    ColumnCount {
        /// What the format wants (for pools: at least this many).
        expected: String,
        /// What the line has.
        found: usize,
    },
    /// The name field (or a pool member) is empty.
    #[error("empty {what}")]
    EmptyName {
        /// `system name`, `pool name` or `pool member`.
        what: &'static str,
    },
    /// A name appears twice.
    #[error("duplicate {what} '{name}' (first defined on line {first_line})")]
    Duplicate {
        /// `system`, `pool` or `member of this pool`.
        what: &'static str,
        /// The name.
        name: String,
        /// Where it was first defined.
        first_line: u64,
    },
    /// A pool lists a member that is not a system.
    #[error("pool '{pool}' lists '{member}', which is not a system")]
    UnknownMember {
        /// The pool.
        pool: String,
        /// The member.
        member: String,
    },
    /// A pool has the name of a system.
    #[error("pool '{0}' has the name of a system")]
    PoolNamedLikeSystem(String),
    /// `num_files` or `num_files_linux` is not 1 or 2.
    #[error("{column} must be 1 or 2, found '{value}'")]
    FileCount {
        /// The column.
        column: &'static str,
        /// What the line has.
        value: String,
    },
    /// The TSV reader refused the line.
    #[error("unreadable line: {0}")]
    Malformed(String),
    /// `pxe_linux` or `dtb` is not yes or no.
    #[error("{column} must be yes or no, found '{value}'")]
    YesNo {
        /// The column.
        column: &'static str,
        /// What the line has.
        value: String,
    },
    /// `host` or `base` is not one.
    #[error("{column} '{value}' is not {why}")]
    Site {
        /// The column.
        column: &'static str,
        /// What the line has.
        value: String,
        /// What it must be.
        why: &'static str,
    },
}

/// The systems and pools mq knows, with look-ups by name.
#[derive(Debug, Clone)]
pub struct Inventory {
    systems: Vec<System>,
    pools: Vec<Pool>,
    system_index: HashMap<String, usize>,
    pool_index: HashMap<String, usize>,
    origin: Origin,
}

impl Inventory {
    /// The upstream fleet compiled into mq.
    pub fn builtin() -> Inventory {
        // The built-in data is checked by the unit tests; a failure here is a
        // bug in mq, not something a user can cause.
        Inventory::parse(
            BUILTIN_SYSTEMS_TSV,
            "built-in systems.tsv",
            BUILTIN_POOLS_TSV,
            "built-in pools.tsv",
            Origin::BuiltIn,
        )
        .expect("the built-in inventory is valid")
    }

    /// Reads `systems.tsv` and `pools.tsv` from `dir`.
    pub fn load_dir(dir: &Path) -> Result<Inventory, InventoryError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|text| (text, path.display().to_string()))
                .map_err(|source| InventoryError::Read { path, source })
        };
        let (systems, systems_name) = read(SYSTEMS_FILE)?;
        let (pools, pools_name) = read(POOLS_FILE)?;
        Inventory::parse(
            &systems,
            &systems_name,
            &pools,
            &pools_name,
            Origin::Directory(dir.to_path_buf()),
        )
    }

    /// Parses the two files' texts; `*_name` name them in error messages.
    pub fn parse(
        systems_tsv: &str,
        systems_name: &str,
        pools_tsv: &str,
        pools_name: &str,
        origin: Origin,
    ) -> Result<Inventory, InventoryError> {
        let invalid = |file: &str| {
            let file = file.to_string();
            move |(line, problem)| InventoryError::Invalid {
                file: file.clone(),
                line,
                problem,
            }
        };
        let (systems, system_index) = parse_systems(systems_tsv).map_err(invalid(systems_name))?;
        let (pools, pool_index) =
            parse_pools(pools_tsv, &system_index).map_err(invalid(pools_name))?;
        Ok(Inventory {
            systems,
            pools,
            system_index,
            pool_index,
            origin,
        })
    }

    /// Every system, in file order.
    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    /// Every pool, in file order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Where this inventory came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The system called `name`.
    pub fn system(&self, name: &str) -> Option<&System> {
        self.system_index.get(name).map(|&i| &self.systems[i])
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pool_index.get(name).map(|&i| &self.pools[i])
    }

    /// Whether `name` is a system, a pool, or neither.
    pub fn target(&self, name: &str) -> Option<Target<'_>> {
        self.system(name)
            .map(Target::System)
            .or_else(|| self.pool(name).map(Target::Pool))
    }

    /// Like [`Inventory::target`], but an unknown name is an error whose message
    /// is mq.sh's (PROTOCOL.md): it lists the valid systems and pools.
    pub fn resolve(&self, name: &str) -> Result<Target<'_>, UnknownTarget> {
        self.target(name).ok_or_else(|| UnknownTarget {
            name: name.to_string(),
            systems: self.systems.iter().map(|s| s.name.clone()).collect(),
            pools: self.pools.iter().map(|p| p.name.clone()).collect(),
        })
    }

    /// The member systems of pool `name` (`None` if there is no such pool).
    pub fn pool_members(&self, name: &str) -> Option<Vec<&System>> {
        let pool = self.pool(name)?;
        // Members were checked against the systems when the pool was parsed.
        Some(
            pool.members
                .iter()
                .filter_map(|member| self.system(member))
                .collect(),
        )
    }

    /// The `system-tsv` listing, byte for byte what mq.sh prints: a header and
    /// one line a system with the columns name, arch, sel4_plat, isa, soc, cpu,
    /// cores, ram, max_clk and num_files.
    pub fn system_tsv(&self) -> String {
        const COLUMNS: [&str; 10] = [
            "name",
            "arch",
            "sel4_plat",
            "isa",
            "soc",
            "cpu",
            "cores",
            "ram",
            "max_clk",
            "num_files",
        ];
        let mut out = COLUMNS.join("\t");
        out.push('\n');
        for s in &self.systems {
            let num_files = s.num_files.to_string();
            let fields = [
                &s.name,
                &s.arch,
                &s.sel4_plat,
                &s.isa,
                &s.soc,
                &s.cpu,
                &s.cores,
                &s.ram,
                &s.max_clk,
                &num_files,
            ];
            push_tsv_line(&mut out, fields.iter().map(|f| f.as_str()));
        }
        out
    }

    /// The `pool-tsv` listing: a line a pool, its name then its members.
    pub fn pool_tsv(&self) -> String {
        let mut out = String::new();
        for p in &self.pools {
            push_tsv_line(
                &mut out,
                std::iter::once(p.name.as_str()).chain(p.members.iter().map(String::as_str)),
            );
        }
        out
    }

    /// The `systems simple` listing: one system name a line.
    pub fn systems_simple(&self) -> String {
        let mut out = String::new();
        for s in &self.systems {
            push_tsv_line(&mut out, [s.name.as_str()]);
        }
        out
    }
}

fn push_tsv_line<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        out.push_str(field);
    }
    out.push('\n');
}

type LineError = (u64, Problem);

/// A reader for the lab's TSV files: tabs only, no quoting (a `"` is data),
/// lines of any length so that we can report wrong column counts ourselves.
fn tsv_reader(text: &str, has_headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .has_headers(has_headers)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// With `flexible` and no quoting, `csv` has little left to refuse (the input
/// is already UTF-8), but whatever it refuses is reported with its line.
fn malformed(error: csv::Error) -> LineError {
    let line = error.position().map_or(0, |p| p.line());
    (line, Problem::Malformed(error.to_string()))
}

fn record_line(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// One `systems.tsv` line, before validation. `csv` + `serde` map the columns
/// by the header's names; the typed columns are checked by [`SystemRecord::validate`].
#[derive(serde::Deserialize)]
struct SystemRecord {
    name: String,
    machine: String,
    arch: String,
    sel4_plat: String,
    isa: String,
    soc: String,
    cpu: String,
    cores: String,
    ram: String,
    max_clk: String,
    num_files: String,
    num_files_linux: String,
    pxe_linux: String,
    dtb: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    base: String,
}

impl SystemRecord {
    fn validate(self) -> Result<System, Problem> {
        if self.name.is_empty() {
            return Err(Problem::EmptyName {
                what: "system name",
            });
        }
        let host = Some(self.host).filter(|h| !h.is_empty());
        if let Some(h) = &host {
            if h.starts_with('-') || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Problem::Site {
                    column: "host",
                    value: h.clone(),
                    why: "a host name for the SSH configuration: no blanks, not starting with '-'",
                });
            }
        }
        let base = Some(self.base).filter(|b| !b.is_empty());
        if let Some(b) = &base {
            if !b.starts_with('/') || b.contains(['\n', '\r', '\0']) {
                return Err(Problem::Site {
                    column: "base",
                    value: b.clone(),
                    why: "an absolute path on the lab host",
                });
            }
        }
        Ok(System {
            host,
            base,
            num_files: file_count("num_files", &self.num_files)?,
            num_files_linux: file_count("num_files_linux", &self.num_files_linux)?,
            pxe_linux: yes_no("pxe_linux", &self.pxe_linux)?,
            dtb: yes_no("dtb", &self.dtb)?,
            name: self.name,
            machine: self.machine,
            arch: self.arch,
            sel4_plat: self.sel4_plat,
            isa: self.isa,
            soc: self.soc,
            cpu: self.cpu,
            cores: self.cores,
            ram: self.ram,
            max_clk: self.max_clk,
        })
    }
}

fn file_count(column: &'static str, value: &str) -> Result<u8, Problem> {
    match value {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(Problem::FileCount {
            column,
            value: value.to_string(),
        }),
    }
}

fn yes_no(column: &'static str, value: &str) -> Result<bool, Problem> {
    match value {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(Problem::YesNo {
            column,
            value: value.to_string(),
        }),
    }
}

type Index = HashMap<String, usize>;

fn parse_systems(text: &str) -> Result<(Vec<System>, Index), LineError> {
    let mut reader = tsv_reader(text, true);
    let header = reader.headers().map_err(|_| (1, Problem::BadHeader))?;
    let with_sites = SYSTEM_COLUMNS.iter().chain(&SITE_COLUMNS);
    if header.iter().ne(SYSTEM_COLUMNS) && header.iter().ne(with_sites.copied()) {
        return Err((1, Problem::BadHeader));
    }
    let columns = header.len();
    let header = header.clone();
    let mut systems = Vec::new();
    let mut index = Index::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(malformed)?;
        let line = record_line(&record);
        if record.len() != columns {
            return Err((
                line,
                Problem::ColumnCount {
                    expected: columns.to_string(),
                    found: record.len(),
                },
            ));
        }
        let raw: SystemRecord = record
            .deserialize(Some(&header))
            .expect("string columns always deserialize");
        let system = raw.validate().map_err(|p| (line, p))?;
        if let Some(&first) = index.get(&system.name) {
            return Err((
                line,
                Problem::Duplicate {
                    what: "system",
                    name: system.name,
                    first_line: lines[first],
                },
            ));
        }
        index.insert(system.name.clone(), systems.len());
        lines.push(line);
        systems.push(system);
    }
    Ok((systems, index))
}

fn parse_pools(text: &str, systems: &Index) -> Result<(Vec<Pool>, Index), LineError> {
    let mut reader = tsv_reader(text, false);
    let mut pools: Vec<Pool> = Vec::new();
    let mut index = Index::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(malformed)?;
        let line = record_line(&record);
        if record.len() < 2 {
            return Err((
                line,
                Problem::ColumnCount {
                    expected: "at least 2 (a pool name and a member)".into(),
                    found: record.len(),
                },
            ));
        }
        let name = &record[0];
        if name.is_empty() {
            return Err((line, Problem::EmptyName { what: "pool name" }));
        }
        if systems.contains_key(name) {
            return Err((line, Problem::PoolNamedLikeSystem(name.to_string())));
        }
        if let Some(&first) = index.get(name) {
            return Err((
                line,
                Problem::Duplicate {
                    what: "pool",
                    name: name.to_string(),
                    first_line: lines[first],
                },
            ));
        }
        let mut members: Vec<String> = Vec::new();
        for member in record.iter().skip(1) {
            if member.is_empty() {
                return Err((
                    line,
                    Problem::EmptyName {
                        what: "pool member",
                    },
                ));
            }
            if !systems.contains_key(member) {
                return Err((
                    line,
                    Problem::UnknownMember {
                        pool: name.to_string(),
                        member: member.to_string(),
                    },
                ));
            }
            if members.iter().any(|m| m == member) {
                return Err((
                    line,
                    Problem::Duplicate {
                        what: "member of this pool",
                        name: member.to_string(),
                        first_line: line,
                    },
                ));
            }
            members.push(member.to_string());
        }
        index.insert(name.to_string(), pools.len());
        lines.push(line);
        pools.push(Pool {
            name: name.to_string(),
            members,
        });
    }
    Ok((pools, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "name\tmachine\tarch\tsel4_plat\tisa\tsoc\tcpu\tcores\tram\tmax_clk\tnum_files\tnum_files_linux\tpxe_linux\tdtb\n";
    const BOARD_A: &str = "a\ta\tarm\tp\tarmv8-a\ts\tc\t4\t1GB\t1Ghz\t1\t2\tyes\tyes\n";
    const BOARD_B: &str = "b\tb-1\tx86\tpc99\tx86_64\ts\tc\t4\t?\t?\t2\t2\tno\tno\n";

    fn parse(systems: &str, pools: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(systems, "s.tsv", pools, "p.tsv", Origin::BuiltIn)
    }

    fn error(systems: &str, pools: &str) -> (String, u64, Problem) {
        match parse(systems, pools).unwrap_err() {
            InventoryError::Invalid {
                file,
                line,
                problem,
            } => (file, line, problem),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn builtin_fleet_parses_with_every_column() {
        let inv = Inventory::builtin();
        assert_eq!(inv.systems().len(), 52);
        assert_eq!(inv.pools().len(), 6);
        let c4 = inv.system("odroidc4_1").unwrap();
        assert_eq!(c4.machine, "odroidc4-1");
        assert_eq!(c4.sel4_plat, "odroidc4");
        assert_eq!((c4.num_files, c4.num_files_linux), (1, 2));
        assert!(c4.pxe_linux && c4.dtb);
        let xu4 = inv.system("odroidxu4_1").unwrap();
        assert_eq!(xu4.cores, "4 (8)");
    }

    #[test]
    fn lookups_tell_systems_from_pools() {
        let inv = Inventory::builtin();
        assert!(matches!(inv.target("haswell3"), Some(Target::System(s)) if s.name == "haswell3"));
        assert!(matches!(inv.target("x86_pool"), Some(Target::Pool(p)) if p.members.len() == 4));
        assert!(inv.target("nonesuch").is_none());
        let message = inv.resolve("nonesuch").unwrap_err().to_string();
        assert!(message.starts_with(
            "System or pool 'nonesuch' does not exist. Valid systems are\nbboneblack beagle "
        ));
        assert!(message.ends_with("\nValid pools are\nmaaxboard_pool odroidc4_pool rockpro64_pool sabre_pool x86_pool zcu102_pool"));
        let members: Vec<_> = inv
            .pool_members("sabre_pool")
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(members, ["sabre", "sabre2", "sabre4"]);
        assert!(inv.pool_members("sabre").is_none());
    }

    #[test]
    fn listings_round_trip_the_builtin_files() {
        let inv = Inventory::builtin();
        assert_eq!(inv.pool_tsv(), BUILTIN_POOLS_TSV);
        assert_eq!(inv.systems_simple().lines().count(), 52);
    }

    #[test]
    fn a_double_quote_is_data() {
        let systems = format!("{HEADER}q\tq\tarm\tp\tisa\t\"soc\tc\t1\t1\t1\t1\t1\tno\tno\n");
        let inv = parse(&systems, "").unwrap();
        assert_eq!(inv.system("q").unwrap().soc, "\"soc");
    }

    #[test]
    fn host_and_base_columns_say_where_a_board_lives() {
        let header = HEADER.replace('\n', "\thost\tbase\n");
        let row = |host: &str, base: &str| {
            format!("{}\t{host}\t{base}\n", BOARD_A.trim_end_matches('\n'))
        };
        let inv = parse(&format!("{header}{}", row("lab2", "/srv/locks")), "").unwrap();
        let s = &inv.systems()[0];
        assert_eq!(
            (s.host.as_deref(), s.base.as_deref()),
            (Some("lab2"), Some("/srv/locks"))
        );
        // mq.sh's listing keeps mq.sh's fourteen columns.
        assert!(!inv.system_tsv().contains("lab2"));
        let inv = parse(&format!("{header}{}", row("", "")), "").unwrap();
        assert_eq!(
            (
                inv.systems()[0].host.as_ref(),
                inv.systems()[0].base.as_ref()
            ),
            (None, None)
        );
        let (_, line, problem) = error(&format!("{header}{}", row("lab2", "locks")), "");
        assert_eq!(line, 2);
        assert!(
            matches!(problem, Problem::Site { column: "base", .. }),
            "{problem}"
        );
        let (_, _, problem) = error(&format!("{header}{}", row("-oProxyCommand=x", "")), "");
        assert!(
            matches!(problem, Problem::Site { column: "host", .. }),
            "{problem}"
        );
        // Only both, in this order.
        let (_, line, problem) = error(&HEADER.replace('\n', "\thost\n"), "");
        assert_eq!((line, problem), (1, Problem::BadHeader));
    }

    #[test]
    fn wrong_header() {
        let (_, line, problem) = error("name\tarch\n", "");
        assert_eq!((line, problem), (1, Problem::BadHeader));
    }

    #[test]
    fn wrong_column_count_names_the_line() {
        let systems = format!("{HEADER}{BOARD_A}a2\tonly\tthree\n");
        let (file, line, problem) = error(&systems, "");
        assert_eq!(file, "s.tsv");
        assert_eq!(line, 3);
        assert!(matches!(problem, Problem::ColumnCount { found: 3, .. }));
    }

    #[test]
    fn empty_system_name() {
        let systems = format!("{HEADER}{}", BOARD_A.replacen('a', "", 1));
        let (_, line, problem) = error(&systems, "");
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            Problem::EmptyName {
                what: "system name"
            }
        );
    }

    #[test]
    fn duplicate_system() {
        let systems = format!("{HEADER}{BOARD_A}{BOARD_B}{BOARD_A}");
        let (_, line, problem) = error(&systems, "");
        assert_eq!(line, 4);
        assert_eq!(
            problem,
            Problem::Duplicate {
                what: "system",
                name: "a".into(),
                first_line: 2
            }
        );
    }

    #[test]
    fn file_counts_must_be_one_or_two() {
        let systems = format!("{HEADER}{}", BOARD_B.replace("\t2\t2\t", "\t3\t2\t"));
        let (_, line, problem) = error(&systems, "");
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            Problem::FileCount {
                column: "num_files",
                value: "3".into()
            }
        );
        let systems = format!("{HEADER}{}", BOARD_B.replace("\t2\t2\t", "\t2\tx\t"));
        let (_, _, problem) = error(&systems, "");
        assert!(matches!(
            problem,
            Problem::FileCount {
                column: "num_files_linux",
                ..
            }
        ));
    }

    #[test]
    fn flags_must_be_yes_or_no() {
        let systems = format!(
            "{HEADER}{BOARD_B}{}",
            BOARD_A.replace("yes\tyes", "Yes\tyes")
        );
        let (_, line, problem) = error(&systems, "");
        assert_eq!(line, 3);
        assert_eq!(
            problem,
            Problem::YesNo {
                column: "pxe_linux",
                value: "Yes".into()
            }
        );
        let systems = format!("{HEADER}{}", BOARD_A.replace("yes\tyes", "yes\t1"));
        let (_, _, problem) = error(&systems, "");
        assert!(matches!(problem, Problem::YesNo { column: "dtb", .. }));
    }

    #[test]
    fn pool_member_must_be_a_system() {
        let systems = format!("{HEADER}{BOARD_A}{BOARD_B}");
        let (file, line, problem) = error(&systems, "p1\ta\tb\np2\ta\tc\n");
        assert_eq!((file.as_str(), line), ("p.tsv", 2));
        assert_eq!(
            problem,
            Problem::UnknownMember {
                pool: "p2".into(),
                member: "c".into()
            }
        );
    }

    #[test]
    fn pool_named_like_a_system() {
        let systems = format!("{HEADER}{BOARD_A}{BOARD_B}");
        let (_, line, problem) = error(&systems, "b\ta\n");
        assert_eq!(line, 1);
        assert_eq!(problem, Problem::PoolNamedLikeSystem("b".into()));
    }

    #[test]
    fn duplicate_pool_and_member() {
        let systems = format!("{HEADER}{BOARD_A}{BOARD_B}");
        let (_, line, problem) = error(&systems, "p\ta\nq\tb\np\tb\n");
        assert_eq!(line, 3);
        assert!(matches!(
            problem,
            Problem::Duplicate {
                what: "pool",
                first_line: 1,
                ..
            }
        ));
        let (_, line, problem) = error(&systems, "p\ta\ta\n");
        assert_eq!(line, 1);
        assert!(matches!(
            problem,
            Problem::Duplicate {
                what: "member of this pool",
                ..
            }
        ));
    }

    #[test]
    fn pool_needs_a_name_and_a_member() {
        let systems = format!("{HEADER}{BOARD_A}");
        let (_, line, problem) = error(&systems, "p\ta\nlonely\n");
        assert_eq!(line, 2);
        assert!(matches!(problem, Problem::ColumnCount { found: 1, .. }));
        let (_, _, problem) = error(&systems, "\ta\n");
        assert_eq!(problem, Problem::EmptyName { what: "pool name" });
        let (_, _, problem) = error(&systems, "p\ta\t\n");
        assert_eq!(
            problem,
            Problem::EmptyName {
                what: "pool member"
            }
        );
    }

    #[test]
    fn error_message_names_file_and_line() {
        let systems = format!("{HEADER}{}", BOARD_A.replace("yes\tyes", "yes\tmaybe"));
        let message = parse(&systems, "").unwrap_err().to_string();
        assert_eq!(message, "s.tsv:2: dtb must be yes or no, found 'maybe'");
    }
}
