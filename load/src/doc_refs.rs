//! The documents name tests as `file::function` (SECURITY.md maps each threat to
//! them; RELIABILITY.md and load/README.md name the checker's controls). A renamed
//! or deleted test would leave a claim standing on nothing, so every such name must
//! be a `fn` in that file (issue 25).

use std::path::Path;

/// Every `path.rs::name` in `text`, and every `::name` after one on the same line
/// (the T5 table's way of naming several tests of one file).
fn references(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut file: Option<String> = None;
        for span in line.split('`').skip(1).step_by(2) {
            if let Some((path, name)) = span.split_once("::")
                && path.ends_with(".rs")
                && !path.contains(' ')
            {
                file = Some(path.to_string());
                out.push((path.to_string(), name.to_string()));
            } else if let (Some(name), Some(f)) = (span.strip_prefix("::"), &file) {
                out.push((f.clone(), name.to_string()));
            }
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn every_test_the_documents_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut missing = Vec::new();
    for doc in [
        "SECURITY.md",
        "RELIABILITY.md",
        "load/RELIABILITY.template.md",
        "load/README.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).expect("the document");
        for (file, name) in references(&text) {
            if !is_name(&name) {
                continue;
            }
            let found = std::fs::read_to_string(root.join(&file)).is_ok_and(|src| {
                src.lines().any(|l| {
                    l.trim_start()
                        .trim_start_matches("pub ")
                        .trim_start_matches("async ")
                        .strip_prefix("fn ")
                        .is_some_and(|rest| {
                            rest.strip_prefix(name.as_str())
                                .is_some_and(|r| r.starts_with(['(', '<']))
                        })
                })
            });
            checked += 1;
            if !found {
                missing.push(format!("{doc}: {file}::{name}"));
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} references found: the parser is broken"
    );
    assert!(
        missing.is_empty(),
        "named in a document but no such fn: {missing:#?}"
    );
}

#[test]
fn references_are_read_as_written() {
    assert_eq!(
        references("| x | `tests/a.rs::one`, `::two` and `src/b.rs::three` |"),
        vec![
            ("tests/a.rs".to_string(), "one".to_string()),
            ("tests/a.rs".to_string(), "two".to_string()),
            ("src/b.rs".to_string(), "three".to_string()),
        ]
    );
}
