//! The web pages in a real headless Chromium (issue 6, item 5), driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`), against the real service on SQLite.
//!
//! Each test saves screenshots under `target/screenshots/` and fails on any error in
//! the browser's console (read from chromedriver's browser log: failed requests and
//! Content-Security-Policy violations land there too). Without chromium or
//! chromedriver the tests print why and pass, except under `CI=true`, where they fail.
//! The tests take turns: two cores do not run several Chromiums well.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use yiwang::auth::Role;

use crate::helpers::{attach_photo, attachments_api, create, dispatched, pick_category, tickets};
use support::{Engine, TestApp, ticket_body};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(15);

pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

pub(crate) fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// chromedriver's browser log (the console, failed loads, CSP reports); each call
/// returns what came since the last.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// chromedriver's network emulation, to take the page offline and back.
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) offline: bool,
}

impl WebDriverCompatibleCommand for Network {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/chromium/network_conditions",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"network_conditions": {
            "offline": self.offline, "latency": 0,
            "download_throughput": 1_000_000, "upload_throughput": 1_000_000,
        }});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// A Chrome DevTools command through chromedriver (full-page screenshots).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

pub(crate) enum Screen {
    Desktop,
    /// A 1366 px wide laptop screen.
    Wide,
    /// A 360 px wide phone.
    Phone,
}

pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    /// Where the browser goes (the service, or a cuttable link to it: tests/pages/grid.rs).
    pub(crate) base: String,
    pub(crate) name: &'static str,
    shots: Vec<PathBuf>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Chromium under chromedriver on a free port, or None (with the reason printed)
/// when they are not installed and this is not CI.
pub(crate) async fn browser(app: &TestApp, name: &'static str, screen: Screen) -> Option<Browser> {
    for bin in [CHROMEDRIVER, CHROMIUM] {
        if !Path::new(bin).exists() {
            let why = format!(
                "{bin} is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
            );
            assert!(!support::in_ci(), "CI=true and {why}");
            eprintln!("skipping browser test {name}: {why}");
            return None;
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let size = match screen {
        Screen::Wide => "--window-size=1366,900",
        _ => "--window-size=1280,1000",
    };
    let mut options = json!({
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", size,
                 "--lang=zh-CN", "--font-render-hinting=none"],
    });
    if let Screen::Phone = screen {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": 360, "height": 780, "pixelRatio": 2.0, "touch": true},
            "userAgent": "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        });
    }
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let started = Instant::now();
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver on port {port} did not start a session: {e}"),
        }
    };
    support::ran("chromium");
    Some(Browser {
        client,
        driver,
        base: app.base.clone(),
        name,
        shots: Vec::new(),
    })
}

impl Browser {
    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// Fails on any error the browser logged since the last look.
    pub(crate) async fn no_console_errors(&self) {
        self.no_console_errors_except("\u{0}").await;
    }

    /// Fails on any error the browser logged since the last look, but those whose
    /// message contains `expected`.
    pub(crate) async fn no_console_errors_except(&self, expected: &str) {
        self.no_console_errors_except_any(&[expected]).await;
    }

