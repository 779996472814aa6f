//! Attachments (photos of a report or of a handling): the bytes live on disk,
//! content-addressed by their SHA-256, and events refer to them by that hash.
//!
//! - An upload is streamed to a temporary file in `<dir>/tmp/` while it is counted,
//!   then cut at the image's end ([`image_end`]), hashed, and renamed (atomically,
//!   on the same file system) to `<dir>/<first two hex digits>/<hash>`. The same
//!   content uploaded again lands on the same name, so a retry or a second uploader
//!   stores nothing twice. The API renames it only once the whole request has been
//!   read and accepted, so a refused upload leaves no file.
//! - Bytes after the image's end are removed, not refused (see [`image_end`]): a
//!   JPEG with HTML after its end marker is stored as the JPEG alone.
//! - The content type comes from the file's first bytes (JPEG, PNG, WebP, HEIC/HEIF),
//!   never from the client's name or header.
//! - The `attachments` table holds one row per (hash, uploader). A command may only
//!   name a photo its own user uploaded (the legacy import, run by an operator with
//!   access to the database, only needs it to exist), and the uploader may read it
//!   back at `/api/v1/attachments/{hash}`. Everyone else reads it through a ticket
//!   that references it (`/api/v1/tickets/{id}/attachments/{hash}`), if they may see
//!   the ticket.
//! - A name is only ever built from a validated hash (64 lowercase hex digits), so no
//!   request can reach outside the directory.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::AppError;
use crate::store::{Pool, StoreError};

pub use crate::domain::is_attachment_hash as is_hash;

/// The default size limit of one attachment: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// At most this many photos in one command.
pub const MAX_PER_COMMAND: usize = 20;

/// Where attachments are kept and how large one may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

impl Settings {
    /// The defaults for a database: `attachments/` next to the SQLite file, or
    /// `./yiwang-data/attachments` for PostgreSQL.
    pub fn for_database(url: &str) -> Settings {
        Settings {
            dir: default_dir(url),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// `attachments/` next to the SQLite file; `./yiwang-data/attachments` otherwise
/// (PostgreSQL, or an in-memory SQLite database).
pub fn default_dir(url: &str) -> PathBuf {
    let fallback = || PathBuf::from("./yiwang-data/attachments");
    if !url.starts_with("sqlite:") {
        return fallback();
    }
    use std::str::FromStr;
    match sqlx::sqlite::SqliteConnectOptions::from_str(url) {
        Ok(o) => {
            let file = o.get_filename();
            match file.parent() {
                Some(p) if file != Path::new(":memory:") => p.join("attachments"),
                _ => fallback(),
            }
        }
        Err(_) => fallback(),
    }
}

/// The content type of a file from its first bytes, or None when it is not one of
/// the accepted image formats. [`SNIFF_LEN`] bytes are enough to decide.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    // ISO base media file: a `ftyp` box first, its major brand, then compatible brands.
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        const HEIC: [&[u8; 4]; 6] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"];
        let major = &head[8..12];
        if HEIC.iter().any(|b| b.as_slice() == major) {
            return Some("image/heic");
        }
        if major == b"mif1" || major == b"msf1" {
            // A generic HEIF container: HEIC when a compatible brand says so; AVIF (the
            // same container with another codec) is not accepted.
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            // Compatible brands from byte 16 to the end of the box (or of what we have).
            let brands: Vec<&[u8]> = head
                .get(16..size.min(head.len()))
                .unwrap_or_default()
                .chunks_exact(4)
                .collect();
            if brands
                .iter()
                .any(|b| HEIC.iter().any(|h| h.as_slice() == *b))
            {
                return Some("image/heic");
            }
            if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
                return None;
            }
            return Some("image/heif");
        }
    }
    None
}

