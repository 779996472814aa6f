//! Parsing and validation of an organisation file: its shape read leniently, then
//! every unit and category checked, each problem located ([`parse_org`]).

use super::*;

/// Collects problems so each check is a one-liner.
pub(super) struct Problems<'a> {
    source: &'a str,
    list: Vec<OrgProblem>,
}

impl Problems<'_> {
    /// `path` is the JSON path; `code` the unit/category code it belongs to, if known.
    pub(super) fn add(
        &mut self,
        path: impl Into<String>,
        code: Option<&str>,
        message: impl Into<String>,
    ) {
        let mut location = path.into();
        if let Some(code) = code.filter(|c| !c.trim().is_empty()) {
            location = format!("{location} ({code})");
        }
        self.list.push(OrgProblem {
            source: self.source.to_string(),
            location,
            message: message.into(),
        });
    }
}

/// serde_json appends " at line L column C" to its messages; the location already says
/// where, so drop it from the message.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// Parses and validates an organisation file.
///
/// `source` names the file in the problems (e.g. `schema/reference/demo-org.json`).
/// On failure every problem found is returned, not just the first: fixing a
/// 100-unit file one error per run is miserable.
pub fn parse_org(text: &str, source: &str) -> Result<Org, Vec<OrgProblem>> {
    let mut problems = Problems {
        source,
        list: Vec::new(),
    };

    // Syntax first: nothing else can be checked without a JSON tree.
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.add(
                format!("{}:{}", e.line(), e.column()),
                None,
                format!("malformed JSON: {}", serde_message(&e)),
            );
            return Err(problems.list);
        }
    };

    let shape = read_shape(&value, &mut problems);
    check_units(&shape.units, &shape.broken, &mut problems);
    check_categories(
        &shape.categories,
        &shape.units,
        &shape.broken,
        &mut problems,
    );
    super::english::check_english(&shape.units, &shape.categories, &mut problems);

    if !problems.list.is_empty() {
        return Err(problems.list);
    }
    let units = shape.units.into_iter().map(|(_, u)| u).collect();
    let categories = shape.categories.into_iter().map(|(_, c)| c).collect();
    Ok(Org::build(units, categories))
}

/// Unit codes of entries that failed to deserialize. They are skipped by the
/// semantic checks, but references to them must not be reported as "unknown" too:
/// one typo should give one problem, not a cascade.
type Broken = HashSet<String>;

/// The entries that deserialized, each with its index in the file (for locations).
#[derive(Default)]
struct Shape {
    units: Vec<(usize, UnitDef)>,
    categories: Vec<(usize, CategoryDef)>,
    broken: Broken,
}

/// Deserializes the file element by element, so that a typo in `units[3]` does not
/// hide one in `units[40]`. Returns the good entries with their file index.
fn read_shape(value: &Value, p: &mut Problems<'_>) -> Shape {
    let mut shape = Shape::default();
    let Some(top) = value.as_object() else {
        p.add(
            "$",
            None,
            "expected an object with \"units\" and \"categories\"",
        );
        return shape;
    };
    for key in top.keys() {
        if key != "units" && key != "categories" {
            p.add(
                key.as_str(),
                None,
                format!("unknown field `{key}`, expected `units` or `categories`"),
            );
        }
    }

    shape.units = entries(top, "units", p, |i, item, e, p| {
        let code = item.get("code").and_then(Value::as_str);
        if let Some(code) = code {
            shape.broken.insert(code.to_string());
        }
        p.add(format!("units[{i}]"), code, serde_message(e));
    });
    shape.categories = entries(top, "categories", p, category_shape_problem);
    shape
}

/// The entries of the array `top[key]` that deserialize, with their index in it;
/// `bad` reports each that does not.
fn entries<'v, T: Deserialize<'v>>(
    top: &'v serde_json::Map<String, Value>,
    key: &str,
    p: &mut Problems<'_>,
    mut bad: impl FnMut(usize, &'v Value, &serde_json::Error, &mut Problems<'_>),
) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    match top.get(key) {
        None => p.add(key, None, format!("missing field `{key}`")),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match T::deserialize(item) {
                    Ok(t) => out.push((i, t)),
                    Err(e) => bad(i, item, &e, p),
                }
            }
        }
        Some(_) => p.add(key, None, format!("expected an array of {key}")),
    }
    out
}

