//! A ticket's whole life through the API, and what each step records.

use serde_json::json;
use yiwang::auth::Role;

use crate::support::{TestApp, engines};

#[tokio::test]
async fn a_hotline_ticket_goes_from_accepted_to_closed() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;

        let t = app.new_ticket().await;
        assert_eq!(t["state"], "accepted");
        assert_eq!(t["version"], 1);
        assert_eq!(t["unit"], json!(null));
        assert_eq!(
            t["suggested_unit"], "hg-zfzd",
            "routed by category and the grid's township"
        );
        assert!(
            t["number"]
                .as_str()
                .is_some_and(|n| n.len() == 15 && n.as_bytes()[8] == b'-')
        );
        let id = t["id"].as_str().unwrap().to_string();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);

        let steps = [
            (&disp, "assign", json!({"unit": "zhzf"}), "assigned"),
            (&hand, "sign", json!({"handler": "钱工"}), "assigned"),
            (&hand, "handle", json!({"result": "已清运"}), "handled"),
            (
                &disp,
                "verify",
                json!({"passed": true, "note": "现场核实"}),
                "verified",
            ),
            (
                &hot,
                "feedback",
                json!({"satisfaction": "satisfied"}),
                "verified",
            ),
            (&disp, "close", json!({"code": "resolved"}), "closed"),
        ];
        for (i, (tok, action, body, state)) in steps.iter().enumerate() {
            let r = app
                .post(&format!("/api/v1/tickets/{id}/{action}"), tok, body.clone())
                .await;
            assert_eq!(r.status, 200, "{engine:?} {action}: {}", r.body);
            assert_eq!(r.body["state"], *state, "{action}");
            assert_eq!(r.body["version"], (i + 2) as i64);
            assert_eq!(r.header("etag"), Some(format!("\"{}\"", i + 2).as_str()));
        }

        let r = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["handler"], "钱工");
        assert_eq!(r.body["deadlines"]["sign"], "met");
        assert_eq!(r.body["deadlines"]["handle"], "met");
        assert_eq!(r.body["overdue"], false);
        assert_eq!(
            r.body["reporter"]["phone"], "138****0000",
            "a dispatcher sees the phone masked"
        );
        let r = app.get(&format!("/api/v1/tickets/{id}"), &hot).await;
        assert_eq!(
            r.body["reporter"]["phone"], "13800000000",
            "the hotline sees it in full"
        );

        let r = app
            .get(&format!("/api/v1/tickets/{id}/events"), &disp)
            .await;
        let evs = r.body["items"].as_array().unwrap();
        let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "TicketAccepted",
                "TicketAssigned",
                "TicketSigned",
                "TicketHandled",
                "VerificationPassed",
                "CitizenFeedbackRecorded",
                "TicketClosed"
            ]
        );
        assert_eq!(evs[2]["metadata"]["role"], "handler");
        assert_eq!(evs[2]["metadata"]["unit"], "zhzf");
        assert!(evs[0]["data"].get("reporter_ref").is_some());
        assert!(
            !evs[0].to_string().contains("13800000000"),
            "personal data stays out of the log"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn return_extension_supervision_and_rework_are_recorded() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let other = app.token(Role::Handler, "scjg").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let p = |a: &str| format!("/api/v1/tickets/{id}/{a}");

        let r = app.post(&p("assign"), &disp, json!({"unit": "scjg"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(&p("return"), &other, json!({"reason": "不属于本单位职责"}))
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (200, Some("accepted"))
        );
        assert_eq!(r.body["returned"], 1);

        let r = app
            .post(
                &p("assign"),
                &disp,
                json!({"unit": "zhzf", "co_units": ["scjg"]}),
            )
            .await;
        assert_eq!(r.status, 200);
        let due = r.body["deadlines"]["handle_due_at"]
            .as_str()
            .unwrap()
            .to_string();
        app.post(&p("sign"), &hand, json!({"handler": "李"})).await;
        let r = app
            .post(
                &p("request-extension"),
                &hand,
                json!({"days": 2, "reason": "需协调"}),
            )
            .await;
        assert_eq!(r.body["pending_extension_days"], 2);
        let r = app
            .post(&p("decide-extension"), &disp, json!({"approved": true}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["extended"], true);
        assert!(r.body["deadlines"]["handle_due_at"].as_str().unwrap() > due.as_str());
        for n in 1..=2 {
            let r = app
                .post(&p("supervise"), &disp, json!({"note": "请加快办理"}))
                .await;
            assert_eq!(r.body["supervised"], n);
        }
        let r = app
            .post(&p("comment"), &other, json!({"text": "协办单位已到场"}))
            .await;
        assert_eq!(r.status, 200, "a co-unit may comment: {}", r.body);
        app.post(&p("handle"), &hand, json!({"result": "已处理"}))
            .await;
        let r = app
            .post(
                &p("verify"),
                &disp,
                json!({"passed": false, "note": "仍有残留"}),
            )
            .await;
        assert_eq!(
            (r.body["state"].as_str(), &r.body["reworked"]),
            (Some("assigned"), &json!(1))
        );
        let r = app
            .post(&p("handle"), &hand, json!({"result": "已彻底清理"}))
            .await;
        assert_eq!(r.body["state"], "handled");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_grid_worker_fixes_a_minor_issue_on_the_spot_and_it_still_needs_verification() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let mut body = crate::support::ticket_body();
        body["source"] = json!("grid");
        body["self_handled"] = json!({"result": "已自行清理"});
        body.as_object_mut().unwrap().remove("reporter");
        let r = app.post("/api/v1/tickets", &gw, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["state"], "handled");
        assert_eq!(r.body["self_handled"], true);
        assert_eq!(
            r.body["centre"], "hg",
            "a grid report lands with its township centre"
        );
        let id = r.body["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/verify"),
                &disp,
                json!({"passed": true, "note": "ok"}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (200, Some("verified")),
            "{}",
            r.body
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_repeat_complaint_links_to_the_earlier_ticket_and_duplicates_close_from_accepted() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let first = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let mut body = crate::support::ticket_body();
        body["related_to"] = json!(first);
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["related_to"], json!(first));
        let second = r.body["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{second}/close"),
                &disp,
                json!({"code": "duplicate", "duplicate_of": first}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (200, Some("closed")),
            "{}",
            r.body
        );
        assert_eq!(r.body["close_code"], "duplicate");
        app.finish().await;
    }
}

#[tokio::test]
async fn the_queue_lists_filters_and_pages_with_a_cursor() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let mut ids = vec![];
        for _ in 0..5 {
            ids.push(app.new_ticket().await["id"].as_str().unwrap().to_string());
        }
        app.post(
            &format!("/api/v1/tickets/{}/assign", ids[0]),
            &disp,
            json!({"unit": "zhzf"}),
        )
        .await;
        let r = app
            .get("/api/v1/tickets?state=accepted&limit=2", &disp)
            .await;
        assert_eq!(r.status, 200);
        let page1: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().into())
            .collect();
        assert_eq!(page1.len(), 2);
        let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
        let r = app
            .get(
                &format!("/api/v1/tickets?state=accepted&limit=2&cursor={cursor}"),
                &disp,
            )
            .await;
        let page2: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().into())
            .collect();
        let r = app
            .get(
                &format!(
                    "/api/v1/tickets?state=accepted&limit=2&cursor={}",
                    r.body["next_cursor"].as_str().unwrap()
                ),
                &disp,
            )
            .await;
        let page3 = r.body["items"].as_array().unwrap().len();
        assert_eq!(page2.len() + page3, 2, "4 accepted tickets in all");
        assert!(page1.iter().all(|i| !page2.contains(i) && *i != ids[0]));
        let r = app.get("/api/v1/tickets?unit=zhzf", &disp).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["items"][0]["id"], json!(ids[0]));
        app.finish().await;
    }
}

#[tokio::test]
async fn a_co_unit_finds_the_ticket_in_its_queue_and_others_do_not() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let co = app.token(Role::Handler, "scjg").await;
        let other = app.token(Role::Handler, "sthj").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &disp,
                json!({"unit": "zhzf", "co_units": ["scjg"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ids = |r: &crate::support::Resp| -> Vec<String> {
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect()
        };
        let r = app.get("/api/v1/tickets?state=assigned", &co).await;
        assert_eq!(ids(&r), vec![id.clone()], "{engine:?}: the co-unit's queue");
        let r = app.get("/api/v1/tickets", &other).await;
        assert!(
            ids(&r).is_empty(),
            "{engine:?}: an unrelated department's queue"
        );
        // Returned: the co-unit is no longer on it.
        let lead = app.token(Role::Handler, "zhzf").await;
        app.post(
            &format!("/api/v1/tickets/{id}/return"),
            &lead,
            json!({"reason": "非本单位"}),
        )
        .await;
        let r = app.get("/api/v1/tickets", &co).await;
        assert!(ids(&r).is_empty(), "{engine:?}: after the return");
        app.finish().await;
    }
}
