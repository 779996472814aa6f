//! The file format of a profile and its parsing: every field checked, each
//! problem named by its place in the file ([`parse_profile`]), e.g.
//! `sheets[2].sections[1].items[0].manual.points_each`.

use super::*;

mod rule;

use rule::{RuleFile, check_rule};

use crate::domain::events::Source;

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    satisfaction_strict: bool,
    sheets: Vec<SheetFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SheetFile {
    name: String,
    title: String,
    #[serde(default)]
    source: Option<String>,
    applies_to: AppliesTo,
    base: f64,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    yearly: Option<Yearly>,
    #[serde(default)]
    mean_of: Option<String>,
    sections: Vec<SectionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppliesTo {
    kinds: Vec<String>,
    #[serde(default)]
    agency_types: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionFile {
    name: String,
    title: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    points: Option<f64>,
    #[serde(default)]
    bonus: bool,
    #[serde(default)]
    reference: bool,
    #[serde(default)]
    groups: Vec<GroupFile>,
    items: Vec<ItemFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: String,
    #[serde(default)]
    title: Option<String>,
    cap: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    code: String,
    title: String,
    #[serde(default)]
    cap: Option<f64>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    rule: Option<RuleFile>,
    #[serde(default)]
    manual: Option<ManualFile>,
    #[serde(default)]
    except_tickets_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualFile {
    #[serde(default)]
    points_each: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    year_only: bool,
}

type Fail = (String, String);

/// Parses and checks one profile; `file` names it in errors.
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, ProfileError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: ProfileFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let field = match (path.as_str(), missing_field(&msg)) {
            (".", Some(f)) => f,
            (".", None) => "(the file)".into(),
            (_, Some(f)) => format!("{path}.{f}"),
            (_, None) => path,
        };
        ProfileError::new(file, field, msg)
    })?;
    check_profile(raw).map_err(|(f, m)| ProfileError::new(file, f, m))
}

fn identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_profile(p: ProfileFile) -> Result<Profile, Fail> {
    let fail = |f: &str, m: &str| Err((f.to_string(), m.to_string()));
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return fail(
            "name",
            "must be lowercase letters, digits and '-' (it is the profile= of the API)",
        );
    }
    if p.title.trim().is_empty() {
        return fail("title", "must not be empty");
    }
    if p.sheets.is_empty() {
        return fail("sheets", "a profile needs at least one sheet");
    }
    let mut sheets: Vec<Sheet> = Vec::with_capacity(p.sheets.len());
    for (i, s) in p.sheets.into_iter().enumerate() {
        let at = |f: &str| format!("sheets[{i}].{f}");
        let sheet = check_sheet(s, &at)?;
        if sheets.iter().any(|o| o.name == sheet.name) {
            return Err((at("name"), format!("{:?} names two sheets", sheet.name)));
        }
        // Two sheets for the same units: the second would never be used.
        let mut kinds: Vec<(UnitKind, Option<&str>)> = vec![(UnitKind::Department, None)];
        kinds.push((UnitKind::Agency, None));
        kinds.extend(AGENCY_TYPES.iter().map(|t| (UnitKind::Agency, Some(*t))));
        for (k, t) in kinds {
            if let Some(o) = sheets
                .iter()
                .find(|o| o.applies(k, t) && sheet.applies(k, t))
            {
                return Err((
                    at("applies_to"),
                    format!(
                        "{} units{} are already scored by sheet {:?}",
                        k.as_str(),
                        t.map(|t| format!(" of type {t}")).unwrap_or_default(),
                        o.name
                    ),
                ));
            }
        }
        sheets.push(sheet);
    }
    Ok(Profile {
        name: p.name,
        title: p.title,
        description: p.description,
        source: p.source,
        satisfaction_strict: p.satisfaction_strict,
        sheets,
    })
}

