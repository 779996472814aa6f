//! The National Day history of the statistics tests (`statistics.rs`, whose header
//! gives the calendar), as NDJSON for `yiwang import`, and two tickets crossing the
//! end of October (`stats_total.rs`). Shared with the dashboard's browser test
//! (tests/pages/dashboard.rs includes this file), which uses only part of it.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub(crate) fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn line(
    ticket: &str,
    at: &str,
    who: (&str, &str, &str),
    action: &str,
    body: Value,
) -> String {
    json!({
        "ticket": ticket,
        "at": format!("2026-{at}:00+08:00"),
        "actor": {"user": who.0, "role": who.1, "unit": who.2},
        "action": action,
        "body": body,
    })
    .to_string()
}

pub(crate) fn report(category: &str, related_to: Option<&str>) -> Value {
    let mut b = json!({
        "source": "grid", "category": category, "title": "网格上报", "description": "巡查发现",
        "urgency": "normal",
        "location": {"address": "皇冠街道", "lat": 37.5, "lon": 122.1, "grid": "hg-01-g01"},
    });
    if let Some(r) = related_to {
        b["related_to"] = json!(r);
    }
    b
}

/// The history. T1..T3 go to the township's enforcement squad (hg-zfzd), T4 is
/// returned by it, T5 goes to the market-supervision office (hg-scjgs), T6
/// repeats T1's complaint.
pub(crate) fn history() -> String {
    let gw = ("网格员甲", "grid_worker", "hg-01-g01");
    let disp = ("皇冠调度", "dispatcher", "hg");
    let zf = ("执法队员", "handler", "hg-zfzd");
    let sc = ("监管所员", "handler", "hg-scjgs");
    let hot = ("话务员", "hotline_agent", "etdz");
    let lines = [
        // T1: assigned Tue 9-29 11:00; sign due end of 9-30, signed 10-08 (late, a
        // September figure); handle due end of 10-12, handled 10-09 15:00 (on time);
        // turnaround 13 + 24 (9-30) + 24 (10-08) + 15 = 76 working hours.
        line(
            "T1",
            "09-29T10:00",
            gw,
            "create",
            report("city.exposed_garbage", None),
        ),
        line(
            "T1",
            "09-29T11:00",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line("T1", "10-08T09:00", zf, "sign", json!({"handler": "张"})),
        line(
            "T1",
            "10-09T15:00",
            zf,
            "handle",
            json!({"result": "已清运"}),
        ),
        line(
            "T1",
            "10-09T16:00",
            disp,
            "verify",
            json!({"passed": true, "note": "合格"}),
        ),
        line(
            "T1",
            "10-10T10:00",
            hot,
            "feedback",
            json!({"satisfaction": "satisfied"}),
        ),
        line(
            "T1",
            "10-10T11:00",
            disp,
            "close",
            json!({"code": "resolved"}),
        ),
        // T2: assigned Wed 9-30 09:30, signed at once; handle due end of 10-13;
        // supervised twice (the second is 重复督办); handled 10-14 10:00 (late), failed
        // verification (rework due end of 10-19), handled again 10-16 10:00, on time
        // against the deadline in force then; turnaround 14.5 + 7 × 24 + 10 = 192.5 h.
        line(
            "T2",
            "09-30T09:00",
            gw,
            "create",
            report("city.road_spillage", None),
        ),
        line(
            "T2",
            "09-30T09:30",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line("T2", "09-30T10:00", zf, "sign", json!({"handler": "李"})),
        line(
            "T2",
            "10-12T10:00",
            disp,
            "supervise",
            json!({"note": "请尽快处理"}),
        ),
        line(
            "T2",
            "10-13T09:00",
            disp,
            "supervise",
            json!({"note": "再次督办"}),
        ),
        line(
            "T2",
            "10-14T10:00",
            zf,
            "handle",
            json!({"result": "已清扫"}),
        ),
        line(
            "T2",
            "10-14T11:00",
            disp,
            "verify",
            json!({"passed": false, "note": "仍有残留"}),
        ),
        line(
            "T2",
            "10-16T10:00",
            zf,
            "handle",
            json!({"result": "已彻底清扫"}),
        ),
        line(
            "T2",
            "10-16T15:00",
            disp,
            "verify",
            json!({"passed": true, "note": "合格"}),
        ),
        line(
            "T2",
            "10-17T09:00",
            hot,
            "feedback",
            json!({"satisfaction": "unsatisfied"}),
        ),
        // T3: 违法建设 (3 working days): assigned Mon 9-28 10:00, handle due end of
        // 10-08, extended by 2 working days to the end of 10-10; handled 10-12 09:00
        // (late); turnaround 14 + 24 × 5 + 9 = 143 h.
        line(
            "T3",
            "09-28T09:00",
            gw,
            "create",
            report("city.illegal_construction", None),
        ),
        line(
            "T3",
            "09-28T10:00",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line("T3", "09-28T15:00", zf, "sign", json!({"handler": "王"})),
        line(
            "T3",
            "09-29T09:00",
            zf,
            "request-extension",
            json!({"days": 2, "reason": "需协调拆除"}),
        ),
        line(
            "T3",
            "09-29T10:00",
            disp,
            "decide-extension",
            json!({"approved": true}),
        ),
        line(
            "T3",
            "10-12T09:00",
            zf,
            "handle",
            json!({"result": "已拆除"}),
        ),
        line(
            "T3",
            "10-12T10:00",
            disp,
            "verify",
            json!({"passed": true, "note": "合格"}),
        ),
        // T4: assigned 10-09 and returned at once: a return, and out of the squad's
        // sign and finish figures.
        line(
            "T4",
            "10-09T09:00",
            gw,
            "create",
            report("city.exposed_garbage", None),
        ),
        line(
            "T4",
            "10-09T10:00",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line(
            "T4",
            "10-09T11:00",
            zf,
            "return",
            json!({"reason": "非本中队辖区"}),
        ),
        // T5: the market office signs in time (due end of 10-08) and never handles it
        // (due end of 10-13): overdue at the end of October.
        line(
            "T5",
            "09-30T14:00",
            gw,
            "create",
            report("market.consumer_complaint", None),
        ),
        line(
            "T5",
            "09-30T15:00",
            disp,
            "assign",
            json!({"unit": "hg-scjgs"}),
        ),
        line("T5", "10-08T09:00", sc, "sign", json!({"handler": "赵"})),
        // T6: the same garbage again: a repeat complaint charged to T1's unit.
        line(
            "T6",
            "10-20T09:00",
            gw,
            "create",
            report("city.exposed_garbage", Some("T1")),
        ),
    ];
    lines.join("\n") + "\n"
}

pub(crate) fn import(url: &str, file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["--database-url", url, "import"])
        .arg(file)
        .output()
        .expect("run yiwang import")
}

/// T7 and T8, the township's enforcement squad's, crossing the end of October: T7
/// due in October and handled (late) in November, T8 handled (on time) in October
/// and due in November.
pub(crate) fn crossing() -> String {
    let gw = ("网格员甲", "grid_worker", "hg-01-g01");
    let disp = ("皇冠调度", "dispatcher", "hg");
    let zf = ("执法队员", "handler", "hg-zfzd");
    let lines = [
        // T7: assigned Thu 10-22 10:00; handle due end of 10-29 (10-23, 26, 27, 28,
        // 29); handled Mon 11-02 09:00, late; turnaround 14 + 24 + 5 × 24 + 9 = 167 h.
        line(
            "T7",
            "10-22T09:00",
            gw,
            "create",
            report("city.exposed_garbage", None),
        ),
        line(
            "T7",
            "10-22T10:00",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line("T7", "10-22T11:00", zf, "sign", json!({"handler": "张"})),
        line(
            "T7",
            "11-02T09:00",
            zf,
            "handle",
            json!({"result": "已清运"}),
        ),
        // T8: assigned Tue 10-27 10:00; handle due end of 11-03 (10-28, 29, 30, 11-02,
        // 03); handled Fri 10-30 10:00, on time; turnaround 14 + 24 + 24 + 10 = 72 h.
        line(
            "T8",
            "10-27T09:00",
            gw,
            "create",
            report("city.road_spillage", None),
        ),
        line(
            "T8",
            "10-27T10:00",
            disp,
            "assign",
            json!({"unit": "hg-zfzd"}),
        ),
        line("T8", "10-27T10:30", zf, "sign", json!({"handler": "李"})),
        line(
            "T8",
            "10-30T10:00",
            zf,
            "handle",
            json!({"result": "已清扫"}),
        ),
    ];
    lines.join("\n") + "\n"
}
