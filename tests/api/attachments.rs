//! Photos: uploaded as multipart, judged by their bytes, stored once per content,
//! named in a report or a handling by hash, and served only to the uploader or to
//! whoever may see a ticket that names them (a 404 for everyone else).

use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{Engine, TestApp, engines, upload_part};

/// A JPEG's first bytes (SOI, a JFIF APP0 segment) and its end marker.
fn jpeg(tag: &[u8]) -> Vec<u8> {
    let mut b = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    b.extend_from_slice(tag);
    b.extend_from_slice(b"\xFF\xD9");
    b
}

/// A PNG signature, a 1×1 IHDR chunk and the IEND chunk (an upload must reach its
/// image's end).
fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(
        b"\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89",
    );
    b.extend_from_slice(b"\x00\x00\x00\x00IEND\xaeB`\x82");
    b
}

async fn upload(app: &TestApp, token: &str, bytes: &[u8]) -> (u16, Value) {
    upload_part(app, token, "file", "photo.jpg", bytes).await
}

/// GET of raw bytes: (status, content type, cache-control, nosniff, bytes).
async fn fetch(app: &TestApp, token: &str, path: &str) -> (u16, String, String, String, Vec<u8>) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ct, cc, xcto) = (
        h("content-type"),
        h("cache-control"),
        h("x-content-type-options"),
    );
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("bytes").to_vec();
    (status, ct, cc, xcto, bytes)
}

fn files_in(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = d.path();
        if p.is_dir() && p.file_name().is_some_and(|f| f != "tmp") {
            n += std::fs::read_dir(&p).map(|r| r.count()).unwrap_or(0);
        }
    }
    n
}

#[tokio::test]
async fn uploads_are_judged_by_content_limited_in_size_and_stored_once() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let hand = app.token(Role::Handler, "hg-zfzd").await;

        let photo = jpeg(format!("{engine:?} {}", Uuid::new_v4()).as_bytes());
        let (s, a) = upload(&app, &gw, &photo).await;
        assert_eq!(s, 201, "{engine:?}: {a}");
        let hash = a["hash"].as_str().expect("hash").to_string();
        assert_eq!(hash.len(), 64);
        assert_eq!(a["content_type"], "image/jpeg");
        assert_eq!(a["size"], photo.len());
        assert_eq!(a["url"], format!("/api/v1/attachments/{hash}"));
        let on_disk = app.app.attachments.dir.join(&hash[..2]).join(&hash);
        assert_eq!(std::fs::read(&on_disk).expect("stored file"), photo);

        // The same content again, by the same user and by another: one file, the
        // same answer; each uploader may name it.
        let files = files_in(&app.app.attachments.dir);
        for t in [&gw, &hand] {
            let (s, again) = upload(&app, t, &photo).await;
            assert_eq!(s, 201, "{engine:?}: {again}");
            assert_eq!(again, a);
        }
        assert_eq!(files_in(&app.app.attachments.dir), files, "{engine:?}");
        assert_eq!(app.count_rows("attachments").await, 2, "{engine:?}");
        let tmp = app.app.attachments.dir.join("tmp");
        assert_eq!(
            std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0),
            0,
            "{engine:?}: no temporary file is left behind"
        );

        let (s, p) = upload(&app, &gw, &png()).await;
        assert_eq!((s, &p["content_type"]), (201, &json!("image/png")), "{p}");

        // A text file named photo.jpg (and sent as image/jpeg) is not a photo.
        let (s, e) = upload(&app, &gw, b"this is not a photo, only text named .jpg").await;
        assert_eq!(s, 415, "{engine:?}: {e}");
        assert!(e["detail"].as_str().unwrap_or("").contains("JPEG"), "{e}");
        let mut long_text = b"plain text ".repeat(1000);
        long_text.truncate(9000);
        assert_eq!(upload(&app, &gw, &long_text).await.0, 415);

        // Over the limit (10 MiB by default), by one byte, and by far.
        let max = app.app.attachments.max_bytes as usize;
        let mut big = jpeg(b"");
        big.resize(max + 1, 0);
        let (s, e) = upload(&app, &gw, &big).await;
        assert_eq!(s, 413, "{engine:?}: {e}");
        big.resize(max + 512 * 1024, 0);
        assert_eq!(upload(&app, &gw, &big).await.0, 413, "{engine:?}");
        let mut exact = jpeg(b"");
        exact.resize(max, 7);
        assert_eq!(upload(&app, &gw, &exact).await.0, 201, "{engine:?}");
        assert_eq!(
            std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0),
            0,
            "{engine:?}: refused uploads leave nothing behind"
        );

        // No part named file; not multipart at all; a role that only reads.
        let (s, e) = upload_part(&app, &gw, "photo", "a.jpg", &photo).await;
        assert_eq!((s, &e["field"]), (422, &json!("file")), "{e}");
        let r = app
            .post("/api/v1/attachments", &gw, json!({"file": "x"}))
            .await;
        assert_eq!(r.status, 415, "{}", r.body);
        let analyst = app.token(Role::Analyst, "hg").await;
        assert_eq!(upload(&app, &analyst, &photo).await.0, 403);
        let r = app
            .client
            .post(format!("{}/api/v1/attachments", app.base))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 401);
        app.finish().await;
    }
}

