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

use super::{Deduction, UnitAppraisal};
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

fn deduction(out: &mut Vec<u8>, d: &Deduction) -> serde_json::Result<()> {
    out.push(b'{');
    key_only(out, "rule");
    value(out, &d.rule)?;
    field(out, "count", &d.count)?;
    field(out, "points", &d.points)?;
    out.push(b',');
    key_only(out, "evidence");
    evidence(out, &d.evidence)?;
    field(out, "section", &d.section)?;
    if let Some(t) = &d.title {
        field(out, "title", t)?;
    }
    if let Some(r) = &d.rate {
        field(out, "rate", r)?;
    }
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
    field(out, "weight", &u.weight)?;
    if let Some(q) = &u.quarters {
        field(out, "quarters", q)?;
    }
    if let Some(y) = &u.year_end_score {
        field(out, "year_end_score", y)?;
    }
    if let Some(b) = &u.bonus {
        field(out, "bonus", b)?;
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
    use crate::appraisal::PeriodScore;
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
            evidence: items,
            section: text.to_string(),
            title: some.then(|| format!("title \"{text}\"")),
            rate: some.then_some(x / 7.0),
            capped: some,
            uncapped_points: some.then_some(-x * 3.0),
        };
        UnitAppraisal {
            unit: text.to_string(),
            base: 100.0,
            score: 100.0 - x,
            deductions: vec![
                d.clone(),
                Deduction {
                    evidence: Vec::new(),
                    ..d
                },
            ],
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
