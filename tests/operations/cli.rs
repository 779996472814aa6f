//! The binary's subcommands, run as an operator runs them (the real `yiwang` executable)
//! against a fresh database on each engine: token requests that are wrong, listing and
//! revoking tokens, organisation files with problems, and the purge of personal data.

use crate::support;

use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::store::Pool;

use support::{TestApp, TestDb, another_instance, engines, yiwang};

async fn pool(url: &str) -> Pool {
    yiwang::store::open(url, true).await.expect("open").pool()
}

async fn count(url: &str, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match pool(url).await {
        Pool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_one(&p)
            .await
            .expect("count"),
        Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_one(&p)
            .await
            .expect("count"),
    }
}

#[tokio::test]
async fn a_wrong_token_request_fails_clearly_and_creates_no_token() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = yiwang(&db.url, &["migrate"]).await;
        assert!(r.ok, "{r:?}");
        let cases: [(&[&str], &[&str]); 6] = [
            (
                &["--role", "boss", "--unit", "hg"],
                &[
                    "invalid value 'boss' for '--role <ROLE>'",
                    "[possible values: grid_worker, hotline_agent, dispatcher, handler, analyst, appraiser, admin]",
                ],
            ),
            (
                &["--role", "appraiser", "--unit", "hg-zfzd"],
                &["an appraiser's unit is the district or a township"],
            ),
            (
                &["--role", "dispatcher"],
                &["--unit is required for the dispatcher role"],
            ),
            (
                &["--role", "grid_worker"],
                &["--unit is required for the grid_worker role"],
            ),
            (
                &["--role", "handler", "--unit", "nowhere"],
                &["no unit \"nowhere\" in the organisation"],
            ),
            (
                &["--role", "admin", "--user", " "],
                &["--user must be 1 to 100 characters"],
            ),
        ];
        for (args, says) in cases {
            let mut full = vec!["token", "create"];
            if !args.contains(&"--user") {
                full.extend(["--user", "王五"]);
            }
            full.extend(args);
            let r = yiwang(&db.url, &full).await;
            assert!(!r.ok, "{engine:?} {full:?} must fail: {r:?}");
            for s in says {
                assert!(
                    r.stderr.contains(s),
                    "{engine:?} {full:?}: says {s:?}: {r:?}"
                );
            }
            assert!(!r.stdout.contains("yw_"), "no token printed: {r:?}");
            assert_eq!(count(&db.url, "tokens").await, 0, "{engine:?} {full:?}");
        }
        // clap refuses a missing or negative retention period before anything runs.
        for args in [
            &["contacts", "purge"][..],
            &["contacts", "purge", "--older-than", "-3"],
        ] {
            let r = yiwang(&db.url, args).await;
            assert!(
                !r.ok && r.stderr.contains("--older-than"),
                "{args:?}: {r:?}"
            );
        }
        db.drop_db().await;
    }
}