/// Where the image of `content_type` (as [`sniff`] named it) ends in `b`: the
/// length to keep. None when its structure does not reach an end (a cut or damaged
/// file, or one that only starts like an image), which the upload refuses.
///
/// Decision: bytes after the end are stripped rather than refused. Phones append
/// data after a JPEG's end (Samsung's trailer, a motion photo's video, the further
/// pictures of an MPO file); refusing would turn away ordinary photos, while the
/// image a viewer shows is all there before the end. What is after it could be
/// anything (a `<script>`, a ZIP) and is what makes a polyglot file, so it is not
/// kept, and the hash is of the image alone.
///
/// - JPEG: the segments are walked from SOI: each marker segment is skipped by its
///   length (so an EXIF thumbnail, with its own SOI and EOI inside APP1, is skipped
///   whole), the entropy-coded data after SOS up to the next marker that is neither
///   a stuffed `FF 00` nor a restart marker, and the end is the first EOI (`FF D9`)
///   reached so. Not the last `FF D9` in the file: trailing bytes can hold one too.
///   Stray bytes between segments are skipped up to the next marker, as libjpeg
///   does. A segment whose length runs past the file, or no EOI: None.
/// - PNG: the chunks are walked by their lengths; the end is that of the `IEND`
///   chunk, its CRC included. No `IEND` within the file: None.
/// - WebP: the RIFF header's length (8 + its size field); beyond the file: None.
/// - HEIC/HEIF: the top-level ISO boxes are walked by their sizes; the end is that
///   of the last box that lies whole within the file (a box of size 0 runs to the
///   end of the file). Not even the first box whole: None.
pub fn image_end(content_type: &str, b: &[u8]) -> Option<usize> {
    match content_type {
        "image/jpeg" => jpeg_end(b),
        "image/png" => png_end(b),
        "image/webp" => webp_end(b),
        "image/heic" | "image/heif" => bmff_end(b),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let x = b.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([x[0], x[1]])))
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    let x = b.get(at..at.checked_add(4)?)?;
    Some(u64::from(u32::from_be_bytes([x[0], x[1], x[2], x[3]])))
}

fn jpeg_end(b: &[u8]) -> Option<usize> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    loop {
        // The next marker: stray bytes, then fill bytes (0xFF), then its code.
        while *b.get(i)? != 0xFF {
            i += 1;
        }
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let code = b[i];
        i += 1;
        match code {
            0xD9 => return Some(i),
            // A stuffed zero, TEM, a restart or a stray SOI: no length follows.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let len = be16(b, i)?;
        if len < 2 {
            return None;
        }
        i = i.checked_add(len)?;
        if i > b.len() {
            return None;
        }
        if code == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                while *b.get(i)? != 0xFF {
                    i += 1;
                }
                let mut j = i;
                while *b.get(j)? == 0xFF {
                    j += 1;
                }
                if matches!(b[j], 0x00 | 0xD0..=0xD7) {
                    i = j + 1;
                } else {
                    break;
                }
            }
        }
    }
}

fn png_end(b: &[u8]) -> Option<usize> {
    let mut i: usize = 8;
    loop {
        let len = usize::try_from(be32(b, i)?).ok()?;
        let kind = b.get(i + 4..i + 8)?;
        // Length, type, data, CRC.
        let end = i.checked_add(12)?.checked_add(len)?;
        if end > b.len() {
            return None;
        }
        if kind == b"IEND" {
            return Some(end);
        }
        i = end;
    }
}

fn webp_end(b: &[u8]) -> Option<usize> {
    let size = b.get(4..8)?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    let end = usize::try_from(size).ok()?.checked_add(8)?;
    (12..=b.len()).contains(&end).then_some(end)
}

fn bmff_end(b: &[u8]) -> Option<usize> {
    let mut i: usize = 0;
    while let Some(size) = be32(b, i) {
        let size = match size {
            0 => return Some(b.len()),
            1 => match b.get(i + 8..i + 16) {
                Some(x) => u64::from_be_bytes(x.try_into().ok()?),
                None => break,
            },
            n => n,
        };
        let Some(end) = usize::try_from(size).ok().and_then(|s| i.checked_add(s)) else {
            break;
        };
        if size < 8 || end > b.len() {
            break;
        }
        i = end;
    }
    (i > 0).then_some(i)
}

/// How many leading bytes [`sniff`] looks at (a HEIF `ftyp` box with its list of
/// compatible brands fits).
pub const SNIFF_LEN: usize = 64;

