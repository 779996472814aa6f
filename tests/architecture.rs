//! The layer rule of `docs/ARCHITECTURE.md` (and DESIGN §8), held by `cargo test`.
//!
//! The edges (`http`, `web`, `cli`) call the use cases (`app`), which call the pure
//! domain (`domain`) and the storage (`store`, the log; `repo`, read models and
//! reference data). Nothing below imports what is above it.
//!
//! The test reads every `.rs` file under `src/` as text (it compiles nothing), finds
//! each `crate::<module>` path in code (in `use` lines, grouped `use crate::{a, b}`,
//! attributes and paths inside expressions; comments and string literals are skipped),
//! maps the file to its top-level module (`src/app.rs` and `src/app/x.rs` are `app`;
//! `src/lib.rs` and `src/main.rs` are the crate roots and are exempt) and checks the
//! table `RULES`.
//!
//! It fails on a violation not in `KNOWN` (naming file, line and rule), and on a
//! `KNOWN` entry that no longer occurs, so the list only shrinks. `KNOWN` is kept per
//! module pair, not per line, so moving code inside a module does not disturb it.
//!
//! A second check keeps the SQL in the storage: no `sqlx::query…`, `query_as`,
//! `query_scalar`, `sqlx::raw_sql` or `QueryBuilder` in code under `src/` outside
//! `src/store/` (the log) and `src/repo/` (read models and reference data); the
//! migrations are `.sql` files under `schema/`, aside. `KNOWN_SQL` lists the files
//! (or folders, ending in `/`) still allowed for now; it too fails on an entry that
//! no longer holds any SQL, so it only shrinks.
//!
//! Not checked: `super::super::…` paths (they stay inside a module unless a file
//! climbs past its own top-level module, which no file does today) and `yiwang::…`
//! paths (only the binary root `src/main.rs` uses them, and it is exempt).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The edges: they may import anything; nothing else may import them.
const EDGES: &[&str] = &["http", "web", "cli"];

/// The use cases and the edges: what the modules that serve them must not import.
const USE_CASES_AND_EDGES: &[&str] = &["app", "http", "web", "cli"];

/// `*` in a forbidden list means every other module of the crate.
const ANY: &str = "*";

/// One rule: files of `module` must not name `crate::<f>` for any `f` in `forbidden`.
struct Rule {
    module: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        module: "domain",
        forbidden: &[ANY],
        why: "the domain is pure: it imports no other crate module",
    },
    Rule {
        module: "store",
        forbidden: &["domain", "repo", "app", "projections", "http", "web", "cli"],
        why: "the store is the log alone: it knows no ticket, read model, use case, projection or edge",
    },
    Rule {
        module: "repo",
        forbidden: &["app", "http", "web", "cli"],
        why: "read models and reference data sit below the use cases and the edges",
    },
    Rule {
        module: "app",
        forbidden: EDGES,
        why: "the use cases sit below the edges (http, web, cli)",
    },
    Rule {
        module: "views",
        forbidden: &["app", "http", "web", "cli", "projections"],
        why: "the ticket as the outside sees it sits below the use cases that render it",
    },
    Rule {
        module: "projections",
        forbidden: USE_CASES_AND_EDGES,
        why: "below the use cases (app) and the edges (http, web, cli): it gets narrow handles, not the App",
    },
    Rule {
        module: "sla",
        forbidden: EDGES,
        why: "below the edges (http, web, cli)",
    },
    Rule {
        module: "appraisal",
        forbidden: USE_CASES_AND_EDGES,
        why: "below the use cases (app) and the edges (http, web, cli): it gets narrow handles, not the App",
    },
    Rule {
        module: "verify",
        forbidden: USE_CASES_AND_EDGES,
        why: "below the use cases (app) and the edges (http, web, cli): it gets narrow handles, not the App",
    },
    Rule {
        module: "import",
        forbidden: EDGES,
        why: "below the edges (http, web, cli)",
    },
    Rule {
        module: "backup",
        forbidden: USE_CASES_AND_EDGES,
        why: "below the use cases (app) and the edges (http, web, cli): it gets narrow handles, not the App",
    },
];

/// Today's violations, per module pair `(importer, imported, reason)`. Each is to be
/// removed by issue 20; remove its line here when the last import goes, the test
/// says when.
const KNOWN: &[(&str, &str, &str)] = &[];

/// Where SQL may be written: the storage.
const SQL_HOMES: &[&str] = &["src/store/", "src/repo/"];