#[tokio::test]
async fn tokens_are_listed_and_a_revoked_token_is_refused() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = yiwang(
            &db.url,
            &[
                "token",
                "create",
                "--user",
                "李调度",
                "--role",
                "dispatcher",
                "--unit",
                "hg",
            ],
        )
        .await;
        assert!(r.ok, "{r:?}");
        let token = r
            .stdout
            .lines()
            .last()
            .expect("the token, last")
            .trim()
            .to_string();
        assert!(token.starts_with("yw_"), "{r:?}");
        let r = yiwang(
            &db.url,
            &["token", "create", "--user", "ops", "--role", "admin"],
        )
        .await;
        assert!(r.ok, "{r:?}");

        let r = yiwang(&db.url, &["token", "list"]).await;
        assert!(r.ok, "{r:?}");
        assert!(!r.stdout.contains(&token), "the secret is never listed");
        let rows: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), 2, "{r:?}");
        let disp = rows.iter().find(|c| c[1] == "李调度").expect("listed");
        assert_eq!((disp[2], disp[3], disp[5]), ("dispatcher", "hg", "active"));
        let admin = rows.iter().find(|c| c[1] == "ops").expect("listed");
        assert_eq!(
            (admin[2], admin[3]),
            ("admin", "etdz"),
            "admin defaults to the root"
        );
        let id = disp[0].to_string();

        let (base, _live) = another_instance(&db).await;
        let client = reqwest::Client::new();
        let status = |base: String| {
            let client = client.clone();
            let token = token.clone();
            async move {
                client
                    .get(format!("{base}/api/v1/tickets"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(status(base.clone()).await, 200);

        let r = yiwang(&db.url, &["token", "revoke", &id]).await;
        assert!(r.ok && r.stdout.contains(&format!("revoked {id}")), "{r:?}");
        let r = yiwang(&db.url, &["token", "list"]).await;
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&id))
            .expect("still listed");
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols[5] != "active" && cols[5].starts_with("20"),
            "shows when it was revoked: {line}"
        );
        assert_eq!(cols[6], "never", "it had no expiry: {line}");
        let r = yiwang(&db.url, &["token", "revoke", &id]).await;
        assert!(
            !r.ok && r.stderr.contains(&format!("no active token with id {id}")),
            "{r:?}"
        );
        let r = yiwang(&db.url, &["token", "revoke", "nosuchid"]).await;
        assert!(!r.ok && r.stderr.contains("no active token"), "{r:?}");

        // A service that has not seen the token refuses it at once. (One that
        // authenticated it in the last TokenCache::TTL = 10 s may still accept it
        // until its cache entry expires.)
        let (fresh, _app) = another_instance(&db).await;
        assert_eq!(status(fresh).await, 401);
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_token_made_with_expires_in_is_listed_with_its_expiry_and_refused_once_past() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let create = |extra: &'static [&'static str]| {
            let url = db.url.clone();
            async move {
                let mut args = vec!["token", "create", "--user", "临时", "--role", "admin"];
                args.extend(extra);
                yiwang(&url, &args).await
            }
        };
        for (bad, says) in [
            ("366d", "longer than the 365 days"),
            ("90", "is not a duration"),
            ("2w", "is not a duration"),
            ("0m", "at least 1 s"),
        ] {
            let r = yiwang(
                &db.url,
                &[
                    "token",
                    "create",
                    "--user",
                    "x",
                    "--role",
                    "admin",
                    "--expires-in",
                    bad,
                ],
            )
            .await;
            assert!(!r.ok && r.stderr.contains(says), "{engine:?} {bad}: {r:?}");
        }
        assert_eq!(count(&db.url, "tokens").await, 0, "{engine:?}: none made");

        let before = chrono::Utc::now();
        let r = create(&["--expires-in", "30m"]).await;
        assert!(
            r.ok && r.stderr.contains("expires at "),
            "{engine:?}: {r:?}"
        );
        let r = create(&["--expires-in", "2s"]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        let short = r
            .stdout
            .lines()
            .last()
            .expect("the token")
            .trim()
            .to_string();
        let r = create(&[]).await;
        assert!(
            r.ok && r.stderr.contains("does not expire"),
            "{engine:?}: {r:?}"
        );

        let (base, _live) = another_instance(&db).await;
        let me = |base: String, token: String| async move {
            let r = reqwest::Client::new()
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .expect("me");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        };
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let (status, body) = me(base, short).await;
        assert_eq!(status, 401, "{engine:?}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("the token expired at "),
            "{engine:?}: {body}"
        );

        let r = yiwang(&db.url, &["token", "list"]).await;
        assert!(r.ok, "{r:?}");
        let rows: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), 3, "{engine:?}: {r:?}");
        let expiry = |row: &Vec<&str>| {
            chrono::DateTime::parse_from_rfc3339(row[6])
                .unwrap_or_else(|e| panic!("{engine:?}: {row:?}: {e}"))
                .with_timezone(&chrono::Utc)
        };
        let states: Vec<&str> = rows.iter().map(|c| c[5]).collect();
        assert_eq!(
            states.iter().filter(|s| **s == "expired").count(),
            1,
            "{engine:?}: {r:?}"
        );
        for row in &rows {
            match row[5] {
                "expired" => {
                    let at = expiry(row);
                    assert!(at <= chrono::Utc::now(), "{engine:?}: {row:?}");
                }
                "active" if row[6] == "never" => {}
                "active" => {
                    let left = expiry(row) - before;
                    assert!(
                        left > chrono::Duration::minutes(29)
                            && left <= chrono::Duration::minutes(31),
                        "{engine:?}: 30 minutes: {row:?}"
                    );
                }
                other => panic!("{engine:?}: state {other:?}: {row:?}"),
            }
        }
        db.drop_db().await;
    }
}

/// The organisation in force, as stored.
async fn stored_org(url: &str) -> (String, String, String) {
    let sql = "SELECT source, doc, CAST(loaded_at AS TEXT) FROM reference_data WHERE kind = 'org'";
    match pool(url).await {
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_one(&p).await.expect("org row"),
        Pool::Sqlite(p) => sqlx::query_as(sql).fetch_one(&p).await.expect("org row"),
    }
}

