//! `mq serve`: a read-only web dashboard of the lab, live.
//!
//! One thread reads the lab ([`MachineQueue::status`]: one script over one
//! SSH connection) every refresh, however many browsers watch, and tells
//! the pages through a watch channel; axum (on a small tokio runtime) serves
//! the pages, and each page's server-sent events wake on the next read.
//! Every page and asset is in the binary; the page builds itself from
//! `/api/status` with `textContent` only, under a Content-Security-Policy
//! that allows no inline script.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State as Shared_;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mq_core::{exit, Config, Inventory, LabStatus, MachineQueue};
use serde::Serialize;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};

use crate::flags::ServeArgs;
use crate::status::parse_span;
use crate::Failure;

const INDEX: &str = include_str!("serve/index.html");
const APP_JS: &str = include_str!("serve/app.js");
const APP_CSS: &str = include_str!("serve/app.css");

/// The most connections served at once; more are closed as they come (a
/// page holds one for its events).
const MAX_CONNECTIONS: usize = 256;

/// How long a connection may take to send a request's headers, and stay
/// idle between requests: silent connections cannot pile up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// No inline script or style, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the dashboard knows, shared by the reader and the requests.
struct Shared {
    state: Mutex<State>,
    /// The number of reads so far: every page's event stream wakes on it
    /// and sends `/api/status` as it is at that moment (its ages counted
    /// at sending, not at the read).
    changed: watch::Sender<u64>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a read: the pages' next event.
    fn tell(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

#[derive(Default)]
struct State {
    /// The last status read, if any.
    status: Option<LabStatus>,
    /// When it was read (this machine's clock).
    read_at: Option<SystemTime>,
    /// Why the last read failed, and since when reads fail.
    down: Option<(String, SystemTime)>,
    /// Scripts run on the lab host.
    remote_reads: u64,
    metrics: Totals,
    /// Every lab host, the configured one first.
    hosts: Vec<String>,
    /// When each host last answered.
    answered: HashMap<String, SystemTime>,
    /// Each host that did not answer the last read: why, and since when.
    host_down: HashMap<String, (String, SystemTime)>,
}

/// Counters over what the lab's history showed since the dashboard started.
///
/// The history is other users' files: a record is new when it was not in
/// the board's history at the last read (not when it is "later" than one
/// seen, which a record dated far ahead would stop for good), and every sum
/// saturates, so no record can make a counter go down or wrap.
#[derive(Default)]
struct Totals {
    holds: Histogram,
    waits: Histogram,
    runs: HashMap<String, u64>,
    /// Per board and kind, the records of the last read.
    seen: HashMap<(String, &'static str), HashSet<String>>,
}

/// Prometheus histogram buckets (seconds): a minute to a day.
const BUCKETS: [u64; 8] = [60, 300, 900, 1800, 3600, 7200, 14_400, 86_400];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: u64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i] = self.buckets[i].saturating_add(1);
            }
        }
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(seconds);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (le, n) in BUCKETS.iter().zip(self.buckets) {
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            self.count, self.sum, self.count
        ));
    }
}

impl Totals {
    /// Counts the records that were not there at the last read.
    fn take(&mut self, status: &LabStatus) {
        for b in &status.boards {
            let mut fresh = |kind: &'static str, records: Vec<String>| -> Vec<bool> {
                let before = self.seen.entry((b.system.clone(), kind)).or_default();
                let new = records.iter().map(|r| !before.contains(r)).collect();
                *before = records.into_iter().collect();
                new
            };
            let key = |r: &dyn std::fmt::Debug| format!("{r:?}");
            let new = fresh("holds", b.holds.iter().map(|h| key(h)).collect());
            for (h, _) in b.holds.iter().zip(new).filter(|(_, n)| *n) {
                self.holds.observe(h.seconds);
            }
            let new = fresh("waits", b.waits.iter().map(|w| key(w)).collect());
            for (w, _) in b.waits.iter().zip(new).filter(|(_, n)| *n) {
                self.waits.observe(w.seconds);
            }
            let new = fresh("runs", b.runs.iter().map(|r| key(r)).collect());
            for (r, _) in b.runs.iter().zip(new).filter(|(_, n)| *n) {
                let n = self.runs.entry(r.class.clone()).or_default();
                *n = n.saturating_add(1);
            }
        }
    }
}