    /// Fails on any error the browser logged since the last look, but those whose
    /// message contains one of `expected` (the ways a cut network shows).
    pub(crate) async fn no_console_errors_except_any(&self, expected: &[&str]) {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        let errors: Vec<&Value> = log
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .filter(|e| {
                        let m = e["message"].as_str().unwrap_or_default();
                        !expected.iter().any(|x| m.contains(x))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            errors.is_empty(),
            "{}: browser console errors: {errors:#?}",
            self.name
        );
    }

    /// Waits until the script returns true.
    pub(crate) async fn until(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            // A script error (an element not there yet) counts as "not yet".
            if let Ok(v) = self.client.execute(script, vec![]).await
                && v == json!(true)
            {
                return;
            }
            if started.elapsed() > WAIT {
                let shot = self.shot("timeout").await;
                let text = self
                    .client
                    .execute("return document.body.innerText", vec![])
                    .await
                    .unwrap_or_default();
                panic!(
                    "{}: waited {WAIT:?} for {what}; screenshot {}; page text:\n{}",
                    self.name,
                    shot.display(),
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let shot = self.shot("timeout").await;
                let url = self.client.current_url().await.map(|u| u.to_string());
                panic!(
                    "{}: no element {selector} at {url:?}: {e}; screenshot {}",
                    self.name,
                    shot.display()
                )
            }
        }
    }

    pub(crate) async fn text(&self, selector: &str) -> String {
        self.css(selector).await.text().await.expect("text")
    }

    pub(crate) async fn click(&self, selector: &str) {
        self.css(selector).await.click().await.expect("click");
    }

    pub(crate) async fn fill(&self, selector: &str, text: &str) {
        let e = self.css(selector).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Saves a screenshot as target/screenshots/<test>-<label>.png.
    pub(crate) async fn shot(&self, label: &str) -> PathBuf {
        // Passing messages would float over the middle of a full-page picture.
        let _ = self
            .client
            .execute(
                "document.querySelectorAll('.toast').forEach((t) => t.remove())",
                vec![],
            )
            .await;
        let png = match self.full_page().await {
            Some(png) => png,
            None => self.client.screenshot().await.expect("screenshot"),
        };
        let path = screenshots().join(format!("{}-{label}.png", self.name));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The whole page, not only the viewport (at most 6000 CSS pixels tall).
    pub(crate) async fn full_page(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let size = self
            .client
            .execute(
                "return [window.innerWidth, document.documentElement.scrollHeight]",
                vec![],
            )
            .await
            .ok()?;
        let (w, h) = (size[0].as_f64()?, size[1].as_f64()?.min(6000.0));
        let shot = self
            .client
            .issue_cmd(Cdp {
                cmd: "Page.captureScreenshot",
                params: json!({"format": "png", "captureBeyondViewport": true,
                               "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}),
            })
            .await
            .ok()?;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str()?)
            .ok()
    }

    pub(crate) async fn keep_shot(&mut self, label: &str) {
        // Usable means no sideways scrolling, on a phone as on a desktop.
        let overflow = self
            .client
            .execute(
                "const w = document.documentElement.clientWidth; \
                 return [...document.querySelectorAll('body *')] \
                   .filter((e) => e.getBoundingClientRect().right > w + 1 && !e.closest('.table-wrap')) \
                   .slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + '>' + w);",
                vec![],
            )
            .await
            .expect("overflow check");
        assert_eq!(
            overflow,
            json!([]),
            "{} {label}: elements wider than the screen",
            self.name
        );
        let p = self.shot(label).await;
        self.shots.push(p);
    }

    /// Signs in through the sign-in page and waits for the role's home page.
    pub(crate) async fn sign_in(&self, token: &str, home: &str) {
        self.goto("/login").await;
        // The token form is folded below the password sign-in.
        self.until(
            "the token form unfolded",
            "const d = document.getElementById('token-box'); if (d) d.open = true; return true",
        )
        .await;
        self.fill("#token", token).await;
        self.click("#signin-submit").await;
        self.until(
            &format!("{home} after sign-in"),
            &format!(
                "return location.pathname === '{home}' && document.body.classList.contains('ready')"
            ),
        )
        .await;
    }

    pub(crate) async fn use_english(&self) {
        self.click("#lang-switch").await;
        self.until(
            "the English page",
            "return document.documentElement.lang === 'en' && document.body.classList.contains('ready')",
        )
        .await;
    }

    pub(crate) async fn finish(self) {
        self.no_console_errors().await;
        for s in &self.shots {
            eprintln!("screenshot: {}", s.display());
        }
        let _ = self.client.clone().close().await;
    }
}

#[tokio::test]
async fn a_dispatcher_sees_a_new_ticket_arrive_live_and_dispatches_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "desk", Screen::Desktop).await else {
        return;
    };
    let disp = app.token(Role::Dispatcher, "etdz").await;
    // One ticket already waiting, one that arrives while the desk is open.
    app.new_ticket().await;
    b.sign_in(&disp, "/desk").await;
    b.until(
        "the live feed",
        "return document.querySelector('#live.on') !== null",
    )
    .await;
    b.until(
        "the waiting ticket",
        "return document.querySelectorAll('#queue li.ticket').length === 1",
    )
    .await;

    let mut body = ticket_body();
    body["title"] = json!("人行道井盖缺失");
    body["category"] = json!("city.exposed_garbage");
    body["urgency"] = json!("urgent");
    let id = create(&app, body).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let row = format!("#queue li.ticket[data-id='{id}']");
    b.until(
        "the new ticket to appear without a reload",
        &format!("return document.querySelector(\"{row}.fresh\") !== null"),
    )
    .await;
    let text = b.text(&row).await;
    assert!(text.contains("人行道井盖缺失"), "{text}");
    assert!(
        text.contains("建议承办"),
        "the suggested unit is shown: {text}"
    );

    b.click(&format!("{row} button[data-action='assign']"))
        .await;
    let select = b
        .css(&format!("{row} form[data-form='assign'] select"))
        .await;
    select.select_by_value("zhzf").await.expect("pick zhzf");
    b.fill(
        &format!("{row} form[data-form='assign'] input[name='note']"),
        "请三日内清理",
    )
    .await;
    b.keep_shot("dispatching-zh").await;
    b.click(&format!("{row} button[data-submit='assign']"))
        .await;
    b.until(
        "the dispatched ticket to leave the queue",
        &format!("return document.querySelector(\"{row}\") === null"),
    )
    .await;
    let t = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
    assert_eq!(t.body["state"], "assigned", "{}", t.body);
    assert_eq!(t.body["unit"], "zhzf");
    b.keep_shot("after-dispatch-zh").await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_handler_signs_for_a_ticket_and_handles_it_with_a_photo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "handler", Screen::Desktop).await else {
        return;
    };
    let id = dispatched(&app, "小区门口垃圾堆积").await;
    let hand = app.token(Role::Handler, "zhzf").await;
    b.sign_in(&hand, "/desk").await;
    let row = format!("#queue li.ticket[data-id='{id}']");
    b.click(&format!("{row} button[data-action='sign']")).await;
    b.fill(
        &format!("{row} form[data-form='sign'] input[name='handler']"),
        "钱工",
    )
    .await;
    b.click(&format!("{row} button[data-submit='sign']")).await;
    b.until(
        "the handle action after signing",
        &format!("return document.querySelector(\"{row} button[data-action='handle']\") !== null"),
    )
    .await;
    b.keep_shot("desk-signed-zh").await;

    b.goto(&format!("/tickets/{id}")).await;
    b.click("button[data-action='handle']").await;
    b.fill(
        "form[data-form='handle'] textarea[name='result']",
        "已清运，现场恢复整洁",
    )
    .await;
    let photos = attachments_api(&app, &hand).await;
    if photos {
        attach_photo(&b, "form[data-form='handle'] input[name='photos']").await;
    } else {
        eprintln!("the attachments API is not in this build: handling without a photo");
    }
    b.click("button[data-submit='handle']").await;
    b.until(
        "the handling in the timeline",
        "return document.querySelector('#timeline li[data-type=TicketHandled]') !== null",
    )
    .await;
    if photos {
        b.until(
            "the photo",
            "return document.querySelector('#t-photos img') !== null",
        )
        .await;
    }
    let timeline = b.text("#timeline").await;
    for words in [
        "受理",
        "派单至 综合行政执法局",
        "签收，承办人 钱工",
        "按时",
        "办结",
    ] {
        assert!(
            timeline.contains(words),
            "timeline lacks {words:?}:\n{timeline}"
        );
    }
    let t = app.get(&format!("/api/v1/tickets/{id}"), &hand).await;
    assert_eq!(t.body["state"], "handled", "{}", t.body);
    b.keep_shot("ticket-zh").await;
    b.no_console_errors().await;

    b.use_english().await;
    let timeline = b.text("#timeline").await;
    assert!(
        timeline.contains("Signed for by") && timeline.contains("Met"),
        "{timeline}"
    );
    b.keep_shot("ticket-en").await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_grid_worker_reports_with_a_photo_on_a_phone_and_offline_reports_wait_for_the_network() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "grid", Screen::Phone).await else {
        return;
    };
    let gw = app.token(Role::GridWorker, "hg-01-g01").await;
    b.sign_in(&gw, "/grid").await;
    b.until("the page", "return document.body.dataset.loaded === 'true'")
        .await;
    let width = b
        .client
        .execute(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .expect("widths");
    assert_eq!(width, json!([360, 360]), "no sideways scrolling at 360 px");

    pick_category(&b, "city.exposed_garbage").await;
    b.fill("#g-description", "路口垃圾桶满溢，垃圾散落路面")
        .await;
    b.fill("#g-address", "皇冠街道文化路 12 号").await;
    let photos = attachments_api(&app, &gw).await;
    if photos {
        attach_photo(&b, "#g-photos").await;
        b.until(
            "the photo preview",
            "return document.querySelector('#g-previews img') !== null",
        )
        .await;
    } else {
        eprintln!("the attachments API is not in this build: reporting without a photo");
    }
    b.keep_shot("form-zh").await;
    b.click("#g-submit").await;
    b.until(
        "the report to be sent",
        "return !!document.body.dataset.lastSent",
    )
    .await;
    b.until(
        "the report in the list",
        "return document.querySelectorAll('#mine li.card').length === 1",
    )
    .await;
    let items = tickets(&app, &gw).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["source"], "grid");
    assert_eq!(items[0]["location"]["grid"], "hg-01-g01");
    if photos {
        let n = items[0]["photos"].as_array().map_or(0, Vec::len);
        assert_eq!(n, 1, "the photo is on the ticket: {}", items[0]);
    }
    b.keep_shot("sent-zh").await;
    b.no_console_errors().await;

