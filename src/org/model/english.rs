//! The English names of an organisation file: `name_en` on units and categories,
//! `group_en` on categories. They are optional (a page in English shows the Chinese
//! name when there is none), but when given they must be English a reader can use:
//! not empty, no Chinese characters, and one English name per category group.

use std::collections::HashMap;

use super::parse::Problems;
use super::{CategoryDef, UnitDef};

/// The longest English name accepted, in characters.
const MAX_LEN: usize = 200;

/// Why `name` is not a usable English name, if it is not.
fn english_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty; leave it out to show the Chinese name".into());
    }
    if name.trim() != name {
        return Some("has spaces at the start or the end".into());
    }
    if name.chars().count() > MAX_LEN {
        return Some(format!("is longer than {MAX_LEN} characters"));
    }
    if name.chars().any(is_cjk) {
        return Some(format!(
            "{name:?} holds Chinese characters; write the English name here"
        ));
    }
    None
}

/// A CJK ideograph or CJK punctuation (the English pages must show none).
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

pub(super) fn check_english(
    units: &[(usize, UnitDef)],
    categories: &[(usize, CategoryDef)],
    p: &mut Problems<'_>,
) {
    for (i, u) in units {
        if let Some(m) = u.name_en.as_deref().and_then(english_problem) {
            p.add(
                format!("units[{i}].name_en"),
                Some(&u.code),
                format!("name_en {m}"),
            );
        }
    }
    // The first English name seen for each group, with where it was.
    let mut groups: HashMap<&str, (&str, usize)> = HashMap::new();
    for (i, c) in categories {
        let code = Some(c.code.as_str());
        if let Some(m) = c.name_en.as_deref().and_then(english_problem) {
            p.add(
                format!("categories[{i}].name_en"),
                code,
                format!("name_en {m}"),
            );
        }
        let Some(en) = c.group_en.as_deref() else {
            continue;
        };
        let path = format!("categories[{i}].group_en");
        if let Some(m) = english_problem(en) {
            p.add(path, code, format!("group_en {m}"));
            continue;
        }
        let Some(group) = c.group.as_deref() else {
            p.add(
                path,
                code,
                "group_en without a group; give the category's group too",
            );
            continue;
        };
        match groups.get(group) {
            Some((first, at)) if *first != en => p.add(
                path,
                code,
                format!(
                    "group {group:?} is {first:?} in English at categories[{at}], not {en:?}; \
                     give the group one English name"
                ),
            ),
            Some(_) => {}
            None => {
                groups.insert(group, (en, *i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::{OrgProblem, parse_org};

    fn org(units: Value, categories: Value) -> Result<super::super::Org, Vec<OrgProblem>> {
        parse_org(
            &json!({"units": units, "categories": categories}).to_string(),
            "test.json",
        )
    }

    fn units(name_en: Value) -> Value {
        json!([
            {"code": "d", "name": "区中心", "name_en": name_en, "kind": "district", "parent": null},
            {"code": "dep", "name": "综合行政执法局", "kind": "department", "parent": "d"}
        ])
    }

    fn category(code: &str, group: &str, group_en: &str) -> Value {
        json!({"code": code, "name": "实有人口管理", "name_en": "Resident population management",
               "group": group, "group_en": group_en, "default_unit": "dep"})
    }

    #[test]
    fn english_names_are_read_and_kept() {
        let o = org(
            units(json!("District centre")),
            json!([category("order.population", "社会治安", "Public order")]),
        )
        .expect("a valid file");
        assert_eq!(
            o.unit("d").and_then(|u| u.name_en.as_deref()),
            Some("District centre")
        );
        let c = &o.categories()[0];
        assert_eq!(c.name_en.as_deref(), Some("Resident population management"));
        assert_eq!(c.group_en.as_deref(), Some("Public order"));
        // Without them the file is valid too: the pages show the Chinese names.
        let plain = json!([{"code": "d", "name": "区中心", "kind": "district", "parent": null},
                           {"code": "dep", "name": "局", "kind": "department", "parent": "d"}]);
        let o = org(plain, json!([])).expect("valid without English names");
        assert_eq!(o.unit("d").and_then(|u| u.name_en.as_deref()), None);
    }

    #[test]
    fn english_names_must_be_english_and_one_per_group() {
        let one = |r: Result<super::super::Org, Vec<OrgProblem>>, location: &str, what: &str| {
            let Err(ps) = r else {
                panic!("expected problems at {location}, the file parsed");
            };
            assert_eq!(ps.len(), 1, "{ps:#?}");
            assert_eq!(ps[0].location, location, "{ps:#?}");
            assert!(
                ps[0].message.contains(what),
                "{:?} lacks {what:?}",
                ps[0].message
            );
        };
        one(
            org(units(json!(" ")), json!([])),
            "units[0].name_en (d)",
            "empty",
        );
        one(
            org(units(json!("区中心")), json!([])),
            "units[0].name_en (d)",
            "Chinese",
        );
        one(
            org(
                units(json!("District centre")),
                json!([
                    category("order.population", "社会治安", "Public order"),
                    category("order.stability", "社会治安", "Security")
                ]),
            ),
            "categories[1].group_en (order.stability)",
            "one English name",
        );
        let mut no_group = category("order.population", "社会治安", "Public order");
        no_group.as_object_mut().map(|o| o.remove("group"));
        one(
            org(units(json!("District centre")), json!([no_group])),
            "categories[0].group_en (order.population)",
            "without a group",
        );
    }
}