/// `/api/status`: the status and how fresh it is. Version 1 (fields are
/// only ever added).
#[derive(Serialize)]
struct ApiStatus<'a> {
    version: u32,
    /// `pending` (no read has ended yet), `live` (every host answered the
    /// last read), `partial` (some did not) or `down` (the last read
    /// failed: none answered).
    state: &'static str,
    /// Each lab host: how fresh what it said is.
    hosts: Vec<HostApi<'a>>,
    /// Whether the last read of the lab host worked.
    reachable: bool,
    /// Why not.
    error: Option<&'a str>,
    /// Since when reads fail (seconds since the epoch).
    unreachable_since: Option<u64>,
    /// Seconds since the status was read (none yet: null).
    age_seconds: Option<u64>,
    /// Reads of the lab host so far.
    reads: u64,
    /// The lab, as last read.
    status: Option<&'a LabStatus>,
}

/// One lab host on `/api/status`.
#[derive(Serialize)]
struct HostApi<'a> {
    host: &'a str,
    /// `fresh` (answered the last read), `down` (did not) or `pending`
    /// (not heard from yet).
    state: &'static str,
    /// Seconds since it last answered (counted when this is sent).
    age_seconds: Option<u64>,
    /// Why it did not answer.
    error: Option<&'a str>,
    /// Since when it does not (seconds since the epoch).
    down_since: Option<u64>,
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl State {
    fn api(&self) -> String {
        let age = |t: &SystemTime| t.elapsed().unwrap_or_default().as_secs();
        let hosts = self
            .hosts
            .iter()
            .map(|host| {
                let down = self.host_down.get(host);
                let answered = self.answered.get(host);
                HostApi {
                    host,
                    state: match (down, answered) {
                        (Some(_), _) => "down",
                        (None, Some(_)) => "fresh",
                        (None, None) => "pending",
                    },
                    age_seconds: answered.map(age),
                    error: down.map(|(e, _)| e.as_str()),
                    down_since: down.map(|(_, t)| epoch(*t)),
                }
            })
            .collect();
        let state = match (&self.status, &self.down) {
            (_, Some(_)) => "down",
            (None, None) => "pending",
            (Some(_), None) if self.host_down.is_empty() => "live",
            (Some(_), None) => "partial",
        };
        let api = ApiStatus {
            version: 1,
            state,
            hosts,
            reachable: self.down.is_none() && self.status.is_some(),
            error: self.down.as_ref().map(|(e, _)| e.as_str()),
            unreachable_since: self.down.as_ref().map(|(_, t)| epoch(*t)),
            age_seconds: self
                .read_at
                .map(|t| t.elapsed().unwrap_or_default().as_secs()),
            reads: self.remote_reads,
            status: self.status.as_ref(),
        };
        serde_json::to_string(&api).unwrap_or_default()
    }

    /// `/metrics`, Prometheus text format 0.0.4.
    fn metrics(&self) -> String {
        let mut out = String::new();
        let up = u64::from(self.down.is_none() && self.status.is_some());
        gauge(
            &mut out,
            "mq_up",
            "Whether the last read of the lab host worked.",
            vec![(String::new(), up)],
        );
        let age = self
            .read_at
            .map_or(0, |t| t.elapsed().unwrap_or_default().as_secs());
        gauge(
            &mut out,
            "mq_status_age_seconds",
            "Seconds since the lab was last read.",
            vec![(String::new(), age)],
        );
        out.push_str("# HELP mq_status_reads_total Scripts run on the lab host to read it.\n# TYPE mq_status_reads_total counter\n");
        out.push_str(&format!("mq_status_reads_total {}\n", self.remote_reads));
        if let Some(status) = &self.status {
            board_gauges(&mut out, status);
        }
        self.metrics.holds.render(
            "mq_hold_seconds",
            "How long boards were held (mq releases seen since the dashboard started).",
            &mut out,
        );
        self.metrics.waits.render(
            "mq_wait_seconds",
            "How long mq waiters waited in line (grants seen since the dashboard started).",
            &mut out,
        );
        out.push_str("# HELP mq_runs_total Runs ended, by outcome class (seen since the dashboard started).\n# TYPE mq_runs_total counter\n");
        for class in ["passed", "test", "infrastructure"] {
            let n = self.metrics.runs.get(class).copied().unwrap_or(0);
            out.push_str(&format!("mq_runs_total{{class=\"{class}\"}} {n}\n"));
        }
        out
    }
}

/// A Prometheus gauge: its help, type and lines.
fn gauge(out: &mut String, name: &str, help: &str, lines: Vec<(String, u64)>) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (labels, v) in lines {
        out.push_str(&format!("{name}{labels} {v}\n"));
    }
}

