use std::collections::BTreeMap;

use serde_json::value::RawValue;
use uuid::Uuid;

use super::export::{LineWriter, fits_in_place};
use super::restore::{Parsed, parse_record};
use super::*;
use crate::store::dump::Val;

#[test]
fn stored_json_goes_in_place_only_when_it_reads_back_the_same() {
    assert!(fits_in_place(r#"{"a":1,"b":[1.5,"二"]}"#));
    assert!(!fits_in_place("{\"a\":\n1}"));
    assert!(!fits_in_place(" {\"a\":1}"));
    assert!(!fits_in_place("{\"a\":"));
}

fn event_line(vals: &[Val]) -> Vec<u8> {
    let mut w = LineWriter::new(Vec::new());
    w.record(&EVENTS, vals).unwrap();
    w.out
}

#[test]
fn a_record_reads_back_as_written() {
    let vals = vec![
        Val::Int(7),
        Val::Text(Some(Uuid::nil().to_string())),
        Val::Int(1),
        Val::Text(Some("TicketAccepted".into())),
        Val::Int(1),
        Val::Text(Some(r#"{"z":1,"a":"引号\"x"}"#.into())),
        Val::Text(Some("not json".into())),
        Val::Text(Some("2026-10-01T02:00:00.000001Z".into())),
        Val::Text(Some("2026-10-01T02:00:00.123Z".into())),
        Val::Text(Some("0".repeat(64))),
        Val::Text(Some("f".repeat(64))),
    ];
    let line = event_line(&vals);
    assert!(line.ends_with(b"}\n"));
    let text = std::str::from_utf8(&line).unwrap();
    assert!(
        text.starts_with(r#"{"kind":"event","position":7,"#),
        "{text}"
    );
    assert!(text.contains(r#""data":{"z":1,"a":"引号\"x"}"#), "{text}");
    assert!(text.contains(r#""metadata_text":"not json""#), "{text}");
    let fields: BTreeMap<&str, &RawValue> =
        serde_json::from_slice(&line[..line.len() - 1]).unwrap();
    match parse_record(2, &fields).unwrap() {
        Parsed::Row(t, back) => {
            assert_eq!(t.kind, "event");
            assert_eq!(back, vals);
        }
        Parsed::End(_) => panic!("not the trailer"),
    }
}

#[test]
fn bad_records_are_named_by_line() {
    let parse = |s: &str| {
        let fields: BTreeMap<&str, &RawValue> = serde_json::from_str(s).unwrap();
        parse_record(9, &fields)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(parse(r#"{"kind":"nope"}"#).contains("line 9: unknown record kind"));
    assert!(parse(r#"{"kind":"contact","id":"x"}"#).contains("line 9: contact field \"id\""));
    let e = parse(
        r#"{"kind":"contact","id":"00000000-0000-0000-0000-000000000000","name":null,"phone":null,"created_at":"2026-01-01T00:00:00Z","purged_at":null,"extra":1}"#,
    );
    assert!(e.contains("fields this format does not have: extra"), "{e}");
    let e = parse(
        r#"{"kind":"contact","id":"00000000-0000-0000-0000-000000000000","name":null,"phone":null,"created_at":null,"purged_at":null}"#,
    );
    assert!(e.contains("\"created_at\": is null"), "{e}");
}