/// A category failed to deserialize: serde only says "unknown field `unti`", so look
/// into the nested parts to point at the route or SLA entry that is wrong.
fn category_shape_problem(i: usize, item: &Value, e: &serde_json::Error, p: &mut Problems<'_>) {
    let code = item.get("code").and_then(Value::as_str);
    let mut found = false;
    if let Some(Value::Array(routes)) = item.get("routes") {
        for (j, r) in routes.iter().enumerate() {
            if let Err(e) = Route::deserialize(r) {
                p.add(
                    format!("categories[{i}].routes[{j}]"),
                    code,
                    serde_message(&e),
                );
                found = true;
            }
        }
    }
    if let Some(sla) = item.get("sla").filter(|s| !s.is_null())
        && let Err(e) = SlaDef::deserialize(sla)
    {
        // One level further for `sla.urgent.handle_dayz`.
        let mut nested = false;
        for urgency in URGENCIES {
            if let Some(h) = sla.get(urgency).filter(|h| !h.is_null())
                && let Err(e) = HandleSla::deserialize(h)
            {
                p.add(
                    format!("categories[{i}].sla.{urgency}"),
                    code,
                    serde_message(&e),
                );
                nested = true;
            }
        }
        if !nested {
            p.add(format!("categories[{i}].sla"), code, serde_message(&e));
        }
        found = true;
    }
    if !found {
        p.add(format!("categories[{i}]"), code, serde_message(e));
    }
}