/// The boards' gauges of `/metrics`: by health state, held, held long,
/// hosts down, waiters.
fn board_gauges(out: &mut String, status: &LabStatus) {
    let by_state = mq_core::health::State::ALL
        .iter()
        .map(|s| {
            let n = status
                .boards
                .iter()
                .filter(|b| b.health.state == *s)
                .count();
            (format!("{{state=\"{s}\"}}"), n as u64)
        })
        .collect();
    gauge(out, "mq_boards", "Boards by health state.", by_state);
    let held = status.boards.iter().filter(|b| b.holder.is_some()).count() as u64;
    gauge(
        out,
        "mq_boards_held",
        "Boards whose lock is held.",
        vec![(String::new(), held)],
    );
    let long = status.boards.iter().filter(|b| b.long_hold).count() as u64;
    gauge(
        out,
        "mq_boards_held_long",
        "Boards held for the long-hold time or more.",
        vec![(String::new(), long)],
    );
    let down = status.down.len() as u64;
    gauge(
        out,
        "mq_hosts_down",
        "Lab hosts that did not answer the last read.",
        vec![(String::new(), down)],
    );
    let waiting = status.boards.iter().map(|b| b.waiting.len() as u64).sum();
    gauge(
        out,
        "mq_waiters",
        "mq waits in line, over all boards.",
        vec![(String::new(), waiting)],
    );
}

/// `mq serve`.
pub fn serve(args: ServeArgs, config: Config) -> Result<(), Failure> {
    let long = parse_span(&args.long)
        .map_err(|e| Failure::new(format!("mq: --long: {e}"), exit::USAGE))?;
    if args.refresh == 0 {
        return Err(Failure::new(
            "mq: --refresh: at least 1 second",
            exit::USAGE,
        ));
    }
    let inventory = config.load_inventory()?;
    let cannot = |e: std::io::Error| {
        Failure::new(
            format!("mq: cannot listen on {}: {e}", args.listen),
            exit::USAGE,
        )
    };
    let listener = std::net::TcpListener::bind(&args.listen).map_err(cannot)?;
    listener.set_nonblocking(true).map_err(cannot)?;
    let addr = listener.local_addr().map_err(cannot)?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "mq: WARNING: listening on {addr}: anyone who can reach this port sees who holds \
             which board, their keys and the health log (the dashboard has no login). Put it \
             behind a proxy that asks for one, or listen on 127.0.0.1."
        );
    }
    let mut hosts = vec![config.host.value.clone()];
    for system in inventory.systems() {
        if let Some(host) = &system.host {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            hosts,
            ..State::default()
        }),
        changed: watch::Sender::new(0),
    });
    {
        let shared = Arc::clone(&shared);
        let refresh = Duration::from_secs(args.refresh);
        std::thread::spawn(move || read_lab(config, inventory, long, refresh, &shared));
    }
    let app = Router::new()
        .route("/", get(page))
        .route("/board/{name}", get(page))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/api/status", get(api))
        .route("/metrics", get(metrics))
        .route("/events", get(events))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(allowed_hosts(addr)),
            check_host,
        ))
        .layer(axum::middleware::map_response(safe_headers))
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("mq: cannot start the server: {e}"), exit::USAGE))?;
    eprintln!("mq: the lab is at http://{addr}/ (read-only; ^C to stop)");
    runtime
        .block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve_http(listener, app).await
        })
        .map_err(|e| Failure::new(format!("mq: the server stopped: {e}"), exit::USAGE))
}

