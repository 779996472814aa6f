//! The organisation tree and the category catalogue (DESIGN.md §4).
//!
//! The tree is the one the 2020 grid plan (经技区发〔2020〕28号) sets up: the district
//! governance centre at the root, township/street centres (镇/街道) under it, villages
//! and communities (村/社区) under those, and base grids (基础网格) at the bottom.
//! Units that *receive* tickets hang off the centres: district departments (区直部门)
//! under the district, and agencies (派驻机构: 司法所, 综合执法中队, 市场监管所, 派出所)
//! under the township they are posted to.
//!
//! The catalogue names what a ticket is about, which unit receives it by default,
//! which township agency does that work in each township, and the SLA per urgency.
//!
//! Both load from one JSON file (see `schema/reference/demo-org.json`). This module is
//! pure: [`parse_org`] takes the text, validates the whole file and either returns an
//! [`Org`] with its lookups or *every* problem it found, each located precisely enough
//! for the person editing the file to fix it without a second round trip.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------
// File format
// ---------------------------------------------------------------------------

/// The whole organisation file, as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    pub units: Vec<UnitDef>,
    pub categories: Vec<CategoryDef>,
}

/// What a unit is; decides where it may sit in the tree and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(description = "What a unit is.")]
pub enum UnitKind {
    /// 区网格化治理中心 — the single root; dispatches and supervises.
    District,
    /// 镇(街道)网格化治理中心 — a second-level centre; dispatches on (转派).
    Township,
    /// 村(社区)网格化治理工作站.
    Community,
    /// 基础网格 — where grid workers report from.
    Grid,
    /// 区直部门 — receives tickets from the district centre.
    Department,
    /// 派驻机构 — posted to a township; receives tickets from its centre.
    Agency,
}

impl UnitKind {
    pub const ALL: [UnitKind; 6] = [
        UnitKind::District,
        UnitKind::Township,
        UnitKind::Community,
        UnitKind::Grid,
        UnitKind::Department,
        UnitKind::Agency,
    ];

    /// The spelling used in the file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::District => "district",
            UnitKind::Township => "township",
            UnitKind::Community => "community",
            UnitKind::Grid => "grid",
            UnitKind::Department => "department",
            UnitKind::Agency => "agency",
        }
    }

    /// The kind a unit of this kind must hang under; `None` for the root.
    pub fn parent_kind(self) -> Option<UnitKind> {
        match self {
            UnitKind::District => None,
            UnitKind::Township | UnitKind::Department => Some(UnitKind::District),
            UnitKind::Community | UnitKind::Agency => Some(UnitKind::Township),
            UnitKind::Grid => Some(UnitKind::Community),
        }
    }
}

/// "a township", "an agency": for messages.
fn a_or_an(kind: UnitKind) -> String {
    match kind {
        UnitKind::Agency => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `agency_type` values. The appraisal rules (49号) score each type of agency on
/// its own sheet, and market-supervision agencies lose 2 points per delayed case, so
/// the type has to be data rather than guessed from a name.
pub const AGENCY_TYPES: [&str; 4] = ["judicial", "enforcement", "market", "police"];

/// One unit of the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitDef {
    pub code: String,
    pub name: String,
    pub kind: UnitKind,
    #[serde(default)]
    pub parent: Option<String>,
    /// Only on agencies: one of [`AGENCY_TYPES`]. Optional even there, because a
    /// township also dispatches to offices of its own (e.g. its 安全生产监督管理办公室).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_type: Option<String>,
}

/// One category of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub group: Option<String>,
    /// The district department that receives the category when no route applies.
    #[serde(default)]
    pub default_unit: Option<String>,
    /// Per township, the unit there that does this work.
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub sla: Option<SlaDef>,
}

/// "In township `area`, this category goes to `unit`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub area: String,
    pub unit: String,
}

/// A category's SLA overrides; anything left out keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaDef {
    #[serde(default)]
    pub sign_days: Option<u32>,
    #[serde(default)]
    pub normal: Option<HandleSla>,
    #[serde(default)]
    pub urgent: Option<HandleSla>,
    #[serde(default)]
    pub emergency: Option<HandleSla>,
}

/// The handle deadline for one urgency: working days or clock hours, exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandleSla {
    #[serde(default)]
    pub handle_days: Option<u32>,
    #[serde(default)]
    pub handle_hours: Option<u32>,
}

/// The urgencies an SLA distinguishes, as spelled in the file.
pub const URGENCIES: [&str; 3] = ["normal", "urgent", "emergency"];

/// The effective SLA of a category at one urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaSpec {
    /// Working days from dispatch to sign for (签收).
    pub sign_days: u32,
    pub handle: HandleDue,
}

/// How long the receiving unit has to handle (办结) a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(
    rename_all = "snake_case",
    description = "A handle deadline: working days, or clock hours for emergencies."
)]
pub enum HandleDue {
    // Plain comments on the variants: doc comments would become descriptions in the
    // OpenAPI document (the container's says it).
    // Working days (工作日), counted on the business calendar.
    Days(u32),
    // Clock hours, for emergencies that cannot wait for the next working day.
    Hours(u32),
}