/// Codes, parents, kinds, the single root, cycles.
fn check_units(units: &[(usize, UnitDef)], broken: &Broken, p: &mut Problems<'_>) {
    // First definition of each code wins; later ones are duplicates.
    let mut by_code: HashMap<&str, (usize, &UnitDef)> = HashMap::new();
    for (i, u) in units {
        let code = Some(u.code.as_str());
        if u.code.trim().is_empty() {
            p.add(format!("units[{i}].code"), None, "unit code is empty");
        } else if let Some((first, _)) = by_code.get(u.code.as_str()) {
            p.add(
                format!("units[{i}].code"),
                code,
                format!(
                    "duplicate unit code \"{}\" (first defined at units[{first}])",
                    u.code
                ),
            );
        } else {
            by_code.insert(&u.code, (*i, u));
        }
        if u.name.trim().is_empty() {
            p.add(format!("units[{i}].name"), code, "unit name is empty");
        }
        if let Some(b) = &u.boundary
            && let Err(why) = super::boundary::check(b)
        {
            p.add(format!("units[{i}].boundary"), code, why);
        }
        match (&u.agency_type, u.kind) {
            (None, _) => {}
            (Some(t), UnitKind::Agency) => {
                if !AGENCY_TYPES.contains(&t.as_str()) {
                    p.add(
                        format!("units[{i}].agency_type"),
                        code,
                        format!(
                            "unknown agency_type \"{t}\", expected one of {}",
                            AGENCY_TYPES.join(", ")
                        ),
                    );
                }
            }
            (Some(_), kind) => p.add(
                format!("units[{i}].agency_type"),
                code,
                format!(
                    "only agencies have an agency_type, this unit is {}",
                    a_or_an(kind)
                ),
            ),
        }
    }

    // Exactly one district, and it is the root.
    let districts: Vec<&(usize, UnitDef)> = units
        .iter()
        .filter(|(_, u)| u.kind == UnitKind::District)
        .collect();
    match districts.as_slice() {
        [] => p.add(
            "units",
            None,
            "no unit of kind district: exactly one district centre must be the root",
        ),
        [(first, f), rest @ ..] => {
            for (i, u) in rest {
                p.add(
                    format!("units[{i}].kind"),
                    Some(&u.code),
                    format!("a second district; there must be exactly one (the first is units[{first}] \"{}\")", f.code),
                );
            }
        }
    }

    // Parents: present, known, of the right kind.
    for (i, u) in units {
        let code = Some(u.code.as_str());
        let path = format!("units[{i}].parent");
        let expected = u.kind.parent_kind();
        match (&u.parent, expected) {
            (None, None) => {}
            (Some(_), None) => p.add(
                path,
                code,
                "the district centre is the root: its parent must be null",
            ),
            (None, Some(want)) => p.add(
                path,
                code,
                format!("{} needs a parent ({})", a_or_an(u.kind), a_or_an(want)),
            ),
            (Some(parent), Some(want)) => match by_code.get(parent.as_str()) {
                // Reported as a cycle below; a kind complaint on top would be noise.
                _ if *parent == u.code => {}
                None if broken.contains(parent) => {}
                None => p.add(path, code, format!("unknown parent \"{parent}\"")),
                Some((_, pu)) if pu.kind != want => p.add(
                    path,
                    code,
                    format!(
                        "{} must sit under {}, but parent \"{parent}\" is {}",
                        a_or_an(u.kind),
                        a_or_an(want),
                        a_or_an(pu.kind)
                    ),
                ),
                Some(_) => {}
            },
        }
    }

    // Cycles. Kind rules already forbid most, but a cycle would hang every tree walk,
    // so it is checked on its own. Each cycle is reported once, at its first unit.
    let mut done: HashSet<&str> = HashSet::new();
    for (_, start) in units {
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: HashSet<&str> = HashSet::new();
        let mut cur = Some(start.code.as_str());
        while let Some(code) = cur {
            if done.contains(code) {
                break;
            }
            if !on_path.insert(code) {
                let from = path.iter().position(|c| *c == code).unwrap_or(0);
                let mut cycle: Vec<&str> = path[from..].to_vec();
                // Report at the member that comes first in the file.
                let (at, _) = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| by_code.get(*c).map(|(i, _)| *i))
                    .unwrap_or((0, &code));
                cycle.rotate_left(at);
                let first = cycle[0];
                cycle.push(first);
                let index = by_code.get(first).map(|(i, _)| *i).unwrap_or(0);
                p.add(
                    format!("units[{index}].parent"),
                    Some(first),
                    format!("parents form a cycle: {}", cycle.join(" -> ")),
                );
                break;
            }
            path.push(code);
            cur = by_code.get(code).and_then(|(_, u)| u.parent.as_deref());
        }
        done.extend(path);
    }
}