    // Offline: the report waits in the outbox and goes once the network is back.
    b.client
        .issue_cmd(Network { offline: true })
        .await
        .expect("go offline");
    b.until(
        "the offline banner",
        "return !document.getElementById('offline-banner').hidden",
    )
    .await;
    pick_category(&b, "city.exposed_garbage").await;
    b.fill("#g-description", "自行处置：清理路面散落垃圾").await;
    b.click("#g-self").await;
    b.fill("#g-result", "已清扫干净").await;
    b.click("#g-submit").await;
    b.until(
        "the report in the outbox",
        "return document.querySelectorAll('#outbox li.waiting').length === 1",
    )
    .await;
    b.keep_shot("offline-zh").await;
    b.client
        .issue_cmd(Network { offline: false })
        .await
        .expect("go online");
    b.until(
        "the queued report to be sent",
        "return document.querySelectorAll('#mine li.card').length === 2 && document.getElementById('queue-card').hidden",
    )
    .await;
    let items = tickets(&app, &gw).await;
    assert_eq!(items.len(), 2, "sent once: {items:?}");
    assert_eq!(items[0]["self_handled"], true, "{}", items[0]);
    assert_eq!(items[0]["state"], "handled");
    b.keep_shot("back-online-zh").await;
    // What the browser logged while offline is the network being down, as intended.
    b.no_console_errors_except("ERR_INTERNET_DISCONNECTED")
        .await;
    b.use_english().await;
    b.until("the page", "return document.body.dataset.loaded === 'true'")
        .await;
    b.keep_shot("en").await;
    b.finish().await;
    app.finish().await;
}
