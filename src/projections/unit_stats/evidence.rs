//! The appraisal's evidence lists, per unit, month and list, in parts of at most
//! `daily::parts` items (migration 0018), written by [`write_evidence!`] inside
//! `UnitStats::write`'s transaction; and each month's revision, which readers
//! cache the month's parsed lists by (`stats::cache::fetch_month_lists`).

/// Pushes the keys `(month, unit, list, part)` of `$chunk` (pairs of an index
/// into `$keys` and a part's bound) as the rows of a `VALUES` list into `$q`.
macro_rules! push_part_keys {
    ($q:ident, $keys:ident, $chunk:ident) => {{
        let mut sep = $q.separated(", ");
        for (i, bound) in $chunk {
            let (unit, month, list) = $keys[*i];
            let bound: &str = bound.as_ref();
            sep.push("(")
                .push_bind_unseparated(*month)
                .push_unseparated(", ")
                .push_bind_unseparated(unit.as_str())
                .push_unseparated(", ")
                .push_bind_unseparated(list.as_ref())
                .push_unseparated(", ")
                .push_bind_unseparated(bound)
                .push_unseparated(")");
        }
    }};
}
pub(crate) use push_part_keys;

/// Writes the evidence lists `$monthly` (a `Delta::monthly()`) changes, on `$tx`
/// of the engine `$db`, in `$mode` (a batch from a checkpoint, or a rebuild), and
/// a new revision for every month whose lists changed. A macro, like the rest of
/// `write`, so that one body serves both engines' types (`on_pool!`).
macro_rules! write_evidence {
    ($tx:ident, $db:ty, $mode:expr, $monthly:expr) => {{
        // Evidence lists, per month, in parts (`daily::parts`): read the bounds
        // of the parts of the lists this batch changes, then the parts its
        // changes fall in, and write those parts only (split when they grow
        // past their size, deleted when left empty), so that a batch writes in
        // proportion to its changes, not to the month's lists. A rebuild has
        // nothing stored: every list is written whole, in full parts.
        let mut keys: Vec<&daily::EvidenceKey> = $monthly.evidence.keys().collect();
        keys.sort_unstable();
        let index: HashMap<(&str, i64, &str), usize> = keys
            .iter()
            .enumerate()
            .map(|(i, (unit, month, list))| ((unit.as_str(), *month, list.as_ref()), i))
            .collect();
        let mut bounds: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        let mut stored: Vec<HashMap<String, String>> = vec![HashMap::new(); keys.len()];
        if let Mode::From(_) = $mode {
            for chunk in keys.chunks(CHUNK) {
                let mut q = QueryBuilder::<$db>::new(
                    "SELECT unit, month, list, part FROM stats_evidence_monthly WHERE (month, unit, list) IN (VALUES ",
                );
                let mut sep = q.separated(", ");
                for (unit, month, list) in chunk {
                    sep.push("(")
                        .push_bind_unseparated(*month)
                        .push_unseparated(", ")
                        .push_bind_unseparated(unit.as_str())
                        .push_unseparated(", ")
                        .push_bind_unseparated(list.as_ref())
                        .push_unseparated(")");
                }
                q.push(")");
                let rows: Vec<(String, i64, String, String)> = q.build_query_as().fetch_all(&mut *$tx).await?;
                for (unit, month, list, part) in rows {
                    if let Some(&i) = index.get(&(unit.as_str(), month, list.as_str())) {
                        bounds[i].push(part);
                    }
                }
            }
            for b in &mut bounds {
                b.sort_unstable();
            }
            // The stored parts that the changes fall in.
            let mut wanted: Vec<(usize, &str)> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                for (bound, _) in daily::parts::by_part(&bounds[i], &$monthly.evidence[*k]) {
                    if bounds[i].binary_search_by(|b| b.as_str().cmp(bound)).is_ok() {
                        wanted.push((i, bound));
                    }
                }
            }
            for chunk in wanted.chunks(CHUNK) {
                let mut q = QueryBuilder::<$db>::new(
                    "SELECT unit, month, list, part, items FROM stats_evidence_monthly WHERE (month, unit, list, part) IN (VALUES ",
                );
                $crate::projections::unit_stats::evidence::push_part_keys!(q, keys, chunk);
                q.push(")");
                let rows: Vec<(String, i64, String, String, String)> = q.build_query_as().fetch_all(&mut *$tx).await?;
                for (unit, month, list, part, items) in rows {
                    if let Some(&i) = index.get(&(unit.as_str(), month, list.as_str())) {
                        stored[i].insert(part, items);
                    }
                }
            }
        }
        let mut upserts: Vec<(usize, String, String)> = Vec::new();
        let mut deletes: Vec<(usize, String)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let r = daily::parts::rewrite(
                &bounds[i],
                |b| stored[i].get(b).map(String::as_str),
                &$monthly.evidence[*k],
            );
            upserts.extend(r.upsert.into_iter().map(|(bound, items)| (i, bound, items)));
            deletes.extend(r.delete.into_iter().map(|bound| (i, bound)));
        }
        execute_chunks!($tx, "stats_evidence_monthly (emptied parts)", deletes, CHUNK, |chunk| {
            let mut q = QueryBuilder::<$db>::new(
                "DELETE FROM stats_evidence_monthly WHERE (month, unit, list, part) IN (VALUES ",
            );
            $crate::projections::unit_stats::evidence::push_part_keys!(q, keys, chunk);
            q.push(")");
            q
        });
        execute_chunks!($tx, "stats_evidence_monthly", upserts, CHUNK, |chunk| {
            let mut q = QueryBuilder::<$db>::new(
                "INSERT INTO stats_evidence_monthly (unit, month, list, part, items) ",
            );
            q.push_values(chunk, |mut b, (i, bound, items)| {
                let (unit, month, list) = keys[*i];
                b.push_bind(unit.as_str())
                    .push_bind(*month)
                    .push_bind(list.as_ref())
                    .push_bind(bound.as_str())
                    .push_bind(items.as_str());
            });
            q.push(" ON CONFLICT (month, unit, list, part) DO UPDATE SET items = excluded.items");
            q
        });
        // A new revision for every month whose lists changed (readers cache a
        // month's parsed lists by it: `stats::cache::fetch_month_lists`).
        let mut months: Vec<i64> = keys.iter().map(|(_, month, _)| *month).collect();
        months.sort_unstable();
        months.dedup();
        for chunk in months.chunks(CHUNK) {
            let mut q = QueryBuilder::<$db>::new("INSERT INTO stats_evidence_revs (month, rev) ");
            q.push_values(chunk, |mut b, month| {
                b.push_bind(*month).push_bind($crate::projections::stats::new_revision());
            });
            q.push(" ON CONFLICT (month) DO UPDATE SET rev = excluded.rev");
            q.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use write_evidence;
