//! `mq serve` and `mq status` as users run them: the built binary against a
//! real lab host (sshd on 127.0.0.1, throwaway users, procmail's lockfile),
//! the page in a real browser (headless Chromium), `/metrics` read by a
//! Prometheus text-format parser.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_testkit::{eventually, free_port, Browser, LabHost, Run};

struct Lab {
    lab: LabHost,
    home: tempfile::TempDir,
}

impl Lab {
    fn start(users: usize) -> Option<Lab> {
        if !mq_testkit::lockfile_installed() {
            return None;
        }
        Some(Lab {
            lab: LabHost::start(users)?,
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn command(&self, user: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args);
        self.lab
            .configure(&mut cmd, &self.lab.users[user].name, self.home.path());
        cmd
    }

    fn mq(&self, user: usize, args: &[&str]) -> Run {
        Run::of(&mut self.command(user, args))
    }

    fn user(&self, i: usize) -> &str {
        &self.lab.users[i].name
    }
}

/// `mq serve` on a free port, stopped by its process id when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(lab: &Lab) -> Serve {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = lab
            .command(0, &["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://{listen}");
        let serve = Serve { child, url };
        assert!(
            eventually(Duration::from_secs(20), || serve
                .api()
                .is_some_and(|v| v["reachable"] == true)),
            "mq serve never read the lab"
        );
        serve
    }

    fn get(&self, path: &str) -> Option<String> {
        ureq::get(&format!("{}{path}", self.url))
            .call()
            .ok()?
            .into_string()
            .ok()
    }

    fn api(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.get("/api/status")?).ok()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JavaScript expression: the text of `system`'s cell `field` on the lab
/// page (`null`: no such row).
fn cell(system: &str, field: &str) -> String {
    format!(
        "(() => {{ const r = document.querySelector('#boards tr[data-system=\"{system}\"]'); \
         if (!r) return null; \
         const c = r.querySelector('td[data-field=\"{field}\"]'); return c ? c.textContent : null; }})()"
    )
}

/// `value` as a JavaScript string literal.
fn js(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

#[test]
fn the_page_shows_the_lab_live_escapes_what_it_shows_and_says_when_the_host_is_gone() {
    let Some(t) = Lab::start(2) else { return };
    let systems = t.mq(0, &["systems", "simple"]).stdout.lines().count();
    // A lab at work: a board held, one out of service.
    assert_eq!(
        t.mq(0, &["sem", "-wait", "haswell3", "-k", "CI-1234"]).code,
        0
    );
    let r = t.mq(
        0,
        &[
            "health",
            "set",
            "odroidc4_2",
            "bad",
            "--reason",
            "no serial output",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let serve = Serve::start(&t);
    let Some(browser) = Browser::start("dashboard", 1280, 900) else {
        return;
    };
    browser.goto(&format!("{}/", serve.url));
    let rows =
        format!("return document.querySelectorAll('#boards tbody tr').length === {systems};");
    assert!(
        browser.wait_for(&rows, Duration::from_secs(10)).is_some(),
        "every board: {}",
        browser.eval("return document.querySelectorAll('#boards tbody tr').length;")
    );

    // A hostile key: taken with mq sem -wait, it shows on the open page
    // within 3 s, as text.
    let key = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    assert_eq!(t.mq(1, &["sem", "-wait", "sabre", "-k", key]).code, 0);
    let shows = format!(
        "return {} === {} && {} === {};",
        cell("sabre", "holder"),
        js(t.user(1)),
        cell("sabre", "key"),
        js(key)
    );
    let took = browser
        .wait_for(&shows, Duration::from_secs(3))
        .unwrap_or_else(|| {
            panic!(
                "the holder did not show within 3 s: {}",
                browser.eval(&format!("return {};", cell("sabre", "holder")))
            )
        });
    eprintln!("the page showed the holder {took:?} after the lock was taken");
    assert!(!browser.alert_open(), "the key ran as script");
    assert_eq!(
        browser.eval("return document.querySelectorAll('script').length + document.querySelectorAll('#boards img').length;"),
        1,
        "only the page's own script; nothing injected"
    );
    browser.screenshot(&browser.shots.join("dashboard.png"));

    // A phone's width: one column of cards, nothing wider than the screen.
    browser.resize(390, 844);
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth && \
                getComputedStyle(document.querySelector('#boards thead')).display === 'none';";
    assert!(
        browser.wait_for(fits, Duration::from_secs(5)).is_some(),
        "{} wide in a {} window",
        browser.eval("return document.documentElement.scrollWidth;"),
        browser.eval("return window.innerWidth;")
    );
    browser.screenshot(&browser.shots.join("dashboard-phone.png"));
    browser.resize(1280, 900);

    // /metrics, read as Prometheus reads it.
    let text = serve.get("/metrics").unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
                _ => f64::NAN,
            })
    };
    assert!(eventually(Duration::from_secs(5), || {
        let text = serve.get("/metrics").unwrap();
        text.contains("mq_boards_held 2")
    }));
    assert_eq!(value("mq_up"), Some(1.0));
    let good = scrape
        .samples
        .iter()
        .find(|s| s.metric == "mq_boards" && s.labels.get("state") == Some("good"))
        .expect("boards by state");
    assert!(matches!(good.value, prometheus_parse::Value::Gauge(v) if v as usize == systems - 1));
    let bad = scrape
        .samples
        .iter()
        .find(|s| s.metric == "mq_boards" && s.labels.get("state") == Some("bad"))
        .expect("boards by state");
    assert!(matches!(bad.value, prometheus_parse::Value::Gauge(v) if v == 1.0));
    assert!(scrape.samples.iter().any(|s| s.metric == "mq_hold_seconds"
        && matches!(s.value, prometheus_parse::Value::Histogram(_))));

    // Released: the page clears it.
    assert_eq!(t.mq(1, &["sem", "-signal", "sabre", "-k", key]).code, 0);
    let cleared = format!("return {} === '';", cell("sabre", "holder"));
    assert!(
        browser.wait_for(&cleared, Duration::from_secs(3)).is_some(),
        "the release did not show within 3 s"
    );

    // The board's page: the hold just ended, key as text.
    browser.goto(&format!("{}/board/sabre", serve.url));
    let held = format!(
        "return Array.from(document.querySelectorAll('#b-holds tbody td')).some(td => td.textContent === {});",
        js(key)
    );
    assert!(
        browser.wait_for(&held, Duration::from_secs(5)).is_some(),
        "the hold in the board's history"
    );
    assert!(!browser.alert_open());

    // Reads stay one a refresh, however many watch: ten more event streams.
    let before = serve.api().unwrap()["reads"].as_u64().unwrap();
    let streams: Vec<_> = (0..10)
        .map(|_| {
            std::net::TcpStream::connect(serve.url.trim_start_matches("http://")).map(|mut s| {
                use std::io::Write;
                let _ = s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
                s
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(6));
    let reads = serve.api().unwrap()["reads"].as_u64().unwrap() - before;
    assert!(
        (2..=4).contains(&reads),
        "{reads} reads in 6 s at one each 2 s"
    );
    drop(streams);

    // The host goes away: the page says so, and how old its data is.
    browser.goto(&format!("{}/", serve.url));
    assert!(browser.wait_for(&rows, Duration::from_secs(10)).is_some());
    t.lab.server.kill_now();
    let started = Instant::now();
    let down = "return document.getElementById('state').textContent.startsWith('Lab host unreachable since ');";
    assert!(
        browser.wait_for(down, Duration::from_secs(15)).is_some(),
        "{}",
        browser.eval("return document.getElementById('state').textContent;")
    );
    eprintln!("unreachable shown {:?} after sshd died", started.elapsed());
    let state = browser.eval("return document.getElementById('state').textContent;");
    assert!(state.as_str().unwrap().contains("old"), "{state}");
    // The last lab read still shows.
    assert!(browser.eval(&rows) == true);
}

#[test]
fn mq_status_is_one_table_of_the_whole_lab() {
    let Some(t) = Lab::start(2) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "CI-9"]).code, 0);
    let mut waiter = t
        .command(1, &["sem", "-wait", "sabre", "-k", "next"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || t
        .mq(1, &["queue", "sabre"])
        .stdout
        .contains("next")));
    let before = t.lab.server.connections();
    let r = t.mq(1, &["status", "--long", "0s"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.lab.server.connections() - before, 1, "one connection");
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("| sabre "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        row.contains(t.user(0)) && row.contains("CI-9") && row.contains("LONG"),
        "{row}"
    );
    assert!(row.contains(&format!("1 ({})", t.user(1))), "{row}");
    let json: serde_json::Value =
        serde_json::from_str(&t.mq(1, &["status", "sabre_pool", "--json"]).stdout).unwrap();
    assert_eq!(json["version"], 1);
    let boards = json["boards"].as_array().unwrap();
    assert_eq!(boards.len(), 3, "the pool's members");
    let sabre = boards.iter().find(|b| b["system"] == "sabre").unwrap();
    assert_eq!(sabre["holder"]["owner"], t.user(0));
    assert_eq!(sabre["waiting"][0]["key"], "next");
    assert_eq!(sabre["long_hold"], false);
    // The old protocol's own view agrees on the holder.
    let info = t.mq(1, &["sem", "-info", "sabre"]).stdout;
    assert!(info.contains(&format!("held by {}", t.user(0))), "{info}");
    assert_eq!(t.mq(0, &["unlock", "sabre", "-k", "CI-9"]).code, 0);
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
    assert_eq!(t.mq(1, &["unlock", "sabre", "-k", "next"]).code, 0);
    // Bad input: before any connection.
    let before = t.lab.server.connections();
    let r = t.mq(0, &["status", "--long", "soon"]);
    assert_eq!(r.code, i32::from(mq_core::exit::USAGE), "{}", r.stderr);
    assert!(r.stderr.contains("--long"), "{}", r.stderr);
    assert_eq!(t.lab.server.connections(), before);
}

/// `mq status --watch` on a terminal (tmux): the table redrawn in place,
/// a lock taken shows within a refresh or two, ^C ends it.
#[test]
fn mq_status_watch_redraws_in_place() {
    let Some(t) = Lab::start(2) else { return };
    let Some(term) = mq_testkit::Tmux::run(&t.command(0, &["status", "--watch", "sabre_pool"]))
    else {
        return;
    };
    let screen = term
        .wait_for("| sabre ", Duration::from_secs(10))
        .unwrap_or_else(|s| panic!("no table:\n{s}"));
    assert!(!screen.contains(t.user(1)), "{screen}");
    assert_eq!(t.mq(1, &["sem", "-wait", "sabre", "-k", "watched"]).code, 0);
    let screen = term
        .wait_for("watched", Duration::from_secs(10))
        .unwrap_or_else(|s| panic!("the hold did not show:\n{s}"));
    assert!(screen.contains(t.user(1)), "{screen}");
    // In place: one table on the screen, however many redraws.
    assert_eq!(screen.matches("| system ").count(), 1, "{screen}");
    let pid: u32 = term.display("#{pane_pid}").parse().unwrap();
    term.keys(&["C-c"]);
    assert!(
        eventually(Duration::from_secs(10), || !mq_testkit::alive(pid)),
        "^C did not end it:\n{}",
        term.screen()
    );
    // Its status, as the pane's shell recorded it: 0.
    let status = term.exit_status(Duration::from_secs(2));
    assert!(matches!(status, Some(0) | None), "{status:?}");
    assert_eq!(t.mq(1, &["unlock", "sabre", "-k", "watched"]).code, 0);
}

#[test]
fn the_server_sheds_silent_connections_and_answers_only_to_its_own_name() {
    let Some(t) = Lab::start(1) else { return };
    let serve = Serve::start(&t);
    let port = serve.url.rsplit(':').next().unwrap().to_string();
    // A page of another site whose name was rebound to 127.0.0.1 (DNS
    // rebinding) gets nothing; the loopback names get the lab.
    let with_host = |host: &str| {
        ureq::get(&format!("{}/api/status", serve.url))
            .set("Host", host)
            .call()
            .map_or_else(
                |e| match e {
                    ureq::Error::Status(code, _) => code,
                    other => panic!("{other}"),
                },
                |r| r.status(),
            )
    };
    assert_eq!(with_host(&format!("evil.example:{port}")), 421);
    assert_eq!(with_host(&format!("localhost:{port}")), 200);
    assert_eq!(with_host(&format!("127.0.0.1:{port}")), 200);

    // 400 connections that never send a byte: the server keeps answering
    // within its header timeout (10 s), and closes them.
    let addr = serve.url.trim_start_matches("http://").to_string();
    let silent: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    assert!(silent.len() >= 300, "{} connections", silent.len());
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(20), || serve.api().is_some()),
        "the dashboard stopped answering"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut byte = [0u8; 1];
    use std::io::Read;
    // Closed (or answered, then closed) before 15 s, not kept open.
    if let Err(e) = first.read(&mut byte) {
        panic!("a silent connection was kept for 15 s: {e}");
    }

    // Listening beyond loopback says what that shows, and to whom.
    let listen = format!("0.0.0.0:{}", free_port());
    let mut child = t
        .command(0, &["serve", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    err.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("WARNING") && line.contains("anyone who can reach this port"),
        "{line}"
    );
}