#[tokio::test]
async fn a_bad_organisation_file_reports_every_problem_and_changes_nothing() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let r = yiwang(&db.url, &["org", "load", "--demo"]).await;
        assert!(r.ok, "{r:?}");
        assert!(
            r.stdout.contains("units") && r.stdout.contains("categories"),
            "{r:?}"
        );
        let before = stored_org(&db.url).await;

        // Not JSON at all: the line and column.
        let bad = dir.path().join("broken.json");
        std::fs::write(&bad, "{\n  \"units\": [\n    {\"code\": \"etdz\",, }\n").expect("write");
        let bad = bad.display().to_string();
        let r = yiwang(&db.url, &["org", "load", &bad]).await;
        assert!(!r.ok, "{r:?}");
        assert!(
            r.stderr.contains(&format!("{bad}: 3:")),
            "names the line: {r:?}"
        );
        assert!(r.stderr.contains("malformed JSON"), "{r:?}");
        assert!(
            r.stderr.contains("1 problem(s)") && r.stderr.contains("nothing was loaded"),
            "{r:?}"
        );
        assert_eq!(stored_org(&db.url).await, before, "{engine:?}: unchanged");

        // Three problems at once: an unknown parent, a duplicate code, and a category
        // routed to a unit that does not exist.
        let mut org: Value =
            serde_json::from_str(include_str!("../../schema/reference/demo-org.json"))
                .expect("demo");
        let units = org["units"].as_array_mut().expect("units");
        let i = units
            .iter()
            .position(|u| u["code"] == "hg-03-g02")
            .expect("hg-03-g02");
        units[i]["parent"] = json!("hg-nowhere");
        units.push(json!({"code": "zhzf", "name": "重复的综合行政执法局", "kind": "department", "parent": "etdz"}));
        let dup = units.len() - 1;
        org["categories"][0]["routes"][0]["unit"] = json!("hg-missing");
        let three = dir.path().join("three.json");
        std::fs::write(&three, serde_json::to_string_pretty(&org).expect("json")).expect("write");
        let three = three.display().to_string();
        let r = yiwang(&db.url, &["org", "load", &three]).await;
        assert!(!r.ok, "{r:?}");
        let problems: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with(&three)).collect();
        assert_eq!(
            problems.len(),
            3,
            "{engine:?}: every problem, one a line: {r:?}"
        );
        for (location, about) in [
            (format!("units[{i}].parent (hg-03-g02)"), "hg-nowhere"),
            (format!("units[{dup}].code (zhzf)"), "zhzf"),
            (
                "categories[0].routes[0].unit (city.exposed_garbage)".to_string(),
                "hg-missing",
            ),
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&location) && p.contains(about)),
                "{location} about {about}: {r:?}"
            );
        }
        assert!(
            r.stderr.contains("3 problem(s)") && r.stderr.contains("nothing was loaded"),
            "{r:?}"
        );
        assert_eq!(stored_org(&db.url).await, before, "{engine:?}: unchanged");

        // A file that is not there.
        let r = yiwang(&db.url, &["org", "load", "/nonexistent/org.json"]).await;
        assert!(
            !r.ok && r.stderr.contains("cannot read /nonexistent/org.json"),
            "{r:?}"
        );
        assert_eq!(stored_org(&db.url).await, before);
        db.drop_db().await;
    }
}

/// Moves a ticket's contact and stored creation answer `days` into the past, as if it
/// had been reported then.
async fn backdate(app: &TestApp, ticket: &str, contact: &str, days: i64) {
    match app.app.store.pool() {
        Pool::Postgres(p) => {
            let back = format!("now() - interval '{days} days'");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE contacts SET created_at = {back} WHERE id = $1::uuid"
            )))
            .bind(contact)
            .execute(&p)
            .await
            .expect("backdate contact");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE idempotency_keys SET created_at = {back} WHERE stream_id = $1::uuid"
            )))
            .bind(ticket)
            .execute(&p)
            .await
            .expect("backdate idempotency");
        }
        Pool::Sqlite(p) => {
            let back =
                yiwang::store::hash::rfc3339(chrono::Utc::now() - chrono::Duration::days(days));
            sqlx::query("UPDATE contacts SET created_at = ? WHERE id = ?")
                .bind(&back)
                .bind(contact)
                .execute(&p)
                .await
                .expect("backdate contact");
            sqlx::query("UPDATE idempotency_keys SET created_at = ? WHERE stream_id = ?")
                .bind(&back)
                .bind(ticket)
                .execute(&p)
                .await
                .expect("backdate idempotency");
        }
    }
}

