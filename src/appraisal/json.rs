//! The appraisal's JSON, written by hand. A year's answer lists every evidence item
//! of the year, about 66,000 of them in 5.5 MB for a district, and `serde_json`
//! spent most of the answer's time on them: each item is an object of two keys and
//! a uuid, every byte of which it checks for escapes. Here an item is copied out:
//! the keys are constants and a hyphenated uuid holds nothing to escape. Every
//! other value goes through `serde_json`, so strings are escaped and numbers
//! formatted exactly as the derived `Serialize` does; the tests hold the two
//! outputs byte for byte equal, so a field added to the structs and not here fails
//! them.

use serde::Serialize;

use super::{Deduction, EvidenceList, UnitAppraisal};
use crate::projections::stats::model::Evidence;

/// Writes `value` as `serde_json` does (strings escaped, numbers and `null` as
/// the derived impls write them).
fn value(out: &mut Vec<u8>, value: &impl Serialize) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, value)
}

/// `,"key":` then the value.
fn field(out: &mut Vec<u8>, key: &str, v: &impl Serialize) -> serde_json::Result<()> {
    out.push(b',');
    key_only(out, key);
    value(out, v)
}

/// `"key":` (keys are constants here: nothing to escape).
fn key_only(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `[{"ticket":"…","position":…},…]`
pub fn evidence(out: &mut Vec<u8>, items: &[Evidence]) -> serde_json::Result<()> {
    out.reserve(items.len() * 66 + 2);
    out.push(b'[');
    let mut uuid = uuid::Uuid::encode_buffer();
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ticket\":\"");
        out.extend_from_slice(e.ticket.hyphenated().encode_lower(&mut uuid).as_bytes());
        out.extend_from_slice(b"\",\"position\":");
        value(out, &e.position)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// `[{"ticket":"…","position":…},…,{"entry":"…"},…]`
fn evidence_list(out: &mut Vec<u8>, list: &EvidenceList) -> serde_json::Result<()> {
    evidence(out, &list.tickets)?;
    if list.entries.is_empty() {
        return Ok(());
    }
    // Reopen the list to add the entries after the tickets.
    out.pop();
    let mut uuid = uuid::Uuid::encode_buffer();
    for (i, e) in list.entries.iter().enumerate() {
        if i > 0 || !list.tickets.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"entry\":\"");
        out.extend_from_slice(e.hyphenated().encode_lower(&mut uuid).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.push(b']');
    Ok(())
}

fn deduction(out: &mut Vec<u8>, d: &Deduction) -> serde_json::Result<()> {
    out.push(b'{');
    key_only(out, "rule");
    value(out, &d.rule)?;
    field(out, "count", &d.count)?;
    field(out, "points", &d.points)?;
    out.push(b',');
    key_only(out, "evidence");
    evidence_list(out, &d.evidence)?;
    field(out, "section", &d.section)?;
    field(out, "title", &d.title)?;
    if let Some(r) = &d.rate {
        field(out, "rate", r)?;
    }
    field(out, "manual", &d.manual)?;
    field(out, "capped", &d.capped)?;
    if let Some(u) = &d.uncapped_points {
        field(out, "uncapped_points", u)?;
    }
    out.push(b'}');
    Ok(())
}

/// One unit, as `serde_json::to_writer(out, unit)` writes it.
pub fn unit(out: &mut Vec<u8>, u: &UnitAppraisal) -> serde_json::Result<()> {
    out.push(b'{');
    key_only(out, "unit");
    value(out, &u.unit)?;
    field(out, "sheet", &u.sheet)?;
    field(out, "base", &u.base)?;
    field(out, "score", &u.score)?;
    out.push(b',');
    key_only(out, "deductions");
    list(out, &u.deductions, deduction)?;
    field(out, "unit_name", &u.unit_name)?;
    field(out, "kind", &u.kind)?;
    if let Some(a) = &u.agency_type {
        field(out, "agency_type", a)?;
    }
    if let Some(w) = &u.weight {
        field(out, "weight", w)?;
    }
    if let Some(q) = &u.quarters {
        field(out, "quarters", q)?;
    }
    if let Some(y) = &u.year_end_score {
        field(out, "year_end_score", y)?;
    }
    if let Some(b) = &u.bonus {
        field(out, "bonus", b)?;
    }
    if let Some(e) = &u.evaluations {
        field(out, "evaluations", e)?;
    }
    if let Some(r) = &u.reference {
        out.push(b',');
        key_only(out, "reference");
        list(out, r, deduction)?;
    }
    out.push(b'}');
    Ok(())
}

/// `[unit,…]`
pub fn units(out: &mut Vec<u8>, units: &[UnitAppraisal]) -> serde_json::Result<()> {
    list(out, units, unit)
}

/// `[a,b,…]`, each item written by `each`.
fn list<T>(
    out: &mut Vec<u8>,
    items: &[T],
    each: impl Fn(&mut Vec<u8>, &T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, x)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appraisal::{Evaluation, PeriodScore};
    use proptest::prelude::*;

    fn by_serde(u: &UnitAppraisal) -> String {
        serde_json::to_string(u).expect("serializes")
    }

    fn by_hand(u: &UnitAppraisal) -> String {
        let mut out = Vec::new();
        unit(&mut out, u).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    fn sample(n: usize, text: &str, some: bool, x: f64) -> UnitAppraisal {
        let items: Vec<Evidence> = (0..n)
            .map(|i| Evidence {
                ticket: uuid::Uuid::from_u128(
                    (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                ),
                position: i as i64 * 7919 - 3,
            })
            .collect();
        let d = Deduction {
            rule: format!("rule {text}"),
            count: n as u64,
            points: -x,
            evidence: EvidenceList {
                tickets: items,
                entries: (0..n % 3)
                    .map(|i| uuid::Uuid::from_u128(i as u128 * 0x1234_5678_9abc))
                    .collect(),
            },
            section: text.to_string(),
            title: format!("title \"{text}\""),
            rate: some.then_some(x / 7.0),
            manual: !some,
            capped: some,
            uncapped_points: some.then_some(-x * 3.0),
        };
        let bare = Deduction {
            evidence: EvidenceList::default(),
            ..d.clone()
        };
        let only_entries = Deduction {
            evidence: EvidenceList {
                tickets: Vec::new(),
                entries: vec![uuid::Uuid::from_u128(n as u128)],
            },
            ..d.clone()
        };
        UnitAppraisal {
            unit: text.to_string(),
            sheet: some.then(|| "enforcement".to_string()),
            base: some.then_some(100.0),
            score: some.then_some(100.0 - x),
            deductions: vec![d.clone(), bare.clone(), only_entries],
            unit_name: format!("{text}\u{7}\n综合执法中队"),
            kind: "agency",
            agency_type: some.then(|| "enforcement".to_string()),
            weight: some.then_some(0.3),
            quarters: some.then(|| {
                vec![PeriodScore {
                    period: "2026-Q1".into(),
                    score: x,
                }]
            }),
            year_end_score: some.then_some(x * 0.6),
            bonus: some.then_some(0.0),
            evaluations: some.then(|| {
                vec![Evaluation {
                    township: "hg".into(),
                    township_name: format!("{text}街道"),
                    points: x,
                    grade_word: some.then(|| "好".to_string()),
                    note: text.to_string(),
                    entry: uuid::Uuid::from_u128(9),
                }]
            }),
            reference: some.then(|| vec![bare, d]),
        }
    }

    #[test]
    fn writes_what_serde_writes() {
        for some in [false, true] {
            for n in [0, 1, 3] {
                let u = sample(n, "hg\"\\</b>", some, 12.345);
                assert_eq!(by_hand(&u), by_serde(&u));
            }
        }
        let (a, b) = (sample(2, "a", true, 1.0), sample(0, "b", false, 0.1));
        let mut out = Vec::new();
        units(&mut out, &[a.clone(), b.clone()]).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            serde_json::to_string(&[a, b]).expect("serializes")
        );
    }

    proptest! {
        #[test]
        fn writes_what_serde_writes_for_any_text_and_numbers(
            text in ".{0,12}", n in 0usize..5, some in any::<bool>(), x in -1e6f64..1e6,
        ) {
            let u = sample(n, &text, some, x);
            prop_assert_eq!(by_hand(&u), by_serde(&u));
        }
    }
}
