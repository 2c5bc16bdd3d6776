//! A real browser for tests: Debian's headless Chromium, driven over
//! WebDriver by its chromedriver (started on a free port of 127.0.0.1,
//! stopped by its process id). Pages are read with JavaScript run in them,
//! as a user's browser runs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{free_port, skip};

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    /// Where [`Browser::screenshot`] and failures put pictures.
    pub shots: PathBuf,
    /// A name for the pictures of a failure.
    pub name: String,
}

fn which(program: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height`
    /// window. Skips (fails under CI) without them: Debian's `chromium`
    /// and `chromium-driver`. `name` names the screenshot of a failure.
    pub fn start(name: &str, width: u32, height: u32) -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) else {
            return skip("no chromium / chromedriver (install chromium chromium-driver)");
        };
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            shots: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"),
            name: name.to_string(),
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")]
            }
        }}});
        let answer = browser.call("POST", "/session", Some(caps));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Some(browser)
    }

    /// One WebDriver command: its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let text = match result {
            Ok(r) => r.into_string().map_err(|e| e.to_string())?,
            Err(ureq::Error::Status(code, r)) => {
                return Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
            }
            Err(e) => return Err(e.to_string()),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        Ok(value["value"].clone())
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.path("/url"), Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits up to `timeout` for `script` to return `true`; how long it took.
    pub fn wait_for(&self, script: &str, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.eval(script) == Value::Bool(true) {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Resizes the window to `width`×`height` (a phone's, say).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.path("/window/rect"),
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// Whether an alert, confirm or prompt is open.
    pub fn alert_open(&self) -> bool {
        self.try_call("GET", &self.path("/alert/text"), None)
            .is_ok()
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.call("GET", &self.path("/screenshot"), None);
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a screenshot in base64");
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            let path = self.shots.join(format!("{}-failure.png", self.name));
            if self
                .try_call("GET", &self.path("/screenshot"), None)
                .is_ok()
            {
                self.screenshot(&path);
                eprintln!("screenshot of the failure: {}", path.display());
            }
        }
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &self.path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
