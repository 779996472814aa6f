use super::read::read_file;
use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn a_ticket_id_is_a_v7_uuid_fixed_by_reference_and_first_time() {
    let at = t("2026-09-30T03:00:00Z");
    let a = ticket_id("GD-1", at).expect("id");
    assert_eq!(a, ticket_id("GD-1", at).expect("id"), "deterministic");
    assert_eq!(a.get_version_num(), 7);
    let (secs, _) = a.get_timestamp().expect("v7 has a time").to_unix();
    assert_eq!(secs as i64, at.timestamp());
    assert_ne!(a, ticket_id("GD-2", at).expect("id"));
    assert_ne!(a, ticket_id("GD-1", t("2026-09-30T03:00:01Z")).expect("id"));
    assert_eq!(ticket_id("GD-1", t("1969-12-31T23:59:59Z")), None);
}

#[test]
fn lines_are_grouped_by_ticket_in_order_and_blank_lines_are_not_counted() {
    let org = crate::org::model::demo();
    let line = |r: &str, at: &str| {
        format!(
            r#"{{"ticket":"{r}","at":"{at}","actor":{{"user":"u","role":"dispatcher","unit":"etdz"}},"action":"comment","body":{{"text":"x"}}}}"#
        )
    };
    let text = format!(
        "\u{feff}{}\r\n\n{}\n{}\n[1,2]\n",
        line("B", "2026-01-05T01:00:00Z"),
        line("A", "2026-01-05T02:00:00Z"),
        line("B", "2026-01-05T03:00:00Z"),
    );
    let (groups, loose, read) = read_file(text.as_bytes(), &org, Utc::now());
    assert_eq!(read, 4);
    let refs: Vec<(&str, Vec<usize>)> = groups
        .iter()
        .map(|g| (g.reference.as_str(), g.lines.iter().map(|l| l.no).collect()))
        .collect();
    assert_eq!(refs, [("B", vec![1, 4]), ("A", vec![3])]);
    assert_eq!(groups[0].first, (1, Some(t("2026-01-05T01:00:00Z"))));
    assert_eq!(loose.len(), 1);
    assert_eq!(loose[0].line, 5);
    assert!(
        loose[0].reason.contains("no ticket reference"),
        "{:?}",
        loose[0]
    );
}
