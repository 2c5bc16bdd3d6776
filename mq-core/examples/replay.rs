//! Replays a captured console log through mq-console's matcher and prints
//! what a run would have concluded.
//!
//! ```sh
//! cargo run -p mq-core --example replay -- mq-core/examples/data/sel4test-odroidc4.log
//! cargo run --example replay -- LOG -c 'All is well in the universe' -e 'FAILED'
//! ```

use mq_console::{markers, MatcherBuilder, ReaderSource, Session, SessionOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut log = None;
    let mut completion = String::from("All is well in the universe");
    let mut errors = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" => completion = args.next().expect("-c TEXT"),
            "-e" => errors.push(args.next().expect("-e TEXT")),
            _ => log = Some(arg),
        }
    }
    let Some(log) = log else {
        eprintln!("usage: replay LOG [-c COMPLETION] [-e ERROR]...");
        std::process::exit(1);
    };
    let file = std::fs::File::open(&log).unwrap_or_else(|e| {
        eprintln!("{log}: {e}");
        std::process::exit(1)
    });
    // The texts are literal, as `mq run -c/-e` takes them; markers are regexes.
    let mut builder = MatcherBuilder::new().literal(true).completion(&completion);
    for e in &errors {
        builder = builder.error(e);
    }
    let matcher = builder
        .markers(&markers::sel4_pairs())
        .build()
        .expect("valid patterns");
    let report = Session::new(matcher, SessionOptions::default())
        .run(&mut ReaderSource::new(file))
        .expect("readable log");
    for m in &report.markers {
        if let mq_console::Kind::Marker(label) = &m.kind {
            println!("line {:4}  {label}", m.line_number);
        }
    }
    println!("outcome: {}", report.outcome.summary());
    println!("exit code: {}", report.outcome.exit_code());
    std::process::exit(report.outcome.exit_code());
}
