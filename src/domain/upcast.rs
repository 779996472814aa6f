//! Event schema versions and upcasters.
//!
//! Every stored event carries the schema version of its payload's shape (the
//! `schema_version` column, covered by the event's hash). The log is never
//! rewritten, so when the shape of an event type changes the old payloads stay as
//! they were stored, and reading them goes through an upcaster: a pure function
//! from the JSON of version n of one event type to the JSON of version n + 1.
//! Reading an event of version n applies the type's upcasters n → n + 1 → … → the
//! current version, then decodes the result into the current Rust type
//! (`TicketEvent::from_parts`, `from_json_parts`). An event of the current version
//! is decoded directly, with no upcaster and no intermediate `Value`.
//!
//! A type's current version is 1 plus the number of upcasters registered for it in
//! [`UPCASTERS`], so registering an upcaster is what bumps the version new events
//! are written with. A version newer than this build knows (written by a later
//! release) or below 1 is an error ([`DecodeError`]): it is never decoded as if it
//! were the current shape.
//!
//! To change the shape of an event type: change its Rust type, write the upcaster
//! from the last version's JSON to the new one and add it to [`UPCASTERS`] (with a
//! comment saying what the old shape was and which releases wrote it), and add a
//! given/when/then test below with a payload as the old release stored it. Keep
//! the JSON field names clients see on new events (the events API and the feed
//! hand out the stored payloads, with their `schema_version`).

use serde_json::Value;

use super::events::is_attachment_hash;

/// One step of an event type's chain: reads version `from`, returns `from + 1`.
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: i32,
    pub up: fn(Value) -> Result<Value, String>,
}

/// Every upcaster, by event type and the version it reads. The versions of one
/// type must run 1, 2, 3, … without a gap (a test checks it).
pub static UPCASTERS: &[Upcaster] = &[
    // TicketHandled 1 → 2. The first release's `handle` took `photos` as any names
    // of up to 200 characters (before attachments existed, commit 423d514); since
    // attachments (commit 5304d34, migration 0003) the API and `yiwang import` take
    // only the SHA-256 hashes of uploads, but the payload stayed version 1, so a
    // reader could not tell a hash from an old free-form name without looking at
    // each one. Version 2 keeps only hashes in `photos` and the old names in
    // `legacy_photo_names`. A version 2 payload has the fields version 1 had, so a
    // release before this one (which ignored the version) reads it as before, and
    // instances of both can run side by side during a rolling restart.
    Upcaster {
        event_type: "TicketHandled",
        from: 1,
        up: handled_v1_to_v2,
    },
];

/// The schema version this build writes `event_type` with, and the newest it
/// reads.
pub fn current_version(event_type: &str) -> i32 {
    let steps = UPCASTERS
        .iter()
        .filter(|u| u.event_type == event_type)
        .count();
    // A handful of upcasters per type: the count always fits.
    1 + i32::try_from(steps).unwrap_or(i32::MAX - 1)
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Written by a later release, with a shape this build does not know.
    #[error(
        "{event_type} schema version {version} is newer than this build of yiwang reads \
         (version {known}): the event was written by a later release; run that release or a newer one"
    )]
    TooNew {
        event_type: String,
        version: i32,
        known: i32,
    },
    #[error("{event_type} schema version {version} does not exist (versions start at 1)")]
    BadVersion { event_type: String, version: i32 },
    /// An old payload that does not have the old shape its version names.
    #[error("{event_type} schema version {from} cannot be upcast to version {to}: {reason}")]
    Upcast {
        event_type: String,
        from: i32,
        to: i32,
        reason: String,
    },
    /// The payload does not decode (or the type is unknown).
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
}

/// Brings `data`, a payload of `event_type` at `version`, to the current version.
pub fn upcast(event_type: &str, version: i32, mut data: Value) -> Result<Value, DecodeError> {
    let known = current_version(event_type);
    if version > known {
        return Err(DecodeError::TooNew {
            event_type: event_type.to_string(),
            version,
            known,
        });
    }
    if version < 1 {
        return Err(DecodeError::BadVersion {
            event_type: event_type.to_string(),
            version,
        });
    }
    for from in version..known {
        let step = UPCASTERS
            .iter()
            .find(|u| u.event_type == event_type && u.from == from)
            .ok_or_else(|| DecodeError::Upcast {
                event_type: event_type.to_string(),
                from,
                to: from + 1,
                reason: "no upcaster is registered for this step".into(),
            })?;
        data = (step.up)(data).map_err(|reason| DecodeError::Upcast {
            event_type: event_type.to_string(),
            from,
            to: from + 1,
            reason,
        })?;
    }
    Ok(data)
}