/// DESIGN.md §3 defaults. Sign within 1 working day is the source text's
/// "1个工作日内完成案件登记"; the handle times are the design's.
pub const DEFAULT_SIGN_DAYS: u32 = 1;
pub const DEFAULT_HANDLE_NORMAL: HandleDue = HandleDue::Days(5);
pub const DEFAULT_HANDLE_URGENT: HandleDue = HandleDue::Days(1);
pub const DEFAULT_HANDLE_EMERGENCY: HandleDue = HandleDue::Hours(2);

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

/// One thing wrong with an organisation file.
///
/// `location` is a JSON path (`units[12].parent`) followed by the unit or category
/// code in parentheses when there is one, or `line:column` for malformed JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgProblem {
    /// The file (or other origin) the text came from, as given to [`parse_org`].
    pub source: String,
    pub location: String,
    pub message: String,
}

impl fmt::Display for OrgProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.location, self.message)
    }
}

// Implemented by hand: thiserror would take a field named `source` for the
// underlying error, and this `source` is a file name.
impl std::error::Error for OrgProblem {}

/// Collects problems so each check is a one-liner.
struct Problems<'a> {
    source: &'a str,
    list: Vec<OrgProblem>,
}

impl Problems<'_> {
    /// `path` is the JSON path; `code` the unit/category code it belongs to, if known.
    fn add(&mut self, path: impl Into<String>, code: Option<&str>, message: impl Into<String>) {
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

    match top.get("units") {
        None => p.add("units", None, "missing field `units`"),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match UnitDef::deserialize(item) {
                    Ok(u) => shape.units.push((i, u)),
                    Err(e) => {
                        let code = item.get("code").and_then(Value::as_str);
                        if let Some(code) = code {
                            shape.broken.insert(code.to_string());
                        }
                        p.add(format!("units[{i}]"), code, serde_message(&e));
                    }
                }
            }
        }
        Some(_) => p.add("units", None, "expected an array of units"),
    }

    match top.get("categories") {
        None => p.add("categories", None, "missing field `categories`"),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match CategoryDef::deserialize(item) {
                    Ok(c) => shape.categories.push((i, c)),
                    Err(e) => category_shape_problem(i, item, &e, p),
                }
            }
        }
        Some(_) => p.add("categories", None, "expected an array of categories"),
    }

    shape
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

// ---------------------------------------------------------------------------
// The validated organisation
// ---------------------------------------------------------------------------

/// A validated organisation with its lookups. Only [`parse_org`] builds one, so the
/// invariants hold: unique codes, one district root, no cycles, kinds in place,
/// every reference resolves.
///
/// Unit and category lists are kept in file order (the order dispatchers see in
/// pickers); read them with [`Org::units`] and [`Org::categories`].
#[derive(Debug, Clone)]
pub struct Org {
    units: Vec<UnitDef>,
    categories: Vec<CategoryDef>,
    unit_index: HashMap<String, usize>,
    category_index: HashMap<String, usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    root: usize,
}

