//! The listing commands: `systems`, `system-tsv`, `pool-tsv`, `pools`,
//! `features`.

use mq_core::inventory::{Inventory, System, Target};

use crate::table::Table;
use crate::Failure;

/// `mq systems`: the systems table, then the pools table.
pub fn systems_tables(inventory: &Inventory, home: &str) -> String {
    // The host column only where the inventory places boards on several.
    let sited = inventory.systems().iter().any(|s| s.host.is_some());
    let mut header = vec![
        "Name", "Arch", "ISA", "SoC", "CPU", "Cores", "RAM", "MaxCLK",
    ];
    if sited {
        header.push("Host");
    }
    let mut systems = Table::new(header);
    for s in inventory.systems() {
        let mut row = vec![
            &s.name, &s.arch, &s.isa, &s.soc, &s.cpu, &s.cores, &s.ram, &s.max_clk,
        ];
        let host = s.host.clone().unwrap_or_else(|| home.to_string());
        if sited {
            row.push(&host);
        }
        systems.row(row.into_iter().cloned());
    }
    let mut out = systems.render();
    out.push('\n');
    out.push_str(&pools_table(inventory));
    out
}

/// `mq pools`: a table of pools and members.
pub fn pools_table(inventory: &Inventory) -> String {
    let mut pools = Table::new(["Pool", "Systems"]);
    for p in inventory.pools() {
        pools.row([p.name.clone(), p.members.join(" ")]);
    }
    pools.render()
}

/// The systems named by `names` (pools expand to their members), or every
/// system when `names` is empty.
pub fn select<'a>(inventory: &'a Inventory, names: &[String]) -> Result<Vec<&'a System>, Failure> {
    if names.is_empty() {
        return Ok(inventory.systems().iter().collect());
    }
    let mut chosen: Vec<&System> = Vec::new();
    for name in names {
        let systems = match inventory.target(name) {
            Some(Target::System(s)) => vec![s],
            Some(Target::Pool(p)) => inventory.pool_members(&p.name).unwrap_or_default(),
            None => return Err(Failure::unknown_target(inventory, name)),
        };
        for s in systems {
            if !chosen.iter().any(|c| c.name == s.name) {
                chosen.push(s);
            }
        }
    }
    Ok(chosen)
}

/// `mq features`: which systems can PXE-boot Linux and take a custom DTB.
pub fn features_table(systems: &[&System]) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut table = Table::new(["Name", "PXE boot Linux", "Custom DTB"]);
    for s in systems {
        table.row([s.name.as_str(), yes_no(s.pxe_linux), yes_no(s.dtb)]);
    }
    table.render()
}