/// Where the file with this hash lives. The hash must have passed [`is_hash`].
pub fn path_of(dir: &Path, hash: &str) -> PathBuf {
    dir.join(&hash[..2]).join(hash)
}

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub hash: String,
    pub content_type: String,
    pub size: u64,
}

/// An upload on its way to disk: written to a temporary file while it is counted.
/// Dropped before [`Incoming::finish`], the temporary file is removed.
pub struct Incoming {
    file: tokio::fs::File,
    tmp: TempPath,
    dir: PathBuf,
    size: u64,
    max: u64,
    head: Vec<u8>,
}

/// Removes the temporary file unless it was renamed into place.
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("{what} {}: {e}", path.display()))
}

impl Incoming {
    pub async fn start(settings: &Settings) -> Result<Incoming, AppError> {
        let tmp_dir = settings.dir.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| io_error("cannot create", &tmp_dir, e))?;
        let tmp = tmp_dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_error("cannot create", &tmp, e))?;
        Ok(Incoming {
            file,
            tmp: TempPath(Some(tmp)),
            dir: settings.dir.clone(),
            size: 0,
            max: settings.max_bytes,
            head: Vec::with_capacity(SNIFF_LEN),
        })
    }

    /// Appends a chunk: 413 past the size limit, 415 as soon as the first bytes show
    /// that it is not an accepted image.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(too_large(self.max));
        }
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() == SNIFF_LEN && sniff(&self.head).is_none() {
                return Err(not_an_image());
            }
        }
        let tmp = self.tmp.0.as_deref().unwrap_or(Path::new("?"));
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| io_error("cannot write", tmp, e))
    }

    /// Cuts the file at the image's end ([`image_end`]; 415 when there is none),
    /// then makes it durable under its hash (or finds it there already). Call it
    /// only once the request is otherwise accepted: from here on the file stays.
    pub async fn finish(mut self) -> Result<Stored, AppError> {
        let content_type = sniff(&self.head).ok_or_else(not_an_image)?;
        let tmp = self.tmp.0.clone().unwrap_or_default();
        self.file
            .flush()
            .await
            .map_err(|e| io_error("cannot write", &tmp, e))?;
        // Read back once (at most the size limit) to find the end and hash what is kept.
        let bytes = tokio::fs::read(&tmp)
            .await
            .map_err(|e| io_error("cannot read", &tmp, e))?;
        let (end, hash) = crate::cpu::run(move || {
            let end = image_end(content_type, &bytes)?;
            Some((end, hex::encode(Sha256::digest(&bytes[..end]))))
        })
        .ok_or_else(incomplete_image)?;
        let end = end as u64;
        if end < self.size {
            tracing::info!(
                content_type,
                kept = end,
                removed = self.size - end,
                "bytes after the image's end removed from an upload"
            );
            self.file
                .set_len(end)
                .await
                .map_err(|e| io_error("cannot truncate", &tmp, e))?;
        }
        self.file
            .sync_all()
            .await
            .map_err(|e| io_error("cannot sync", &tmp, e))?;
        let dest = path_of(&self.dir, &hash);
        let parent = dest.parent().unwrap_or(&self.dir).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| io_error("cannot create", &parent, e))?;
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            // The same content is stored already; the temporary file goes on drop.
        } else {
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| io_error("cannot rename into", &dest, e))?;
            self.tmp.0 = None;
            // The rename is durable once the directory is.
            if let Ok(d) = tokio::fs::File::open(&parent).await {
                let _ = d.sync_all().await;
            }
        }
        Ok(Stored {
            hash,
            content_type: content_type.to_string(),
            size: end,
        })
    }
}

/// Removes temporary upload files older than a day: what uploads cut short by a
/// crash left behind. (A day, not less: other instances may share the directory and
/// be receiving an upload now.) Returns how many were removed.
pub fn sweep_stale_uploads(dir: &Path) -> usize {
    let day = std::time::Duration::from_secs(86_400);
    let Ok(entries) = std::fs::read_dir(dir.join("tmp")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

pub fn too_large(max: u64) -> AppError {
    AppError::PayloadTooLarge(format!(
        "an attachment may be at most {max} bytes ({:.1} MiB)",
        max as f64 / (1024.0 * 1024.0)
    ))
}

pub fn not_an_image() -> AppError {
    AppError::UnsupportedMediaType(
        "the file is not a JPEG, PNG, WebP or HEIC/HEIF image (judged by its content, not its name)"
            .into(),
    )
}

pub fn incomplete_image() -> AppError {
    AppError::UnsupportedMediaType(
        "the image is cut short or damaged: its structure does not reach an end (a JPEG's EOI, \
         a PNG's IEND chunk, a WebP's RIFF length); send the whole file"
            .into(),
    )
}

/// The file name extension of a content type [`sniff`] gives.
pub fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "image/heif" => "heif",
        _ => "bin",
    }
}

