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

pub mod boundary;
mod english;
mod lookups;
mod parse;

pub use parse::parse_org;

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
    /// The English name the pages show in English; without one they show `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    pub kind: UnitKind,
    #[serde(default)]
    pub parent: Option<String>,
    /// Only on agencies: one of [`AGENCY_TYPES`]. Optional even there, because a
    /// township also dispatches to offices of its own (e.g. its 安全生产监督管理办公室).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_type: Option<String>,
    /// Optional: the unit's area on the map (a grid's or a community's), a GeoJSON
    /// geometry, `Polygon` or `MultiPolygon`, in WGS 84 (lon, lat) as GeoJSON has
    /// it. The map draws it when no tile server is set (issue 22, point 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<serde_json::Value>,
}

/// One category of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    pub code: String,
    pub name: String,
    /// The English name the pages show in English (never one made from `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// The English name of `group`: the same on every category of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_en: Option<String>,
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

/// How long the receiving unit has to handle (办结) a ticket. Serialized as
/// `{"days": n}` or `{"hours": n}` (`GET /api/v1/categories`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(description = "A handle deadline: working days, or clock hours for emergencies.")]
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
mod tests;
