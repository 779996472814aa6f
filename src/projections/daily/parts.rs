//! The evidence lists in parts (migration 0018). A stored list (unit, month, list)
//! is a sorted multiset of `ticket:position` items; it is kept as rows of
//! `stats_evidence_monthly`, one per part, each holding the items from its `part`
//! (a lower bound: an item's text, or `""` for the first part) up to the next
//! part's bound. The list is its parts' items in the order of their bounds.
//!
//! A batch rewrites only the parts its changes fall in: a part that grows past
//! [`PART_ITEMS`] is split, one left empty is deleted. Before, the whole list was
//! one text value and every batch wrote it again (210 kB for a month of the demo
//! organisation, whose one category puts every ticket in one list). Ticket ids are
//! UUIDv7, so a month's new tickets sort last: additions land in the last part,
//! and the removals (a deadline met after all) mostly in the last one or two.
//!
//! Everything here is pure; `unit_stats` reads and writes the rows.

/// Items a part is filled to: it is split when a batch takes it past this size.
/// About 6 kB of text (an item is a 36-character ticket id, a colon and a
/// position), so a batch writes a few kB per list it changes, whatever the
/// month's size, and a month of a city district is a few thousand rows.
pub const PART_ITEMS: usize = 128;

/// The items of a stored part (comma-separated, sorted) after `changes`
/// ((item, ±count), as `Delta::prune` leaves them): a sorted multiset. Removing
/// an item that is not there changes nothing.
pub fn apply<'a>(stored: &'a str, changes: &'a [(String, i64)]) -> Vec<&'a str> {
    let mut items: Vec<&str> = stored.split(',').filter(|x| !x.is_empty()).collect();
    items.sort_unstable();
    for (item, n) in changes {
        for _ in 0..n.unsigned_abs() {
            let at = items.partition_point(|x| *x < item.as_str());
            if *n > 0 {
                items.insert(at, item.as_str());
            } else if items.get(at) == Some(&item.as_str()) {
                items.remove(at);
            }
        }
    }
    items
}

/// The bound of the part `item` belongs in, given a list's bounds in order: the
/// greatest at or below it, or `""` (the first part's, which may have to be made)
/// when none is.
pub fn part_for<'a>(bounds: &'a [String], item: &str) -> &'a str {
    let at = bounds.partition_point(|b| b.as_str() <= item);
    match at.checked_sub(1) {
        Some(i) => bounds[i].as_str(),
        None => "",
    }
}

/// A list's changes grouped by the part they fall in, as (bound, changes), in
/// order. `bounds` are sorted; so are `changes` by item (`Delta::prune` sorts
/// them), so each part's changes are one run of them.
pub fn by_part<'a>(
    bounds: &'a [String],
    changes: &'a [(String, i64)],
) -> Vec<(&'a str, &'a [(String, i64)])> {
    debug_assert!(changes.is_sorted_by(|a, b| a.0 <= b.0), "changes sorted");
    changes
        .chunk_by(|a, b| part_for(bounds, &a.0) == part_for(bounds, &b.0))
        .map(|run| (part_for(bounds, &run[0].0), run))
        .collect()
}

/// The rows a part's items make, as (bound, comma-separated items): the first
/// under the part's own `bound`, each further one (when there are more than
/// [`PART_ITEMS`]) under its first item. Copies of one item stay in one part, so
/// that the part an item's bound names holds all of them. No rows when `items` is
/// empty: the part is deleted.
pub fn split(bound: &str, items: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(items.len().div_ceil(PART_ITEMS));
    let mut start = 0;
    while start < items.len() {
        let mut end = (start + PART_ITEMS).min(items.len());
        while end < items.len() && items[end] == items[end - 1] {
            end += 1;
        }
        let lo = if start == 0 { bound } else { items[start] };
        out.push((lo.to_string(), items[start..end].join(",")));
        start = end;
    }
    out
}

/// What a batch writes to one list: the parts to upsert (bound, items) and the
/// bounds of the parts to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    pub upsert: Vec<(String, String)>,
    pub delete: Vec<String>,
}