/// (name, phone, purged) of a contact, read raw.
async fn contact_row(app: &TestApp, id: &str) -> (Option<String>, Option<String>, bool) {
    match app.app.store.pool() {
        Pool::Postgres(p) => sqlx::query_as(
            "SELECT name, phone, purged_at IS NOT NULL FROM contacts WHERE id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&p)
        .await
        .expect("contact"),
        Pool::Sqlite(p) => {
            sqlx::query_as("SELECT name, phone, purged_at IS NOT NULL FROM contacts WHERE id = ?")
                .bind(id)
                .fetch_one(&p)
                .await
                .expect("contact")
        }
    }
}

async fn idempotency_bodies_mentioning(app: &TestApp, text: &str) -> i64 {
    let like = format!("%{text}%");
    match app.app.store.pool() {
        Pool::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE body LIKE $1")
                .bind(like)
                .fetch_one(&p)
                .await
                .expect("count")
        }
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE body LIKE ?")
                .bind(like)
                .fetch_one(&p)
                .await
                .expect("count")
        }
    }
}

/// How many stored answers name the stream `ticket`.
async fn idempotency_records_of(app: &TestApp, ticket: &str) -> i64 {
    match app.app.store.pool() {
        Pool::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE stream_id = $1::uuid")
                .bind(ticket)
                .fetch_one(&p)
                .await
                .expect("count")
        }
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE stream_id = ?")
                .bind(ticket)
                .fetch_one(&p)
                .await
                .expect("count")
        }
    }
}

