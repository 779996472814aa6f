//! `yiwang restore`: an archive read back line by line, checked, and inserted in one
//! transaction that commits only when the trailer matches.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use chrono::DateTime;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::FORMAT;
use super::{Header, MUST_BE_EMPTY, RestoreArgs, TABLES, Trailer, VERSION, describe_counts};
use crate::repo;
use crate::store::dump::{self, Engine, Pending, Table, Tx, Ty, Val};
use crate::store::{self, Pool};

/// Reads an archive line by line, hashing what precedes the trailer.
struct LineReader {
    inner: Box<dyn BufRead + Send>,
    /// The 1-based number of the last line read.
    line: usize,
    hasher: Sha256,
}

impl LineReader {
    /// The next line with its newline; None at the end.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<Option<bool>> {
        buf.clear();
        let n = self
            .inner
            .read_until(b'\n', buf)
            .with_context(|| format!("cannot read line {} of the archive", self.line + 1))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let complete = buf.last() == Some(&b'\n');
        if complete {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                bail!(
                    "line {}: ends with CR LF: the archive was converted as text; use the file exactly as written",
                    self.line
                );
            }
        }
        Ok(Some(complete))
    }
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::io::stdin(),
        )));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

/// Reads and checks the header (before anything is written anywhere).
fn read_header(r: &mut LineReader) -> anyhow::Result<Header> {
    let mut buf = Vec::new();
    if r.inner.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        bail!(
            "the archive is gzip-compressed: decompress it first (gunzip -c FILE | yiwang restore -)"
        );
    }
    let complete = r
        .next_line(&mut buf)?
        .context("the archive is empty: no header")?;
    ensure!(complete, "the archive ends inside its header: truncated");
    let h: Header = serde_json::from_slice(&buf).map_err(|e| {
        anyhow::anyhow!("line 1 is not the header of a yiwang export archive ({e})")
    })?;
    ensure!(
        h.format == FORMAT,
        "not a yiwang export archive: the header's format is {:?}, not {FORMAT:?}",
        h.format
    );
    ensure!(
        h.version == VERSION,
        "the archive is format version {} and this yiwang reads version {VERSION}",
        h.version
    );
    r.hasher.update(&buf);
    r.hasher.update(b"\n");
    Ok(h)
}

/// A record line's values for its table, checked field by field.
pub(super) fn parse_record(
    line: usize,
    fields: &BTreeMap<&str, &RawValue>,
) -> anyhow::Result<Parsed> {
    let kind_raw = fields
        .get("kind")
        .with_context(|| format!("line {line}: a record without a \"kind\""))?;
    let kind: String = serde_json::from_str(kind_raw.get())
        .with_context(|| format!("line {line}: \"kind\" is not a string"))?;
    if kind == "end" {
        let trailer: Trailer = serde_json::from_str(&serde_json::to_string(fields)?)
            .with_context(|| format!("line {line}: a bad trailer"))?;
        return Ok(Parsed::End(trailer));
    }
    let table = TABLES
        .iter()
        .find(|t| t.kind == kind)
        .with_context(|| format!("line {line}: unknown record kind {kind:?}"))?;
    let mut known = 1;
    let mut vals = Vec::with_capacity(table.cols.len());
    for c in table.cols {
        let what =
            |e: &dyn std::fmt::Display| format!("line {line}: {kind} field {:?}: {e}", c.field);
        let raw = match fields.get(c.field) {
            Some(r) => {
                known += 1;
                Some(*r)
            }
            None => None,
        };
        let val = match (c.ty, raw) {
            (Ty::Json, None) => {
                let alt = format!("{}_text", c.field);
                let raw = fields
                    .get(alt.as_str())
                    .with_context(|| format!("line {line}: {kind} record without {:?}", c.field))?;
                known += 1;
                let text: String =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                Val::Text(Some(text))
            }
            (Ty::Json, Some(raw)) => {
                ensure!(
                    !fields.contains_key(format!("{}_text", c.field).as_str()),
                    "line {line}: {kind} record with both {:?} and {:?}",
                    c.field,
                    format!("{}_text", c.field)
                );
                Val::Text(Some(raw.get().to_string()))
            }
            (_, None) if c.added => Val::Text(None),
            (_, None) => bail!("line {line}: {kind} record without {:?}", c.field),
            (Ty::Bool, Some(raw)) => {
                let b: bool =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                Val::Int(i64::from(b))
            }
            (Ty::Int, Some(raw)) => {
                match serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))? {
                    Some(n) => Val::Int(n),
                    None if c.nullable => Val::Text(None),
                    None => bail!(what(&"is null")),
                }
            }
            (Ty::List, Some(raw)) => {
                let items: Vec<String> =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                Val::Text(Some(serde_json::to_string(&items)?))
            }
            (ty, Some(raw)) => {
                let s: Option<String> =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                match &s {
                    None if !c.nullable => bail!(what(&"is null")),
                    Some(s) if ty == Ty::Uuid => {
                        Uuid::parse_str(s).map_err(|e| anyhow::anyhow!(what(&e)))?;
                    }
                    Some(s) if ty == Ty::Time => {
                        DateTime::parse_from_rfc3339(s).map_err(|e| anyhow::anyhow!(what(&e)))?;
                    }
                    _ => {}
                }
                Val::Text(s)
            }
        };
        vals.push(val);
    }
    if fields.len() != known {
        let extra: Vec<&str> = fields
            .keys()
            .copied()
            .filter(|k| {
                *k != "kind"
                    && !table.cols.iter().any(|c| {
                        c.field == *k || (c.ty == Ty::Json && *k == format!("{}_text", c.field))
                    })
            })
            .collect();
        bail!(
            "line {line}: {kind} record with fields this format does not have: {}",
            extra.join(", ")
        );
    }
    Ok(Parsed::Row(table, vals))
}

