//! Boards on two lab hosts (two sshd servers, each with its own users and
//! lock directory) from one inventory: locks, runs, a pool spanning both,
//! and the whole-lab commands with one host down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mq_testkit::{LabHost, Run};

struct Sites {
    one: LabHost,
    two: LabHost,
    home: tempfile::TempDir,
    inventory: tempfile::TempDir,
    ssh_config: PathBuf,
    tftpboot: PathBuf,
}

const HEADER: &str = "name\tmachine\tarch\tsel4_plat\tisa\tsoc\tcpu\tcores\tram\tmax_clk\tnum_files\tnum_files_linux\tpxe_linux\tdtb\thost\tbase";

impl Sites {
    fn start() -> Option<Sites> {
        if !mq_testkit::lockfile_installed() {
            return None;
        }
        let one = LabHost::start(1)?;
        let two = LabHost::start(1)?;
        // Both hosts are this machine: one board directory serves both.
        let tftpboot = one.install_boards(&["a1", "a2", "b1", "b2"]);
        let inventory = tempfile::tempdir().unwrap();
        let row = |name: &str, host: &str, base: &str| {
            format!("{name}\t{name}\tarm\tplat\tarmv8\tsoc\tcpu\t4\t1GB\t1GHz\t1\t1\tno\tno\t{host}\t{base}\n")
        };
        let mut systems = format!("{HEADER}\n");
        systems += &row("a1", "", "");
        systems += &row("a2", "", "");
        systems += &row("b1", "lab2", two.base_str());
        systems += &row("b2", "lab2", two.base_str());
        std::fs::write(inventory.path().join("systems.tsv"), systems).unwrap();
        std::fs::write(
            inventory.path().join("pools.tsv"),
            "span_pool\ta1\tb1\nb_pool\tb1\tb2\n",
        )
        .unwrap();
        let ssh_config = inventory.path().join("ssh_config");
        std::fs::write(
            &ssh_config,
            one.server.config_block_for("lab", &one.users[0].name)
                + &two.server.config_block_for("lab2", &two.users[0].name),
        )
        .unwrap();
        Some(Sites {
            one,
            two,
            home: tempfile::tempdir().unwrap(),
            inventory,
            ssh_config,
            tftpboot,
        })
    }