/// Records that `user` uploaded `a` (again: nothing changes).
pub async fn record(
    pool: &Pool,
    a: &Stored,
    user: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let size = i64::try_from(a.size).unwrap_or(i64::MAX);
    crate::repo::attachments::insert(pool, &a.hash, &a.content_type, size, user, now).await?;
    Ok(())
}

/// The stored attachment with this hash: uploaded by `user`, or by anyone (None).
pub async fn find(
    pool: &Pool,
    hash: &str,
    user: Option<&str>,
) -> Result<Option<Stored>, StoreError> {
    let row = crate::repo::attachments::find(pool, hash, user).await?;
    Ok(row.map(|(content_type, size)| Stored {
        hash: hash.to_string(),
        content_type,
        size: u64::try_from(size).unwrap_or(0),
    }))
}

/// The body of a command naming photos: at most [`MAX_PER_COMMAND`], each the hash
/// of an upload. (Whether they exist is [`crate::app::App::check_photos`].)
pub fn check_hashes(field: &str, photos: &[String]) -> Result<(), AppError> {
    if photos.len() > MAX_PER_COMMAND {
        return Err(AppError::invalid(
            field,
            format!("at most {MAX_PER_COMMAND} photos"),
        ));
    }
    for (i, p) in photos.iter().enumerate() {
        if !is_hash(p) {
            let shown: String = p.chars().take(80).collect();
            return Err(AppError::invalid(
                format!("{field}[{i}]"),
                format!(
                    "{shown:?} is not an attachment: name each photo by the hash that POST /api/v1/attachments answered (64 lowercase hex digits)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_first_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some("image/heic")
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1heicmiaf"),
            Some("image/heic")
        );
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1"), Some("image/heif"));
        assert_eq!(sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isom"), None);
        // Short or lying box sizes read no further than the bytes there are.
        assert_eq!(sniff(b"\0\0\0\x08ftypmif1"), Some("image/heif"));
        assert_eq!(sniff(b"\xff\xff\xff\xffftypmif1\0\0"), Some("image/heif"));
        assert_eq!(sniff(b"\0\0\0\x00ftypmif1\0\0\0\0heic"), Some("image/heif"));
        assert_eq!(sniff(b"hello, this is text"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
    }

    proptest::proptest! {
        /// Any first bytes, ISO boxes with any size and brands included, are judged
        /// without a panic.
        #[test]
        fn sniffing_never_panics(
            size in proptest::prelude::any::<[u8; 4]>(),
            brand in proptest::sample::select(vec![*b"mif1", *b"msf1", *b"heic", *b"isom"]),
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        ) {
            let mut b = size.to_vec();
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(&brand);
            b.extend_from_slice(&rest);
            for n in 0..=b.len() {
                let _ = sniff(&b[..n]);
            }
            let _ = sniff(&plain);
        }
    }

    #[test]
    fn an_image_ends_where_its_structure_says() {
        // JPEG: an EXIF thumbnail's EOI inside APP1 and a comment spelling EOI are
        // skipped with their segments; stuffed bytes and restarts in the scan too.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x0A];
        jpeg.extend_from_slice(&[b'E', b'x', 0xFF, 0xD8, 0xFF, 0xD9, 0, 0]);
        jpeg.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD9]);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0x00, 0xFF, 0xD3, 0x22]);
        jpeg.extend_from_slice(&[0xFF, 0xFF, 0xD9]);
        let end = jpeg.len();
        jpeg.extend_from_slice(b"<script>x</script>\xFF\xD9");
        assert_eq!(image_end("image/jpeg", &jpeg), Some(end));
        // Stray bytes between segments are skipped, as libjpeg does.
        assert_eq!(
            image_end("image/jpeg", b"\xFF\xD8\xFF\xE0\x00\x02tag\xFF\xD9<p>"),
            Some(11)
        );
        // Cut short, a length past the end, or no EOI at all: no end.
        assert_eq!(image_end("image/jpeg", &jpeg[..9]), None);
        assert_eq!(
            image_end("image/jpeg", b"\xFF\xD8\xFF\xE0upgrade\xFF\xD9"),
            None
        );
        assert_eq!(image_end("image/jpeg", b"\xFF\xD8\xFF\xE0\x00\x02"), None);

        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x04tEXtIEND\0\0\0\0".to_vec();
        png.extend_from_slice(b"\x00\x00\x00\x00IEND\xaeB`\x82");
        let end = png.len();
        png.extend_from_slice(b"<html>");
        assert_eq!(image_end("image/png", &png), Some(end));
        assert_eq!(image_end("image/png", &png[..end - 1]), None);

        let webp = b"RIFF\x0c\0\0\0WEBPVP8L\0\0\0\0trailing";
        assert_eq!(image_end("image/webp", webp), Some(20));
        assert_eq!(image_end("image/webp", &webp[..19]), None);

        let mut heic = b"\0\0\0\x10ftypheic\0\0\0\0\0\0\0\x0cmdat1234".to_vec();
        let end = heic.len();
        heic.extend_from_slice(b"<script>");
        assert_eq!(image_end("image/heic", &heic), Some(end));
        heic.truncate(end);
        heic.extend_from_slice(b"\0\0\0\0free<script>");
        assert_eq!(image_end("image/heic", &heic), Some(heic.len()));
        assert_eq!(image_end("image/heif", b"\0\0\0\x40ftypmif1"), None);
        assert_eq!(image_end("text/plain", b"x"), None);
    }

    proptest::proptest! {
        /// Any bytes after any image's first bytes are judged without a panic, and
        /// an end is never past the bytes.
        #[test]
        fn finding_the_end_never_panics(
            kind in proptest::sample::select(vec![0usize, 1, 2, 3]),
            rest in proptest::collection::vec(
                proptest::sample::select(vec![0x00u8, 0x02, 0x08, 0xD9, 0xDA, 0xD0, 0xFF, b'I', b'E', b'N', b'D']),
                0..200,
            ),
        ) {
            let (ct, head): (&str, &[u8]) = [
                ("image/jpeg", b"\xFF\xD8".as_slice()),
                ("image/png", b"\x89PNG\r\n\x1a\n".as_slice()),
                ("image/webp", b"RIFF".as_slice()),
                ("image/heic", b"".as_slice()),
            ][kind];
            let mut b = head.to_vec();
            b.extend_from_slice(&rest);
            for n in 0..=b.len() {
                if let Some(end) = image_end(ct, &b[..n]) {
                    proptest::prop_assert!(end <= n);
                }
            }
        }
    }

    #[test]
    fn the_default_directory_sits_next_to_the_sqlite_file() {
        assert_eq!(
            default_dir("sqlite://./yiwang-data/yiwang.db"),
            PathBuf::from("./yiwang-data/attachments")
        );
        assert_eq!(
            default_dir("sqlite:///var/lib/yiwang/y.db"),
            PathBuf::from("/var/lib/yiwang/attachments")
        );
        assert_eq!(
            default_dir("postgres://u@h:5432/db"),
            PathBuf::from("./yiwang-data/attachments")
        );
    }

    #[test]
    fn only_hashes_name_files() {
        let h = "a".repeat(64);
        assert!(is_hash(&h));
        assert!(!is_hash(&"A".repeat(64)));
        assert!(!is_hash(&"a".repeat(63)));
        assert!(!is_hash("../../etc/passwd"));
        assert_eq!(path_of(Path::new("/d"), &h), Path::new("/d/aa").join(&h));
        assert!(check_hashes("photos", std::slice::from_ref(&h)).is_ok());
        assert!(check_hashes("photos", &["x.jpg".into()]).is_err());
        assert!(check_hashes("photos", &vec![h; 21]).is_err());
    }
}
