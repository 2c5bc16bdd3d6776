//! `mq lab init DIR`: a complete lab on this machine.
//!
//! ```text
//! DIR/lab.conf                 the lab file: QEMU boards qemu-x86-1, qemu-x86-2, qemu-arm-1
//! DIR/base/VERSION             the lock directory (BASE), protocol 5
//! DIR/tftpboot/BOARD/reboot    per-board wrappers: mq board reboot --lab ... --board BOARD
//! DIR/state/                   the runners' board locks (one runner per board; --shutdown)
//! DIR/inventory/systems.tsv    systems qemu_x86_1, qemu_x86_2 (two-file x86 boards) and
//!                              qemu_arm_1 (a one-file AArch64 board)
//! DIR/inventory/pools.tsv      pool qemu_x86_pool of both
//! DIR/images/kernel.elf        a Multiboot kernel made by mq (see crate::image)
//! DIR/images/rootserver        its module, ending in 'All is well in the universe'
//! DIR/images/sel4test-arm.img  a one-file AArch64 image for qemu-arm-1, the same text
//! DIR/mq.env                   the configuration that points mq at this lab
//! ```

use std::path::{Path, PathBuf};

use mq_transport::quote;

use crate::image;

/// The completion text the lab's root server prints.
pub const COMPLETION: &str = "All is well in the universe";

/// What a new lab holds.
#[derive(Debug, Clone)]
pub struct Lab {
    /// Its directory.
    pub dir: PathBuf,
    /// The boards' system names, as the inventory has them.
    pub systems: Vec<String>,
    /// The pool of all of them.
    pub pool: String,
}

impl Lab {
    /// The lock directory.
    pub fn base(&self) -> PathBuf {
        self.dir.join("base")
    }
    /// The directory of the `reboot` wrappers.
    pub fn tftpboot(&self) -> PathBuf {
        self.dir.join("tftpboot")
    }
    /// The inventory directory.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory")
    }
    /// The kernel image.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("images/kernel.elf")
    }
    /// The root-server image.
    pub fn rootserver(&self) -> PathBuf {
        self.dir.join("images/rootserver")
    }
    /// The Arm board's one-file image.
    pub fn arm_image(&self) -> PathBuf {
        self.dir.join("images/sel4test-arm.img")
    }
    /// The environment that points mq at this lab through the local transport.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MQ_TRANSPORT", "local".into()),
            ("MQ_BASE", self.base().display().to_string()),
            ("MQ_TFTPBOOT", self.tftpboot().display().to_string()),
            ("MQ_INVENTORY", self.inventory().display().to_string()),
        ]
    }
}

fn write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The demonstration images: one for the Arm board, kernel and rootserver for x86.
fn write_images(images: &Path) -> std::io::Result<()> {
    write(
        &images.join("sel4test-arm.img"),
        &image::arm64_image(COMPLETION),
        0o644,
    )?;
    write(&images.join("kernel.elf"), &image::x86_kernel(), 0o644)?;
    write(
        &images.join("rootserver"),
        &image::rootserver(COMPLETION),
        0o644,
    )
}