    /// `mq ARGS` with this lab's settings, the configured host `lab`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", self.one.base_str())
            .env("MQ_TFTPBOOT", &self.tftpboot)
            .env("MQ_INVENTORY", self.inventory.path())
            .env("MQ_SSH_CONFIG", &self.ssh_config)
            .env_remove("MQ_TRANSPORT")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn mq(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    fn image(&self, lines: &[&str]) -> PathBuf {
        let path = self.inventory.path().join("image");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        mq_testkit::set_mode(self.inventory.path(), 0o755);
        mq_testkit::set_mode(&path, 0o644);
        path
    }
}

/// The answer of a command over the whole lab that heard from one host but
/// not the other.
fn assert_partial(r: &Run) {
    assert_eq!(
        r.code,
        i32::from(mq_core::exit::PARTIAL),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

fn owner(base: &Path, system: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(base.join(format!("{system}.lock"))).ok()?;
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
}

#[test]
fn one_inventory_two_lab_hosts() {
    let Some(t) = Sites::start() else { return };
    let (u1, u2) = (&t.one.users[0].name, &t.two.users[0].name);

    // Each board's lock is on its own host, taken as that host's user.
    assert_eq!(t.mq(&["sem", "-wait", "a1", "-k", "k1"]).code, 0);
    assert_eq!(t.mq(&["sem", "-wait", "b1", "-k", "k2"]).code, 0);
    assert_eq!(owner(&t.one.base, "a1").as_deref(), Some(u1.as_str()));
    assert_eq!(owner(&t.two.base, "b1").as_deref(), Some(u2.as_str()));
    assert_eq!(
        owner(&t.one.base, "b1"),
        None,
        "nothing of b1 on the first host"
    );
    let info = t.mq(&["sem", "-info", "b1"]).stdout;
    assert!(info.contains(&format!("held by {u2}")), "{info}");

    // dumpall over both hosts: one line each, in one parallel round.
    let r = t.mq(&["sem", "dumpall"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(
        lines[0].starts_with("a1 LOCKED ") && lines[1].starts_with("b1 LOCKED "),
        "{}",
        r.stdout
    );

    // A pool spanning both: its only free member is on the second host.
    assert_eq!(t.mq(&["sem", "-signal", "b1", "-k", "k2"]).code, 0);
    let r = t.mq(&["sem", "-wait", "span_pool", "-k", "k3"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "b1\n"), "{}", r.stderr);
    assert_eq!(owner(&t.two.base, "b1").as_deref(), Some(u2.as_str()));
    assert_eq!(t.mq(&["sem", "-signal", "b1", "-k", "k3"]).code, 0);

    // A run on a board of the second host: its lock, its console, released.
    let image = t.image(&["ELF-loader started", "All is well in the universe"]);
    let r = t.mq(&[
        "run",
        "-s",
        "b2",
        "-c",
        "All is well",
        "-f",
        image.to_str().unwrap(),
        "-k",
        "run-b2",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("All is well in the universe"),
        "{}",
        r.stdout
    );
    assert_eq!(owner(&t.two.base, "b2"), None, "released");
    // The hold, in the user's own history file (`.holds.USER`).
    let holds: String = std::fs::read_dir(t.two.base.join("queue/b2"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".holds."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(holds.contains("run-b2"), "{holds}");

    // mq status: every board, with its host.
    let r = t.mq(&["status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let hosts: Vec<(&str, &str)> = status["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["system"].as_str().unwrap(), b["host"].as_str().unwrap()))
        .collect();
    assert_eq!(
        hosts,
        [("a1", "lab"), ("a2", "lab"), ("b1", "lab2"), ("b2", "lab2")]
    );
    assert_eq!(status["boards"][3]["last_run"]["key"], "run-b2");
    let systems = t.mq(&["systems"]).stdout;
    assert!(
        systems.contains("Host") && systems.contains("lab2"),
        "{systems}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.mq(&["systems", "--json"]).stdout).unwrap();
    assert_eq!(json[2]["host"], "lab2");
    assert_eq!(json[0]["host"], serde_json::Value::Null);
    // Health lives with the board too.
    let r = t.mq(&[
        "health",
        "set",
        "b1",
        "maintenance",
        "--reason",
        "moved racks",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.two.base.join("health/b1").exists());
    assert!(!t.one.base.join("health/b1").exists());
    let health = t.mq(&["health", "b_pool"]).stdout;
    assert!(
        health.contains("maintenance") && health.contains("moved racks"),
        "{health}"
    );
    let config = t.mq(&["config"]).stdout;
    assert!(
        config.contains("also host  lab2") && config.contains("b1 b2"),
        "{config}"
    );
    // mq.sh's listing keeps mq.sh's columns.
    let tsv = t.mq(&["system-tsv"]).stdout;
    assert!(!tsv.contains("lab2"), "{tsv}");

    // The second host goes away: the first still answers, the second is
    // named, and the exit status says the answer is partial.
    t.two.server.kill_now();
    let started = Instant::now();
    let r = t.mq(&["sem", "dumpall"]);
    assert_partial(&r);
    assert!(r.stdout.starts_with("a1 LOCKED "), "{}", r.stdout);
    assert!(
        r.stderr.contains("lab2") && r.stderr.contains("b1 b2"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = t.mq(&["status"]);
    assert_partial(&r);
    assert!(
        r.stdout.contains("| a1 ") && !r.stdout.contains("| b1 "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("lab host lab2 did not answer"),
        "{}",
        r.stdout
    );
    for args in [&["health"][..], &["queue"][..]] {
        let r = t.mq(args);
        assert_partial(&r);
        assert!(
            r.stderr.contains("lab host lab2 did not answer"),
            "{}",
            r.stderr
        );
    }
    let health = t.mq(&["health"]).stdout;
    assert!(health.contains("a1") && !health.contains("b1"), "{health}");
    assert_eq!(t.mq(&["sem", "-signal", "a1", "-k", "k1"]).code, 0);
}

/// A lab host that takes TCP connections and never says a word; held open
/// until the test ends.
struct Silent {
    port: u16,
    _held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = std::sync::Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Silent { port, _held: held }
    }
}

impl Sites {
    /// Adds board `c1` on host `alias`, reached with `block` (ssh_config).
    fn add_host(&self, alias: &str, block: &str) {
        let systems = self.inventory.path().join("systems.tsv");
        let mut text = std::fs::read_to_string(&systems).unwrap();
        text += &format!(
            "c1\tc1\tarm\tplat\tarmv8\tsoc\tcpu\t4\t1GB\t1GHz\t1\t1\tno\tno\t{alias}\t/tmp\n"
        );
        std::fs::write(&systems, text).unwrap();
        let mut config = std::fs::read_to_string(&self.ssh_config).unwrap();
        config += block;
        std::fs::write(&self.ssh_config, config).unwrap();
    }

    /// `mq ARGS` with no host configured at all.
    /// Adds board `c1` on `lab3`, a host that never speaks, reached with
    /// ConnectTimeout `seconds`.
    fn add_silent_host(&self, seconds: u32) -> Silent {
        let silent = Silent::start();
        self.add_host(
            "lab3",
            &format!(
                "Host lab3\n  HostName 127.0.0.1\n  Port {}\n  ConnectTimeout {seconds}\n  BatchMode yes\n",
                silent.port
            ),
        );
        silent
    }

    fn mq_without_host(&self, args: &[&str]) -> Run {
        Run::of(self.command(args).env_remove("MQ_HOST"))
    }
}

/// A whole-lab command, timed: partial, naming `down`, within `within`.
fn partial_within(t: &Sites, args: &[&str], down: &str, within: Duration) -> Run {
    let started = Instant::now();
    let r = t.mq(args);
    let took = started.elapsed();
    assert_partial(&r);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(said.contains(down), "{args:?} does not name {down}: {said}");
    assert!(took < within, "{args:?} took {took:?}: {said}");
    r
}

#[test]
fn a_host_that_never_speaks_costs_one_connect_timeout() {
    let Some(t) = Sites::start() else { return };
    let _silent = t.add_silent_host(2);
    // Three hosts, one silent: each whole-lab command answers for the other
    // two within that host's ConnectTimeout (2 s) and 1 s more.
    for args in [
        &["status"][..],
        &["status", "--json"][..],
        &["sem", "dumpall"][..],
        &["health"][..],
        &["queue"][..],
    ] {
        partial_within(&t, args, "lab3", Duration::from_secs(3));
    }
    let r = t.mq(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(status["down"][0]["host"], "lab3", "{status}");
    assert_eq!(status["boards"].as_array().unwrap().len(), 4, "{status}");
}

#[test]
fn a_host_that_hangs_after_connecting_is_reported_not_waited_for() {
    let Some(t) = Sites::start() else { return };
    // A user of the second host whose login shell hangs: sshd takes the
    // connection and the command, and nothing ever comes back.
    let Some(stuck) = mq_testkit::TestUser::create("stuck") else {
        return;
    };
    let shell = t.inventory.path().join("stuck-shell");
    std::fs::write(&shell, "#!/bin/sh\nexec sleep 3600\n").unwrap();
    mq_testkit::set_mode(t.inventory.path(), 0o755);
    mq_testkit::set_mode(&shell, 0o755);
    mq_testkit::sh("usermod", &["-s", shell.to_str().unwrap(), &stuck.name]);
    t.two.server.authorize_user(&stuck.name);
    let block = t
        .two
        .server
        .config_block_for("lab3", &stuck.name)
        .replace("BatchMode yes\n", "BatchMode yes\n  ConnectTimeout 2\n");
    t.add_host("lab3", &block);
    for args in [&["status"][..], &["sem", "dumpall"][..], &["health"][..]] {
        let r = partial_within(&t, args, "lab3", Duration::from_secs(5));
        assert!(
            r.stderr.contains("hung") || r.stdout.contains("hung"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn a_board_on_another_host_needs_only_that_host() {
    let Some(t) = Sites::start() else { return };
    let image = t.image(&["ELF-loader started", "All is well in the universe"]);
    let image = image.to_str().unwrap();
    // The configured host goes away (and then is not configured at all):
    // the boards of the second host are used as if nothing happened.
    t.one.server.kill_now();
    for mq in [Sites::mq, Sites::mq_without_host] {
        let r = mq(&t, &["sem", "-wait", "b1", "-k", "k1"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let r = mq(&t, &["sem", "-info", "b1"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("held by"), "{}", r.stdout);
        let r = mq(&t, &["sem", "-signal", "b1", "-k", "k1"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let r = mq(&t, &["run", "-s", "b2", "-c", "All is well", "-f", image]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let r = mq(
            &t,
            &["run", "-s", "b_pool", "-c", "All is well", "-f", image],
        );
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("Unable to ssh"), "{}", r.stderr);
    }
    // A board of the configured host says which host it needs.
    let r = t.mq(&["sem", "-info", "a1"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("Unable to ssh to lab"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // The whole lab: the second host's boards, the configured host named.
    let r = partial_within(&t, &["status", "--json"], "lab", Duration::from_secs(10));
    let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let boards: Vec<&str> = status["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["system"].as_str().unwrap())
        .collect();
    assert_eq!(boards, ["b1", "b2"], "{status}");
    assert_eq!(status["down"][0]["host"], "lab", "{status}");
    for args in [&["sem", "dumpall"][..], &["health"][..], &["queue"][..]] {
        partial_within(&t, args, "lab", Duration::from_secs(10));
    }
}

/// `mq serve` of this lab on a free port, stopped by its process id.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Serve {
    fn start(t: &Sites, refresh: &str) -> Serve {
        let listen = format!("127.0.0.1:{}", mq_testkit::free_port());
        let child = t
            .command(&["serve", "--listen", &listen, "--refresh", refresh])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Serve {
            child,
            url: format!("http://{listen}"),
        }
    }

    fn api(&self) -> Option<serde_json::Value> {
        let text = ureq::get(&format!("{}/api/status", self.url))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The first event of a page opened now.
    fn first_event(&self) -> serde_json::Value {
        use std::io::BufRead;
        let response = ureq::get(&format!("{}/events", self.url)).call().unwrap();
        let mut lines = std::io::BufReader::new(response.into_reader()).lines();
        loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(data) = line.strip_prefix("data:") {
                return serde_json::from_str(data.trim()).unwrap();
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_states(api: &serde_json::Value) -> Vec<(String, String)> {
    api["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_dashboard_says_host_by_host_what_is_fresh_pending_and_down() {
    let Some(t) = Sites::start() else { return };
    let _silent = t.add_silent_host(3);
    let serve = Serve::start(&t, "1");
    // Before the first read ends (the silent host holds it for its
    // ConnectTimeout): pending, with no error.
    let mut first = None;
    assert!(mq_testkit::eventually(Duration::from_secs(10), || {
        first = serve.api();
        first.is_some()
    }));
    let first = first.unwrap();
    assert_eq!(first["reads"], 0, "{first}");
    assert_eq!(first["state"], "pending", "{first}");
    assert_eq!(first["error"], serde_json::Value::Null, "{first}");
    assert!(
        host_states(&first).iter().all(|(_, s)| s == "pending"),
        "{first}"
    );
    // Then: the two hosts that answer are fresh, the silent one is down,
    // with why and since when.
    assert!(mq_testkit::eventually(Duration::from_secs(10), || serve
        .api()
        .is_some_and(|a| a["state"] == "partial")));
    let api = serve.api().unwrap();
    assert_eq!(
        host_states(&api),
        [
            ("lab".to_string(), "fresh".to_string()),
            ("lab2".into(), "fresh".into()),
            ("lab3".into(), "down".into())
        ],
        "{api}"
    );
    assert!(
        api["hosts"][2]["error"].as_str().unwrap().contains("lab3"),
        "{api}"
    );
    assert!(api["hosts"][2]["down_since"].as_u64().is_some(), "{api}");
    assert_eq!(api["reachable"], true);
    // Reads keep their pace (every second): the silent host is not tried
    // again at every read.
    let before = api["reads"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let after = serve.api().unwrap()["reads"].as_u64().unwrap();
    assert!(after >= before + 3, "{before} -> {after} reads in 4 s");
    // The page says the same.
    if let Some(browser) = mq_testkit::Browser::start("sites", 1280, 900) {
        browser.goto(&format!("{}/", serve.url));
        let shown = "return (() => { const s = document.getElementById('state').textContent; \
                     return s.startsWith('Partly live: ') && s.includes('lab: read ') && \
                     s.includes('lab3: not answering since '); })()";
        assert!(
            browser.wait_for(shown, Duration::from_secs(10)).is_some(),
            "{}",
            browser.eval("return document.getElementById('state').textContent;")
        );
    }
}

#[test]
fn a_page_opened_late_gets_the_age_of_the_data_as_it_is_then() {
    let Some(t) = Sites::start() else { return };
    let serve = Serve::start(&t, "60");
    assert!(mq_testkit::eventually(Duration::from_secs(20), || serve
        .api()
        .is_some_and(|a| a["state"] == "live")));
    std::thread::sleep(Duration::from_secs(3));
    let event = serve.first_event();
    assert_eq!(event["reads"], 1, "{event}");
    assert!(event["age_seconds"].as_u64().unwrap() >= 3, "{event}");
    assert!(
        event["hosts"][0]["age_seconds"].as_u64().unwrap() >= 3,
        "{event}"
    );
}

#[test]
fn a_silent_host_never_keeps_an_interrupt_waiting_and_its_time_is_counted() {
    let Some(t) = Sites::start() else { return };
    let _silent = t.add_silent_host(3);
    let pools = t.inventory.path().join("pools.tsv");
    let text = std::fs::read_to_string(&pools).unwrap() + "span3\ta1\tc1\n";
    std::fs::write(&pools, text).unwrap();
    let image = t.image(&["ELF-loader started", "All is well in the universe"]);
    let image = image.to_str().unwrap();
    // ^C while connecting to the silent host (a board of it, or a pool
    // with a member there): mq ends at once, as interrupted.
    for target in ["c1", "span3"] {
        let mut child = t
            .command(&["run", "-s", target, "-c", "All is well", "-f", image])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let interrupted = Instant::now();
        mq_testkit::signal(child.id(), nix::sys::signal::Signal::SIGINT);
        let status = child.wait().unwrap();
        assert!(
            interrupted.elapsed() < Duration::from_secs(2),
            "{target}: {:?} after ^C",
            interrupted.elapsed()
        );
        assert_eq!(status.code(), Some(130), "{target}");
    }
    // Not interrupted: the pool's run goes to a1, and its report counts
    // the time the silent member cost (its ConnectTimeout).
    let report = t.inventory.path().join("report.json");
    let r = t.mq(&[
        "run",
        "-s",
        "span3",
        "-c",
        "All is well",
        "-f",
        image,
        "--json-report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["system"], "a1", "{report}");
    assert!(report["total_s"].as_f64().unwrap() >= 3.0, "{report}");
}
