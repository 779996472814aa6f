//! The lookups of a validated [`Org`]: units and categories by code, the tree
//! walked up and down, who receives what.

use super::*;

impl Org {
    pub(super) fn build(units: Vec<UnitDef>, categories: Vec<CategoryDef>) -> Org {
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
