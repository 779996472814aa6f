//! TLS to PostgreSQL, against the machine's server with a self-made CA whose server
//! certificate names `localhost` only (scripts/pg-tls-setup.sh, which `.ci/run` runs
//! and whose CA path it exports as `YIWANG_TEST_PG_TLS_CA`). Without the variable
//! these tests are skipped with a printed reason, and fail under `CI=true`.

use yiwang::store::{self, Pool, Store};

use crate::support::{self, Engine, TestDb};

const CA_ENV: &str = "YIWANG_TEST_PG_TLS_CA";

/// The CA file and a fresh PostgreSQL database, or None when the run has no TLS
/// server (skipped, or a failure in CI).
async fn setup() -> Option<(String, TestDb)> {
    let ca = match std::env::var(CA_ENV) {
        Ok(p) if std::path::Path::new(&p).is_file() => p,
        Ok(p) if support::in_ci() => panic!("CI=true and {CA_ENV}={p} is not a file"),
        Err(_) if support::in_ci() => panic!(
            "CI=true but {CA_ENV} is not set: run `export {CA_ENV}=\"$(scripts/pg-tls-setup.sh)\"`"
        ),
        _ => {
            eprintln!(
                "skipping the PostgreSQL TLS tests: run `export {CA_ENV}=\"$(scripts/pg-tls-setup.sh)\"` (as root) to turn TLS on"
            );
            return None;
        }
    };
    if !support::engines().await.contains(&Engine::Postgres) {
        eprintln!(
            "skipping the PostgreSQL TLS tests: no PostgreSQL (see {})",
            support::PG_ENV
        );
        return None;
    }
    Some((ca, TestDb::new(Engine::Postgres).await))
}

/// The test database's URL with another host name and TLS parameters.
fn url(db: &TestDb, host: &str, query: &str) -> String {
    let mut u = url::Url::parse(&db.url).expect("test database URL");
    u.set_host(Some(host)).expect("host name");
    u.set_query(Some(query));
    u.to_string()
}

/// Whether the store's own connection is encrypted, as the server sees it.
async fn over_tls(s: &Store) -> bool {
    let Pool::Postgres(p) = s.pool() else {
        panic!("a PostgreSQL store")
    };
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&p)
        .await
        .expect("pg_stat_ssl")
}

fn event() -> store::NewEvent {
    store::NewEvent {
        event_type: "TicketCommented".into(),
        schema_version: 1,
        data: serde_json::json!({"text": "over TLS"}),
        occurred_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn verify_full_to_the_certificates_name_opens_the_store_over_tls() {
    let Some((ca, db)) = setup().await else {
        return;
    };
    let tls = url(
        &db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    // Migrates, appends and reads back, all over the verified connection.
    let s = store::open(&tls, true).await.expect("open over TLS");
    let stream = uuid::Uuid::now_v7();
    s.append(store::AppendRequest {
        stream_id: stream,
        expected_version: 0,
        prev_hash: None,
        events: vec![event()],
        metadata: store::Metadata {
            actor: "tester".into(),
            role: "admin".into(),
            correlation_id: uuid::Uuid::now_v7(),
            ..Default::default()
        },
        idempotency: None,
        views: Vec::new(),
    })
    .await
    .expect("append over TLS");
    assert_eq!(s.read_stream(stream).await.expect("read").len(), 1);
    assert!(
        over_tls(&s).await,
        "the store's connection is not encrypted"
    );

    // The export / verify path connects with the same options.
    let Pool::Postgres(p) = store::dump::connect_existing(&tls)
        .await
        .expect("connect_existing over TLS")
    else {
        panic!("a PostgreSQL pool")
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&p)
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "connect_existing's connection is not encrypted");
    p.close().await;
    drop(s);
    db.drop_db().await;
}

#[tokio::test]
async fn verify_full_refuses_a_wrong_host_name_and_an_unknown_ca() {
    let Some((ca, db)) = setup().await else {
        return;
    };
    // The certificate names `localhost`, not the address.
    let wrong_name = url(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let e = format!(
        "{:#}",
        store::open(&wrong_name, true).await.err().expect("refused")
    );
    assert!(
        e.contains("not valid for name") && e.contains("127.0.0.1") && e.contains("sslrootcert"),
        "a wrong host name should be refused, naming it and what to check: {e}"
    );

    // verify-ca checks the chain only: the address is fine there.
    let chain_only = url(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    let s = store::open(&chain_only, true)
        .await
        .expect("verify-ca to the address");
    assert!(over_tls(&s).await);
    drop(s);

    // Without sslrootcert, the self-made CA is in neither the system's store nor
    // Mozilla's roots.
    let no_ca = url(&db, "localhost", "sslmode=verify-full");
    let e = format!(
        "{:#}",
        store::open(&no_ca, true).await.err().expect("refused")
    );
    assert!(
        e.contains("UnknownIssuer") || e.contains("unknown issuer"),
        "a certificate from an unknown CA should be refused: {e}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn require_encrypts_without_verifying_and_disable_does_not() {
    let Some((_, db)) = setup().await else {
        return;
    };
    let s = store::open(&url(&db, "127.0.0.1", "sslmode=require"), true)
        .await
        .expect("sslmode=require");
    assert!(over_tls(&s).await, "sslmode=require should encrypt");
    drop(s);
    let s = store::open(&url(&db, "127.0.0.1", "sslmode=disable"), true)
        .await
        .expect("sslmode=disable");
    assert!(!over_tls(&s).await, "sslmode=disable should not encrypt");
    drop(s);
    db.drop_db().await;
}

#[tokio::test]
async fn sslrootcert_system_and_a_missing_file_are_refused_with_what_to_do() {
    let e = store::open(
        "postgres://u@db.example:5432/yiwang?sslmode=verify-full&sslrootcert=system",
        true,
    )
    .await
    .err()
    .expect("refused");
    assert!(format!("{e:#}").contains("leave sslrootcert out"), "{e:#}");
    // Percent-encoded as a URL may carry it; refused before any connection.
    let e = store::open(
        "postgres://u@db.example:5432/yiwang?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch%20ca.pem",
        true,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        format!("{e:#}")
            .contains("sslrootcert=/no/such ca.pem in the PostgreSQL URL: cannot read it"),
        "{e:#}"
    );
}
