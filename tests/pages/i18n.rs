//! The pages' words (issue 22, point 10): the dictionaries against the pages.
//!
//! Without a browser: every key the pages use (`data-i18n*` attributes in the HTML,
//! key-like string literals and `t(`…`)` prefixes in the scripts) is in both
//! `assets/web/i18n/zh.json` and `en.json`, no key is in only one, no English string
//! holds Chinese, and every problem `code` of docs/PROBLEMS.md has its translated
//! message (`problem.<code>`) in both.
//!
//! In headless Chromium, against the real service (SQLite), with English data: each
//! page walked in English shows no Chinese text (but the language switch, which
//! names the other language) and no raw key, in Chinese no raw key either; a refusal
//! (a grid worker opening the dashboard) reads in the page's language, not in the
//! API's English `detail`. At 1366 px and on a 360 px phone, screenshots kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use yiwang::auth::Role;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::support::{Engine, TestApp};

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn dictionary(lang: &str) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_str(&read(&format!("assets/web/i18n/{lang}.json")))
        .unwrap_or_else(|e| panic!("{lang}.json: {e}"));
    v.as_object()
        .expect("a dictionary is an object")
        .iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{lang}.json {k}: not a string"));
            (k.clone(), s.to_string())
        })
        .collect()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

/// `a.b_c.d-e`: what a dictionary key looks like.
fn key_like(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// The string literals of a script ('…', "…", `…`), comments skipped.
fn literals(js: &str) -> Vec<String> {
    let chars: Vec<char> = js.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    s.push(ch);
                }
                i += 1;
            }
            out.push(s);
        }
        i += 1;
    }
    out
}

