//! The participant page in a real browser: Debian's headless Chromium, driven through
//! chromedriver's WebDriver HTTP API (plain HTTP + JSON, no client crate), against a real
//! server; the engine must see that browser's participant join and play.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::temp_file;
use crate::web::Stage;
use tapestry::web::WebOptions;
use tapestry::Notice;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: apt-get install chromium chromium-driver)");
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let until = Instant::now() + Duration::from_secs(20);
        while driver.call("GET", "/status", None).is_none() {
            assert!(Instant::now() < until, "chromedriver did not start");
            thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    /// One WebDriver call; the reply's `value`, or None if the driver is not reachable.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let mut stream = TcpStream::connect(self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .ok()?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let json = response.split("\r\n\r\n").nth(1)?;
        let reply: Value = serde_json::from_str(json).ok()?;
        Some(reply["value"].clone())
    }
}

#[test]
fn a_browser_joins_from_the_page_and_its_taps_play() {
    let stage = Stage::new("minimal.toml", WebOptions::default(), Some("browser"));
    let driver = Driver::start();
    let profile = temp_file("web", "chromium-profile");
    let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking",
                 format!("--user-data-dir={}", profile.display())],
    }}}});
    let session = driver
        .call("POST", "/session", Some(capabilities))
        .expect("a WebDriver session");
    let id = session["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let url = format!("http://{}/", stage.addr());
    driver.call(
        "POST",
        &format!("/session/{id}/url"),
        Some(json!({ "url": url })),
    );

    // the page joins by itself and names its voice
    let script = json!({"script": "return [document.body.dataset.participant || null, document.body.dataset.voice || null]", "args": []});
    let until = Instant::now() + Duration::from_secs(15);
    let (participant, voice) = loop {
        let v = driver
            .call(
                "POST",
                &format!("/session/{id}/execute/sync"),
                Some(script.clone()),
            )
            .unwrap();
        if let (Some(p), Some(a)) = (v[0].as_str(), v[1].as_str()) {
            break (p.parse::<u32>().unwrap(), a.to_string());
        }
        assert!(Instant::now() < until, "the page did not join: {v}");
        thread::sleep(Duration::from_millis(100));
    };
    let joined = stage.notices.lock().unwrap().iter().any(|n| {
        matches!(n, Notice::Joined { participant: p, archetype, .. }
            if *p == participant && stage.patch.names().archetypes[*archetype as usize] == voice)
    });
    assert!(
        joined,
        "the engine saw participant {participant} join as {voice}"
    );

    // three taps on the fourth key, with the browser's own pointer input
    let key = driver
        .call(
            "POST",
            &format!("/session/{id}/element"),
            Some(json!({"using": "css selector", "value": "#keys button[data-key=\"3\"]"})),
        )
        .unwrap();
    let element = key
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        driver.call(
            "POST",
            &format!("/session/{id}/element/{element}/click"),
            Some(json!({})),
        );
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(300));
    driver.call("DELETE", &format!("/session/{id}"), None);
    drop(driver);

    let (_, path) = stage.stop();
    let recorded = std::fs::read_to_string(path.unwrap()).unwrap();
    let taps = recorded
        .matches(&format!(
            "type = \"note_on\"\nparticipant = {participant}\n"
        ))
        .count();
    assert_eq!(taps, 3, "the engine played the browser's three taps");
}
