//! The configuration file, and `yiwang config check`.
//!
//! Every setting has a command-line flag and an environment variable
//! (`YIWANG_…`, listed by `yiwang serve --help`). A TOML file named by `--config
//! FILE` (or `YIWANG_CONFIG`) may set any of them, by the variable's name without
//! the prefix, in lower case:
//!
//! ```toml
//! database_url = "postgres://yiwang@db.internal/yiwang"
//! addr = "0.0.0.0:8080"
//! log_format = "json"
//! rate_limit_per_token = 5000
//! sqlite_readers = 8
//! ```
//!
//! Precedence: a flag, then the environment, then the file, then the built-in
//! default. The file is read before anything else runs, and each of its settings
//! becomes the value of its environment variable unless the environment already
//! has one; the flags then override both as usual. So one mechanism (clap's
//! `env`) resolves every setting, and `config check` shows where each value came
//! from. A key the service does not know is an error (a typo would otherwise be
//! silently ignored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The environment variables a file may set (every flag's).
pub fn known_vars(cmd: &clap::Command) -> Vec<String> {
    let mut vars: Vec<String> = Vec::new();
    collect(cmd, &mut vars);
    vars.retain(|v| v != "YIWANG_CONFIG");
    vars.sort();
    vars.dedup();
    vars
}