impl Org {
    fn build(units: Vec<UnitDef>, categories: Vec<CategoryDef>) -> Org {
        let unit_index: HashMap<String, usize> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.code.clone(), i))
            .collect();
        let category_index = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.code.clone(), i))
            .collect();
        let parent: Vec<Option<usize>> = units
            .iter()
            .map(|u| u.parent.as_ref().map(|p| unit_index[p.as_str()]))
            .collect();
        let mut children = vec![Vec::new(); units.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let root = units
            .iter()
            .position(|u| u.kind == UnitKind::District)
            .expect("validated: exactly one district");
        Org {
            units,
            categories,
            unit_index,
            category_index,
            parent,
            children,
            root,
        }
    }

    /// All units, in file order.
    pub fn units(&self) -> &[UnitDef] {
        &self.units
    }

    /// All categories, in file order.
    pub fn categories(&self) -> &[CategoryDef] {
        &self.categories
    }

    pub fn unit(&self, code: &str) -> Option<&UnitDef> {
        self.unit_index.get(code).map(|&i| &self.units[i])
    }

    pub fn category(&self, code: &str) -> Option<&CategoryDef> {
        self.category_index.get(code).map(|&i| &self.categories[i])
    }

    /// The district centre.
    pub fn root(&self) -> &UnitDef {
        &self.units[self.root]
    }

    /// Units of one kind, in file order.
    pub fn units_of_kind(&self, kind: UnitKind) -> impl Iterator<Item = &UnitDef> {
        self.units.iter().filter(move |u| u.kind == kind)
    }

    /// The parent's code; `None` for the root or an unknown code.
    pub fn parent(&self, code: &str) -> Option<&str> {
        let i = *self.unit_index.get(code)?;
        self.parent[i].map(|p| self.units[p].code.as_str())
    }

    /// Direct children, in file order.
    pub fn children(&self, code: &str) -> Vec<&str> {
        match self.unit_index.get(code) {
            Some(&i) => self.children[i]
                .iter()
                .map(|&c| self.units[c].code.as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Ancestors nearest first, excluding the unit itself; empty for an unknown code.
    pub fn ancestors(&self, code: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut cur = self.unit_index.get(code).and_then(|&i| self.parent[i]);
        while let Some(i) = cur {
            out.push(self.units[i].code.as_str());
            cur = self.parent[i];
        }
        out
    }

    /// Whether `code` is `ancestor` or lies beneath it. This is the visibility rule:
    /// a user of unit A may see a ticket of unit B when `is_within(B, A)`.
    /// False when either code is unknown.
    pub fn is_within(&self, code: &str, ancestor: &str) -> bool {
        if !self.unit_index.contains_key(ancestor) || !self.unit_index.contains_key(code) {
            return false;
        }
        code == ancestor || self.ancestors(code).contains(&ancestor)
    }

    /// The unit and everything beneath it, depth first in file order; empty for an
    /// unknown code.
    pub fn subtree(&self, code: &str) -> Vec<&str> {
        let Some(&start) = self.unit_index.get(code) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            out.push(self.units[i].code.as_str());
            // Reversed so that popping yields children in file order.
            stack.extend(self.children[i].iter().rev());
        }
        out
    }

    /// The township a community, grid or agency belongs to (a township is its own).
    /// `None` for the district, its departments and unknown codes.
    pub fn township_of(&self, code: &str) -> Option<&str> {
        let i = *self.unit_index.get(code)?;
        let mut cur = Some(i);
        while let Some(j) = cur {
            if self.units[j].kind == UnitKind::Township {
                return Some(self.units[j].code.as_str());
            }
            cur = self.parent[j];
        }
        None
    }

    /// Centres dispatch, verify and supervise: the district and the townships.
    pub fn is_centre(&self, code: &str) -> bool {
        matches!(
            self.unit(code).map(|u| u.kind),
            Some(UnitKind::District | UnitKind::Township)
        )
    }

    /// The agency type of an agency (`judicial`, `enforcement`, `market`, `police`).
    pub fn agency_type(&self, code: &str) -> Option<&str> {
        self.unit(code)?.agency_type.as_deref()
    }

    /// The suggested receiving unit for a ticket of `category` located at
    /// `grid_or_unit`: the route of the township containing it if the category has
    /// one, else the category's default unit. A location outside every township (the
    /// district itself, say, for a hotline call with no address) gets the default.
    /// `None` for an unknown category, or one with neither route nor default.
    ///
    /// This is the unit that does the work, not necessarily the next hop: from the
    /// district a township agency is reached through its township, see [`Org::next_hop`].
    pub fn route(&self, category: &str, grid_or_unit: &str) -> Option<&str> {
        let cat = self.category(category)?;
        if let Some(township) = self.township_of(grid_or_unit)
            && let Some(r) = cat.routes.iter().find(|r| r.area == township)
        {
            return Some(r.unit.as_str());
        }
        cat.default_unit.as_deref()
    }

    /// Whom a centre may dispatch to, in file order.
    /// - the district centre: its departments and the township centres;
    /// - a township centre: its own agencies and communities, and the district
    ///   centre (passing a ticket up: 吹哨报到 / "镇街呼叫、部门报到").
    ///
    /// Empty for a unit that is not a centre.
    pub fn dispatch_targets(&self, centre: &str) -> Vec<&str> {
        let Some(&i) = self.unit_index.get(centre) else {
            return Vec::new();
        };
        let kinds: &[UnitKind] = match self.units[i].kind {
            UnitKind::District => &[UnitKind::Department, UnitKind::Township],
            UnitKind::Township => &[UnitKind::Agency, UnitKind::Community],
            _ => return Vec::new(),
        };
        let mut out: Vec<&str> = self.children[i]
            .iter()
            .filter(|&&c| kinds.contains(&self.units[c].kind))
            .map(|&c| self.units[c].code.as_str())
            .collect();
        if self.units[i].kind == UnitKind::Township {
            out.push(self.root().code.as_str());
        }
        out
    }

    /// Whether `from_centre` may dispatch directly to `to_unit`.
    pub fn may_dispatch(&self, from_centre: &str, to_unit: &str) -> bool {
        self.dispatch_targets(from_centre).contains(&to_unit)
    }

    /// The first hop from `from_centre` toward `target`: `target` itself when
    /// directly dispatchable; from the district, the township containing `target`;
    /// from a township, its agency or community on the way down, or the district for
    /// anything outside the township. `None` when `from_centre` is not a centre,
    /// either code is unknown, or `target` is `from_centre` itself.
    pub fn next_hop(&self, from_centre: &str, target: &str) -> Option<&str> {
        if !self.is_centre(from_centre) || self.unit(target).is_none() || from_centre == target {
            return None;
        }
        let targets = self.dispatch_targets(from_centre);
        // Walk up from the target: the first unit the centre may dispatch to is the hop.
        let mut chain = vec![self.unit(target)?.code.as_str()];
        chain.extend(self.ancestors(target));
        if let Some(hop) = chain.iter().find(|c| targets.contains(c)) {
            return Some(hop);
        }
        // Not reachable downward. From the district every unit is (the tree has no
        // strays), so this is a township: it passes the ticket up.
        (self.unit(from_centre)?.kind == UnitKind::Township).then(|| self.root().code.as_str())
    }

    /// The SLA of `category` at `urgency` (`normal`, `urgent` or `emergency`), with the
    /// category's overrides applied over the defaults. An unknown category gets the
    /// defaults; an unknown urgency is treated as `normal`.
    pub fn sla_for(&self, category: &str, urgency: &str) -> SlaSpec {
        let default_handle = match urgency {
            "urgent" => DEFAULT_HANDLE_URGENT,
            "emergency" => DEFAULT_HANDLE_EMERGENCY,
            _ => DEFAULT_HANDLE_NORMAL,
        };
        let Some(sla) = self.category(category).and_then(|c| c.sla.as_ref()) else {
            return SlaSpec {
                sign_days: DEFAULT_SIGN_DAYS,
                handle: default_handle,
            };
        };
        let over = match urgency {
            "urgent" => &sla.urgent,
            "emergency" => &sla.emergency,
            _ => &sla.normal,
        };
        let handle = match over {
            Some(HandleSla {
                handle_days: Some(d),
                ..
            }) => HandleDue::Days(*d),
            Some(HandleSla {
                handle_hours: Some(h),
                ..
            }) => HandleDue::Hours(*h),
            _ => default_handle,
        };
        SlaSpec {
            sign_days: sla.sign_days.unwrap_or(DEFAULT_SIGN_DAYS),
            handle,
        }
    }
}

/// The shipped demo organisation for the Weihai ETDZ.
pub fn demo() -> Org {
    parse_org(
        include_str!("../../schema/reference/demo-org.json"),
        "schema/reference/demo-org.json",
    )
    // Cannot fail: the file is compiled in, and `tests::demo_parses` proves it valid.
    .expect("the shipped demo organisation is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small valid organisation the problem tests break one piece at a time.
    fn small() -> Value {
        json!({
            "units": [
                {"code": "d", "name": "区中心", "kind": "district", "parent": null},
                {"code": "dep", "name": "综合行政执法局", "kind": "department", "parent": "d"},
                {"code": "t1", "name": "甲街道", "kind": "township", "parent": "d"},
                {"code": "t1-zd", "name": "甲综合执法中队", "kind": "agency", "parent": "t1", "agency_type": "enforcement"},
                {"code": "t1-01", "name": "甲一社区", "kind": "community", "parent": "t1"},
                {"code": "t1-01-g01", "name": "甲一社区第1网格", "kind": "grid", "parent": "t1-01"},
                {"code": "t2", "name": "乙镇", "kind": "township", "parent": "d"},
                {"code": "t2-zd", "name": "乙综合执法中队", "kind": "agency", "parent": "t2", "agency_type": "enforcement"},
                {"code": "t2-01", "name": "乙一村", "kind": "community", "parent": "t2"},
                {"code": "t2-01-g01", "name": "乙一村第1网格", "kind": "grid", "parent": "t2-01"}
            ],
            "categories": [
                {"code": "city.stacking", "name": "乱堆乱放", "group": "城市管理", "default_unit": "dep",
                 "routes": [{"area": "t1", "unit": "t1-zd"}]},
                {"code": "city.illegal_construction", "name": "违法建设", "default_unit": "dep",
                 "routes": [], "sla": {"sign_days": 2, "normal": {"handle_days": 3}, "emergency": {"handle_hours": 1}}}
            ]
        })
    }

    fn parse(v: &Value) -> Result<Org, Vec<OrgProblem>> {
        parse_org(&v.to_string(), "test.json")
    }

    fn problems(v: &Value) -> Vec<OrgProblem> {
        match parse(v) {
            Ok(_) => panic!("expected problems, the file parsed"),
            Err(p) => p,
        }
    }

    /// Asserts there is exactly one problem, at `location`, whose message contains `msg`.
    fn assert_one(v: &Value, location: &str, msg: &str) {
        let ps = problems(v);
        assert_eq!(ps.len(), 1, "expected one problem, got: {ps:#?}");
        assert_eq!(ps[0].location, location, "{ps:#?}");
        assert!(
            ps[0].message.contains(msg),
            "message {:?} lacks {msg:?}",
            ps[0].message
        );
    }

    #[test]
    fn demo_parses() {
        let text = include_str!("../../schema/reference/demo-org.json");
        let org = match parse_org(text, "demo-org.json") {
            Ok(o) => o,
            Err(ps) => panic!(
                "demo invalid:\n{}",
                ps.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        for kind in UnitKind::ALL {
            assert!(
                org.units_of_kind(kind).next().is_some(),
                "no {kind} in the demo"
            );
        }
        assert_eq!(org.root().code, "etdz");
        assert!(org.categories().len() >= 30);
        // Also the plain serde path (deny_unknown_fields everywhere) accepts it.
        let file: OrgFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.units.len(), org.units().len());
        let _ = demo();
    }

    #[test]
    fn demo_has_the_etdz_shape() {
        let org = demo();
        let townships: Vec<&str> = org
            .units_of_kind(UnitKind::Township)
            .map(|u| u.name.as_str())
            .collect();
        for name in [
            "泊于镇",
            "崮山镇",
            "桥头镇",
            "皇冠街道",
            "凤林街道",
            "西苑街道",
        ] {
            assert!(
                townships.iter().any(|t| t.starts_with(name)),
                "{name} missing"
            );
        }
        for t in org.units_of_kind(UnitKind::Township) {
            let kids = org.children(&t.code);
            let communities: Vec<&str> = kids
                .iter()
                .copied()
                .filter(|c| org.unit(c).unwrap().kind == UnitKind::Community)
                .collect();
            assert!(
                (2..=3).contains(&communities.len()),
                "{}: {communities:?}",
                t.code
            );
            for c in communities {
                assert!((2..=3).contains(&org.children(c).len()), "{c}");
            }
            // Every township has one agency of each type.
            for ty in AGENCY_TYPES {
                let n = kids
                    .iter()
                    .filter(|k| org.agency_type(k) == Some(ty))
                    .count();
                assert_eq!(n, 1, "{} has {n} {ty} agencies", t.code);
            }
        }
        // Every category routes every grid somewhere that exists.
        for c in org.categories() {
            for g in org.units_of_kind(UnitKind::Grid) {
                let to = org
                    .route(&c.code, &g.code)
                    .unwrap_or_else(|| panic!("{} at {}", c.code, g.code));
                assert!(org.unit(to).is_some());
            }
        }
        assert!(org.unit("hg-01-g01").is_some());
    }

    #[test]
    fn small_is_valid() {
        parse(&small()).unwrap();
    }

    #[test]
    fn malformed_json_gives_line_and_column() {
        let ps = parse_org("{\"units\": [\n  {\"code\": \"d\",,}\n]}", "bad.json").unwrap_err();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].location, "2:16");
        assert!(
            ps[0].message.starts_with("malformed JSON"),
            "{}",
            ps[0].message
        );
        assert!(!ps[0].message.contains(" at line "));
        assert_eq!(
            ps[0].to_string(),
            format!("bad.json: 2:16: {}", ps[0].message)
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let mut v = small();
        v["units"][3]["parnet"] = json!("t1");
        assert_one(&v, "units[3] (t1-zd)", "unknown field `parnet`");

        let mut v = small();
        v["categories"][0]["routes"][0]["unti"] = json!("t1-zd");
        assert_one(
            &v,
            "categories[0].routes[0] (city.stacking)",
            "unknown field `unti`",
        );

        let mut v = small();
        v["categories"][1]["sla"]["normal"]["handle_dayz"] = json!(2);
        assert_one(
            &v,
            "categories[1].sla.normal (city.illegal_construction)",
            "unknown field `handle_dayz`",
        );

        let mut v = small();
        v["unitz"] = json!([]);
        assert_one(&v, "unitz", "unknown field");

        let mut v = small();
        v["units"][2]["kind"] = json!("street");
        assert_one(&v, "units[2] (t1)", "unknown variant `street`");
    }

    #[test]
    fn a_broken_unit_does_not_cascade() {
        // t1's entry has a typo; its children must not also report "unknown parent".
        let mut v = small();
        v["units"][2]["nmae"] = json!("x");
        assert_one(&v, "units[2] (t1)", "unknown field `nmae`");
    }

    #[test]
    fn duplicate_unit_code() {
        let mut v = small();
        v["units"][5]["code"] = json!("t1-01");
        // The grid became a second "t1-01"; nothing else is wrong with the tree.
        assert_one(
            &v,
            "units[5].code (t1-01)",
            "duplicate unit code \"t1-01\" (first defined at units[4])",
        );
    }

    #[test]
    fn duplicate_category_code() {
        let mut v = small();
        v["categories"][1]["code"] = json!("city.stacking");
        assert_one(
            &v,
            "categories[1].code (city.stacking)",
            "duplicate category code",
        );
    }

    #[test]
    fn unknown_parent() {
        let mut v = small();
        v["units"][5]["parent"] = json!("t9-01");
        assert_one(
            &v,
            "units[5].parent (t1-01-g01)",
            "unknown parent \"t9-01\"",
        );
    }

    #[test]
    fn exactly_one_district() {
        let mut v = small();
        v["units"][0]["kind"] = json!("township");
        let ps = problems(&v);
        assert!(
            ps.iter()
                .any(|p| p.location == "units" && p.message.contains("no unit of kind district")),
            "{ps:#?}"
        );

        let mut v = small();
        v["units"]
            .as_array_mut()
            .unwrap()
            .push(json!({"code": "d2", "name": "另一中心", "kind": "district", "parent": null}));
        assert_one(&v, "units[10].kind (d2)", "a second district");

        let mut v = small();
        v["units"][0]["parent"] = json!("t1");
        let ps = problems(&v);
        assert!(
            ps.iter()
                .any(|p| p.location == "units[0].parent (d)" && p.message.contains("must be null")),
            "{ps:#?}"
        );
    }

    #[test]
    fn cycle_in_parents() {
        // Two communities parenting each other: wrong kinds, and a cycle.
        let mut v = small();
        v["units"][4]["parent"] = json!("t2-01");
        v["units"][8]["parent"] = json!("t1-01");
        let ps = problems(&v);
        let cycles: Vec<&OrgProblem> = ps.iter().filter(|p| p.message.contains("cycle")).collect();
        assert_eq!(cycles.len(), 1, "{ps:#?}");
        assert_eq!(cycles[0].location, "units[4].parent (t1-01)");
        assert!(
            cycles[0].message.ends_with("t1-01 -> t2-01 -> t1-01"),
            "{}",
            cycles[0].message
        );
        assert!(ps.iter().any(|p| p.location == "units[4].parent (t1-01)"
            && p.message.contains("must sit under a township")));

        let mut v = small();
        v["units"][2]["parent"] = json!("t1");
        assert_one(&v, "units[2].parent (t1)", "parents form a cycle: t1 -> t1");
    }

    #[test]
    fn kinds_under_the_wrong_parent() {
        let cases = [
            (
                2,
                "t1-01",
                "a township must sit under a district, but parent \"t1-01\" is a community",
            ),
            (4, "d", "a community must sit under a township"),
            (3, "t1-01", "an agency must sit under a township"),
            (5, "t1", "a grid must sit under a community"),
            (1, "t1", "a department must sit under a district"),
        ];
        for (i, parent, msg) in cases {
            let mut v = small();
            v["units"][i]["parent"] = json!(parent);
            let ps = problems(&v);
            let code = v["units"][i]["code"].as_str().unwrap();
            let want = format!("units[{i}].parent ({code})");
            assert!(
                ps.iter()
                    .any(|p| p.location == want && p.message.contains(msg)),
                "{want}: {msg}: {ps:#?}"
            );
        }
        let mut v = small();
        v["units"][2]["parent"] = json!(null);
        assert_one(
            &v,
            "units[2].parent (t1)",
            "a township needs a parent (a district)",
        );
    }

    #[test]
    fn empty_code_and_name() {
        let mut v = small();
        v["units"][1]["name"] = json!(" ");
        assert_one(&v, "units[1].name (dep)", "unit name is empty");

        let mut v = small();
        v["categories"][0]["name"] = json!("");
        assert_one(
            &v,
            "categories[0].name (city.stacking)",
            "category name is empty",
        );

        let mut v = small();
        v["categories"][1]["code"] = json!("");
        assert_one(&v, "categories[1].code", "category code is empty");

        // A department nobody references, so the empty code is the only problem.
        let mut v = small();
        v["units"]
            .as_array_mut()
            .unwrap()
            .push(json!({"code": "", "name": "某局", "kind": "department", "parent": "d"}));
        assert_one(&v, "units[10].code", "unit code is empty");
    }

    #[test]
    fn agency_type_is_checked() {
        let mut v = small();
        v["units"][3]["agency_type"] = json!("traffic");
        assert_one(
            &v,
            "units[3].agency_type (t1-zd)",
            "unknown agency_type \"traffic\"",
        );

        let mut v = small();
        v["units"][1]["agency_type"] = json!("market");
        assert_one(&v, "units[1].agency_type (dep)", "only agencies");
    }

    #[test]
    fn category_references() {
        let mut v = small();
        v["categories"][0]["default_unit"] = json!("nope");
        assert_one(
            &v,
            "categories[0].default_unit (city.stacking)",
            "unknown unit \"nope\"",
        );

        let mut v = small();
        v["categories"][0]["default_unit"] = json!("t1-zd");
        assert_one(
            &v,
            "categories[0].default_unit (city.stacking)",
            "must be a district department",
        );

        let mut v = small();
        v["categories"][0]["routes"][0]["unit"] = json!("t1-xx");
        assert_one(
            &v,
            "categories[0].routes[0].unit (city.stacking)",
            "unknown unit \"t1-xx\"",
        );

        let mut v = small();
        v["categories"][0]["routes"][0]["area"] = json!("t9");
        assert_one(
            &v,
            "categories[0].routes[0].area (city.stacking)",
            "unknown area \"t9\"",
        );

        let mut v = small();
        v["categories"][0]["routes"][0]["area"] = json!("t1-01");
        assert_one(
            &v,
            "categories[0].routes[0].area (city.stacking)",
            "must be a township, but \"t1-01\" is a community",
        );

        let mut v = small();
        v["categories"][0]["routes"][0]["unit"] = json!("t2-zd");
        assert_one(
            &v,
            "categories[0].routes[0].unit (city.stacking)",
            "not inside the route's area \"t1\"",
        );

        let mut v = small();
        v["categories"][0]["routes"][0]["unit"] = json!("t1-01-g01");
        assert_one(
            &v,
            "categories[0].routes[0].unit (city.stacking)",
            "is a grid",
        );

        let mut v = small();
        v["categories"][0]["routes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"area": "t1", "unit": "t1-01"}));
        assert_one(
            &v,
            "categories[0].routes[1].area (city.stacking)",
            "already routed at routes[0]",
        );

        let mut v = small();
        v["categories"][0]
            .as_object_mut()
            .unwrap()
            .remove("default_unit");
        assert_one(
            &v,
            "categories[0].default_unit (city.stacking)",
            "no route for t2",
        );
    }

    #[test]
    fn sla_values() {
        let mut v = small();
        v["categories"][1]["sla"]["sign_days"] = json!(0);
        assert_one(
            &v,
            "categories[1].sla.sign_days (city.illegal_construction)",
            "at least 1",
        );

        let mut v = small();
        v["categories"][1]["sla"]["normal"]["handle_days"] = json!(0);
        assert_one(
            &v,
            "categories[1].sla.normal.handle_days (city.illegal_construction)",
            "at least 1",
        );

        let mut v = small();
        v["categories"][1]["sla"]["emergency"]["handle_hours"] = json!(0);
        assert_one(
            &v,
            "categories[1].sla.emergency.handle_hours (city.illegal_construction)",
            "at least 1",
        );

        let mut v = small();
        v["categories"][1]["sla"]["urgent"] = json!({"handle_days": 1, "handle_hours": 4});
        assert_one(
            &v,
            "categories[1].sla.urgent (city.illegal_construction)",
            "not both",
        );

        let mut v = small();
        v["categories"][1]["sla"]["urgent"] = json!({});
        assert_one(
            &v,
            "categories[1].sla.urgent (city.illegal_construction)",
            "give handle_days or handle_hours",
        );

        let mut v = small();
        v["categories"][1]["sla"]["normal"]["handle_days"] = json!(-1);
        assert_one(
            &v,
            "categories[1].sla.normal (city.illegal_construction)",
            "invalid value",
        );
    }

    #[test]
    fn three_problems_are_all_reported() {
        let mut v = small();
        v["units"][5]["parent"] = json!("t9-01"); // unknown parent
        v["units"][7]["code"] = json!("t1-zd"); // duplicate unit code
        v["categories"][1]["sla"]["sign_days"] = json!(0); // zero SLA
        let ps = problems(&v);
        let locations: Vec<&str> = ps.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "units[7].code (t1-zd)",
                "units[5].parent (t1-01-g01)",
                "categories[1].sla.sign_days (city.illegal_construction)"
            ],
            "{ps:#?}"
        );
        assert_eq!(
            ps[1].to_string(),
            "test.json: units[5].parent (t1-01-g01): unknown parent \"t9-01\""
        );
    }

    #[test]
    fn shape_problems_in_several_entries_are_all_reported() {
        let mut v = small();
        v["units"][1]["colour"] = json!("red");
        v["units"][8]["kind"] = json!(7);
        v["categories"][0]["routes"][0]["unit"] = json!(null);
        let ps = problems(&v);
        assert_eq!(ps.len(), 3, "{ps:#?}");
        assert_eq!(ps[2].location, "categories[0].routes[0] (city.stacking)");
    }

    #[test]
    fn tree_lookups() {
        let org = demo();
        assert_eq!(org.parent("hg-01-g01"), Some("hg-01"));
        assert_eq!(org.parent("etdz"), None);
        assert_eq!(org.ancestors("hg-01-g01"), ["hg-01", "hg", "etdz"]);
        assert!(org.ancestors("etdz").is_empty());
        assert!(org.ancestors("nope").is_empty());

        assert!(org.is_within("hg-01-g01", "hg-01-g01"));
        assert!(org.is_within("hg-01-g01", "hg"));
        assert!(org.is_within("hg-zfzd", "etdz"));
        assert!(!org.is_within("hg-01-g01", "fl"));
        assert!(!org.is_within("hg", "hg-01"));
        assert!(!org.is_within("nope", "etdz"));

        let sub = org.subtree("hg-01");
        assert_eq!(sub, ["hg-01", "hg-01-g01", "hg-01-g02", "hg-01-g03"]);
        assert_eq!(org.subtree("etdz").len(), org.units().len());
        assert_eq!(org.subtree("hg")[..2], ["hg", "hg-sfs"]);

        assert_eq!(org.township_of("hg-01-g01"), Some("hg"));
        assert_eq!(org.township_of("by-scjgs"), Some("by"));
        assert_eq!(org.township_of("qt"), Some("qt"));
        assert_eq!(org.township_of("scjg"), None);
        assert_eq!(org.township_of("etdz"), None);

        assert!(org.is_centre("etdz") && org.is_centre("gs"));
        assert!(!org.is_centre("gs-01") && !org.is_centre("scjg") && !org.is_centre("gs-pcs"));
        assert_eq!(org.agency_type("fl-scjgs"), Some("market"));
    }

    #[test]
    fn routing() {
        let org = demo();
        // City management goes to the township's enforcement squadron.
        assert_eq!(
            org.route("city.exposed_garbage", "hg-01-g01"),
            Some("hg-zfzd")
        );
        assert_eq!(
            org.route("city.exposed_garbage", "qt-02-g02"),
            Some("qt-zfzd")
        );
        // Food safety to the market-supervision office, disputes to the judicial office,
        // public order to the police station.
        assert_eq!(org.route("food.unlicensed", "xy-02-g01"), Some("xy-scjgs"));
        assert_eq!(org.route("dispute.neighbour", "gs-01-g01"), Some("gs-sfs"));
        assert_eq!(
            org.route("order.public_security", "fl-03-g02"),
            Some("fl-pcs")
        );
        // A location that is a community or the township works too.
        assert_eq!(org.route("dispute.neighbour", "gs-01"), Some("gs-sfs"));
        assert_eq!(org.route("dispute.neighbour", "gs"), Some("gs-sfs"));
        // No township (a hotline call with no address) or no route: the default department.
        assert_eq!(org.route("city.exposed_garbage", "etdz"), Some("zhzf"));
        assert_eq!(org.route("env.pollution_source", "hg-01-g01"), Some("sthj"));
        assert_eq!(org.route("nope", "hg-01-g01"), None);
    }

    #[test]
    fn dispatching() {
        let org = demo();
        let from_district = org.dispatch_targets("etdz");
        assert!(
            from_district.contains(&"scjg")
                && from_district.contains(&"hg")
                && from_district.contains(&"qt")
        );
        assert!(!from_district.contains(&"hg-zfzd") && !from_district.contains(&"hg-01"));
        assert_eq!(
            from_district.len(),
            org.units_of_kind(UnitKind::Department).count()
                + org.units_of_kind(UnitKind::Township).count()
        );

        let from_hg = org.dispatch_targets("hg");
        assert_eq!(
            from_hg[..5],
            ["hg-sfs", "hg-zfzd", "hg-scjgs", "hg-pcs", "hg-ajb"]
        );
        assert!(from_hg.contains(&"hg-01") && from_hg.contains(&"etdz"));
        assert!(
            !from_hg.contains(&"hg-01-g01")
                && !from_hg.contains(&"fl-zfzd")
                && !from_hg.contains(&"scjg")
        );

        assert!(org.dispatch_targets("hg-zfzd").is_empty());
        assert!(org.dispatch_targets("nope").is_empty());

        assert!(org.may_dispatch("etdz", "hg"));
        assert!(org.may_dispatch("hg", "hg-zfzd"));
        assert!(org.may_dispatch("hg", "etdz"));
        assert!(!org.may_dispatch("etdz", "hg-zfzd"));
        assert!(!org.may_dispatch("hg", "fl-zfzd"));
        assert!(!org.may_dispatch("hg-zfzd", "hg"));

        // Two hops: district -> township -> agency; a township passes up for departments.
        assert_eq!(org.next_hop("etdz", "hg-zfzd"), Some("hg"));
        assert_eq!(org.next_hop("etdz", "scjg"), Some("scjg"));
        assert_eq!(org.next_hop("hg", "hg-zfzd"), Some("hg-zfzd"));
        assert_eq!(org.next_hop("hg", "hg-01-g02"), Some("hg-01"));
        assert_eq!(org.next_hop("hg", "scjg"), Some("etdz"));
        assert_eq!(org.next_hop("hg", "fl-zfzd"), Some("etdz"));
        assert_eq!(org.next_hop("hg", "hg"), None);
        assert_eq!(org.next_hop("hg-zfzd", "hg"), None);
    }

    #[test]
    fn sla_defaults_and_overrides() {
        let org = demo();
        let plain = "city.exposed_garbage";
        assert_eq!(
            org.sla_for(plain, "normal"),
            SlaSpec {
                sign_days: 1,
                handle: HandleDue::Days(5)
            }
        );
        assert_eq!(
            org.sla_for(plain, "urgent"),
            SlaSpec {
                sign_days: 1,
                handle: HandleDue::Days(1)
            }
        );
        assert_eq!(
            org.sla_for(plain, "emergency"),
            SlaSpec {
                sign_days: 1,
                handle: HandleDue::Hours(2)
            }
        );
        assert_eq!(org.sla_for("nope", "normal").handle, HandleDue::Days(5));
        // 违法建设: 3 days (49号: demolish new illegal construction within 3 days).
        assert_eq!(
            org.sla_for("city.illegal_construction", "normal").handle,
            HandleDue::Days(3)
        );
        assert_eq!(
            org.sla_for("city.illegal_construction", "urgent").handle,
            HandleDue::Days(1)
        );
        assert_eq!(
            org.sla_for("order.stability", "urgent").handle,
            HandleDue::Hours(4)
        );

        let org = parse(&small()).unwrap();
        let s = org.sla_for("city.illegal_construction", "emergency");
        assert_eq!(
            s,
            SlaSpec {
                sign_days: 2,
                handle: HandleDue::Hours(1)
            }
        );
        assert_eq!(
            org.sla_for("city.illegal_construction", "bogus").handle,
            HandleDue::Days(3)
        );
    }
}
