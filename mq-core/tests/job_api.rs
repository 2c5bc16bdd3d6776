//! mq-core's job API as a harness uses it, against a real lab host, with a
//! fault-injecting transport cutting the connection mid-run.

use std::sync::Arc;
use std::time::Duration;

use mq_core::job::{Cancel, JobError, JobEvent, JobSpec};
use mq_core::{Config, Environment, Inventory, MachineQueue, Outcome, Overrides};
use mq_testkit::LabHost;
use mq_transport::fault::FaultTransport;
use mq_transport::{SshOptions, SshTransport, Transport};

fn lab() -> Option<(LabHost, Config)> {
    if !mq_testkit::lockfile_installed() {
        return None;
    }
    let lab = LabHost::start(1)?;
    let tftpboot = lab.install_boards(&["sabre"]);
    let overrides = Overrides {
        host: Some("lab".into()),
        base: Some(lab.base_str().into()),
        ssh_config: Some(lab.config_for(&lab.users[0].name)),
        tftpboot: Some(tftpboot.display().to_string()),
        ..Overrides::default()
    };
    let config = Config::resolve(
        &overrides,
        &Environment::new(Vec::<(String, String)>::new(), None),
    )
    .unwrap();
    Some((lab, config))
}

fn image(lab: &LabHost, lines: &[&str]) -> std::path::PathBuf {
    let path = lab.root.path().join("image.elf");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn a_harness_gets_events_and_a_typed_report() {
    let Some((lab, config)) = lab() else { return };
    let queue = MachineQueue::connect(config).unwrap();
    let spec = JobSpec {
        target: "sabre".into(),
        files: vec![image(
            &lab,
            &["ELF-loader started", "All is well in the universe"],
        )],
        completion: Some("All is well in the universe".into()),
        timeout: Some(60),
        key: "harness".into(),
        ..JobSpec::default()
    };
    let mut console = Vec::new();
    let mut acquired = false;
    let report = queue
        .run_job(&spec, None, &Cancel::new(), &mut |e| match e {
            JobEvent::Acquired { .. } => acquired = true,
            JobEvent::Console(b) => console.extend_from_slice(b),
            _ => {}
        })
        .unwrap();
    assert!(acquired);
    assert_eq!(report.system, "sabre");
    assert_eq!(report.exit_code, 0);
    assert!(matches!(report.outcome, Some(Outcome::Completed { .. })));
    assert_eq!(report.markers.len(), 1);
    assert!(String::from_utf8_lossy(&console).contains("All is well in the universe"));
    assert_eq!(lab.lock_owner("sabre"), None);
    // The phases are measured, and fit in the whole.
    let phases = report.lock_wait + report.upload + report.run + report.finish;
    assert!(
        report.run > std::time::Duration::ZERO
            && report.finish > std::time::Duration::ZERO
            && phases <= report.total,
        "{report:?}"
    );
}

#[test]
fn cancel_from_another_thread_cleans_up() {
    let Some((lab, config)) = lab() else { return };
    let queue = MachineQueue::connect(config).unwrap();
    let spec = JobSpec {
        target: "sabre".into(),
        files: vec![image(
            &lab,
            &["booting", "@sleep 30", "All is well in the universe"],
        )],
        completion: Some("All is well in the universe".into()),
        ..JobSpec::default()
    };
    let cancel = Cancel::new();
    let handle = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        handle.cancel();
    });
    let report = queue.run_job(&spec, None, &cancel, &mut |_| {}).unwrap();
    // The board had started: the report keeps what was seen.
    assert!(
        matches!(report.outcome, Some(Outcome::Interrupted)),
        "{report:?}"
    );
    assert_eq!(report.exit_code, 130);
    assert!(report.console_bytes > 0, "{report:?}");
    assert!(report.run > Duration::from_secs(1));
    assert_eq!(lab.lock_owner("sabre"), None);
    assert!(mq_testkit::eventually(Duration::from_secs(5), || lab.board_file("sabre", "hup")));
}

#[test]
fn a_connection_cut_mid_console_reconnects_to_release() {
    let Some((lab, config)) = lab() else { return };
    let options = SshOptions::new("lab")
        .config_file(config.ssh_config.value.clone().unwrap())
        .agent(None);
    let faulty = Arc::new(FaultTransport::new(
        SshTransport::connect(&options).unwrap(),
    ));
    // Cut once the console has started: a few hundred bytes in.
    let inventory = Inventory::builtin();
    let queue =
        MachineQueue::with_transport(config, inventory, faulty.clone() as Arc<dyn Transport>);
    let spec = JobSpec {
        target: "sabre".into(),
        files: vec![image(
            &lab,
            &[
                "line one",
                "@sleep 2",
                "line two",
                "@sleep 30",
                "All is well",
            ],
        )],
        completion: Some("All is well".into()),
        ..JobSpec::default()
    };
    let mut cut = false;
    let result = queue.run_job(&spec, None, &Cancel::new(), &mut |e| {
        if let JobEvent::Console(b) = e {
            if !cut && String::from_utf8_lossy(b).contains("line one") {
                faulty.cut();
                cut = true;
            }
        }
    });
    assert!(
        matches!(result, Err(JobError::Transport(ref e)) if e.is_connection_lost()),
        "{result:?}"
    );
    assert_eq!(
        lab.lock_owner("sabre"),
        None,
        "released over a new connection"
    );
    let left = LabHost::files_of(std::path::Path::new("/tmp"), &lab.users[0].name);
    assert!(
        left.iter()
            .all(|f| !f.file_name().unwrap().to_string_lossy().starts_with("mq-")),
        "{left:?}"
    );
}