/// Codes, default units, routes and SLAs of the catalogue.
fn check_categories(
    categories: &[(usize, CategoryDef)],
    units: &[(usize, UnitDef)],
    broken: &Broken,
    p: &mut Problems<'_>,
) {
    let mut unit_by_code: HashMap<&str, &UnitDef> = HashMap::new();
    for (_, u) in units {
        unit_by_code.entry(&u.code).or_insert(u);
    }
    let parent_of = |code: &str| unit_by_code.get(code).and_then(|u| u.parent.as_deref());
    // Walks up at most units.len() steps, so a cycle (already reported) cannot hang it.
    let is_inside = |code: &str, ancestor: &str| {
        let mut cur = Some(code);
        for _ in 0..=units.len() {
            match cur {
                Some(c) if c == ancestor => return true,
                Some(c) => cur = parent_of(c),
                None => return false,
            }
        }
        false
    };
    let townships: Vec<&str> = units
        .iter()
        .filter(|(_, u)| u.kind == UnitKind::Township)
        .map(|(_, u)| u.code.as_str())
        .collect();

    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in categories {
        let code = Some(c.code.as_str());
        if c.code.trim().is_empty() {
            p.add(
                format!("categories[{i}].code"),
                None,
                "category code is empty",
            );
        } else if let Some(first) = first_seen.get(c.code.as_str()) {
            p.add(
                format!("categories[{i}].code"),
                code,
                format!(
                    "duplicate category code \"{}\" (first defined at categories[{first}])",
                    c.code
                ),
            );
        } else {
            first_seen.insert(&c.code, *i);
        }
        if c.name.trim().is_empty() {
            p.add(
                format!("categories[{i}].name"),
                code,
                "category name is empty",
            );
        }

        if let Some(d) = &c.default_unit {
            let path = format!("categories[{i}].default_unit");
            match unit_by_code.get(d.as_str()) {
                None if broken.contains(d) => {}
                None => p.add(path, code, format!("unknown unit \"{d}\"")),
                Some(u) if !matches!(u.kind, UnitKind::Department | UnitKind::District) => p.add(
                    path,
                    code,
                    format!(
                        "default_unit must be a district department, but \"{d}\" is {}",
                        a_or_an(u.kind)
                    ),
                ),
                Some(_) => {}
            }
        }

        let mut routed: HashMap<&str, usize> = HashMap::new();
        for (j, r) in c.routes.iter().enumerate() {
            let area_path = format!("categories[{i}].routes[{j}].area");
            let unit_path = format!("categories[{i}].routes[{j}].unit");
            let area_ok = match unit_by_code.get(r.area.as_str()) {
                None if broken.contains(&r.area) => false,
                None => {
                    p.add(
                        area_path.clone(),
                        code,
                        format!("unknown area \"{}\"", r.area),
                    );
                    false
                }
                Some(area) if area.kind != UnitKind::Township => {
                    p.add(
                        area_path.clone(),
                        code,
                        format!(
                            "a route area must be a township, but \"{}\" is {}",
                            r.area,
                            a_or_an(area.kind)
                        ),
                    );
                    false
                }
                Some(_) => true,
            };
            if let Some(k) = routed.insert(&r.area, j) {
                p.add(
                    area_path,
                    code,
                    format!("township \"{}\" is already routed at routes[{k}]", r.area),
                );
            }
            match unit_by_code.get(r.unit.as_str()) {
                None if broken.contains(&r.unit) => {}
                None => p.add(unit_path, code, format!("unknown unit \"{}\"", r.unit)),
                Some(u) if u.kind == UnitKind::Grid => p.add(
                    unit_path,
                    code,
                    format!(
                        "\"{}\" is a grid; grids report tickets, they do not receive them",
                        r.unit
                    ),
                ),
                // A route is "who does this work in that township": a unit elsewhere is
                // almost always a copy-paste slip (hg's row pointing at fl's agency).
                Some(_) if area_ok && !is_inside(&r.unit, &r.area) => p.add(
                    unit_path,
                    code,
                    format!(
                        "unit \"{}\" is not inside the route's area \"{}\"",
                        r.unit, r.area
                    ),
                ),
                Some(_) => {}
            }
        }

        if c.default_unit.is_none() {
            let missing: Vec<&str> = townships
                .iter()
                .copied()
                .filter(|t| !routed.contains_key(t))
                .collect();
            if !missing.is_empty() {
                p.add(
                    format!("categories[{i}].default_unit"),
                    code,
                    format!(
                        "no default_unit and no route for {}: tickets there would have nowhere to go",
                        missing.join(", ")
                    ),
                );
            }
        }

        if let Some(sla) = &c.sla {
            if sla.sign_days == Some(0) {
                p.add(
                    format!("categories[{i}].sla.sign_days"),
                    code,
                    "sign_days must be at least 1",
                );
            }
            for (urgency, h) in [
                ("normal", &sla.normal),
                ("urgent", &sla.urgent),
                ("emergency", &sla.emergency),
            ] {
                let Some(h) = h else { continue };
                let path = format!("categories[{i}].sla.{urgency}");
                match (h.handle_days, h.handle_hours) {
                    (None, None) => p.add(path, code, "give handle_days or handle_hours"),
                    (Some(_), Some(_)) => {
                        p.add(path, code, "give handle_days or handle_hours, not both")
                    }
                    (Some(0), None) => p.add(
                        format!("{path}.handle_days"),
                        code,
                        "handle_days must be at least 1",
                    ),
                    (None, Some(0)) => p.add(
                        format!("{path}.handle_hours"),
                        code,
                        "handle_hours must be at least 1",
                    ),
                    _ => {}
                }
            }
        }
    }
}