/// The rows that bring a list up to date with `changes`. `bounds`: the list's
/// stored parts' bounds, sorted; `stored(bound)`: the items of a stored part
/// (asked for the parts `by_part` names that are among `bounds` only).
pub fn rewrite<'a>(
    bounds: &[String],
    stored: impl Fn(&str) -> Option<&'a str>,
    changes: &[(String, i64)],
) -> Rewrite {
    let mut out = Rewrite::default();
    for (bound, run) in by_part(bounds, changes) {
        let exists = bounds.binary_search_by(|b| b.as_str().cmp(bound)).is_ok();
        let before = if exists {
            stored(bound).unwrap_or("")
        } else {
            ""
        };
        let items = apply(before, run);
        let rows = split(bound, &items);
        if rows.is_empty() {
            if exists {
                out.delete.push(bound.to_string());
            }
        } else {
            out.upsert.extend(rows);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A list's parts as the table holds them: bound → items.
    type Parts = BTreeMap<String, String>;

    fn write(parts: &mut Parts, changes: &[(String, i64)]) -> Rewrite {
        let bounds: Vec<String> = parts.keys().cloned().collect();
        let r = rewrite(&bounds, |b| parts.get(b).map(String::as_str), changes);
        for b in &r.delete {
            assert!(parts.remove(b).is_some(), "deletes a stored part: {b}");
        }
        for (b, items) in &r.upsert {
            parts.insert(b.clone(), items.clone());
        }
        r
    }

    fn joined(parts: &Parts) -> String {
        let items: Vec<&str> = parts
            .values()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .collect();
        items.join(",")
    }

    fn well_formed(parts: &Parts) {
        for (b, items) in parts {
            let v: Vec<&str> = items.split(',').collect();
            assert!(!items.is_empty(), "no empty part: {b}");
            assert!(v.is_sorted(), "part {b} sorted");
            assert!(v[0] >= b.as_str(), "part {b} starts at its bound: {}", v[0]);
            // Past its size only by copies of the item at the cut.
            let over = v.get(PART_ITEMS - 1..).unwrap_or_default();
            assert!(
                over.iter().all(|x| *x == over[0]),
                "part {b} holds {} items",
                v.len()
            );
        }
        // Each part's items lie below the next part's bound.
        let bounds: Vec<&String> = parts.keys().collect();
        for w in bounds.windows(2) {
            let last = parts[w[0]].rsplit(',').next().unwrap_or("");
            assert!(last < w[1].as_str(), "{last} below the bound {}", w[1]);
        }
    }

    fn item(i: u32) -> String {
        format!("0190{i:04x}-0000-7000-8000-000000000000:{}", i % 7)
    }

    #[test]
    fn items_go_to_the_part_whose_range_holds_them() {
        let bounds = vec!["".to_string(), "b".to_string(), "d".to_string()];
        assert_eq!(part_for(&bounds, "a"), "");
        assert_eq!(part_for(&bounds, "b"), "b");
        assert_eq!(part_for(&bounds, "c"), "b");
        assert_eq!(part_for(&bounds, "z"), "d");
        // The first part deleted: an item below every bound makes it again.
        assert_eq!(part_for(&bounds[1..], "a"), "");
        assert_eq!(part_for(&[], "a"), "");
        let changes = [
            ("a".to_string(), 1),
            ("c".to_string(), -1),
            ("c1".to_string(), 1),
            ("e".to_string(), 2),
        ];
        let groups = by_part(&bounds, &changes);
        let names: Vec<(&str, usize)> = groups.iter().map(|(b, r)| (*b, r.len())).collect();
        assert_eq!(names, vec![("", 1), ("b", 2), ("d", 1)]);
    }

    #[test]
    fn a_part_past_its_size_splits_and_copies_stay_together() {
        let items: Vec<String> = (0..PART_ITEMS as u32 * 2 + 1).map(item).collect();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        let rows = split("", &refs);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, "");
        assert_eq!(rows[1].0, items[PART_ITEMS]);
        assert_eq!(rows[2].1, items[PART_ITEMS * 2]);
        // Copies of the item at the cut move together to the first piece.
        let mut refs = refs.clone();
        refs.insert(PART_ITEMS, refs[PART_ITEMS - 1]);
        let rows = split("x", &refs);
        assert_eq!(rows[0].0, "x");
        assert_eq!(rows[0].1.split(',').count(), PART_ITEMS + 1);
        assert_eq!(rows[1].0, items[PART_ITEMS]);
        assert!(split("", &[]).is_empty());
    }

    #[test]
    fn appending_to_a_long_list_rewrites_its_last_part_only() {
        let mut parts = Parts::new();
        let all: Vec<(String, i64)> = (0..1000).map(|i| (item(i), 1)).collect();
        write(&mut parts, &all);
        well_formed(&parts);
        assert_eq!(parts.len(), 1000usize.div_ceil(PART_ITEMS));
        // A new ticket (the latest id), and a deadline met by a recent one.
        let r = write(&mut parts, &[(item(998), -1), (item(1000), 1)]);
        assert_eq!(r.delete, Vec::<String>::new());
        assert_eq!(r.upsert.len(), 1, "{r:?}");
        assert_eq!(r.upsert[0].0, item((1000 / PART_ITEMS * PART_ITEMS) as u32));
        well_formed(&parts);
        // A removal that empties a part deletes it; an item below every bound
        // after the first part went makes the first part again.
        let first: Vec<(String, i64)> = (0..PART_ITEMS as u32).map(|i| (item(i), -1)).collect();
        let r = write(&mut parts, &first);
        assert_eq!(r.delete, vec![String::new()]);
        let r = write(&mut parts, &[(item(3), 1)]);
        assert_eq!(r.upsert, vec![(String::new(), item(3))]);
        well_formed(&parts);
    }

    /// A batch of (item index, ±count) changes, netted and sorted as
    /// `Delta::prune` leaves them.
    fn batch(raw: Vec<(u32, i64)>) -> Vec<(String, i64)> {
        let mut net: BTreeMap<String, i64> = BTreeMap::new();
        for (i, n) in raw {
            *net.entry(item(i)).or_default() += n;
        }
        net.into_iter().filter(|(_, n)| *n != 0).collect()
    }

    proptest! {
        /// Whatever the batches (additions mostly at the end, as UUIDv7 tickets
        /// make them, removals and copies anywhere), the parts joined in order are
        /// the list that one text value written whole would be, and every part
        /// keeps to its range and size.
        #[test]
        fn parts_joined_are_the_whole_list(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        3 => (0u32..600, Just(1i64)),
                        2 => (0u32..600, Just(-1i64)),
                        1 => (0u32..600, -2i64..3),
                    ],
                    0..120,
                ),
                1..8,
            )
        ) {
            let mut parts = Parts::new();
            let mut whole = String::new();
            for raw in batches {
                let changes = batch(raw);
                whole = apply(&whole, &changes).join(",");
                write(&mut parts, &changes);
                well_formed(&parts);
                prop_assert_eq!(joined(&parts), whole.clone());
            }
        }
    }
}