fn check_sheet(s: SheetFile, at: &dyn Fn(&str) -> String) -> Result<Sheet, Fail> {
    let fail = |f: &str, m: String| Err((at(f), m));
    if !identifier(&s.name) {
        return fail(
            "name",
            "must be lowercase letters, digits, '-' and '_' (it is the ranking's kind=)".into(),
        );
    }
    if s.title.trim().is_empty() {
        return fail("title", "must not be empty".into());
    }
    let (kinds, agency_types) =
        check_applies_to(s.applies_to, &|f| at(&format!("applies_to.{f}")))?;
    if !(s.base.is_finite() && s.base > 0.0) {
        return fail("base", "must be a positive number".into());
    }
    let share = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    if let Some(w) = s.weight
        && !share(w)
    {
        return fail("weight", "must be between 0 and 1".into());
    }
    if let Some(y) = s.yearly {
        if !share(y.quarter_weight) {
            return fail("yearly.quarter_weight", "must be between 0 and 1".into());
        }
        if !share(y.year_end_weight) {
            return fail("yearly.year_end_weight", "must be between 0 and 1".into());
        }
        if (y.quarter_weight + y.year_end_weight - 1.0).abs() > 1e-9 {
            return fail(
                "yearly",
                "quarter_weight and year_end_weight must add up to 1".into(),
            );
        }
    }
    if s.sections.is_empty() {
        return fail("sections", "a sheet needs at least one section".into());
    }
    let mut sections: Vec<Section> = Vec::with_capacity(s.sections.len());
    let mut codes: HashSet<String> = HashSet::new();
    let mut excepts: Vec<(String, String)> = Vec::new();
    for (si, sec) in s.sections.into_iter().enumerate() {
        let at = |f: &str| at(&format!("sections[{si}].{f}"));
        if sec.name.trim().is_empty() {
            return Err((at("name"), "must not be empty".into()));
        }
        if sections.iter().any(|o| o.name == sec.name) {
            return Err((at("name"), format!("{:?} names two sections", sec.name)));
        }
        let section = check_section(sec, &at, &mut codes, &mut excepts)?;
        sections.push(section);
    }
    let sheet = Sheet {
        name: s.name,
        title: s.title,
        source: s.source,
        kinds,
        agency_types,
        base: s.base,
        weight: s.weight,
        yearly: s.yearly,
        mean_of: s.mean_of,
        sections,
    };
    for (si, sec) in sheet.sections.iter().enumerate() {
        for (ii, i) in sec.items.iter().enumerate() {
            let evaluation = sheet.mean_of.as_deref() == Some(i.code.as_str());
            if let ItemHow::Free { max, .. } = i.how
                && !sec.bonus
                && !evaluation
                && max > 0.0
            {
                return fail(
                    &format!("sections[{si}].items[{ii}].manual.max"),
                    "must be 0 or less: only a bonus section's items add points".into(),
                );
            }
        }
    }
    for (field, code) in excepts {
        match sheet.item(&code) {
            Some((_, i)) if matches!(i.how, ItemHow::Counted { .. }) => {}
            _ => {
                return Err((
                    field,
                    format!("{code:?} is not a counted manual item of this sheet"),
                ));
            }
        }
    }
    if let Some(code) = &sheet.mean_of {
        match sheet.item(code) {
            Some((sec, i)) if !sec.bonus && !sec.reference => match i.how {
                ItemHow::Free { min, max } if min >= 0.0 && max <= sheet.base => {}
                _ => {
                    return fail(
                        "mean_of",
                        format!(
                            "{code:?} must be a free item scored between 0 and the base ({})",
                            sheet.base
                        ),
                    );
                }
            },
            _ => {
                return fail(
                    "mean_of",
                    format!("{code:?} is not an item of a counted section of this sheet"),
                );
            }
        }
        if sheet.yearly.is_some() {
            return fail(
                "yearly",
                "a sheet scored by the mean of evaluations is scored for a year only: drop yearly"
                    .into(),
            );
        }
    }
    Ok(sheet)
}

fn check_applies_to(
    a: AppliesTo,
    at: &dyn Fn(&str) -> String,
) -> Result<(Vec<UnitKind>, Option<Vec<String>>), Fail> {
    if a.kinds.is_empty() {
        return Err((
            at("kinds"),
            "name at least one kind: department, agency".into(),
        ));
    }
    let mut kinds = Vec::new();
    for (ki, k) in a.kinds.iter().enumerate() {
        let kind = match k.as_str() {
            "department" => UnitKind::Department,
            "agency" => UnitKind::Agency,
            _ => {
                return Err((
                    at(&format!("kinds[{ki}]")),
                    format!(
                        "{k:?} is not a kind of unit that receives tickets; use department or agency"
                    ),
                ));
            }
        };
        kinds.push(kind);
    }
    if let Some(types) = &a.agency_types {
        if !kinds.contains(&UnitKind::Agency) {
            return Err((
                at("agency_types"),
                "only agencies have a type: add \"agency\" to kinds or drop agency_types".into(),
            ));
        }
        if types.is_empty() {
            return Err((
                at("agency_types"),
                "an empty list would match no agency; drop it to match every agency".into(),
            ));
        }
        for (ti, t) in types.iter().enumerate() {
            if !AGENCY_TYPES.contains(&t.as_str()) {
                return Err((
                    at(&format!("agency_types[{ti}]")),
                    format!(
                        "{t:?} is not an agency type; the types are {}",
                        AGENCY_TYPES.join(", ")
                    ),
                ));
            }
        }
    }
    Ok((kinds, a.agency_types))
}

