//! `mq sem dumpall` over three lab hosts (three sshd servers, each its own
//! users and lock directory) against the same over one: the hosts are asked
//! in parallel, so three should cost about what one does.
//!
//! `cargo bench -p mq-cli --bench sites` (as root). Target: three hosts at
//! most 1.3x one host.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::median;

const ROUNDS: usize = 11;
const HEADER: &str = "name\tmachine\tarch\tsel4_plat\tisa\tsoc\tcpu\tcores\tram\tmax_clk\tnum_files\tnum_files_linux\tpxe_linux\tdtb\thost\tbase";

fn main() {
    let Some(first) = common::lab(1) else {
        return;
    };
    let others: Vec<_> = (0..2)
        .map(|_| mq_testkit::LabHost::start(1).unwrap())
        .collect();
    let labs: Vec<&mq_testkit::LabHost> = std::iter::once(&first).chain(&others).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut ssh_config = String::new();
    let inventory = |hosts: usize| {
        let path = dir.path().join(format!("inventory{hosts}"));
        std::fs::create_dir_all(&path).unwrap();
        let mut systems = format!("{HEADER}\n");
        for (h, lab) in labs.iter().enumerate().take(hosts) {
            for b in 0..10 {
                let (host, base) = if h == 0 {
                    (String::new(), String::new())
                } else {
                    (format!("lab{h}"), lab.base_str().to_string())
                };
                systems += &format!(
                    "h{h}b{b}\th{h}b{b}\tarm\tp\ti\ts\tc\t1\t1\t1\t1\t1\tno\tno\t{host}\t{base}\n"
                );
            }
        }
        std::fs::write(path.join("systems.tsv"), systems).unwrap();
        std::fs::write(path.join("pools.tsv"), "").unwrap();
        path
    };
    for (h, lab) in labs.iter().enumerate() {
        let alias = if h == 0 {
            "lab".to_string()
        } else {
            format!("lab{h}")
        };
        ssh_config += &lab.server.config_block_for(&alias, &lab.users[0].name);
        // Half of each host's boards held.
        let user = &lab.users[0].name;
        let base = lab.base_str();
        let made = lab.sh_as(
            user,
            &format!("for b in 0 2 4 6 8; do printf 0 > '{base}'/h{h}b$b.lock; printf k > '{base}'/h{h}b$b.key; done"),
        );
        assert!(made.status.success());
    }
    let config = dir.path().join("ssh_config");
    std::fs::write(&config, ssh_config).unwrap();
    let home = tempfile::tempdir().unwrap();
    let dumpall = |inventory: &std::path::Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
        cmd.args(["sem", "dumpall"])
            .env("HOME", home.path())
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", first.base_str())
            .env("MQ_INVENTORY", inventory)
            .env("MQ_SSH_CONFIG", &config)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("MQ_TRANSPORT")
            .stdin(Stdio::null());
        let t = Instant::now();
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            t.elapsed(),
            String::from_utf8_lossy(&out.stdout).lines().count(),
        )
    };
    let (one, three) = (inventory(1), inventory(3));
    assert_eq!(dumpall(&one).1, 5);
    assert_eq!(dumpall(&three).1, 15);
    let mut a: Vec<Duration> = Vec::new();
    let mut b: Vec<Duration> = Vec::new();
    for _ in 0..ROUNDS {
        a.push(dumpall(&one).0);
        b.push(dumpall(&three).0);
    }
    let (a, b) = (median(a), median(b));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("sem dumpall, 1 host (5 of 10 held):   {:7.1} ms", ms(a));
    println!(
        "sem dumpall, 3 hosts (15 of 30 held): {:7.1} ms  ratio {:.2} (target <= 1.3)",
        ms(b),
        ms(b) / ms(a)
    );
}