/// Serves `app` on `listener`: at most [`MAX_CONNECTIONS`] at once, each
/// closed when its headers take longer than [`HEADER_TIMEOUT`] (or it sits
/// idle that long between requests).
async fn serve_http(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, or a connection reset before it was
            // taken: wait a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The `Host:` values a page on `addr` may be asked for. On a loopback
/// address only the loopback names: a web page elsewhere that rebinds its
/// own name to 127.0.0.1 (DNS rebinding) gets nothing. Elsewhere any (the
/// machine's names are not known here; the warning at start says so).
fn allowed_hosts(addr: std::net::SocketAddr) -> Option<Vec<String>> {
    if !addr.ip().is_loopback() {
        return None;
    }
    let port = addr.port();
    Some(
        [
            addr.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]
        .into(),
    )
}

/// Refuses a request whose `Host:` is not one of `allowed`.
async fn check_host(
    Shared_(allowed): Shared_<Arc<Option<Vec<String>>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(allowed) = allowed.as_ref() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "mq serve answers only to the address it listens on\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Every answer: the page's policy, no sniffing, no caching, no referrer.
async fn safe_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// `/` and `/board/NAME`: the one page, which reads its address.
async fn page() -> Response {
    asset(INDEX, "text/html; charset=utf-8").await
}

async fn api(Shared_(shared): Shared_<Arc<Shared>>) -> Response {
    let body = shared.state().api();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(Shared_(shared): Shared_<Arc<Shared>>) -> Response {
    let body = shared.state().metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `/events`: the status now, then after every read (server-sent events),
/// with a comment every 15 s to keep a quiet stream open through proxies.
async fn events(
    Shared_(shared): Shared_<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let reads = tokio_stream::wrappers::WatchStream::new(shared.changed.subscribe());
    // Made when sent: a page opened now gets the ages as they are now.
    let stream = reads.map(move |_| Ok(Event::default().data(shared.state().api())));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Reads the lab every `refresh`, over one connection (made again after a
/// failure), and wakes the pages.
fn read_lab(
    config: Config,
    inventory: Inventory,
    long: Duration,
    refresh: Duration,
    shared: &Shared,
) {
    let mut queue: Option<(MachineQueue, std::time::Instant)> = None;
    loop {
        let started = std::time::Instant::now();
        if queue.is_none() {
            queue = MachineQueue::connect_lab(config.clone(), inventory.clone())
                .map_err(|e| fail(shared, e.to_string()))
                .ok()
                .map(|q| (q, started));
        }
        if let Some((q, made)) = &queue {
            let result = q.status(long);
            let mut s = shared.state();
            s.remote_reads += 1;
            match result {
                Ok(status) => {
                    let now = SystemTime::now();
                    let home_down = status.down.iter().any(|d| d.site.host == config.host.value);
                    let down: HashMap<String, String> = status
                        .down
                        .iter()
                        .map(|d| (d.site.host.clone(), d.error.clone()))
                        .collect();
                    for host in s.hosts.clone() {
                        match down.get(&host) {
                            Some(e) => {
                                let since = s.host_down.get(&host).map_or(now, |(_, t)| *t);
                                s.host_down.insert(host, (e.clone(), since));
                            }
                            None => {
                                s.host_down.remove(&host);
                                s.answered.insert(host, now);
                            }
                        }
                    }
                    s.metrics.take(&status);
                    s.status = Some(status);
                    s.read_at = Some(now);
                    s.down = None;
                    // The configured host is connected again (the others
                    // are retried by the queue itself).
                    if home_down && made.elapsed() >= mq_core::sites::RETRY_DOWN {
                        queue = None;
                    }
                }
                Err(e) => {
                    drop(s);
                    fail(shared, e.to_string());
                    queue = None;
                }
            }
        }
        shared.tell();
        std::thread::sleep(refresh.saturating_sub(started.elapsed()));
    }
}

/// Records a failed read (the first failure's time stays): no host
/// answered.
fn fail(shared: &Shared, error: String) {
    let mut s = shared.state();
    let now = SystemTime::now();
    let since = s.down.take().map_or(now, |(_, t)| t);
    for host in s.hosts.clone() {
        let since = s.host_down.get(&host).map_or(now, |(_, t)| *t);
        s.host_down.insert(host, (error.clone(), since));
    }
    s.down = Some((error, since));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::status::{BoardStatus, HoldRecord};

    fn lab(holds: &[(u64, u64)]) -> LabStatus {
        LabStatus {
            version: 1,
            host: "lab".into(),
            taken_at: 0,
            long_after: 0,
            boards: vec![BoardStatus {
                system: "b1".into(),
                host: "lab".into(),
                pools: Vec::new(),
                known: true,
                health: mq_core::health::Health::good("b1"),
                holder: None,
                waiting: Vec::new(),
                long_hold: false,
                last_run: None,
                holds: holds
                    .iter()
                    .map(|&(seconds, ended)| HoldRecord {
                        seconds,
                        ended,
                        user: "bob".into(),
                        key: "k".into(),
                    })
                    .collect(),
                runs: Vec::new(),
                waits: Vec::new(),
                health_log: Vec::new(),
            }],
            down: Vec::new(),
            unsafe_dirs: Vec::new(),
        }
    }

    #[test]
    fn a_record_dated_far_ahead_stops_no_count_and_sums_never_wrap() {
        let mut t = Totals::default();
        // A forged hold "ending" ten years from now, then ordinary ones.
        t.take(&lab(&[(60, 2_100_000_000)]));
        t.take(&lab(&[(60, 2_100_000_000), (120, 1_800_000_000)]));
        t.take(&lab(&[
            (60, 2_100_000_000),
            (120, 1_800_000_000),
            (30, 1_800_000_100),
        ]));
        assert_eq!(t.holds.count, 3);
        assert_eq!(t.holds.sum, 210);
        // Huge durations saturate; the sum and count never go down.
        t.take(&lab(&[(u64::MAX, 1), (u64::MAX, 2)]));
        assert_eq!((t.holds.count, t.holds.sum), (5, u64::MAX));
        t.take(&lab(&[(u64::MAX, 3)]));
        assert_eq!((t.holds.count, t.holds.sum), (6, u64::MAX));
    }
}