/// Makes `path` with `mode`; a directory that exists already keeps its own
/// mode (the user's directory is not ours to open up).
fn dir(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// PROTOCOL.md's `TFTPBOOT/MACHINE/reboot` for `machine`: mq's board runner.
fn write_wrapper(root: &Path, lab_file: &Path, mq: &Path, machine: &str) -> std::io::Result<()> {
    let wrapper = format!(
        "#!/bin/sh\n# PROTOCOL.md's reboot for board {machine}: mq's board runner.\nexec {} board reboot --lab {} --board {} \"$@\"\n",
        quote(&mq.display().to_string()),
        quote(&lab_file.display().to_string()),
        quote(machine)
    );
    dir(&root.join("tftpboot"), 0o755)?;
    write(
        &root.join("tftpboot").join(machine).join("reboot"),
        wrapper.as_bytes(),
        0o755,
    )
}

/// The board's lock in the lab's state directory, readable by every user
/// (a `flock` needs only a read descriptor).
fn write_lock(root: &Path, machine: &str) -> std::io::Result<()> {
    let path = crate::boardlock::BoardLock::path(&root.join("state"), machine);
    if path.exists() {
        return Ok(());
    }
    write(&path, b"", 0o644)
}

/// Writes a lab with `boards` QEMU x86 boards and one QEMU Arm board into `root`; `mq` is the
/// program the `reboot` wrappers run. Refuses a directory that already has a
/// lab file.
pub fn init(root: &Path, boards: usize, mq: &Path) -> std::io::Result<Lab> {
    let root = std::path::absolute(root)?;
    let lab_file = root.join("lab.conf");
    if boards == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a lab needs at least one x86 board (--boards 1 or more)",
        ));
    }
    if lab_file.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already holds a lab", root.display()),
        ));
    }
    dir(&root, 0o755)?;
    // Shared like a lab host's: anyone may lock, and force a release.
    dir(&root.join("base"), 0o777)?;
    write(&root.join("base/VERSION"), b"5\n", 0o644)?;
    // What mq keeps beside the locks (docs/PROTOCOL-EXTENSIONS.md, "Sharing
    // the host"): the lines and each user's health log where every user
    // creates files of their own (sticky: nobody removes another's), the
    // health states, replaced whole by whoever changes them.
    dir(&root.join("base/queue"), 0o1777)?;
    dir(&root.join("base/health"), 0o777)?;
    dir(&root.join("base/health/logs"), 0o1777)?;
    // Every user's runner takes its board's lock here. Only the lab's
    // owner writes the directory, and makes a lock for every board below:
    // nobody else can plant a link, a FIFO or an unreadable file in a
    // board's place (mq_lab::boardlock).
    dir(&root.join("state"), 0o755)?;

    let mut conf =
        String::from("# mq lab file: one [board NAME] section per board (see mq board --help).\n");
    let mut systems_tsv = format!("{}\n", mq_core::inventory::SYSTEM_COLUMNS.join("\t"));
    let mut systems = Vec::new();
    for n in 1..=boards {
        let machine = format!("qemu-x86-{n}");
        let system = format!("qemu_x86_{n}");
        conf.push_str(&format!(
            "\n[board {machine}]\nkind = qemu\nqemu = qemu-system-x86_64\noptions = -machine pc -m 128\nboot_timeout = 60\n"
        ));
        systems_tsv.push_str(&format!(
            "{system}\t{machine}\tx86\tpc99\tx86_64\tqemu\tqemu64\t1\t128MB\t?\t2\t2\tno\tno\n"
        ));
        write_wrapper(&root, &lab_file, mq, &machine)?;
        write_lock(&root, &machine)?;
        systems.push(system);
    }
    // One Arm board, as most of the fleet is: QEMU's virt machine, one file.
    conf.push_str(
        "\n[board qemu-arm-1]\nkind = qemu\nqemu = qemu-system-aarch64\noptions = -machine virt -cpu cortex-a53 -m 128\nboot_timeout = 60\n",
    );
    systems_tsv.push_str(
        "qemu_arm_1\tqemu-arm-1\tarm\tqemu-arm-virt\tarmv8-a\tqemu-virt\tcortex-a53\t1\t128MB\t?\t1\t1\tno\tno\n",
    );
    write_wrapper(&root, &lab_file, mq, "qemu-arm-1")?;
    write_lock(&root, "qemu-arm-1")?;
    let pool = "qemu_x86_pool".to_string();
    write(
        &root.join("inventory/systems.tsv"),
        systems_tsv.as_bytes(),
        0o644,
    )?;
    write(
        &root.join("inventory/pools.tsv"),
        format!("{pool}\t{}\n", systems.join("\t")).as_bytes(),
        0o644,
    )?;
    write_images(&root.join("images"))?;
    let lab = Lab {
        dir: root.clone(),
        systems,
        pool,
    };
    let env: String = lab
        .env()
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect();
    write(&root.join("mq.env"), env.as_bytes(), 0o644)?;
    write(&lab_file, conf.as_bytes(), 0o644)?;
    Ok(lab)
}
