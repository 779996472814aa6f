use super::answer::{xml, xml_char};
use super::*;

#[test]
fn formats_and_names() {
    assert_eq!(
        split_format("services.json"),
        Some(("services", Format::Json))
    );
    assert_eq!(
        split_format("requests.xml"),
        Some(("requests", Format::Xml))
    );
    assert_eq!(split_format("requests"), None);
    assert_eq!(
        full_name(Some("先生"), Some("赵")).as_deref(),
        Some("赵先生")
    );
    assert_eq!(
        full_name(Some("Ann"), Some("Lee")).as_deref(),
        Some("Ann Lee")
    );
    assert_eq!(title_of("", "暴露垃圾"), "暴露垃圾");
    assert_eq!(title_of("\n 垃圾堆积 \n三天", "x"), "垃圾堆积");
    assert_eq!(title_of(&"长".repeat(80), "x").chars().count(), 60);
}

#[test]
fn xml_escapes_and_nests() {
    let x = xml(
        "errors",
        "error",
        &[json!({"code": 400, "description": "a < b & \"c\""})],
    );
    assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    assert!(x.contains(
        "<errors><error><code>400</code><description>a &lt; b &amp; &quot;c&quot;</description></error></errors>"
    ));
}

#[test]
fn characters_xml_forbids_become_replacement_characters() {
    assert_eq!(
        escape("a\u{0}b\u{1}c\u{1F}\u{FFFE}\u{FFFF}\td\ne\rf"),
        "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}\u{FFFD}\td\ne\rf"
    );
    // Allowed by XML 1.0 (if refused on input): kept.
    assert_eq!(
        escape("\u{FDD0}\u{1FFFF}\u{202E}"),
        "\u{FDD0}\u{1FFFF}\u{202E}"
    );
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let e = escape(c.encode_utf8(&mut [0; 4]));
        assert!(
            e.chars().all(xml_char),
            "U+{:04X} escaped to {e:?}",
            c as u32
        );
    }
}