pub(super) enum Parsed {
    Row(&'static Table, Vec<Val>),
    End(Trailer),
}

fn refuse_occupied(url: &str, found: &[(&str, i64)]) -> anyhow::Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = found.iter().map(|(t, n)| format!("{n} in {t}")).collect();
    bail!(
        "{} is not a fresh database ({} rows: {}): restore only into an empty database; nothing was written",
        crate::config::redact_url(url),
        found.iter().map(|(_, n)| n).sum::<i64>(),
        what.join(", ")
    )
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub header: Header,
    pub events: u64,
    pub records: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The verification of the restored log.
    pub verify: crate::verify::Report,
}

/// `yiwang restore`: the archive at `args.file` into the fresh database at `url`.
/// Prints a summary and the verification of the restored log; the projections are
/// the caller's (cli.rs rebuilds them). Err when nothing was restored.
pub async fn restore(url: &str, args: &RestoreArgs) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let mut reader = LineReader {
        inner: open_input(&args.file)?,
        line: 0,
        hasher: Sha256::new(),
    };
    let header = read_header(&mut reader)?;
    // Both engines have the same migrations, numbered alike.
    let latest = Engine::Sqlite
        .latest_schema()
        .min(Engine::Postgres.latest_schema());
    ensure!(
        header.schema_version <= latest,
        "the archive was made at schema version {} and this yiwang knows up to {latest}: restore it with a newer yiwang",
        header.schema_version,
    );
    let s = store::open(url, true).await?;
    let pool = s.pool();
    let engine = Engine::of(&pool);
    refuse_occupied(url, &dump::occupied(&pool, MUST_BE_EMPTY).await?)?;
    if let Pool::Postgres(p) = &pool {
        dump::advance_xids(p, header.max_position).await?;
    }
    let mut tx = Tx::begin(&pool).await?;
    let result = match tx.occupied(MUST_BE_EMPTY).await {
        Ok(found) if found.is_empty() => {
            load_counted(&mut reader, &mut tx, &header, args.keep_damaged).await
        }
        Ok(found) => refuse_occupied(url, &found).map(|_| Default::default()),
        Err(e) => Err(e),
    };
    let (events, records, by_kind) = match result {
        Ok(x) => x,
        Err(e) => {
            tx.rollback().await;
            return Err(e.context(format!(
                "restore refused: {} was left without anything from the archive",
                crate::config::redact_url(url)
            )));
        }
    };
    repo::dump::continue_ticket_serials(&mut tx).await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "restored {events} events ({records} records: {}) from {} ({} archive of {}) into {} ({}) in {secs:.2} s",
        describe_counts(&by_kind),
        args.file.display(),
        header.engine,
        header.exported_at,
        crate::config::redact_url(url),
        engine.name()
    );
    let verify = crate::verify::run(&pool).await?;
    for p in &verify.problems {
        println!("{p}");
    }
    println!("{}", verify.summary());
    Ok(Restored {
        header,
        events,
        records,
        by_kind,
        verify,
    })
}

