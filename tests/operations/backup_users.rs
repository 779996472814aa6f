//! The people who sign in with a password travel in `yiwang export` (issue 22,
//! point 7): after a restore into either engine they sign in with the same password,
//! a lock stays a lock and a grid worker stays bound to the device; sessions do not
//! travel, and the archive holds hashes, never a password.

use crate::backup::{export, restore};
use crate::support::{Engine, TestApp, TestDb, engines};

use serde_json::json;
use yiwang::auth::Role;
use yiwang::auth::password::{create_user, lock_user};
use yiwang::clock::Clock;
use yiwang::repo::users;

const PASSWORD: &str = "correct horse 22";

async fn sign_in(app: &TestApp, user: &str, password: &str) -> (u16, String) {
    let r = app
        .client
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn users_travel_with_their_password_hashes_locks_and_devices() {
    let src = TestApp::spawn(Engine::Sqlite).await;
    let pool = src.app.store.pool();
    create_user(&pool, "wang.fang", Role::Dispatcher, "etdz", PASSWORD)
        .await
        .unwrap();
    create_user(&pool, "li.lei", Role::GridWorker, "hg-01-g01", PASSWORD)
        .await
        .unwrap();
    users::set_device(&pool, "li.lei", Some("device-1"), 1_800_000_000)
        .await
        .unwrap();
    create_user(&pool, "zhao.min", Role::Handler, "zhzf", PASSWORD)
        .await
        .unwrap();
    lock_user(&pool, "zhao.min").await.unwrap();
    let (status, body) = sign_in(&src, "wang.fang", PASSWORD).await;
    assert!(status < 300, "before the export: {status} {body}");
    let before = users::list(&pool).await.unwrap();
    assert_eq!(before.len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.ndjson");
    export(&src.db.url, &file).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"user\""))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"zhao.min\"") && l.contains("\"locked\":true")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.contains("$argon2id$")), "{lines:?}");
    assert!(
        !text.contains(PASSWORD),
        "a password in clear in the archive"
    );

    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = restore(&db.url, &file, &[]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        assert!(
            r.stdout.contains("3 users") || r.stderr.contains("3 users"),
            "{engine:?}: {r:?}"
        );
        let dst = TestApp::attach(db, Clock::system()).await;
        let after = users::list(&dst.app.store.pool()).await.unwrap();
        assert_eq!(after, before, "{engine:?}: the rows as they were");
        let (status, body) = sign_in(&dst, "wang.fang", PASSWORD).await;
        assert!(
            status < 300,
            "{engine:?}: the same password after the restore: {status} {body}"
        );
        let (status, _) = sign_in(&dst, "wang.fang", "not the password").await;
        assert_eq!(status, 401, "{engine:?}");
        let (status, body) = sign_in(&dst, "zhao.min", PASSWORD).await;
        assert!(
            status >= 400,
            "{engine:?}: a locked user stays locked: {status} {body}"
        );
        dst.finish().await;
    }
    src.finish().await;
}