/// What writes SQL through sqlx, as it appears in code (comments and strings are
/// skipped; `query_as` also finds `build_query_as`).
const SQL_MARKERS: &[&str] = &[
    "sqlx::query",
    "query_as",
    "query_scalar",
    "sqlx::raw_sql",
    "QueryBuilder",
];

/// Files (or folders, ending in `/`) outside the storage that still hold SQL, each
/// with the reason and the issue that moves it. Remove a line when its SQL has
/// moved; the test says when.
const KNOWN_SQL: &[(&str, &str)] = &[
    (
        "src/projections/stats/read.rs",
        "the statistics' reads, on the projection's own row types: to repo/stats.rs once those sit below both (issue 20)",
    ),
    (
        "src/projections/unit_stats.rs",
        "the statistics projection's writes, on its own row types: to repo/ likewise (issue 20)",
    ),
    (
        "src/projections/unit_stats/evidence.rs",
        "the same projection's writes of the evidence lists in parts, moved out of unit_stats.rs: to repo/ likewise (issue 20)",
    ),
];

// ---------------------------------------------------------------------------
// The checker: pure functions on text, unit-tested below on synthetic inputs.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    /// Path relative to the crate root, e.g. `src/app.rs`.
    file: String,
    line: usize,
    from: String,
    to: String,
    why: &'static str,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` imports `crate::{}`; rule: {} must not import {} ({})",
            self.file, self.line, self.from, self.to, self.from, self.to, self.why
        )
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source with comments, string literals and char literals replaced by spaces
/// (newlines kept, so line numbers stay right).
fn strip_comments_and_strings(src: &str) -> String {
    let s: Vec<char> = src.chars().collect();
    let n = s.len();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, from: &[char]| {
        for &c in from {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let starts = |i: usize, pat: &str| {
        let p: Vec<char> = pat.chars().collect();
        i + p.len() <= n && s[i..i + p.len()] == p[..]
    };
    let mut i = 0;
    while i < n {
        let c = s[i];
        // Line comment (also `///` and `//!`).
        if starts(i, "//") {
            let mut j = i;
            while j < n && s[j] != '\n' {
                j += 1;
            }
            blank(&mut out, &s[i..j]);
            i = j;
            continue;
        }
        // Block comment, nested.
        if starts(i, "/*") {
            let mut depth = 0;
            let mut j = i;
            while j < n {
                if starts(j, "/*") {
                    depth += 1;
                    j += 2;
                } else if starts(j, "*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &s[i..j.min(n)]);
            i = j.min(n);
            continue;
        }
        // Raw string: r"…", r#"…"#, br"…" (the `r` must start a token or follow a lone `b`).
        if c == 'r' {
            let prev_ok = i == 0
                || !is_ident(s[i - 1])
                || (s[i - 1] == 'b' && (i == 1 || !is_ident(s[i - 2])));
            let mut j = i + 1;
            while j < n && s[j] == '#' {
                j += 1;
            }
            if prev_ok && j < n && s[j] == '"' {
                let hashes = j - i - 1;
                let mut k = j + 1;
                while k < n {
                    if s[k] == '"'
                        && k + hashes < n
                        && s[k + 1..=k + hashes].iter().all(|&h| h == '#')
                    {
                        k += 1 + hashes;
                        break;
                    }
                    k += 1;
                }
                let k = k.min(n);
                blank(&mut out, &s[i..k]);
                i = k;
                continue;
            }
        }
        // Ordinary (or byte) string.
        if c == '"' {
            let mut j = i + 1;
            while j < n && s[j] != '"' {
                j += if s[j] == '\\' { 2 } else { 1 };
            }
            let j = (j + 1).min(n);
            blank(&mut out, &s[i..j]);
            i = j;
            continue;
        }
        // Char literal ('x', '\n', '\u{..}', '"'); a lifetime or label is left alone.
        if c == '\'' {
            if i + 1 < n && s[i + 1] == '\\' {
                // Past the escaped character, so that '\'' ends at its second quote.
                let mut j = i + 3;
                while j < n && s[j] != '\'' {
                    j += 1;
                }
                let j = (j + 1).min(n);
                blank(&mut out, &s[i..j]);
                i = j;
                continue;
            }
            if i + 2 < n && s[i + 2] == '\'' {
                blank(&mut out, &s[i..i + 3]);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Every `crate::<module>` in code (already stripped), as `(line, module)`, lines from 1.
/// `use crate::{a, b::c}` yields `a` and `b`; `$crate` and `pub(crate)` are not paths
/// into a module and yield nothing.
fn crate_refs(code: &str) -> Vec<(usize, String)> {
    let s: Vec<char> = code.chars().collect();
    let n = s.len();
    let mut line_at = Vec::with_capacity(n + 1);
    let mut line = 1;
    for &c in &s {
        line_at.push(line);
        if c == '\n' {
            line += 1;
        }
    }
    line_at.push(line);
    let skip_ws = |mut j: usize| {
        while j < n && s[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let ident_at = |j: usize| {
        let mut k = j;
        while k < n && is_ident(s[k]) {
            k += 1;
        }
        (s[j..k].iter().collect::<String>(), k)
    };
    let word: Vec<char> = "crate".chars().collect();
    let mut refs = Vec::new();
    let mut i = 0;
    while i + word.len() <= n {
        let boundary_before = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == '$');
        let boundary_after = i + word.len() == n || !is_ident(s[i + word.len()]);
        if !(s[i..i + word.len()] == word[..] && boundary_before && boundary_after) {
            i += 1;
            continue;
        }
        let mut j = skip_ws(i + word.len());
        if !(j + 1 < n && s[j] == ':' && s[j + 1] == ':') {
            i += word.len();
            continue;
        }
        j = skip_ws(j + 2);
        if j < n && s[j] == '{' {
            // A group: the first segment of each top-level item.
            let mut depth = 0;
            let mut expect_item = false;
            while j < n {
                match s[j] {
                    '{' => {
                        depth += 1;
                        expect_item = depth == 1;
                        j += 1;
                    }
                    '}' => {
                        depth -= 1;
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' => {
                        expect_item = depth == 1;
                        j += 1;
                    }
                    c if c.is_whitespace() => j += 1,
                    c if is_ident(c) => {
                        let (id, k) = ident_at(j);
                        if expect_item && id != "self" {
                            refs.push((line_at[j], id));
                        }
                        expect_item = false;
                        j = k;
                    }
                    _ => {
                        expect_item = false;
                        j += 1;
                    }
                }
            }
            i = j;
        } else if j < n && is_ident(s[j]) {
            let (id, k) = ident_at(j);
            refs.push((line_at[j], id));
            i = k;
        } else {
            i = j;
        }
    }
    refs
}

/// The top-level module a file belongs to (`src/app.rs`, `src/app/mod.rs` and
/// `src/app/x/y.rs` are all `app`); `None` for the crate roots `src/lib.rs`,
/// `src/main.rs` and binaries under `src/bin/`, which may name anything.
fn module_of(rel: &str) -> Option<String> {
    let rel = rel.replace('\\', "/");
    let rest = rel.strip_prefix("src/")?;
    if rest == "lib.rs" || rest == "main.rs" || rest.starts_with("bin/") {
        return None;
    }
    let first = rest.split('/').next()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
}

/// The violations of `rules` in `files` (`(path relative to the crate root, text)`).
fn check(files: &[(String, String)], rules: &[Rule]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(from) = module_of(path) else {
            continue;
        };
        let Some(rule) = rules.iter().find(|r| r.module == from) else {
            continue;
        };
        for (line, to) in crate_refs(&strip_comments_and_strings(text)) {
            if to == from {
                continue;
            }
            if rule.forbidden.iter().any(|&f| f == ANY || f == to) {
                out.push(Violation {
                    file: path.clone(),
                    line,
                    from: from.clone(),
                    to,
                    why: rule.why,
                });
            }
        }
    }
    out
}

/// Splits violations against the known list: the violations whose pair is not known,
/// and the known pairs that no longer occur.
fn compare<'a>(
    violations: &'a [Violation],
    known: &[(&'static str, &'static str, &'static str)],
) -> (Vec<&'a Violation>, Vec<(&'static str, &'static str)>) {
    let is_known = |v: &Violation| known.iter().any(|&(a, b, _)| v.from == a && v.to == b);
    let unexpected = violations.iter().filter(|&v| !is_known(v)).collect();
    let mut stale = Vec::new();
    for &(a, b, _) in known {
        if !violations.iter().any(|v| v.from == a && v.to == b) && !stale.contains(&(a, b)) {
            stale.push((a, b));
        }
    }
    (unexpected, stale)
}

/// The report `cargo test` prints, or `None` when all is well.
fn verdict(
    violations: &[Violation],
    known: &[(&'static str, &'static str, &'static str)],
) -> Option<String> {
    let (unexpected, stale) = compare(violations, known);
    if unexpected.is_empty() && stale.is_empty() {
        return None;
    }
    let mut msg = String::new();
    if !unexpected.is_empty() {
        msg.push_str("layer rule broken (see docs/ARCHITECTURE.md):\n");
        for v in &unexpected {
            msg.push_str(&format!("  {v}\n"));
        }
    }
    for (a, b) in &stale {
        msg.push_str(&format!(
            "`{a}` no longer imports `{b}`: remove (\"{a}\", \"{b}\", …) from KNOWN in tests/architecture.rs\n"
        ));
    }
    Some(msg)
}

/// SQL written outside the storage: `(file, line, marker)` for each line of code
/// (comments and strings skipped) under `src/` but not in `SQL_HOMES` that holds a
/// marker (the first it holds).
fn sql_sites(files: &[(String, String)]) -> Vec<(String, usize, &'static str)> {
    let mut out = Vec::new();
    for (path, text) in files {
        if !path.starts_with("src/") || SQL_HOMES.iter().any(|h| path.starts_with(h)) {
            continue;
        }
        let code = strip_comments_and_strings(text);
        for (i, line) in code.lines().enumerate() {
            if let Some(m) = SQL_MARKERS.iter().find(|m| line.contains(*m)) {
                out.push((path.clone(), i + 1, *m));
            }
        }
    }
    out
}

/// Whether `path` is covered by the `KNOWN_SQL` entry `entry` (a file, or a folder
/// ending in `/`).
fn covers(entry: &str, path: &str) -> bool {
    if entry.ends_with('/') {
        path.starts_with(entry)
    } else {
        path == entry
    }
}

/// The report for SQL outside the storage, or `None` when all is well: the sites
/// no known entry covers, and the known entries that cover no site.
fn sql_verdict(
    sites: &[(String, usize, &'static str)],
    known: &[(&'static str, &'static str)],
) -> Option<String> {
    let mut msg = String::new();
    let unexpected: Vec<_> = sites
        .iter()
        .filter(|(p, _, _)| !known.iter().any(|(k, _)| covers(k, p)))
        .collect();
    if !unexpected.is_empty() {
        msg.push_str(
            "SQL outside src/store/ and src/repo/ (see docs/ARCHITECTURE.md: put it in a repo/ or store/ function):\n",
        );
        for (p, line, m) in unexpected {
            msg.push_str(&format!("  {p}:{line}: `{m}`\n"));
        }
    }
    for (k, _) in known {
        if !sites.iter().any(|(p, _, _)| covers(k, p)) {
            msg.push_str(&format!(
                "`{k}` holds no SQL any more: remove (\"{k}\", …) from KNOWN_SQL in tests/architecture.rs\n"
            ));
        }
    }
    (!msg.is_empty()).then_some(msg)
}

// ---------------------------------------------------------------------------
// Reading the tree.
// ---------------------------------------------------------------------------

fn crate_root() -> PathBuf {
    // At run time cargo sets CARGO_MANIFEST_DIR too; reading it there lets the test
    // binary be pointed at a scratch copy of the tree.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn source_tree(root: &Path) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
            (rel, text)
        })
        .collect()
}

#[test]
fn layers_flow_one_way() {
    let files = source_tree(&crate_root());
    assert!(
        files.iter().any(|(p, _)| p == "src/lib.rs"),
        "no src/lib.rs under {}",
        crate_root().display()
    );
    let violations = check(&files, RULES);
    if let Some(msg) = verdict(&violations, KNOWN) {
        panic!("{msg}");
    }
}

#[test]
fn sql_stays_in_the_storage() {
    let files = source_tree(&crate_root());
    if let Some(msg) = sql_verdict(&sql_sites(&files), KNOWN_SQL) {
        panic!("{msg}");
    }
    for (k, why) in KNOWN_SQL {
        assert!(
            why.contains("issue 20"),
            "KNOWN_SQL {k} should say which issue removes it"
        );
        assert!(
            !SQL_HOMES.iter().any(|h| k.starts_with(h)),
            "KNOWN_SQL {k} is in the storage already"
        );
    }
}

#[test]
fn rules_and_known_are_consistent() {
    for &(a, b, why) in KNOWN {
        let rule = RULES.iter().find(|r| r.module == a);
        assert!(
            rule.is_some_and(|r| r.forbidden.iter().any(|&f| f == ANY || f == b)),
            "KNOWN ({a}, {b}) is not forbidden by any rule"
        );
        assert!(
            why.contains("issue 20"),
            "KNOWN ({a}, {b}) should say which issue removes it"
        );
    }
    let mut modules = BTreeSet::new();
    for r in RULES {
        assert!(modules.insert(r.module), "two rules for {}", r.module);
    }
}

// ---------------------------------------------------------------------------
// The checker on synthetic inputs.
// ---------------------------------------------------------------------------

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|&(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

fn refs(src: &str) -> Vec<(usize, String)> {
    crate_refs(&strip_comments_and_strings(src))
}

fn r(line: usize, m: &str) -> (usize, String) {
    (line, m.to_string())
}

#[test]
fn finds_use_lines_groups_and_paths_in_code() {
    let src = "use crate::store::Store;\n\
               use crate::{\n    app::App,\n    sla::{Calendar, due},\n    self,\n};\n\
               fn f() { let x = crate::cli::redact(\"u\"); }\n\
               #[schema(value_type = Option<crate::http::openapi::Reporter>)]\n\
               pub(crate) fn g() {}\n\
               macro_rules! m { () => { $crate::web::page() } }\n\
               let y = crate :: org::parse;\n";
    assert_eq!(
        refs(src),
        vec![
            r(1, "store"),
            r(3, "app"),
            r(4, "sla"),
            r(7, "cli"),
            r(8, "http"),
            r(11, "org")
        ]
    );
}

#[test]
fn skips_comments_strings_and_chars() {
    let src = "// use crate::http;\n\
               /// see crate::cli::redact\n\
               /* crate::app /* nested crate::web */ still crate::http */\n\
               let s = \"crate::http::x\";\n\
               let q = '\"'; let t = crate::store::open();\n\
               let raw = r#\"crate::cli \"quoted\" \"#; let u = crate::sla::x;\n\
               let b = br\"crate::cli\"; let c = b\"crate::cli\";\n\
               fn h<'a>(x: &'a str) -> &'a str { crate::org::f(x) }\n\
               let e = '\\''; let z = crate::domain::Ticket::new();\n\
               let zh = \"工单 crate::http\"; // 注释 crate::cli\n";
    assert_eq!(
        refs(src),
        vec![r(5, "store"), r(6, "sla"), r(8, "org"), r(9, "domain")]
    );
}

#[test]
fn maps_files_to_top_level_modules() {
    assert_eq!(module_of("src/app.rs").as_deref(), Some("app"));
    assert_eq!(module_of("src/app/mod.rs").as_deref(), Some("app"));
    assert_eq!(module_of("src/app/decide.rs").as_deref(), Some("app"));
    assert_eq!(
        module_of("src/projections/stats/cache.rs").as_deref(),
        Some("projections")
    );
    assert_eq!(module_of("src/lib.rs"), None);
    assert_eq!(module_of("src/main.rs"), None);
    assert_eq!(module_of("src/bin/tool.rs"), None);
    assert_eq!(module_of("tests/architecture.rs"), None);
}

#[test]
fn reports_a_new_violation_with_file_line_and_rule() {
    let tree = files(&[
        (
            "src/lib.rs",
            "pub mod app; pub mod http; pub mod store; pub mod domain;\nuse crate::http::serve;\n",
        ),
        (
            "src/http/mod.rs",
            "use crate::app::App;\nuse crate::store::Store;\n",
        ),
        (
            "src/app/mod.rs",
            "use crate::domain::Ticket;\nuse crate::app::decide;\n",
        ),
        (
            "src/app/queries.rs",
            "use crate::store::Store;\n\nfn f() { crate::http::openapi::x(); }\n",
        ),
        (
            "src/store/mod.rs",
            "//! not crate::domain\nuse crate::domain::Ticket;\n",
        ),
        (
            "src/domain/mod.rs",
            "use crate::domain::events;\nuse crate::error::Error;\n",
        ),
    ]);
    let v = check(&tree, RULES);
    let got: Vec<(&str, usize, &str, &str)> = v
        .iter()
        .map(|v| (v.file.as_str(), v.line, v.from.as_str(), v.to.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("src/app/queries.rs", 3, "app", "http"),
            ("src/store/mod.rs", 2, "store", "domain"),
            ("src/domain/mod.rs", 2, "domain", "error"),
        ]
    );
    let msg = verdict(&v, &[]).expect("fails");
    assert!(
        msg.contains("src/app/queries.rs:3: `app` imports `crate::http`"),
        "{msg}"
    );
    assert!(msg.contains("rule: store must not import domain"), "{msg}");
}

#[test]
fn known_pairs_pass_and_can_only_shrink() {
    let tree = files(&[(
        "src/import.rs",
        "use crate::http::tickets::parse;\nfn f() { crate::http::BODY_LIMIT }\n",
    )]);
    let v = check(&tree, RULES);
    assert_eq!(v.len(), 2);
    // Known at pair granularity: both lines pass.
    assert_eq!(verdict(&v, &[("import", "http", "issue 20")]), None);
    // Unknown: fails, naming each line.
    let msg = verdict(&v, &[]).expect("fails");
    assert!(
        msg.contains("src/import.rs:1:") && msg.contains("src/import.rs:2:"),
        "{msg}"
    );
    // A known pair that no longer occurs: fails, asking to remove it.
    let msg = verdict(
        &v,
        &[
            ("import", "http", "issue 20"),
            ("backup", "cli", "issue 20"),
        ],
    )
    .expect("fails");
    assert!(
        msg.contains("remove (\"backup\", \"cli\", …) from KNOWN"),
        "{msg}"
    );
    assert!(!msg.contains("layer rule broken"), "{msg}");
}

#[test]
fn a_deliberate_violation_in_a_copy_of_the_real_tree_fails() {
    let mut tree = source_tree(&crate_root());
    let domain = tree
        .iter_mut()
        .find(|(p, _)| p == "src/domain/mod.rs")
        .expect("src/domain/mod.rs");
    domain.1.push_str("\nuse crate::http;\n");
    let line = domain.1.lines().count();
    let msg = verdict(&check(&tree, RULES), KNOWN).expect("the copy must fail");
    assert!(
        msg.contains(&format!("src/domain/mod.rs:{line}: `domain` imports `crate::http`; rule: domain must not import http")),
        "{msg}"
    );
}

#[test]
fn sql_outside_the_storage_fails_and_known_sql_can_only_shrink() {
    let tree = files(&[
        (
            "src/store/sqlite.rs",
            "fn f() { sqlx::query(\"SELECT 1\"); }\n",
        ),
        (
            "src/repo/tickets.rs",
            "fn f() { sqlx::query_as(\"SELECT 1\"); }\n",
        ),
        (
            "src/http/events.rs",
            "// sqlx::query in a comment\nfn f() {\n    let s = \"sqlx::query\";\n    sqlx::query_scalar(s);\n}\n",
        ),
        (
            "src/verify/read.rs",
            "fn f(q: QueryBuilder<Db>) { q.build_query_as(); }\n",
        ),
        ("src/app/mod.rs", "fn f() { sqlx::raw_sql(\"x\"); }\n"),
    ]);
    let sites = sql_sites(&tree);
    let got: Vec<(&str, usize)> = sites.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
    assert_eq!(
        got,
        vec![
            ("src/http/events.rs", 4),
            ("src/verify/read.rs", 1),
            ("src/app/mod.rs", 1)
        ]
    );
    // Known by folder and by file: passes.
    assert_eq!(
        sql_verdict(
            &sites,
            &[
                ("src/verify/", "issue 20"),
                ("src/http/events.rs", "issue 20"),
                ("src/app/mod.rs", "issue 20")
            ]
        ),
        None
    );
    // Unknown: fails, naming file and line.
    let msg = sql_verdict(&sites, &[("src/verify/", "issue 20")]).expect("fails");
    assert!(msg.contains("src/http/events.rs:4: `sqlx::query`"), "{msg}");
    assert!(msg.contains("src/app/mod.rs:1: `sqlx::raw_sql`"), "{msg}");
    assert!(!msg.contains("src/verify/read.rs"), "{msg}");
    // A known entry without SQL: fails, asking to remove it.
    let msg = sql_verdict(
        &sites,
        &[
            ("src/verify/", "issue 20"),
            ("src/http/events.rs", "issue 20"),
            ("src/app/mod.rs", "issue 20"),
            ("src/backup.rs", "issue 20"),
        ],
    )
    .expect("fails");
    assert!(
        msg.contains("remove (\"src/backup.rs\", …) from KNOWN_SQL"),
        "{msg}"
    );
    assert!(!msg.contains("SQL outside"), "{msg}");
}