type Counts = (u64, u64, BTreeMap<&'static str, u64>);

/// [`load`], with the SQLite trigger that wants each event at its stream's head + 1
/// dropped meanwhile (an archive is restored as it is, a damaged log included; the
/// verification after the restore reports what is wrong with it), and the log
/// tally then set from the events restored.
async fn load_counted(
    r: &mut LineReader,
    tx: &mut Tx,
    header: &Header,
    keep_damaged: bool,
) -> anyhow::Result<Counts> {
    tx.drop_version_trigger().await?;
    let counts = load(r, tx, header, keep_damaged).await?;
    tx.create_version_trigger().await?;
    dump::set_tally(tx).await?;
    Ok(counts)
}

/// Inserts every record, then checks the trailer; Err leaves the transaction to be
/// rolled back.
async fn load(
    r: &mut LineReader,
    tx: &mut Tx,
    header: &Header,
    keep_damaged: bool,
) -> anyhow::Result<Counts> {
    let mut pending = Pending::default();
    let mut chains = Chains::default();
    let mut by_kind: BTreeMap<&'static str, u64> = TABLES.iter().map(|t| (t.kind, 0)).collect();
    let (mut events, mut records, mut max_position) = (0u64, 0u64, 0i64);
    let mut buf = Vec::with_capacity(4096);
    let trailer = loop {
        let Some(complete) = r.next_line(&mut buf)? else {
            bail!(
                "the archive ends after line {} without its trailer: it is truncated",
                r.line
            );
        };
        let line = r.line;
        let fields: BTreeMap<&str, &RawValue> = serde_json::from_slice(&buf).map_err(|e| {
            if complete {
                anyhow::anyhow!("line {line} is not a valid record ({e}): the archive is damaged")
            } else {
                anyhow::anyhow!("the archive ends in the middle of line {line}: it is truncated")
            }
        })?;
        match parse_record(line, &fields)? {
            Parsed::End(t) => break t,
            Parsed::Row(table, vals) => {
                ensure!(
                    complete,
                    "the archive ends in the middle of line {line}: it is truncated"
                );
                if table.kind == "event" {
                    events += 1;
                    if let Some(Val::Int(p)) = vals.first() {
                        max_position = max_position.max(*p);
                    }
                    chains.push(line, &vals)?;
                } else if table.kind == "ticket_view" {
                    chains.view(&vals);
                }
                records += 1;
                *by_kind.entry(table.kind).or_default() += 1;
                r.hasher.update(&buf);
                r.hasher.update(b"\n");
                tx.insert(&mut pending, table, vals).await?;
            }
        }
    };
    let trailer_line = r.line;
    if r.next_line(&mut buf)?.is_some() {
        bail!(
            "line {}: more after the trailer (line {trailer_line}): the archive is damaged",
            r.line
        );
    }
    let sha = hex::encode(r.hasher.finalize_reset());
    ensure!(
        trailer.sha256 == sha,
        "the archive's checksum does not match: the trailer says sha256 {} but lines 1 to {} hash to {sha}: \
         the archive was changed or damaged",
        trailer.sha256,
        trailer_line - 1
    );
    ensure!(
        trailer.records == records && trailer.events == events,
        "the trailer counts {} records and {} events, the archive holds {records} and {events}",
        trailer.records,
        trailer.events
    );
    ensure!(
        max_position <= header.max_position,
        "an event at position {max_position} is past the header's max_position {}",
        header.max_position
    );
    let problems = chains.finish();
    if !problems.is_empty() && !keep_damaged {
        let shown: Vec<String> = problems.iter().take(10).map(|p| format!("  {p}")).collect();
        bail!(
            "the archive's log does not verify ({} problem{}; the checksum matches, so the archive was \
             edited and its trailer recomputed, or the log was damaged before the export):\n{}{}\n\
             restore --keep-damaged loads such a log as it is, for inspection",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            shown.join("\n"),
            if problems.len() > 10 { "\n  …" } else { "" },
        );
    }
    tx.flush(&mut pending).await?;
    Ok((events, records, by_kind))
}

/// The hash chains of the archive's events, checked as they stream past (every
/// event's content against its hash, its link to the one before, versions without
/// gaps), so that a log that does not verify is refused before the restore
/// commits. (The full `yiwang verify` runs after the commit, with the views.)
#[derive(Default)]
struct Chains {
    streams: std::collections::HashMap<Uuid, crate::verify::StreamCheck>,
    /// The heads the ticket views recorded (a cut tail shows only against them).
    views: std::collections::HashMap<Uuid, crate::verify::ViewHead>,
}

impl Chains {
    /// One event record's values, in the column order of `store::dump::EVENTS`.
    fn push(&mut self, line: usize, vals: &[Val]) -> anyhow::Result<()> {
        let e = recorded(vals).with_context(|| format!("line {line}: an event record"))?;
        self.streams
            .entry(e.stream_id)
            .or_insert_with(|| crate::verify::StreamCheck::new(e.stream_id))
            .push(crate::verify::Link::of(&e));
        Ok(())
    }

    /// A ticket view record's head (`id`, …, `version`, …, `head_hash`, in the
    /// column order of `repo::dump::TICKET_VIEW`).
    fn view(&mut self, vals: &[Val]) {
        if let (Some(Val::Text(Some(id))), Some(Val::Int(version)), Some(Val::Text(Some(head)))) =
            (vals.first(), vals.get(8), vals.get(12))
            && let Ok(id) = Uuid::parse_str(id)
        {
            let head = crate::verify::ViewHead {
                version: *version,
                head_hash: head.clone(),
            };
            self.views.insert(id, head);
        }
    }

    fn finish(self) -> Vec<crate::verify::Problem> {
        let views = self.views;
        let mut all: Vec<crate::verify::Problem> = self
            .streams
            .into_iter()
            .flat_map(|(id, c)| c.finish(views.get(&id)))
            // A stream without a view row (not every stream is a ticket's) is for
            // `yiwang verify` after the commit to judge; here the chains and the
            // heads the views recorded.
            .filter(|p| p.kind != crate::verify::ProblemKind::View || views.contains_key(&p.stream))
            .collect();
        all.sort_by_key(|p| (p.position, p.version));
        all
    }
}

/// An event record as the store would read it (its JSON parsed, its times read).
fn recorded(vals: &[Val]) -> anyhow::Result<store::RecordedEvent> {
    let [
        Val::Int(position),
        Val::Text(Some(stream)),
        Val::Int(version),
        Val::Text(Some(event_type)),
        Val::Int(schema_version),
        Val::Text(Some(data)),
        Val::Text(Some(metadata)),
        Val::Text(Some(occurred_at)),
        Val::Text(Some(recorded_at)),
        Val::Text(Some(prev_hash)),
        Val::Text(Some(hash)),
    ] = vals
    else {
        bail!("the values do not fit the events table");
    };
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .with_context(|| format!("{t:?} is not an RFC 3339 time"))
    };
    // A stored text that is not JSON is hashed as the string it is.
    let json = |t: &str| {
        serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
    };
    Ok(store::RecordedEvent {
        position: *position,
        stream_id: Uuid::parse_str(stream)?,
        version: *version,
        event_type: event_type.clone(),
        schema_version: i32::try_from(*schema_version)?,
        data: json(data),
        metadata: json(metadata),
        occurred_at: time(occurred_at)?,
        recorded_at: time(recorded_at)?,
        prev_hash: prev_hash.clone(),
        hash: hash.clone(),
    })
}
