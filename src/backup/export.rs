//! `yiwang export`: the archive written from one read snapshot, line by line.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use chrono::Utc;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{ExportArgs, FORMAT, Header, TABLES, Trailer, VERSION, describe_counts};
use crate::store;
use crate::store::dump::{Engine, Snapshot, Table, Ty, Val, connect_existing};

/// Writes lines, hashing and counting them.
pub(super) struct LineWriter<W: Write> {
    pub(super) out: W,
    hasher: Sha256,
    records: u64,
    events: u64,
    buf: Vec<u8>,
}

impl<W: Write> LineWriter<W> {
    pub(super) fn new(out: W) -> LineWriter<W> {
        LineWriter {
            out,
            hasher: Sha256::new(),
            records: 0,
            events: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    fn header(&mut self, h: &Header) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, h)?;
        self.buf.push(b'\n');
        self.emit()
    }

    /// One row of `t` as a record line.
    pub(super) fn record(&mut self, t: &Table, vals: &[Val]) -> anyhow::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"kind\":");
        serde_json::to_writer(&mut self.buf, t.kind)?;
        for (c, v) in t.cols.iter().zip(vals) {
            let key = |buf: &mut Vec<u8>, name: &str| -> anyhow::Result<()> {
                buf.push(b',');
                serde_json::to_writer(&mut *buf, name)?;
                buf.push(b':');
                Ok(())
            };
            match (c.ty, v) {
                (Ty::Bool, Val::Int(n)) => {
                    key(&mut self.buf, c.field)?;
                    self.buf
                        .extend_from_slice(if *n != 0 { b"true" } else { b"false" });
                }
                (_, Val::Int(n)) => {
                    key(&mut self.buf, c.field)?;
                    self.buf.extend_from_slice(n.to_string().as_bytes());
                }
                (_, Val::Text(None)) => {
                    key(&mut self.buf, c.field)?;
                    self.buf.extend_from_slice(b"null");
                }
                (Ty::Json, Val::Text(Some(text))) => {
                    if fits_in_place(text) {
                        key(&mut self.buf, c.field)?;
                        self.buf.extend_from_slice(text.as_bytes());
                    } else {
                        key(&mut self.buf, &format!("{}_text", c.field))?;
                        serde_json::to_writer(&mut self.buf, text)?;
                    }
                }
                (Ty::List, Val::Text(Some(text))) => {
                    let items: Vec<String> = serde_json::from_str(text).with_context(|| {
                        format!(
                            "a {} row's {} is not a list of strings: {text:?}",
                            t.table, c.column
                        )
                    })?;
                    key(&mut self.buf, c.field)?;
                    serde_json::to_writer(&mut self.buf, &items)?;
                }
                (_, Val::Text(Some(text))) => {
                    key(&mut self.buf, c.field)?;
                    serde_json::to_writer(&mut self.buf, text)?;
                }
            }
        }
        self.buf.extend_from_slice(b"}\n");
        self.records += 1;
        if t.kind == "event" {
            self.events += 1;
        }
        self.emit()
    }

    fn emit(&mut self) -> anyhow::Result<()> {
        self.hasher.update(&self.buf);
        self.out.write_all(&self.buf)?;
        Ok(())
    }

    /// Writes the trailer and hands back the output and the checksum.
    fn finish(mut self) -> anyhow::Result<(W, Trailer)> {
        let trailer = Trailer {
            kind: "end".into(),
            events: self.events,
            records: self.records,
            sha256: hex::encode(self.hasher.finalize_reset()),
        };
        let mut line = serde_json::to_vec(&trailer)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok((self.out, trailer))
    }
}

/// Whether stored JSON text can be written in place on one line and read back
/// byte for byte.
pub(super) fn fits_in_place(text: &str) -> bool {
    !text.contains(['\n', '\r'])
        && serde_json::from_str::<&RawValue>(text).is_ok_and(|raw| raw.get() == text)
}

