//! `mq queue`: the boards' lines of waiters.

use mq_core::Config;

use crate::errors::failure;
use crate::flags::FeaturesArgs;
use crate::health::names;
use crate::table::Table;
use crate::Failure;

/// `mq queue [NAMES] [--json]`: each system's line of mq waiters, in the
/// order they will be served (old clients' waits are not in it).
pub fn queue(args: FeaturesArgs, config: Config) -> Result<(), Failure> {
    let inventory = config.load_inventory()?;
    let names = names(&inventory, &args.names)?;
    let queue = mq_core::MachineQueue::connect_lab(config, inventory).map_err(failure)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let lab = queue.line_lab(&names).map_err(failure)?;
    let line = lab.answers;
    if args.json {
        crate::emit_json(&line)?;
        return crate::sem::sites_down(&lab.down);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut t = Table::new([
        "system", "place", "user", "key", "waiting", "priority", "pool",
    ]);
    let mut place = 0;
    let mut last = "";
    for ticket in &line {
        if ticket.system != last {
            place = 0;
            last = &ticket.system;
        }
        place += 1;
        t.row([
            ticket.system.clone(),
            place.to_string(),
            ticket.user.clone(),
            ticket.key.clone(),
            format!("{}s", now.saturating_sub(ticket.since)),
            ticket.priority.to_string(),
            ticket.pool.clone().unwrap_or_default(),
        ]);
    }
    crate::emit(&t.render())?;
    crate::sem::sites_down(&lab.down)
}