fn collect(cmd: &clap::Command, out: &mut Vec<String>) {
    for a in cmd.get_arguments() {
        if let Some(env) = a.get_env() {
            let env = env.to_string_lossy();
            if env.starts_with("YIWANG_") {
                out.push(env.into_owned());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        collect(sub, out);
    }
}

/// Where a file-loaded setting came from, for `config check`.
static FROM_FILE: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();

/// The file named by `--config FILE` / `--config=FILE` in `args`, or by
/// `YIWANG_CONFIG`.
pub fn file_named(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("YIWANG_CONFIG").map(PathBuf::from)
}

/// The settings of a configuration file, as environment variables and values.
/// Refuses a file that is not TOML, a key the service does not know, and a value
/// that is not a string, number or boolean.
pub fn parse_file(path: &Path, known: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let var = format!("YIWANG_{}", key.to_uppercase());
        if !known.contains(&var) || key != key.to_lowercase() {
            bail!(
                "{}: unknown setting {key:?}; the settings are: {}",
                path.display(),
                known
                    .iter()
                    .map(|v| v.trim_start_matches("YIWANG_").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "{}: {key} must be a string, a number or true/false, not {}",
                path.display(),
                other.type_str()
            ),
        };
        out.insert(var, text);
    }
    Ok(out)
}

/// Reads the configuration file, if one is named, and sets each of its settings
/// as an environment variable that is not set already.
///
/// Call it first thing in `main`, before any other thread exists.
pub fn load(args: &[String], cmd: &clap::Command) -> anyhow::Result<()> {
    let Some(path) = file_named(args) else {
        return Ok(());
    };
    let settings = parse_file(&path, &known_vars(cmd))?;
    let mut applied = Vec::new();
    for (var, value) in settings {
        if std::env::var_os(&var).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread is
            // started, so nothing reads the environment concurrently.
            unsafe { std::env::set_var(&var, value) };
            applied.push(var);
        }
    }
    let _ = FROM_FILE.set((path, applied));
    Ok(())
}

/// A database URL with its password (and any `password=` parameter) hidden.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// `yiwang config check`: the effective settings of `yiwang serve` with this
/// environment and file, each with its source; an error (exit 1) for a bad value.
/// `cmd` is the binary's command line (`cli::Cli::command()`).
pub fn check(mut cmd: clap::Command) -> anyhow::Result<()> {
    use clap::parser::ValueSource;
    let args = ["yiwang", "serve"];
    let matches = cmd.try_get_matches_from_mut(args).map_err(|e| {
        let text = e.render().to_string();
        anyhow::anyhow!("{}", text.trim_start_matches("error: ").trim_end())
    })?;
    let serve = matches
        .subcommand_matches("serve")
        .context("the serve settings")?;
    let file = FROM_FILE.get();
    let source = |var: Option<&str>, vs: Option<ValueSource>| -> String {
        let from_file =
            var.is_some_and(|v| file.is_some_and(|(_, vars)| vars.iter().any(|x| x == v)));
        match (from_file, vs) {
            (true, _) => format!(
                "file {}",
                file.map(|(p, _)| p.display().to_string())
                    .unwrap_or_default()
            ),
            (false, Some(ValueSource::EnvVariable)) => "environment".into(),
            (false, Some(ValueSource::CommandLine)) => "flag".into(),
            _ => "default".into(),
        }
    };
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (m, c, globals) in [
        (&matches, cmd.clone(), true),
        (
            serve,
            cmd.find_subcommand("serve")
                .cloned()
                .context("the serve command")?,
            false,
        ),
    ] {
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            let skip = matches!(id, "help" | "version" | "config")
                || (a.is_hide_set() && id != "clock_offset_secs")
                || (a.is_global_set() && !globals);
            if skip {
                continue;
            }
            let var = a.get_env().map(|v| v.to_string_lossy().into_owned());
            let value: Vec<String> = m
                .get_raw(id)
                .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let mut value = value.join(",");
            if id == "database_url" {
                value = redact_url(&value);
            }
            let name = var.clone().unwrap_or_else(|| format!("--{id}"));
            rows.push((name, value, source(var.as_deref(), m.value_source(id))));
        }
    }
    let text = |id: &str| matches.get_one::<String>(id).cloned().unwrap_or_default();
    // YIWANG_LOG_FORMAT is a closed set: clap refused a bad one when it read it.
    let url = &text("database_url");
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        bail!(
            "YIWANG_DATABASE_URL={:?}: must start with sqlite:// or postgres://",
            redact_url(url)
        );
    }
    match file {
        Some((path, applied)) => println!(
            "configuration file {}: {} setting(s) taken from it",
            path.display(),
            applied.len()
        ),
        None => println!("no configuration file (--config FILE or YIWANG_CONFIG)"),
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, value, src) in rows {
        println!("{name:<width$}  {value:<40}  ({src})");
    }
    println!("configuration ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://yiwang:s3cret@db:5432/yiwang"),
            "postgres://yiwang:***@db:5432/yiwang"
        );
        assert_eq!(
            redact_url("postgres://db/yiwang?user=y&password=s3cret&sslmode=require"),
            "postgres://db/yiwang?user=y&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            redact_url("sqlite://./yiwang-data/yiwang.db"),
            "sqlite://./yiwang-data/yiwang.db"
        );
    }

    #[test]
    fn the_file_is_named_by_the_flag_first() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            file_named(&args(&["yiwang", "--config", "a.toml", "serve"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            file_named(&args(&["yiwang", "serve", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }

    #[test]
    fn unknown_and_odd_settings_are_refused() {
        let dir = std::env::temp_dir().join(format!("yiwang-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let known = vec![
            "YIWANG_ADDR".to_string(),
            "YIWANG_RATE_LIMIT_PER_IP".to_string(),
        ];
        let write = |text: &str| {
            let p = dir.join("c.toml");
            std::fs::write(&p, text).unwrap();
            p
        };
        let ok = parse_file(
            &write("addr = \"0.0.0.0:80\"\nrate_limit_per_ip = 10\n"),
            &known,
        )
        .unwrap();
        assert_eq!(ok["YIWANG_ADDR"], "0.0.0.0:80");
        assert_eq!(ok["YIWANG_RATE_LIMIT_PER_IP"], "10");
        let e = parse_file(&write("adress = \"x\"\n"), &known)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown setting \"adress\"") && e.contains("addr"),
            "{e}"
        );
        let e = parse_file(&write("addr = [1]\n"), &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a string"), "{e}");
        let e = format!("{:#}", parse_file(&write("addr = \n"), &known).unwrap_err());
        assert!(e.contains("not valid TOML"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