fn report(photos: Value) -> Value {
    json!({
        "source": "grid", "category": "city.exposed_garbage", "title": "垃圾堆积",
        "description": "路口垃圾", "location": {"grid": "hg-01-g01"}, "photos": photos,
    })
}

#[tokio::test]
async fn photos_of_a_ticket_are_served_to_those_who_may_see_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let hand = app.token(Role::Handler, "hg-zfzd").await;
        let outsider = app.token(Role::Handler, "fl-zfzd").await;

        let photo = jpeg(format!("report {engine:?} {}", Uuid::new_v4()).as_bytes());
        let (_, a) = upload(&app, &gw, &photo).await;
        let hash = a["hash"].as_str().expect("hash").to_string();

        // Before any ticket names it, only its uploader reads it.
        let own = format!("/api/v1/attachments/{hash}");
        let (s, ct, cc, xcto, bytes) = fetch(&app, &gw, &own).await;
        assert_eq!(
            (s, ct.as_str(), cc.as_str(), xcto.as_str()),
            (200, "image/jpeg", "private", "nosniff")
        );
        assert_eq!(bytes, photo);
        assert_eq!(fetch(&app, &disp, &own).await.0, 404, "{engine:?}");

        let r = app
            .post("/api/v1/tickets", &gw, report(json!([hash])))
            .await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        let url = format!("/api/v1/tickets/{id}/attachments/{hash}");
        assert_eq!(
            r.body["photos"],
            json!([{"hash": hash, "stage": "accepted", "url": url}])
        );
        let t = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(t.body["photos"][0]["url"], url, "{}", t.body);

        // The township's dispatcher sees the ticket, so its photo; a handler of
        // another township sees neither, and learns nothing about the photo either.
        let (s, ct, cc, xcto, bytes) = fetch(&app, &disp, &url).await;
        assert_eq!(
            (s, ct.as_str(), cc.as_str(), xcto.as_str()),
            (200, "image/jpeg", "private", "nosniff"),
            "{engine:?}"
        );
        assert_eq!(bytes, photo);
        let (s, ct, ..) = fetch(&app, &outsider, &url).await;
        assert_eq!(s, 404, "{engine:?}");
        assert!(ct.starts_with("application/problem+json"), "{ct}");
        assert_eq!(fetch(&app, &outsider, &own).await.0, 404);
        let unknown = "0".repeat(64);
        let (s_unknown, ..) = fetch(
            &app,
            &disp,
            &format!("/api/v1/tickets/{id}/attachments/{unknown}"),
        )
        .await;
        assert_eq!(s_unknown, 404, "a hash the ticket does not name");
        let (_, other) = upload(&app, &disp, &png()).await;
        let other_hash = other["hash"].as_str().expect("hash");
        assert_eq!(
            fetch(
                &app,
                &disp,
                &format!("/api/v1/tickets/{id}/attachments/{other_hash}")
            )
            .await
            .0,
            404,
            "an existing photo that this ticket does not name"
        );

        // The unit that handles it adds its own photos; both are listed.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &disp,
                json!({"unit": "hg-zfzd"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(fetch(&app, &hand, &url).await.0, 200, "the handling unit");
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &hand,
                json!({"handler": "钱工"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let after = png();
        let (_, h) = upload(&app, &hand, &after).await;
        let after_hash = h["hash"].as_str().expect("hash").to_string();
        // The report's photo was not uploaded by the handler: it cannot be named.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/handle"),
                &hand,
                json!({"result": "已清运", "photos": [hash]}),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["field"]),
            (422, &json!("photos[0]")),
            "{}",
            r.body
        );
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/handle"),
                &hand,
                json!({"result": "已清运", "photos": [after_hash]}),
            )
            .await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        let stages: Vec<(&str, &str)> = r.body["photos"]
            .as_array()
            .expect("photos")
            .iter()
            .map(|p| {
                (
                    p["hash"].as_str().unwrap_or(""),
                    p["stage"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                (hash.as_str(), "accepted"),
                (after_hash.as_str(), "handled")
            ]
        );
        let handled_url = format!("/api/v1/tickets/{id}/attachments/{after_hash}");
        let (s, ct, _, _, bytes) = fetch(&app, &disp, &handled_url).await;
        assert_eq!((s, ct.as_str()), (200, "image/png"));
        assert_eq!(bytes, after);
        assert_eq!(fetch(&app, &outsider, &handled_url).await.0, 404);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_command_may_only_name_photos_its_user_uploaded() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let (_, theirs) = upload(&app, &hot, &jpeg(b"hotline's")).await;
        let cases = [
            (json!(["0".repeat(64)]), "photos[0]", 422),
            (json!([theirs["hash"]]), "photos[0]", 422),
            (json!(["../../etc/passwd"]), "photos[0]", 422),
            (json!(["A".repeat(64)]), "photos[0]", 422),
            (json!([7]), "photos[0]", 422),
            (json!(vec!["a".repeat(64); 21]), "photos", 422),
        ];
        for (photos, field, status) in cases {
            let r = app
                .post("/api/v1/tickets", &gw, report(photos.clone()))
                .await;
            assert_eq!(r.status, status, "{engine:?} {photos}: {}", r.body);
            assert_eq!(r.body["field"], field, "{engine:?} {photos}: {}", r.body);
        }
        assert_eq!(app.count_rows("events").await, 0, "nothing was appended");

        // Names that are not hashes never reach the disk: 404, whatever they hold.
        for path in [
            "/api/v1/attachments/..%2F..%2F..%2Fetc%2Fpasswd".to_string(),
            "/api/v1/attachments/%2E%2E".to_string(),
            format!("/api/v1/attachments/{}", "A".repeat(64)),
            format!("/api/v1/attachments/{}", "a".repeat(65)),
            format!(
                "/api/v1/tickets/{}/attachments/..%2Fyiwang.db",
                Uuid::new_v4()
            ),
            format!("/api/v1/tickets/not-a-uuid/attachments/{}", "a".repeat(64)),
        ] {
            let (s, ..) = fetch(&app, &gw, &path).await;
            assert_eq!(s, 404, "{engine:?} {path}");
        }
        if engine == Engine::Sqlite {
            // The attachments sit next to the database file.
            let db_dir = app
                .db
                .url
                .trim_start_matches("sqlite://")
                .trim_end_matches("/yiwang.db");
            assert_eq!(
                app.app.attachments.dir,
                std::path::Path::new(db_dir).join("attachments")
            );
        }
        app.finish().await;
    }
}