/// The keys the pages use, each with where, and the prefixes of keys they build
/// (`t(`state.${…}`)`).
fn keys_used(
    namespaces: &BTreeSet<String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut keys = BTreeMap::new();
    let mut prefixes = BTreeMap::new();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/web");
    let mut files: Vec<_> = std::fs::read_dir(&web)
        .expect("assets/web")
        .chain(std::fs::read_dir(web.join("js")).expect("assets/web/js"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "html" || x == "js"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a page file");
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if path.extension().is_some_and(|x| x == "html") {
            for attr in [
                "data-i18n=\"",
                "data-i18n-placeholder=\"",
                "data-i18n-title=\"",
            ] {
                for (at, _) in text.match_indices(attr) {
                    let rest = &text[at + attr.len()..];
                    let key = &rest[..rest.find('"').unwrap_or(0)];
                    keys.insert(key.to_string(), name.clone());
                }
            }
            continue;
        }
        for lit in literals(&text) {
            let ns_known = |s: &str| namespaces.contains(s.split('.').next().unwrap_or_default());
            if let Some(at) = lit.find("${") {
                let prefix = &lit[..at];
                if prefix.ends_with('.') && key_like(&format!("{prefix}x")) && ns_known(prefix) {
                    prefixes.insert(prefix.to_string(), name.clone());
                }
            } else if key_like(&lit) && ns_known(&lit) {
                keys.insert(lit, name.clone());
            }
        }
    }
    (keys, prefixes)
}

/// The `code`s of docs/PROBLEMS.md's table of codes.
fn documented_codes() -> Vec<String> {
    let docs = read("docs/PROBLEMS.md");
    let table = docs
        .split("## The codes")
        .nth(1)
        .expect("docs/PROBLEMS.md: ## The codes");
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        // The table's header names the column.
        .filter(|c| *c != "code")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_dictionaries_hold_every_key_the_pages_use() {
    let zh = dictionary("zh");
    let en = dictionary("en");
    let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    assert_eq!(only(&zh, &en), Vec::<String>::new(), "keys only in zh.json");
    assert_eq!(only(&en, &zh), Vec::<String>::new(), "keys only in en.json");
    for (lang, d) in [("zh", &zh), ("en", &en)] {
        let empty: Vec<&String> = d
            .iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(k, _)| k)
            .collect();
        assert!(empty.is_empty(), "{lang}.json: empty strings {empty:?}");
    }
    // English reads English; the one exception names the other language.
    let chinese: Vec<(&String, &String)> = en
        .iter()
        .filter(|(k, v)| k.as_str() != "lang.switch" && v.chars().any(is_cjk))
        .collect();
    assert!(chinese.is_empty(), "en.json holds Chinese: {chinese:#?}");

    let namespaces: BTreeSet<String> = zh
        .keys()
        .filter_map(|k| k.split('.').next())
        .map(str::to_string)
        .collect();
    let (keys, prefixes) = keys_used(&namespaces);
    assert!(
        keys.len() > 200,
        "the scan finds the pages' keys: {}",
        keys.len()
    );
    let missing: Vec<String> = keys
        .iter()
        .filter(|(k, _)| !zh.contains_key(*k) || !en.contains_key(*k))
        .map(|(k, f)| format!("{k} ({f})"))
        .collect();
    assert!(
        missing.is_empty(),
        "keys used but not in both dictionaries: {missing:#?}"
    );
    let unbuilt: Vec<String> = prefixes
        .iter()
        .filter(|(p, _)| !zh.keys().any(|k| k.starts_with(*p)))
        .map(|(p, f)| format!("{p}… ({f})"))
        .collect();
    assert!(unbuilt.is_empty(), "key prefixes with no key: {unbuilt:#?}");

    // Every problem code has its message in both languages, and so does every
    // type's default (common.js falls back on the code's first part).
    let codes = documented_codes();
    assert!(codes.len() >= yiwang::http::error::TYPES.len(), "{codes:?}");
    for t in yiwang::http::error::TYPES {
        assert!(
            codes.iter().any(|c| c == t.code),
            "docs/PROBLEMS.md lists {}",
            t.code
        );
    }
    for code in &codes {
        let key = format!("problem.{code}");
        assert!(
            zh.contains_key(&key) && en.contains_key(&key),
            "{key} in both dictionaries"
        );
        assert!(zh[&key].chars().any(is_cjk), "zh.json {key} is Chinese");
    }
}

/// What the page shows in the wrong words: text holding Chinese (English pages
/// only), and text that is a dictionary key (a translation missing), each with the
/// element it is in. Selects' options and optgroups count, as do placeholders and
/// titles; the language switch names the other language and is left out.
async fn wrong_words(b: &Browser, english: bool) -> Vec<String> {
    let script = r#"
      const english = arguments[0];
      const cjk = /[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/;
      const key = /^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$/;
      const out = [];
      const where = (e) => e.id ? `#${e.id}` : `${e.tagName.toLowerCase()}${e.className ? '.' + String(e.className).trim().split(/\s+/).join('.') : ''}`;
      const check = (text, e, what) => {
        const s = (text || '').trim();
        if (!s) return;
        // Chinese data an English page shows as written is marked lang="zh…".
        if (english && cjk.test(s) && !e.closest('body [lang|="zh"], body [lang="zh-CN"]')) out.push(`${where(e)} ${what}: ${s.slice(0, 80)}`);
        // A rule's or an item's code is shown as code on purpose.
        if (key.test(s) && !e.closest('code')) out.push(`${where(e)} ${what} (a raw key): ${s}`);
      };
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        const n = walker.currentNode;
        const p = n.parentElement;
        if (!p || p.closest('script, style, #lang-switch, [hidden]')) continue;
        if (!p.closest('select') && !p.getClientRects().length) continue;
        check(n.textContent, p, 'text');
      }
      for (const e of document.querySelectorAll('[placeholder], [title], [aria-label], optgroup[label]')) {
        if (e.closest('#lang-switch')) continue;
        for (const a of ['placeholder', 'title', 'aria-label', 'label']) if (e.hasAttribute(a)) check(e.getAttribute(a), e, a);
      }
      check(document.title, document.body, 'title');
      return out;
    "#;
    let v = b
        .client
        .execute(script, vec![json!(english)])
        .await
        .expect("the page's words");
    serde_json::from_value(v).expect("a list")
}

/// Waits until the page has its data: signed in, and, on the pages that say so,
/// loaded; then a moment for the last requests.
async fn settled(b: &Browser, path: &str) {
    b.until(
        &format!("{path} loaded"),
        "return document.body.classList.contains('ready') && \
         (document.body.dataset.loaded === undefined || document.body.dataset.loaded === 'true')",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
}

async fn set_language(b: &Browser, lang: &str) {
    b.client
        .execute(
            &format!("localStorage.setItem('yw.lang', '{lang}')"),
            vec![],
        )
        .await
        .expect("the language");
}

/// Tickets whose data is English (titles, descriptions, addresses and reporters are
/// the citizens' words, shown as written): one waiting, one dispatched and signed
/// for, one handled. Returns the dispatched one's id.
async fn english_tickets(app: &TestApp) -> String {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let hand = app.token(Role::Handler, "zhzf").await;
    let mut ids = Vec::new();
    for (category, title) in [
        ("city.exposed_garbage", "Rubbish by the north gate"),
        ("order.population", "New tenants not registered"),
        ("city.street_vendor", "Stalls blocking the pavement"),
    ] {
        let body = json!({
            "source": "hotline", "category": category, "title": title,
            "description": "A resident called about it twice this week",
            "urgency": "normal",
            "location": {"address": "12 Culture Road", "lat": 37.5, "lon": 122.1, "grid": "hg-01-g01"},
            "reporter": {"name": "Mr Zhao", "phone": "13800000000"}
        });
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().expect("an id").to_string());
    }
    for id in &ids[1..] {
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &disp,
                json!({"unit": "zhzf"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &hand,
                json!({"handler": "Li Wei"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = app
        .post(
            &format!("/api/v1/tickets/{}/handle", ids[2]),
            &hand,
            json!({"result": "Stalls moved to the market"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.catch_up().await;
    ids[1].clone()
}

/// Walks every page in both languages on one screen; screenshots `<name>-<page>-<lang>`.
async fn walk(name: &'static str, screen: Screen) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, name, screen).await else {
        return;
    };
    let ticket = english_tickets(&app).await;
    let admin = app.token(Role::Admin, "etdz").await;
    let worker = app.token(Role::GridWorker, "hg-01-g01").await;
    let zh = dictionary("zh");
    let en = dictionary("en");
    let ticket_page = format!("/tickets/{ticket}");
    let pages: [(&str, &str); 7] = [
        ("desk", "/desk"),
        ("ticket", &ticket_page),
        ("dashboard", "/dashboard"),
        ("appraisal", "/appraisal"),
        ("ranking", "/appraisal/ranking"),
        ("bulletins", "/appraisal/bulletins"),
        ("login", "/login"),
    ];
    let mut wrong = Vec::new();
    for lang in ["en", "zh"] {
        let english = lang == "en";
        b.sign_in(&admin, "/desk").await;
        set_language(&b, lang).await;
        for (page, path) in pages {
            b.goto(path).await;
            if page == "login" {
                b.until(
                    "the sign-in page",
                    "return document.documentElement.lang !== ''",
                )
                .await;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            } else {
                settled(&b, path).await;
            }
            for w in wrong_words(&b, english).await {
                wrong.push(format!("{lang} {path}: {w}"));
            }
            if page == "appraisal" {
                // Every unit's score and rank are on the screen, on a phone too
                // (the table once scrolled its points column out of sight).
                let cut = b
                    .client
                    .execute(
                        "const w = document.documentElement.clientWidth; \
                         const cells = [...document.querySelectorAll('#ap-scores [data-field=score], #ap-scores [data-field=rank]')]; \
                         return [cells.length, cells.filter((c) => { const r = c.getBoundingClientRect(); \
                           return r.width === 0 || r.left < 0 || r.right > w + 1; }).length];",
                        vec![],
                    )
                    .await
                    .expect("the score cells");
                assert!(
                    cut[0].as_u64().unwrap_or(0) > 20,
                    "{lang}: the scores table: {cut}"
                );
                assert_eq!(
                    cut[1],
                    json!(0),
                    "{lang}: score or rank cells off the screen"
                );
            }
            b.keep_shot(&format!("{page}-{lang}")).await;
        }

        // A grid worker: the report page, and a refusal in the page's words.
        b.sign_in(&worker, "/grid").await;
        set_language(&b, lang).await;
        b.goto("/grid").await;
        settled(&b, "/grid").await;
        for w in wrong_words(&b, english).await {
            wrong.push(format!("{lang} /grid: {w}"));
        }
        b.keep_shot(&format!("grid-{lang}")).await;
        b.goto("/dashboard").await;
        b.until(
            "the dashboard's refusal",
            "return !document.getElementById('page-error').hidden && \
             document.getElementById('page-error').textContent.trim() !== ''",
        )
        .await;
        let shown = b.text("#page-error").await;
        let dict = if english { &en } else { &zh };
        let translated = ["problem.forbidden.role", "problem.forbidden"]
            .iter()
            .filter_map(|k| dict.get(*k))
            .any(|m| shown.starts_with(m.as_str()));
        assert!(
            translated && !shown.contains("grid_worker"),
            "{lang}: the refusal reads {shown:?}, not the dictionary's problem.forbidden"
        );
        b.keep_shot(&format!("refusal-{lang}")).await;
        // The refused call and the page's report of it (both name the statistics).
        b.no_console_errors_except("stat").await;
    }
    assert!(
        wrong.is_empty(),
        "words out of place:\n{}",
        wrong.join("\n")
    );
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn every_page_reads_in_its_language_at_1366_px() {
    walk("i18n-wide", Screen::Wide).await;
}

#[tokio::test]
async fn every_page_reads_in_its_language_on_a_phone() {
    walk("i18n-phone", Screen::Phone).await;
}