#[tokio::test]
async fn contacts_purge_erases_old_personal_data_and_leaves_the_log_as_it_was() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let admin = app.token(Role::Admin, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;

        // An old complaint (reported 400 days ago) and a fresh one.
        let old = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let mut b = support::ticket_body();
        b["reporter"] = json!({"name": "钱女士", "phone": "13900001111"});
        let r = app.post("/api/v1/tickets", &hot, b).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let new = r.body["id"].as_str().expect("id").to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{old}/assign"),
                &disp,
                json!({"unit": "zhzf"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .get(&format!("/api/v1/tickets/{old}/events"), &admin)
            .await;
        let contact = r.body["items"][0]["data"]["reporter_ref"]
            .as_str()
            .expect("the log holds a reference")
            .to_string();
        backdate(&app, &old, &contact, 400).await;

        let log = |evs: Vec<yiwang::store::RecordedEvent>| {
            evs.into_iter()
                .map(|e| {
                    (
                        e.position,
                        e.stream_id,
                        e.version,
                        e.hash,
                        e.prev_hash,
                        e.data,
                    )
                })
                .collect::<Vec<_>>()
        };
        let before = log(app.all_events().await);
        let rows_before = app.count_rows("events").await;

        let r = yiwang(&app.db.url, &["contacts", "purge", "--older-than", "365"]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        assert!(
            r.stdout.contains("purged 1 contact(s)"),
            "{engine:?}: {r:?}"
        );

        // The old ticket no longer shows a reporter, to anyone; the fresh one does.
        for token in [&admin, &hot] {
            let r = app.get(&format!("/api/v1/tickets/{old}"), token).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["reporter"], Value::Null, "{engine:?}: {}", r.body);
            assert_eq!(r.body["state"], "assigned", "the ticket itself is intact");
        }
        let r = app.get(&format!("/api/v1/tickets/{new}"), &admin).await;
        assert_eq!(
            r.body["reporter"],
            json!({"name": "钱女士", "phone": "13900001111", "masked": false})
        );
        assert_eq!(contact_row(&app, &contact).await, (None, None, true));
        assert_eq!(
            idempotency_records_of(&app, &old).await,
            0,
            "{engine:?}: the stored answers to the old ticket's commands went too"
        );
        assert_eq!(idempotency_records_of(&app, &new).await, 1);
        // A ticket command's record holds no copy of its answer (migration 0016): the
        // phone is in no stored answer, the fresh one's included.
        for phone in ["13800000000", "13900001111"] {
            assert_eq!(idempotency_bodies_mentioning(&app, phone).await, 0);
        }

        // The log: not one event more or less, not one byte changed.
        assert_eq!(app.count_rows("events").await, rows_before);
        assert_eq!(
            log(app.all_events().await),
            before,
            "{engine:?}: the log is untouched"
        );

        // Again: nothing left to erase.
        let r = yiwang(&app.db.url, &["contacts", "purge", "--older-than", "365"]).await;
        assert!(r.ok && r.stdout.contains("purged 0 contact(s)"), "{r:?}");
        // The ticket goes on.
        let r = app
            .post(
                &format!("/api/v1/tickets/{old}/comment"),
                &disp,
                json!({"text": "继续办理"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        app.finish().await;
    }
}

/// `--log-format` (and `YIWANG_LOG_FORMAT`, and the config file's `log_format`) is
/// json or pretty: anything else is refused when the command line is read, naming
/// the values it takes, before anything runs; a good one is taken.
#[tokio::test]
async fn a_log_format_outside_json_and_pretty_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/yiwang.db", dir.path().display());
    let run = |args: &[&str], env: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"));
        c.args(["--database-url", &url])
            .args(args)
            .env_remove("YIWANG_LOG_FORMAT")
            .env_remove("YIWANG_DATABASE_URL");
        if let Some(v) = env {
            c.env("YIWANG_LOG_FORMAT", v);
        }
        c.output().expect("run yiwang")
    };
    for (args, env) in [
        (&["--log-format", "bogus", "migrate"][..], None),
        (&["migrate"][..], Some("JSON lines")),
        (&["config", "check"][..], Some("text")),
    ] {
        let out = run(args, env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains("invalid value") && err.contains("[possible values: json, pretty]"),
            "{args:?} {env:?}: {err}"
        );
        assert!(
            !dir.path().join("yiwang.db").exists(),
            "{args:?} {env:?}: nothing ran"
        );
    }
    let out = run(&["--log-format", "pretty", "migrate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["migrate"], Some("json"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every closed set of the command line is refused outside its values with exit
/// code 2 and the list of them, before anything runs; the connection counts that
/// used to be environment variables only are flags too, checked the same way.
#[test]
fn closed_sets_and_connection_counts_are_refused_with_the_choices_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/yiwang.db", dir.path().display());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"));
        c.args(["--database-url", &url]).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("YIWANG_") {
                c.env_remove(k);
            }
        }
        c.envs(env.iter().copied());
        c.output().expect("run yiwang")
    };
    /// Arguments, environment, what the refusal names.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        (
            &["token", "create", "--user", "u", "--role", "Admin"],
            &[],
            "[possible values: grid_worker, hotline_agent, dispatcher, handler, analyst, appraiser, admin]",
        ),
        (
            &["replay", "--projection", "stats"],
            &[],
            "[possible values: unit_stats, people_stats]",
        ),
        (&["--pg-pool", "0", "migrate"], &[], "'--pg-pool <N>'"),
        (&["migrate", "--pg-writers", "x"], &[], "'--pg-writers <N>'"),
        (
            &["migrate"],
            &[("YIWANG_SQLITE_READERS", "0")],
            "'--sqlite-readers <N>'",
        ),
        (
            &["serve", "--shutdown-grace-secs", "0"],
            &[],
            "'--shutdown-grace-secs <SHUTDOWN_GRACE_SECS>'",
        ),
        (
            &["serve"],
            &[("YIWANG_SHUTDOWN_DRAIN_SECS", "-1")],
            "--shutdown-drain-secs",
        ),
    ];
    for (args, env, says) in cases {
        let out = run(args, env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains("invalid value") && err.contains(says),
            "{args:?} {env:?}: says {says:?}: {err}"
        );
        assert!(
            !dir.path().join("yiwang.db").exists(),
            "{args:?} {env:?}: nothing ran"
        );
    }
    // The counts are shown with the serve settings, and given as flags they work.
    let help = String::from_utf8_lossy(&run(&["serve", "--help"], &[]).stdout).into_owned();
    for flag in [
        "--pg-pool <N>",
        "[env: YIWANG_PG_POOL=]",
        "--pg-writers <N>",
        "--sqlite-readers <N>",
        "[env: YIWANG_SQLITE_READERS=]",
        "--shutdown-drain-secs",
        "[env: YIWANG_SHUTDOWN_DRAIN_SECS=]",
        "--shutdown-grace-secs",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}:\n{help}");
    }
    let out = run(&["--sqlite-readers", "2", "--pg-pool", "3", "migrate"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &[
            "token",
            "create",
            "--user",
            "u",
            "--role",
            "hotline_agent",
            "--unit",
            "etdz",
        ],
        &[("YIWANG_PG_WRITERS", "2")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
