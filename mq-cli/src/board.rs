//! `mq board reboot` and `mq lab init`: the lab side, over mq-lab.

use std::path::Path;

use mq_lab::labfile::LabFile;
use mq_lab::runner::{self, RebootArgs};

use crate::flags::{self, LabInitArgs};
use crate::Failure;
use mq_core::exit;

/// `mq board reboot --lab FILE --board NAME ...`.
pub fn reboot(args: flags::RebootArgs) -> Result<(), Failure> {
    let cannot_run = |message: String| Failure::new(message, exit::INFRASTRUCTURE);
    let lab = LabFile::load(&args.lab).map_err(|e| cannot_run(format!("mq board: {e}")))?;
    let board = lab.board(&args.board).ok_or_else(|| {
        let names: Vec<&str> = lab.boards.iter().map(|b| b.name.as_str()).collect();
        cannot_run(format!(
            "mq board: no board '{}' in {} (boards: {})",
            args.board,
            args.lab.display(),
            names.join(" ")
        ))
    })?;
    let timeout =
        match args.timeout.as_str() {
            "-1" => None,
            // The runner's statuses are PROTOCOL.md's reboot's: a run it cannot
            // start is 6, whatever the reason.
            text => Some(crate::flags::number(text, 0..=u64::MAX).ok_or_else(|| {
                cannot_run(format!("mq board: -t {text}: seconds, or -1 for none"))
            })?),
        };
    let state = args.lab.parent().unwrap_or(Path::new(".")).join("state");
    mq_lab::boardlock::prepare_state(&state)
        .map_err(|e| cannot_run(format!("mq board: [{}] {e}", board.name)))?;
    let run = RebootArgs {
        linux: args.linux,
        dtb: args.dtb,
        bitstream: args.bitstream,
        log: args.log,
        completion: args.completion,
        timeout,
        error: args.error,
        kernel: args.kernel,
        rootserver: args.rootserver,
        keep_alive: args.keep_alive || args.interactive,
        shutdown: args.shutdown,
    };
    match runner::reboot(board, &run, &state) {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::new(String::new(), exit::from_status(code))),
        Err(e) => Err(cannot_run(format!("mq board: [{}] {e}", board.name))),
    }
}

/// The new lab's inventory: its boards in `systems.tsv` (mq-core's columns:
/// the lab side knows boards, not inventories) and the x86 boards' pool.
fn write_inventory(lab: &mq_lab::init::Lab) -> std::io::Result<()> {
    use mq_lab::init::LabBoardKind;
    let dir = lab.inventory();
    std::fs::create_dir_all(&dir)?;
    let mut systems = format!("{}\n", mq_core::inventory::SYSTEM_COLUMNS.join("\t"));
    for b in &lab.boards {
        // arch, sel4_plat, isa, soc, cpu, cores, ram, max_clk, num_files,
        // num_files_linux, pxe_linux, dtb
        let facts = match b.kind {
            LabBoardKind::X86 => "x86\tpc99\tx86_64\tqemu\tqemu64\t1\t128MB\t?\t2\t2\tno\tno",
            LabBoardKind::Arm => {
                "arm\tqemu-arm-virt\tarmv8-a\tqemu-virt\tcortex-a53\t1\t128MB\t?\t1\t1\tno\tno"
            }
        };
        systems.push_str(&format!("{}\t{}\t{facts}\n", b.system, b.machine));
    }
    let pools = format!("{}\t{}\n", lab.pool, lab.systems.join("\t"));
    for (name, text) in [("systems.tsv", systems), ("pools.tsv", pools)] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    }
    // What was written is an inventory mq reads.
    mq_core::Inventory::load_dir(&dir)
        .map(|_| ())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// `mq lab init DIR`.
pub fn lab_init(args: LabInitArgs) -> Result<(), Failure> {
    let mq = std::env::current_exe()
        .map_err(|e| Failure::new(format!("mq lab: where am I? {e}"), exit::USAGE))?;
    let failed = |e: std::io::Error| {
        Failure::new(format!("mq lab: {}: {e}", args.dir.display()), exit::USAGE)
    };
    let lab = mq_lab::init::init(&args.dir, args.boards, &mq).map_err(failed)?;
    write_inventory(&lab).map_err(failed)?;
    let dir = lab.dir.display();
    let text = format!(
        "A lab with {} QEMU x86 board(s) is ready in {dir}.\n\n\
         Point mq at it (the local transport; or set MQ_HOST and use SSH to this machine):\n  \
         . {dir}/mq.env\n\n\
         Then, for example:\n  \
         mq systems\n  \
         mq run -s {} -c '{}' -f {} -f {}\n  \
         mq run -s qemu_arm_1 -c '{}' -f {}\n  \
         mq sem -info {}",
        lab.systems.len(),
        lab.systems[0],
        mq_lab::init::COMPLETION,
        lab.kernel().display(),
        lab.rootserver().display(),
        mq_lab::init::COMPLETION,
        lab.arm_image().display(),
        lab.pool
    );
    crate::say(text);
    Ok(())
}
