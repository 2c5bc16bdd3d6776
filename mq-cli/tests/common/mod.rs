//! The lab the health and hostile-neighbour tests share: a real lab host
//! (sshd on 127.0.0.1, two throwaway users, procmail's lockfile) with three
//! emulated boards b1 b2 b3 in pool p, b3's runner broken.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use mq_testkit::{LabHost, Run};

pub const PASS: &str = "All is well in the universe";

pub struct Lab {
    pub lab: LabHost,
    pub home: tempfile::TempDir,
    pub inventory: tempfile::TempDir,
}

impl Lab {
    /// Three one-file boards b1 b2 b3 in pool p; b3's runner is broken: it
    /// prints nothing and ends as a timeout would.
    pub fn start() -> Option<Lab> {
        if !mq_testkit::lockfile_installed() {
            return None;
        }
        let lab = LabHost::start(2)?;
        lab.install_boards(&["b1", "b2", "b3"]);
        let inventory = tempfile::tempdir().unwrap();
        mq_testkit::set_mode(inventory.path(), 0o755);
        let dir = inventory.path();
        let mut systems = mq_core::inventory::SYSTEM_COLUMNS.join("\t") + "\n";
        for b in ["b1", "b2", "b3"] {
            systems += &format!("{b}\t{b}\tarm\tp\tarmv8-a\ts\tc\t1\t1GB\t?\t1\t1\tno\tno\n");
        }
        std::fs::write(dir.join("systems.tsv"), systems).unwrap();
        std::fs::write(dir.join("pools.tsv"), "p\tb1\tb2\tb3\n").unwrap();
        std::fs::write(dir.join("image"), format!("ELF-loader started\n{PASS}\n")).unwrap();
        std::fs::write(dir.join("failing"), "ELF-loader started\nTest FAILED\n").unwrap();
        std::fs::write(dir.join("health.tsv"), format!("b3\t{PASS}\t10\timage\n")).unwrap();
        for f in ["systems.tsv", "pools.tsv", "image", "failing", "health.tsv"] {
            mq_testkit::set_mode(&dir.join(f), 0o644);
        }
        let t = Lab {
            lab,
            home: tempfile::tempdir().unwrap(),
            inventory,
        };
        t.break_board("b3");
        Some(t)
    }

    pub fn reboot(&self, board: &str) -> PathBuf {
        self.lab
            .root
            .path()
            .join("tftpboot")
            .join(board)
            .join("reboot")
    }

    pub fn break_board(&self, board: &str) {
        std::fs::write(self.reboot(board), "#!/bin/sh\nsleep 0.2\nexit 4\n").unwrap();
        mq_testkit::set_mode(&self.reboot(board), 0o755);
    }

    pub fn mend_board(&self, board: &str) {
        std::fs::write(self.reboot(board), mq_testkit::EMULATED_REBOOT).unwrap();
        mq_testkit::set_mode(&self.reboot(board), 0o755);
    }

    pub fn mq(&self, user: usize, args: &[&str]) -> Run {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args);
        self.lab
            .configure(&mut cmd, &self.lab.users[user].name, self.home.path());
        cmd.env("MQ_INVENTORY", self.inventory.path());
        Run::of(&mut cmd)
    }

    /// `mq` as `user`, killed after `seconds` (coreutils' `timeout`: exit
    /// 124 when it had to): for what another user planted, which must
    /// never make mq hang.
    pub fn mq_within(&self, seconds: u32, user: usize, args: &[&str]) -> Run {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", &seconds.to_string()])
            .arg(assert_cmd::cargo::cargo_bin("mq"))
            .args(args);
        self.lab
            .configure(&mut cmd, &self.lab.users[user].name, self.home.path());
        cmd.env("MQ_INVENTORY", self.inventory.path());
        let run = Run::of(&mut cmd);
        assert_ne!(
            run.code, 124,
            "mq {args:?} hung: {}{}",
            run.stdout, run.stderr
        );
        run
    }

    pub fn image(&self, name: &str) -> String {
        self.inventory.path().join(name).display().to_string()
    }

    pub fn run(&self, user: usize, target: &str, extra: &[&str]) -> Run {
        let image = self.image("image");
        let mut args = vec!["run", "-s", target, "-c", PASS, "-d", "10", "-f", &image];
        args.extend(extra);
        self.mq(user, &args)
    }

    pub fn health(&self, system: &str) -> serde_json::Value {
        let r = self.mq(0, &["health", system, "--json"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()[0].clone()
    }
}

pub fn state(v: &serde_json::Value) -> (&str, u64) {
    (
        v["state"].as_str().unwrap(),
        v["failures"].as_u64().unwrap(),
    )
}
