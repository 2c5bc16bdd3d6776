//! A custom test harness on mq-core's job API: run one image on a board and
//! print the typed report, the way a CI runner would embed mq.
//!
//! ```sh
//! # configuration as for mq (MQ_HOST, MQ_BASE, ~/.mq, ...):
//! cargo run --example harness -- sabre 'All is well in the universe' 600 sel4test-image
//! ```
//!
//! ^C (or SIGTERM, SIGHUP) cancels the job through its [`Cancel`] handle: mq-core
//! ends the wait, or stops the board, and releases the lock.

use mq_core::job::{Cancel, JobEvent, JobSpec};
use mq_core::{Config, Environment, MachineQueue, Overrides};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [system, completion, timeout, files @ ..] = &args[..] else {
        eprintln!("usage: harness SYSTEM COMPLETION-TEXT TIMEOUT-SECONDS IMAGE...");
        std::process::exit(1);
    };
    let timeout: u64 = timeout
        .parse()
        .unwrap_or_else(|_| fail(&format!("{timeout}: the timeout is whole seconds")));
    let config = Config::resolve(&Overrides::default(), &Environment::from_process())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let queue = MachineQueue::connect(config).unwrap_or_else(|e| fail(&e.to_string()));
    let spec = JobSpec {
        target: system.clone(),
        files: files.iter().map(Into::into).collect(),
        completion: Some(completion.clone()),
        timeout: Some(timeout),
        key: format!("harness-{}", std::process::id()),
        ..JobSpec::default()
    };
    // A harness may cancel from another thread (a CI cancel, a watchdog);
    // here, from ^C, SIGTERM and SIGHUP.
    let cancel = Cancel::from_flag(mq_core::interrupt_on_signals());
    let report = queue
        .run_job(&spec, None, &cancel, &mut |event| match event {
            JobEvent::Waiting { owner, since } => {
                eprintln!("waiting: {owner} has it since {since}")
            }
            JobEvent::Acquired { system, waited } => eprintln!("got {system} after {waited:?}"),
            JobEvent::Console(bytes) => print!("{}", String::from_utf8_lossy(bytes)),
            _ => {}
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "\n{}: {} (exit {}); lock wait {:?}, upload {:?}, console {:?}",
        report.system,
        report
            .outcome
            .as_ref()
            .map_or("reserved".into(), |o| o.summary()),
        report.exit_code,
        report.lock_wait,
        report.upload,
        report.run,
    );
    std::process::exit(report.exit_code);
}

fn fail(message: &str) -> ! {
    eprintln!("harness: {message}");
    std::process::exit(1)
}