/// Where an export goes.
enum Output {
    Stdout,
    /// The temporary file and the name it gets when complete.
    File {
        tmp: PathBuf,
        dest: PathBuf,
    },
}

impl Output {
    fn open(path: &Path) -> anyhow::Result<(Output, Box<dyn Write + Send>)> {
        if path == Path::new("-") {
            return Ok((Output::Stdout, Box::new(std::io::stdout())));
        }
        let name = path
            .file_name()
            .with_context(|| format!("--out {} names no file", path.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.partial", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let file = std::fs::File::create(&tmp).with_context(|| {
            format!(
                "cannot write {} (as {} until it is complete)",
                path.display(),
                tmp.display()
            )
        })?;
        Ok((
            Output::File {
                tmp,
                dest: path.to_path_buf(),
            },
            Box::new(file),
        ))
    }

    fn describe(&self) -> String {
        match self {
            Output::Stdout => "standard output".into(),
            Output::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// Puts a complete file in place.
    fn commit(&self) -> anyhow::Result<()> {
        if let Output::File { tmp, dest } = self {
            std::fs::File::open(tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", tmp.display()))?;
            std::fs::rename(tmp, dest).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), dest.display())
            })?;
        }
        Ok(())
    }

    fn abandon(&self) {
        if let Output::File { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// What one export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    pub events: u64,
    pub records: u64,
    pub sha256: String,
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// `yiwang export`: the database behind `url` to `args.out`, with a summary on
/// standard error (standard output may be the archive).
pub async fn export(url: &str, args: &ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let pool = connect_existing(url).await?;
    let (output, sink) = Output::open(&args.out)?;
    let result = export_to(&pool, BufWriter::with_capacity(1 << 20, sink)).await;
    let done = match result {
        Ok(e) => output.commit().map(|_| e),
        Err(e) => Err(e),
    };
    let e = match done {
        Ok(e) => e,
        Err(err) => {
            output.abandon();
            return Err(err.context("export failed; no archive was written"));
        }
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "exported {} events ({} records: {}) to {} in {secs:.2} s; sha256 {}",
        e.events,
        e.records,
        describe_counts(&e.by_kind),
        output.describe(),
        e.sha256
    );
    eprintln!(
        "the archive holds no photos: copy the attachment directory too (README, \"Backup and restore\")"
    );
    Ok(())
}

/// Writes the whole database to `out` from one read transaction.
pub async fn export_to<W: Write>(pool: &store::Pool, out: W) -> anyhow::Result<Exported> {
    let engine = Engine::of(pool);
    let mut w = LineWriter::new(out);
    let mut by_kind = BTreeMap::new();
    let mut snap = Snapshot::begin(pool).await?;
    let schema: Option<i64> = snap
        .schema_version()
        .await
        .context("not a yiwang database (no migrations were applied to it)")?;
    let schema = schema.unwrap_or(0);
    let latest = engine.latest_schema();
    ensure!(
        schema == latest,
        "the database is at schema version {schema} and this yiwang writes version {latest}: {}",
        if schema < latest {
            "run `yiwang migrate` first"
        } else {
            "export it with the yiwang that migrated it"
        }
    );
    let max_position: i64 = snap.max_position().await?;
    w.header(&Header {
        format: FORMAT.into(),
        version: VERSION,
        engine: engine.name().into(),
        exported_at: store::hash::rfc3339(Utc::now()),
        schema_version: schema,
        max_position,
        yiwang: env!("CARGO_PKG_VERSION").into(),
    })?;
    for t in TABLES {
        let n = snap.rows(t, |vals| w.record(t, vals)).await?;
        by_kind.insert(t.kind, n);
    }
    snap.commit().await?;
    let (_, trailer) = w.finish()?;
    Ok(Exported {
        events: trailer.events,
        records: trailer.records,
        sha256: trailer.sha256,
        by_kind,
    })
}