fn check_section(
    s: SectionFile,
    at: &dyn Fn(&str) -> String,
    codes: &mut HashSet<String>,
    excepts: &mut Vec<(String, String)>,
) -> Result<Section, Fail> {
    if s.title.trim().is_empty() {
        return Err((at("title"), "must not be empty".into()));
    }
    if s.bonus && s.reference {
        return Err((
            at("reference"),
            "a section is either bonus (added) or reference (not counted), not both".into(),
        ));
    }
    match s.points {
        None if !s.bonus && !s.reference => {
            return Err((
                at("points"),
                "a section needs its full points (its cap); only bonus and reference sections have none"
                    .into(),
            ));
        }
        Some(p) if !(p.is_finite() && p > 0.0) => {
            return Err((at("points"), "must be a positive number of points".into()));
        }
        _ => {}
    }
    let mut groups: Vec<Group> = Vec::new();
    for (gi, g) in s.groups.into_iter().enumerate() {
        let at = |f: &str| at(&format!("groups[{gi}].{f}"));
        if g.name.trim().is_empty() {
            return Err((at("name"), "must not be empty".into()));
        }
        if groups.iter().any(|o| o.name == g.name) {
            return Err((at("name"), format!("{:?} names two groups", g.name)));
        }
        if !(g.cap.is_finite() && g.cap > 0.0) {
            return Err((at("cap"), "must be a positive number of points".into()));
        }
        groups.push(Group {
            name: g.name,
            title: g.title,
            cap: g.cap,
        });
    }
    if s.items.is_empty() {
        return Err((at("items"), "a section needs at least one item".into()));
    }
    let mut items = Vec::with_capacity(s.items.len());
    for (ii, i) in s.items.into_iter().enumerate() {
        let at = |f: &str| at(&format!("items[{ii}].{f}"));
        if !identifier(&i.code.replace('.', "_")) {
            return Err((
                at("code"),
                "must be lowercase letters, digits, '_', '-' and '.'".into(),
            ));
        }
        if !codes.insert(i.code.clone()) {
            return Err((
                at("code"),
                format!("{:?} names two items of the sheet", i.code),
            ));
        }
        if i.title.trim().is_empty() {
            return Err((at("title"), "must not be empty".into()));
        }
        check_cap(i.cap).map_err(|m| (at("cap"), m))?;
        if let Some(g) = &i.group
            && !groups.iter().any(|o| &o.name == g)
        {
            return Err((at("group"), format!("{g:?} is not a group of this section")));
        }
        let (how, year_only) = match (i.rule, i.manual) {
            (Some(r), None) => (
                ItemHow::Rule(check_rule(r, &|f| at(&format!("rule.{f}")))?),
                false,
            ),
            (None, Some(m)) => {
                if s.reference {
                    return Err((
                        at("manual"),
                        "a reference section is computed from tickets: rule items only".into(),
                    ));
                }
                (
                    check_manual(&m, s.bonus, &|f| at(&format!("manual.{f}")))?,
                    m.year_only,
                )
            }
            _ => {
                return Err((
                    at("rule"),
                    "an item has either a rule (computed) or manual (entered), exactly one".into(),
                ));
            }
        };
        if let Some(e) = &i.except_tickets_of {
            if !matches!(
                how,
                ItemHow::Rule(How::AreaReports { .. } | How::Tickets { .. })
            ) {
                return Err((
                    at("except_tickets_of"),
                    "only an area_reports or tickets rule leaves out the tickets of an entered item"
                        .into(),
                ));
            }
            excepts.push((at("except_tickets_of"), e.clone()));
        }
        items.push(Item {
            code: i.code,
            title: i.title,
            cap: i.cap,
            group: i.group,
            how,
            year_only,
            except_tickets_of: i.except_tickets_of,
        });
    }
    Ok(Section {
        name: s.name,
        title: s.title,
        source: s.source,
        points: s.points,
        bonus: s.bonus,
        reference: s.reference,
        groups,
        items,
    })
}

/// A manual item: `points_each` (counted) or `min` and `max` (free). Outside a
/// bonus section it deducts (≤ 0); the free item a sheet's `mean_of` names is
/// checked by the sheet.
fn check_manual(m: &ManualFile, bonus: bool, at: &dyn Fn(&str) -> String) -> Result<ItemHow, Fail> {
    let number = |v: f64| v.is_finite();
    match (m.points_each, m.min, m.max) {
        (Some(p), None, None) => {
            if !number(p) || p == 0.0 {
                return Err((at("points_each"), "must be a number other than 0".into()));
            }
            if !bonus && p > 0.0 {
                return Err((
                    at("points_each"),
                    "must be negative: only a bonus section's items add points".into(),
                ));
            }
            Ok(ItemHow::Counted { points_each: p })
        }
        (None, Some(min), Some(max)) => {
            if !number(min) {
                return Err((at("min"), "must be a number".into()));
            }
            if !(number(max) && max >= min) {
                return Err((at("max"), "must be a number not below min".into()));
            }
            Ok(ItemHow::Free { min, max })
        }
        (Some(_), _, _) => Err((
            at("min"),
            "give points_each (counted) or min and max (free), not both".into(),
        )),
        (None, None, _) => Err((
            at("points_each"),
            "give points_each (counted) or min and max (free)".into(),
        )),
        (None, Some(_), None) => Err((at("max"), "a free item needs max".into())),
    }
}

fn check_cap(cap: Option<f64>) -> Result<(), String> {
    match cap {
        Some(c) if !(c.is_finite() && c >= 0.0) => Err(
            "must be a positive number of points (the most deducted), or null for no cap".into(),
        ),
        _ => Ok(()),
    }
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}
