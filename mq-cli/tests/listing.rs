//! The listing commands, help, exit codes and configuration, through the built
//! binary. Each test runs `mq` with a fresh HOME and no `MQ_*` variables, so
//! the machine's own `~/.mq` never leaks in.

use std::path::Path;
use std::process::Command;

use mq_testkit::output;
use tempfile::TempDir;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden");
const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mq-core/data");

/// A sandbox for one `mq` invocation: its own HOME, nothing from ours.
struct Sandbox {
    home: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn mq(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env_remove("MQ_HOST")
            .env_remove("MQ_BASE")
            .env_remove("MQ_INVENTORY")
            .env_remove("MQ_TRANSPORT");
        cmd
    }

    /// Runs `mq args`, returning (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        output(self.mq(args))
    }

    /// An inventory directory holding the built-in fleet with `edit` applied
    /// to one of its files.
    fn inventory(&self, file: &str, edit: impl Fn(String) -> String) -> String {
        let dir = self.home.path().join("inventory");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["systems.tsv", "pools.tsv"] {
            let text = std::fs::read_to_string(Path::new(FLEET).join(name)).unwrap();
            let text = if name == file { edit(text) } else { text };
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir.display().to_string()
    }
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(Path::new(GOLDEN).join(name)).unwrap()
}

#[test]
fn tsv_and_simple_listings_match_mq_sh_byte_for_byte() {
    let sb = Sandbox::new();
    for (args, file) in [
        (&["system-tsv"][..], "system-tsv.txt"),
        (&["pool-tsv"][..], "pool-tsv.txt"),
        (&["systems", "simple"][..], "systems-simple.txt"),
    ] {
        let (code, out, err) = sb.run(args);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        assert_eq!(out, golden(file), "{args:?}");
    }
}

/// Every line of a boxed table has the same length and its `|` and `+` in the
/// same columns.
fn assert_aligned(table: &str) {
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines.len() >= 4, "not a table: {table}");
    // Rules mark columns with `+`, rows with `|` (a cell may hold a `+`: "4+2").
    let bars = |line: &str| -> Vec<usize> {
        let mark = if line.starts_with('+') { '+' } else { '|' };
        line.char_indices()
            .filter(|(_, c)| *c == mark)
            .map(|(i, _)| i)
            .collect()
    };
    let expected = bars(lines[0]);
    for line in &lines {
        assert_eq!(line.len(), lines[0].len(), "ragged line: {line:?}");
        assert_eq!(bars(line), expected, "misaligned line: {line:?}");
    }
}

#[test]
fn systems_tables_are_aligned_and_complete() {
    let sb = Sandbox::new();
    let (code, out, _) = sb.run(&["systems"]);
    assert_eq!(code, 0);
    let (systems, pools) = out.split_once("\n\n").expect("two tables");
    assert_aligned(systems);
    assert_aligned(pools);
    assert!(systems.starts_with("+"));
    let header = systems.lines().nth(1).unwrap();
    let titles: Vec<&str> = header
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        titles,
        ["Name", "Arch", "ISA", "SoC", "CPU", "Cores", "RAM", "MaxCLK"]
    );
    // The widest cells of the fleet, which mq.sh's fixed widths cut or shift.
    assert!(systems.contains("| PULP Platform Cheshire |"));
    assert!(systems.contains("| XEON E5-2683 v3 |"));
    assert_eq!(systems.lines().count(), 52 + 4);
    assert!(pools.contains("| x86_pool       | haswell3 haswell4 skylake skylake2 |"));
}

