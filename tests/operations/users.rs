//! `yiwang user …` as an operator runs it (the real binary) on each engine: a
//! password read from standard input when piped, a short one refused with a reason
//! and nothing stored, a second `create` of the same name refused, `passwd`, `lock`
//! and `unlock`, and the password that works afterwards is the one set last.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use yiwang::auth::session::{SignInRefused, sign_in};

use crate::support::{Run, TestDb, engines, yiwang};

/// `yiwang --database-url url args…` with `stdin` piped in.
async fn with_stdin(url: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .arg("--database-url")
        .arg(url)
        .args(["--log-format", "pretty"])
        .args(args)
        .env_remove("YIWANG_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the yiwang binary");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("wait");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_refuses_a_short_one() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let create = [
            "user",
            "create",
            "--user",
            "li.dispatch",
            "--role",
            "dispatcher",
            "--unit",
            "etdz",
        ];
        let r = with_stdin(&db.url, &create, "short\n").await;
        assert!(!r.ok, "{r:?}");
        assert!(r.stderr.contains("at least 10"), "{r:?}");
        assert!(r.stderr.contains("nothing was changed"), "{r:?}");
        let r = yiwang(&db.url, &["user", "list"]).await;
        assert!(r.ok && r.stdout.is_empty(), "{r:?}");

        let r = with_stdin(&db.url, &create, "绿色网格 correct horse\n").await;
        assert!(r.ok, "{r:?}");
        assert!(r.stdout.contains("li.dispatch (dispatcher, etdz)"), "{r:?}");
        let r = with_stdin(&db.url, &create, "another long password\n").await;
        assert!(!r.ok && r.stderr.contains("exists already"), "{r:?}");
        let r = with_stdin(
            &db.url,
            &[
                "user", "create", "--user", "x", "--role", "handler", "--unit", "nowhere",
            ],
            "绿色网格 correct horse\n",
        )
        .await;
        assert!(!r.ok && r.stderr.contains("no unit \"nowhere\""), "{r:?}");
        let r = yiwang(&db.url, &["user", "list"]).await;
        assert_eq!(
            r.stdout, "li.dispatch\tdispatcher\tetdz\tactive\t-\n",
            "{r:?}"
        );

        let pool = yiwang::store::open(&db.url, true)
            .await
            .expect("open")
            .pool();
        let s = sign_in(&pool, "li.dispatch", "绿色网格 correct horse", None)
            .await
            .expect("sign in")
            .expect("the password read from stdin");
        assert_eq!(s.actor.unit, "etdz");

        // A new password: the old one stops working.
        let r = with_stdin(
            &db.url,
            &["user", "passwd", "--user", "li.dispatch"],
            "a brand new passphrase\r\n",
        )
        .await;
        assert!(r.ok, "{r:?}");
        let old = sign_in(&pool, "li.dispatch", "绿色网格 correct horse", None)
            .await
            .expect("sign in");
        assert_eq!(old.unwrap_err(), SignInRefused::Wrong);
        // Locked, then unlocked.
        let r = yiwang(&db.url, &["user", "lock", "--user", "li.dispatch"]).await;
        assert!(r.ok, "{r:?}");
        let locked = sign_in(&pool, "li.dispatch", "a brand new passphrase", None)
            .await
            .expect("sign in");
        assert_eq!(locked.unwrap_err(), SignInRefused::Locked);
        let r = yiwang(&db.url, &["user", "unlock", "--user", "li.dispatch"]).await;
        assert!(r.ok, "{r:?}");
        assert!(
            sign_in(&pool, "li.dispatch", "a brand new passphrase", None)
                .await
                .expect("sign in")
                .is_ok()
        );
        let r = yiwang(&db.url, &["user", "lock", "--user", "nobody"]).await;
        assert!(!r.ok && r.stderr.contains("no user \"nobody\""), "{r:?}");
        db.drop_db().await;
    }
}
