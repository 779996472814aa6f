//! What a text field of a command may hold. Every text that lands in the event log
//! or a read model (a ticket's title, description and address, the reporter's
//! name, each action's reason, note, result, text or handler, the Open311 form's
//! fields, the legacy import's bodies) goes through [`check_text`]: the log is
//! permanent, so what it refuses here it never has to explain later.
//!
//! Refused, with a 422 naming the field:
//! - more than `max` characters;
//! - control characters other than tab, line feed and carriage return (NUL would
//!   not even reach PostgreSQL's `text`);
//! - Unicode noncharacters (U+FDD0 to U+FDEF and the last two code points of every
//!   plane, U+xxFFFE and U+xxFFFF): they mean nothing in interchange, and U+FFFE and
//!   U+FFFF may not appear in XML 1.0, so one of them made every Open311
//!   `requests.xml` page listing the ticket unreadable;
//! - bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069):
//!   they make a text display in another order than it is stored ("Trojan Source"),
//!   so what a dispatcher reads would not be what the log holds.

use crate::error::AppError;

/// Checks one text field: at most `max` characters, none of them refused (see the
/// module documentation). `field` names it in the 422.
pub fn check_text(field: &str, s: &str, max: usize) -> Result<(), AppError> {
    let mut count = 0usize;
    for c in s.chars() {
        count += 1;
        if let Some(why) = refused(c) {
            return Err(AppError::invalid(field, why));
        }
    }
    if count > max {
        return Err(AppError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// Why `c` may not be in a text field, or None when it may.
fn refused(c: char) -> Option<String> {
    let cp = c as u32;
    if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
        Some("contains control characters".to_string())
    } else if is_noncharacter(c) {
        Some(format!(
            "contains the Unicode noncharacter U+{cp:04X}, which no text may carry; remove it"
        ))
    } else if is_bidi_control(c) {
        Some(format!(
            "contains the bidirectional control U+{cp:04X} (an override or isolate), which makes \
             text display in another order than it is written; remove it"
        ))
    } else {
        None
    }
}

/// U+FDD0 to U+FDEF, and U+xxFFFE and U+xxFFFF of every plane.
pub fn is_noncharacter(c: char) -> bool {
    let cp = c as u32;
    (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
}

/// The explicit directional embeddings and overrides (U+202A to U+202E) and isolates
/// (U+2066 to U+2069).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<(), AppError>) -> Option<String> {
        match r {
            Err(AppError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn ordinary_text_passes() {
        assert!(check_text("t", "小区门口垃圾堆积\n第二行\t制表 ok 🙂 é", 100).is_ok());
        assert!(check_text("t", "", 0).is_ok());
        // Marks (not overrides) and the replacement character are ordinary text.
        assert!(check_text("t", "a\u{200E}b\u{200F}c\u{FFFD}\u{FFFC}", 10).is_ok());
        assert!(check_text("t", &"长".repeat(5), 5).is_ok());
    }

    #[test]
    fn refused_characters_name_the_field() {
        for bad in [
            "\u{0007}",
            "\u{0000}",
            "\u{007F}",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{FDD0}",
            "\u{FDEF}",
            "\u{1FFFE}",
            "\u{10FFFF}",
            "\u{202A}",
            "\u{202E}",
            "\u{2066}",
            "\u{2069}",
        ] {
            let s = format!("前{bad}后");
            assert_eq!(
                field_of(check_text("reason", &s, 100)).as_deref(),
                Some("reason"),
                "{:?}",
                bad
            );
        }
        for ok in ["\u{FDCF}", "\u{FDF0}", "\u{FFFD}", "\u{2029}", "\u{206A}"] {
            assert!(check_text("t", ok, 10).is_ok(), "{ok:?}");
        }
        assert_eq!(
            field_of(check_text("title", &"x".repeat(6), 5)).as_deref(),
            Some("title")
        );
    }

    #[test]
    fn every_plane_has_two_noncharacters() {
        for plane in 0..=0x10u32 {
            for low in [0xFFFE, 0xFFFF] {
                let c = char::from_u32(plane << 16 | low).expect("a scalar value");
                assert!(is_noncharacter(c), "{:X}", c as u32);
            }
            let c = char::from_u32(plane << 16 | 0xFFFD).expect("a scalar value");
            assert!(!is_noncharacter(c));
        }
        let n = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| is_noncharacter(*c))
            .count();
        assert_eq!(n, 66, "Unicode has 66 noncharacters");
    }
}