#[test]
fn features_table_and_pool_selection() {
    let sb = Sandbox::new();
    let (code, out, _) = sb.run(&["features"]);
    assert_eq!(code, 0);
    assert_aligned(&out);
    assert!(out.contains("| Name        | PXE boot Linux | Custom DTB |"));
    assert!(out.contains("| odroidc4_1  | yes            | yes        |"));
    assert!(out.contains("| haswell3    | yes            | no         |"));
    assert_eq!(out.lines().count(), 52 + 4);

    let (code, out, _) = sb.run(&["features", "odroidc4_pool", "bboneblack"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = out
        .lines()
        .skip(3)
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["odroidc4_1", "odroidc4_2", "bboneblack"]);
}

#[test]
fn unknown_name_lists_valid_systems_and_pools() {
    let sb = Sandbox::new();
    let (code, out, err) = sb.run(&["features", "nosuch"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "System or pool 'nosuch' does not exist. Valid systems are"
    );
    assert!(lines[1].starts_with("bboneblack beagle colorado2 "));
    assert_eq!(lines[2], "Valid pools are");
    assert!(lines[3].contains("x86_pool"));
}

#[test]
fn json_has_every_inventory_column() {
    let sb = Sandbox::new();
    for command in ["systems", "features"] {
        let (code, out, _) = sb.run(&[command, "--json"]);
        assert_eq!(code, 0);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        let array = value.as_array().unwrap();
        assert_eq!(array.len(), 52, "{command}");
        let c4 = array.iter().find(|s| s["name"] == "odroidc4_1").unwrap();
        let keys: Vec<&str> = c4.as_object().unwrap().keys().map(String::as_str).collect();
        for column in [
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
        ] {
            assert!(keys.contains(&column), "{command}: no {column}");
        }
        assert_eq!(c4["machine"], "odroidc4-1");
        assert_eq!(c4["num_files_linux"], 2);
        assert_eq!(c4["pxe_linux"], true);
    }
    let (_, out, _) = sb.run(&["pools", "--json"]);
    let pools: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pools[4]["name"], "x86_pool");
    assert_eq!(pools[4]["members"][3], "skylake2");
}

#[test]
fn usage_help_and_version_exit_codes() {
    let sb = Sandbox::new();

    let (code, out, err) = sb.run(&[]);
    assert_eq!(code, 1, "no arguments is a usage error");
    assert_eq!(out, "");
    assert!(err.contains("Usage: mq [OPTIONS] <COMMAND>"));

    let (code, out, err) = sb.run(&["frobnicate"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("mq: unknown command 'frobnicate'\n"),
        "{err}"
    );
    assert!(err.contains("Usage: mq"));
    assert_eq!(out, "");

    for args in [&["help"][..], &["--help"][..]] {
        let (code, out, _) = sb.run(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage: mq [OPTIONS] <COMMAND>"));
        assert!(out.contains("systems"));
    }

    // mq.sh's `mq systems help` and clap's `--help` say the same thing.
    let (code, legacy, _) = sb.run(&["systems", "help"]);
    assert_eq!(code, 0);
    assert!(legacy.contains("Usage: mq systems"));
    assert_eq!(legacy, sb.run(&["systems", "--help"]).1);
    let (code, out, _) = sb.run(&["features", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: mq features"));

    let (code, out, _) = sb.run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("mq 0."), "{out}");

    let (code, _, err) = sb.run(&["systems", "fancy"]);
    assert_eq!(code, 1, "a bad argument is a usage error");
    assert!(err.contains("fancy"));
}

#[test]
fn completions_offer_commands_flags_and_names() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = sb.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        for word in [
            "system-tsv",
            "features",
            "inventory",
            "odroidc4_1",
            "x86_pool",
        ] {
            assert!(out.contains(word), "{shell} script lacks {word}");
        }
    }
    // A script made from another inventory offers that inventory's names.
    let dir = sb.inventory("pools.tsv", |t| t + "lab_pool\tsabre\n");
    let (_, out, _) = sb.run(&["--inventory", &dir, "completions", "bash"]);
    assert!(out.contains("lab_pool"));
}

#[test]
fn bash_completion_script_really_completes() {
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no bash");
        return;
    }
    let sb = Sandbox::new();
    let (_, script, _) = sb.run(&["completions", "bash"]);
    let path = sb.home.path().join("mq.bash");
    std::fs::write(&path, script).unwrap();
    let probe = format!(
        ". {}; COMP_WORDS=(mq features odroidc4); COMP_CWORD=2; COMP_LINE='mq features odroidc4'; COMP_POINT=${{#COMP_LINE}}; _mq mq odroidc4 features; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    let replies = String::from_utf8(out.stdout).unwrap();
    let mut replies: Vec<&str> = replies.lines().collect();
    replies.sort();
    assert_eq!(replies, ["odroidc4_1", "odroidc4_2", "odroidc4_pool"]);
}

#[test]
fn bad_inventory_fails_every_command_with_file_line_and_reason() {
    let sb = Sandbox::new();
    let dir = sb.inventory("systems.tsv", |t| {
        t.replacen("\tno\tno\n", "\tno\tperhaps\n", 1)
    });
    for args in [
        &["systems"][..],
        &["systems", "simple"][..],
        &["system-tsv"][..],
        &["pool-tsv"][..],
        &["pools"][..],
        &["features"][..],
        &["completions", "bash"][..],
        &["config"][..],
    ] {
        let mut cmd = sb.mq(args);
        cmd.env("MQ_INVENTORY", &dir);
        let (code, _, err) = output(cmd);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains(&format!(
                "{dir}/systems.tsv:2: dtb must be yes or no, found 'perhaps'"
            )),
            "{args:?}: {err}"
        );
    }
    // The same through the command-line option, for a pool problem.
    let dir = sb.inventory("pools.tsv", |t| t.replace("sabre4", "sabre9"));
    let (code, _, err) = sb.run(&["--inventory", &dir, "pool-tsv"]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!(
        "{dir}/pools.tsv:4: pool 'sabre_pool' lists 'sabre9', which is not a system"
    )));
    let (code, _, err) = sb.run(&["--inventory", "/nonexistent/inv", "systems"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/inv/systems.tsv"), "{err}");
}

#[test]
fn other_inventory_is_listed() {
    let sb = Sandbox::new();
    let dir = sb.inventory("systems.tsv", |t| {
        t.lines().take(3).map(|l| format!("{l}\n")).collect()
    });
    let dir_pools = Path::new(&dir).join("pools.tsv");
    std::fs::write(&dir_pools, "duo\tbboneblack\tbeagle\n").unwrap();
    let (code, out, _) = sb.run(&["--inventory", &dir, "systems", "simple"]);
    assert_eq!((code, out.as_str()), (0, "bboneblack\nbeagle\n"));
    let (_, out, _) = sb.run(&["--inventory", &dir, "pool-tsv"]);
    assert_eq!(out, "duo\tbboneblack\tbeagle\n");
}

#[test]
fn configuration_precedence_through_the_binary() {
    let sb = Sandbox::new();
    let host_line = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("host"))
            .unwrap()
            .to_string()
    };

    let (_, out, _) = sb.run(&["config"]);
    assert!(host_line(&out).contains("tftp.keg.cse.unsw.edu.au"));
    assert!(host_line(&out).ends_with("(default)"));

    std::fs::write(
        sb.home.path().join(".mq"),
        "# old client settings\nHOST='lab.from.file'\nBASE=/file/locks\nrm -rf /should/never/run\n",
    )
    .unwrap();
    let (_, out, _) = sb.run(&["config"]);
    assert!(host_line(&out).contains("lab.from.file"));
    assert!(host_line(&out).contains("/.mq:2)"), "{out}");
    assert!(out.contains("/file/locks"));

    let mut cmd = sb.mq(&["config"]);
    cmd.env("MQ_HOST", "lab.from.env");
    let (_, out, _) = output(cmd);
    assert!(host_line(&out).contains("lab.from.env"));
    assert!(host_line(&out).ends_with("(environment (MQ_HOST))"));
    assert!(out.contains("/file/locks"), "BASE still from ~/.mq");

    let mut cmd = sb.mq(&["--host", "lab.from.flag", "config", "--json"]);
    cmd.env("MQ_HOST", "lab.from.env");
    let (_, out, _) = output(cmd);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["host"]["value"], "lab.from.flag");
    assert_eq!(json["host"]["source"]["kind"], "command-line");
    assert_eq!(json["base"]["source"]["kind"], "dot-mq");
    assert_eq!(json["inventory"]["source"]["kind"], "default");
    assert_eq!(json["transport"]["value"], "ssh");

    let mut cmd = sb.mq(&["config"]);
    cmd.env("MQ_TRANSPORT", "carrier-pigeon");
    let (code, _, err) = output(cmd);
    assert_eq!(code, 1);
    assert!(err.contains("MQ_TRANSPORT='carrier-pigeon' is not a transport"));
    let (_, out, _) = sb.run(&["--transport", "local", "config"]);
    assert!(out.contains("transport   local"), "{out}");
}

#[test]
fn dot_mq_expansions_are_reported_not_run() {
    let sb = Sandbox::new();
    let marker = sb.home.path().join("ran");
    std::fs::write(
        sb.home.path().join(".mq"),
        format!("HOST=$(touch {})\n", marker.display()),
    )
    .unwrap();
    let (code, out, _) = sb.run(&["config"]);
    assert_eq!(code, 0);
    assert!(out.contains("warning:"), "{out}");
    assert!(out.contains("HOST= ignored: the value needs shell expansion"));
    assert!(!marker.exists());
}

#[test]
fn output_to_a_closed_pipe_is_quiet() {
    let sb = Sandbox::new();
    let mq = assert_cmd::cargo::cargo_bin("mq");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' systems | head -1", mq.display()))
        .env("HOME", sb.home.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}
