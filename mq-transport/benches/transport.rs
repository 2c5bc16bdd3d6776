//! Transport benchmark against a real sshd on 127.0.0.1, as ratios to the
//! floor measured in the same run: one bare OpenSSH `ssh HOST true`.
//!
//! `cargo bench -p mq-transport` prints:
//! * connect + first command with SshTransport  / floor  (target <= 1.2)
//! * each further command on the same connection / floor (target <= 0.2)
//! * 64 MiB upload throughput / scp's                    (target >= 0.5)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mq_testkit::SshServer;
use mq_transport::ssh::config::Resolver;
use mq_transport::{SshOptions, SshTransport, Transport};

const ROUNDS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo test --benches` runs this too; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(server) = SshServer::start() else {
        eprintln!("no sshd: nothing measured");
        return;
    };
    // Measured as a throwaway user whose shell is plain sh when we can make
    // one: root's shell on a developer machine may run seconds of rc files
    // per command, which would hide the transport's own cost.
    let user = mq_testkit::TestUser::create("bench");
    let config = server.dir.path().join("bench_config");
    let block = match &user {
        Some(user) => {
            server.authorize_user(&user.name);
            server.config_block_for("lab", &user.name)
        }
        None => server.config_block("lab"),
    };
    std::fs::write(&config, block).unwrap();
    let cfg = config.to_str().unwrap();
    let ssh_true = || {
        let status = Command::new("ssh")
            .args(["-F", cfg, "lab", "true"])
            .status()
            .unwrap();
        assert!(status.success());
    };
    ssh_true(); // warm caches
    let floor = median((0..ROUNDS).map(|_| time(ssh_true)).collect());

    let options = SshOptions::new("lab").config_file(&config).agent(None);
    let connect_and_run = |o: &SshOptions| {
        median(
            (0..ROUNDS)
                .map(|_| {
                    time(|| {
                        let t = SshTransport::connect(o).unwrap();
                        assert!(t.run("true").unwrap().status.success());
                    })
                })
                .collect(),
        )
    };
    let first = connect_and_run(&options);

    // What resolving the configuration costs: ssh -G (the default where ssh
    // is installed) against the built-in parser.
    let built_in_options = options.clone().resolver(Resolver::BuiltIn);
    let first_built_in = connect_and_run(&built_in_options);
    let resolve = |o: &SshOptions| {
        median(
            (0..ROUNDS)
                .map(|_| time(|| drop(o.host_config().unwrap())))
                .collect(),
        )
    };
    let (resolve_g, resolve_built_in) = (resolve(&options), resolve(&built_in_options));

    let t = SshTransport::connect(&options).unwrap();
    t.run("true").unwrap();
    let further = median(
        (0..ROUNDS)
            .map(|_| {
                time(|| {
                    for _ in 0..20 {
                        assert!(t.run("true").unwrap().status.success())
                    }
                }) / 20
            })
            .collect(),
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image");
    std::fs::write(&file, vec![0x5au8; 64 << 20]).unwrap();
    mq_testkit::set_mode(dir.path(), 0o777);
    let dest = dir.path().join("dest");
    let upload = median(
        (0..5)
            .map(|_| {
                time(|| {
                    t.upload(&file, dest.to_str().unwrap(), &mut |_, _| true)
                        .unwrap()
                })
            })
            .collect(),
    );
    let scp = |from: &Path, to: &Path| {
        let status = Command::new("scp")
            .args(["-q", "-F", cfg])
            .arg(from)
            .arg(format!("lab:{}", to.display()))
            .status()
            .unwrap();
        assert!(status.success());
    };
    let scp_time = median((0..5).map(|_| time(|| scp(&file, &dest))).collect());

    println!("floor: ssh HOST true                 {:8.2} ms", ms(floor));
    println!(
        "SshTransport connect + 1 command     {:8.2} ms  ratio {:.2} (target <= 1.2)",
        ms(first),
        first.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  the same with the built-in parser  {:8.2} ms  ratio {:.2}",
        ms(first_built_in),
        first_built_in.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "resolving the configuration: ssh -G {:.2} ms, built-in {:.2} ms  ({:.3} of the floor)",
        ms(resolve_g),
        ms(resolve_built_in),
        resolve_g.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "each further command (of 20)         {:8.2} ms  ratio {:.3} (target <= 0.2)",
        ms(further),
        further.as_secs_f64() / floor.as_secs_f64()
    );
    let mib = 64.0;
    println!(
        "upload 64 MiB: SshTransport {:.0} MiB/s, scp {:.0} MiB/s  ratio {:.2} (target >= 0.5)",
        mib / upload.as_secs_f64(),
        mib / scp_time.as_secs_f64(),
        scp_time.as_secs_f64() / upload.as_secs_f64()
    );
}