/// TicketHandled version 1 → 2: the names in `photos` that are not attachment
/// hashes move to `legacy_photo_names` (order kept in each); everything else is
/// unchanged. Version 1 is `{"result", "photos"?, "self_handled"?}` with `photos`
/// a list of strings, each a hash or, in events written before attachments, a
/// free-form name.
fn handled_v1_to_v2(mut data: Value) -> Result<Value, String> {
    let Some(obj) = data.as_object_mut() else {
        return Err(format!("the payload is {data}, not an object"));
    };
    let photos = match obj.remove("photos") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(format!("photos is {other}, not a list")),
    };
    let mut hashes = Vec::new();
    let mut names = Vec::new();
    for p in photos {
        match p {
            Value::String(s) if is_attachment_hash(&s) => hashes.push(Value::String(s)),
            Value::String(s) => names.push(Value::String(s)),
            other => return Err(format!("a photo is {other}, not a string")),
        }
    }
    obj.insert("photos".into(), Value::Array(hashes));
    if !names.is_empty() {
        obj.insert("legacy_photo_names".into(), Value::Array(names));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Handled, TicketEvent};
    use serde_json::json;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// Given a TicketHandled as the first release stored it (version 1, photos
    /// named freely, before attachments), when it is read, then the names are kept
    /// apart from the attachment hashes and the rest reads as stored.
    #[test]
    fn a_version_1_handling_with_free_form_photo_names_reads_as_version_2() {
        let stored = json!({
            "result": "已清运",
            "photos": ["现场照片1.jpg", HASH, "after.png"],
            "self_handled": false,
        });
        let ev = TicketEvent::from_parts("TicketHandled", 1, &stored).expect("reads");
        assert_eq!(
            ev,
            TicketEvent::TicketHandled(Handled {
                result: "已清运".into(),
                photos: vec![HASH.into()],
                self_handled: false,
                legacy_photo_names: vec!["现场照片1.jpg".into(), "after.png".into()],
            })
        );
        // The same through the text route the projection rebuild takes.
        let text = stored.to_string();
        assert_eq!(
            TicketEvent::from_json_parts("TicketHandled", 1, &text).expect("reads"),
            ev
        );
    }

    /// Given a version 1 handling with hashes only, or with no photos at all (the
    /// field was optional), when it is read, then it is what version 2 says.
    #[test]
    fn a_version_1_handling_with_hashes_or_without_photos_reads_unchanged() {
        let with_hash = json!({"result": "r", "photos": [HASH]});
        assert_eq!(
            upcast("TicketHandled", 1, with_hash).expect("upcasts"),
            json!({"result": "r", "photos": [HASH]})
        );
        let bare = json!({"result": "r"});
        let ev = TicketEvent::from_parts("TicketHandled", 1, &bare).expect("reads");
        assert_eq!(
            ev,
            TicketEvent::TicketHandled(Handled {
                result: "r".into(),
                photos: vec![],
                self_handled: false,
                legacy_photo_names: vec![],
            })
        );
    }

    /// Given a handling written by this build, then it is version 2 and its JSON
    /// has the fields version 1 had (no `legacy_photo_names`), so clients of the
    /// events API see the same fields as before.
    #[test]
    fn this_build_writes_handlings_as_version_2_with_the_old_fields() {
        let ev = TicketEvent::TicketHandled(Handled {
            result: "r".into(),
            photos: vec![HASH.into()],
            self_handled: true,
            legacy_photo_names: vec![],
        });
        assert_eq!(ev.schema_version(), 2);
        let (ty, data) = ev.to_parts();
        assert_eq!(ty, "TicketHandled");
        assert_eq!(
            data,
            json!({"result": "r", "photos": [HASH], "self_handled": true})
        );
        assert_eq!(TicketEvent::from_parts(&ty, 2, &data).expect("reads"), ev);
    }

    /// Given an event of a version newer than this build knows, when it is read,
    /// then it is a clear error on both routes, never a decode of a shape it is not.
    #[test]
    fn a_version_newer_than_this_build_is_an_error_not_a_misread() {
        let data = json!({"result": "r", "photos": []});
        for e in [
            TicketEvent::from_parts("TicketHandled", 3, &data).expect_err("too new"),
            TicketEvent::from_json_parts("TicketHandled", 3, &data.to_string())
                .expect_err("too new"),
        ] {
            assert!(
                matches!(
                    e,
                    DecodeError::TooNew {
                        version: 3,
                        known: 2,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("newer than this build"), "{e}");
        }
        // A type without upcasters is at version 1: its version 2 is unknown too.
        let signed = json!({"unit": "u", "handler": "h"});
        assert!(matches!(
            TicketEvent::from_parts("TicketSigned", 2, &signed),
            Err(DecodeError::TooNew { known: 1, .. })
        ));
        assert!(matches!(
            TicketEvent::from_parts("TicketSigned", 0, &signed),
            Err(DecodeError::BadVersion { .. })
        ));
    }

    /// Given a version 1 handling whose photos are not a list of strings, when it
    /// is read, then the upcaster refuses it with the reason.
    #[test]
    fn a_version_1_handling_of_another_shape_is_refused_with_the_reason() {
        let e = TicketEvent::from_parts("TicketHandled", 1, &json!({"result": "r", "photos": "x"}))
            .expect_err("not a list");
        assert!(e.to_string().contains("photos is \"x\", not a list"), "{e}");
        let e = TicketEvent::from_parts("TicketHandled", 1, &json!({"result": "r", "photos": [1]}))
            .expect_err("not strings");
        assert!(
            matches!(e, DecodeError::Upcast { from: 1, to: 2, .. }),
            "{e:?}"
        );
    }

    /// The registry: each type's upcasters start at 1 and have no gap, so every
    /// old version has a way to the current one.
    #[test]
    fn every_type_has_a_gapless_chain_from_version_1() {
        for u in UPCASTERS {
            let known = current_version(u.event_type);
            for from in 1..known {
                let n = UPCASTERS
                    .iter()
                    .filter(|x| x.event_type == u.event_type && x.from == from)
                    .count();
                assert_eq!(
                    n, 1,
                    "{} has {n} upcaster(s) from version {from}",
                    u.event_type
                );
            }
        }
        assert_eq!(current_version("TicketHandled"), 2);
        assert_eq!(current_version("TicketAccepted"), 1);
    }
}
