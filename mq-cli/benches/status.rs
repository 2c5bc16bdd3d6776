//! `mq status` and `mq serve` against a real lab host of 200 boards, as
//! ratios to the floor measured in the same run (one bare OpenSSH `ssh HOST
//! true` as the same user).
//!
//! `cargo bench -p mq-cli --bench status` (as root: it makes throwaway
//! users). Targets: `mq status` of 200 boards (100 held, with histories) in
//! one round trip, at most 1.5x the floor; `mq serve` with 50 event streams
//! open reads the lab at most once a refresh.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mq_testkit::free_port;

const ROUNDS: usize = 11;
const BOARDS: usize = 200;

mod common;
use common::median;

fn main() {
    let Some(lab) = common::lab(1) else {
        return;
    };
    let user = lab.users[0].name.clone();
    // An inventory of 200 boards in pools of four.
    let inventory = tempfile::tempdir().unwrap();
    let mut systems = String::from("name\tmachine\tarch\tsel4_plat\tisa\tsoc\tcpu\tcores\tram\tmax_clk\tnum_files\tnum_files_linux\tpxe_linux\tdtb\n");
    let mut pools = String::new();
    for i in 0..BOARDS {
        systems.push_str(&format!(
            "board{i}\tboard{i}\tarm\tplat\tarmv8\tsoc\tcortex-a53\t4\t2GB\t1GHz\t1\t1\tno\tno\n"
        ));
        if i % 4 == 0 {
            pools.push_str(&format!(
                "pool{}\tboard{i}\tboard{}\tboard{}\tboard{}\n",
                i / 4,
                i + 1,
                i + 2,
                i + 3
            ));
        }
    }
    std::fs::write(inventory.path().join("systems.tsv"), systems).unwrap();
    std::fs::write(inventory.path().join("pools.tsv"), pools).unwrap();
    // Half of them held, as the user, each with a hold history.
    let base = lab.base_str();
    let made = lab.sh_as(
        &user,
        &format!(
            "i=0; while [ $i -lt {BOARDS} ]; do \
               if [ $((i % 2)) -eq 0 ]; then printf 0 > '{base}'/board$i.lock; printf 'ci-%s' $i > '{base}'/board$i.key; fi; \
               mkdir -p '{base}'/queue/board$i; chmod 1777 '{base}'/queue/board$i; j=0; while [ $j -lt 20 ]; do echo \"$((j * 60)) 1795900000 {user} ci-$j\" >> '{base}'/queue/board$i/.holds.{user}; j=$((j + 1)); done; \
               i=$((i + 1)); done"
        ),
    );
    assert!(made.status.success(), "{made:?}");

    let mq = env!("CARGO_BIN_EXE_mq");
    let home = tempfile::tempdir().unwrap();
    let mq_cmd = |args: &[&str]| {
        let mut cmd = Command::new(mq);
        cmd.args(args)
            .env("HOME", home.path())
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", base)
            .env("MQ_INVENTORY", inventory.path())
            .env("MQ_SSH_CONFIG", lab.config_for(&user))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("MQ_TRANSPORT")
            .stdin(Stdio::null());
        cmd
    };
    let time = |mut cmd: Command| {
        let t = Instant::now();
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        (t.elapsed(), out.stdout)
    };
    let floor_cmd = || common::floor_command(&lab, &user);
    time(floor_cmd());
    let floor = median((0..ROUNDS).map(|_| time(floor_cmd()).0).collect());
    let (_, json) = time(mq_cmd(&["status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let boards = status["boards"].as_array().unwrap();
    let held = boards.iter().filter(|b| !b["holder"].is_null()).count();
    assert_eq!((boards.len(), held), (BOARDS, BOARDS / 2));
    let connections = lab.server.connections();
    let status_time = median(
        (0..ROUNDS)
            .map(|_| time(mq_cmd(&["status", "--json"])).0)
            .collect(),
    );
    let per_run = (lab.server.connections() - connections) as f64 / ROUNDS as f64;

    // mq serve, 50 event streams open for 10 s.
    let port = free_port();
    let mut serve = mq_cmd(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = || -> Option<serde_json::Value> {
        let text = ureq::get(&format!("http://127.0.0.1:{port}/api/status"))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        serde_json::from_str(&text).ok()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while api().is_none_or(|v| v["reachable"] != true) {
        assert!(Instant::now() < deadline, "mq serve never read the lab");
        std::thread::sleep(Duration::from_millis(100));
    }
    let streams: Vec<_> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    let before = api().unwrap()["reads"].as_u64().unwrap();
    let watched = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let reads = api().unwrap()["reads"].as_u64().unwrap() - before;
    let watched = watched.elapsed();
    drop(streams);
    let _ = serve.kill();
    let _ = serve.wait();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("floor: ssh HOST true              {:8.1} ms", ms(floor));
    println!(
        "mq status, {BOARDS} boards ({} held) {:8.1} ms  ratio {:.2} (target <= 1.5); {per_run:.0} connection a run",
        BOARDS / 2,
        ms(status_time),
        ms(status_time) / ms(floor)
    );
    println!(
        "mq serve, 50 event streams: {reads} reads of the lab in {:.1} s at a 2 s refresh (target <= {})",
        watched.as_secs_f64(),
        watched.as_secs() / 2 + 1
    );
}
