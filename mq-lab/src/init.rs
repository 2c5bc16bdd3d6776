//! `mq lab init DIR`: a complete lab on this machine.
//!
//! ```text
//! DIR/lab.conf                 the lab file: QEMU boards qemu-x86-1, qemu-x86-2, qemu-arm-1
//! DIR/base/VERSION             the lock directory (BASE), protocol 5
//! DIR/tftpboot/BOARD/reboot    per-board wrappers: mq board reboot --lab ... --board BOARD
//! DIR/state/                   the runners' board locks (one runner per board; --shutdown)
//! DIR/inventory/               left to the caller: [`Lab::boards`] says what to
//!                              write there (the CLI writes systems qemu_x86_1,
//!                              qemu_x86_2, qemu_arm_1 and pool qemu_x86_pool
//!                              through mq-core's inventory)
//! DIR/images/kernel.elf        a Multiboot kernel made by mq (see crate::image)
//! DIR/images/rootserver        its module, ending in 'All is well in the universe'
//! DIR/images/sel4test-arm.img  a one-file AArch64 image for qemu-arm-1, the same text
//! DIR/mq.env                   the configuration that points mq at this lab
//! ```

use std::path::{Path, PathBuf};

use mq_shell::quote;

use crate::image;

/// The completion text the lab's root server prints.
pub const COMPLETION: &str = "All is well in the universe";

/// What a new lab holds.
#[derive(Debug, Clone)]
pub struct Lab {
    /// Its directory.
    pub dir: PathBuf,
    /// The x86 boards' system names (the pool's members).
    pub systems: Vec<String>,
    /// Every board, for the inventory.
    pub boards: Vec<LabBoard>,
    /// The pool of the x86 boards.
    pub pool: String,
}

/// One board of a new lab, as the inventory is to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabBoard {
    /// Its system name (`qemu_x86_1`).
    pub system: String,
    /// Its machine: the lab file's board and the `tftpboot` directory.
    pub machine: String,
    /// What it emulates.
    pub kind: LabBoardKind,
}

/// What a lab board emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabBoardKind {
    /// QEMU's pc machine: a Multiboot kernel and its root server (two files).
    X86,
    /// QEMU's AArch64 virt machine, one image file.
    Arm,
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
    let mut boards_made = Vec::new();
    let mut systems = Vec::new();
    for n in 1..=boards {
        let machine = format!("qemu-x86-{n}");
        let system = format!("qemu_x86_{n}");
        conf.push_str(&format!(
            "\n[board {machine}]\nkind = qemu\nqemu = qemu-system-x86_64\noptions = -machine pc -m 128\nboot_timeout = 60\n"
        ));
        write_wrapper(&root, &lab_file, mq, &machine)?;
        write_lock(&root, &machine)?;
        systems.push(system.clone());
        boards_made.push(LabBoard {
            system,
            machine,
            kind: LabBoardKind::X86,
        });
    }
    // One Arm board, as most of the fleet is: QEMU's virt machine, one file.
    conf.push_str(
        "\n[board qemu-arm-1]\nkind = qemu\nqemu = qemu-system-aarch64\noptions = -machine virt -cpu cortex-a53 -m 128\nboot_timeout = 60\n",
    );
    write_wrapper(&root, &lab_file, mq, "qemu-arm-1")?;
    write_lock(&root, "qemu-arm-1")?;
    boards_made.push(LabBoard {
        system: "qemu_arm_1".into(),
        machine: "qemu-arm-1".into(),
        kind: LabBoardKind::Arm,
    });
    let pool = "qemu_x86_pool".to_string();
    write_images(&root.join("images"))?;
    let lab = Lab {
        dir: root.clone(),
        systems,
        boards: boards_made,
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
