//! Issue 7 item 3: one configuration file, environment overrides for every setting,
//! and `yiwang config check`, with the real binary.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs the binary with `args` and these environment variables (every `YIWANG_`
/// variable of the test's own environment removed first).
fn run(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("YIWANG_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run the yiwang binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("yiwang-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The value and source `config check` printed for a variable.
fn line<'a>(out: &'a str, var: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(var))
        .unwrap_or_else(|| panic!("{var} not in:\n{out}"))
}

#[test]
fn the_file_sets_what_the_environment_and_flags_do_not_and_secrets_stay_hidden() {
    let dir = temp_dir();
    let file = dir.join("yiwang.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://yiwang:s3cret@db.internal/yiwang\"\n\
         addr = \"0.0.0.0:9090\"\n\
         rate_limit_per_token = 100\n\
         idle_timeout_secs = 30\n\
         sqlite_readers = 4\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (ok, out, err) = run(
        &["--config", f, "config", "check"],
        &[("YIWANG_RATE_LIMIT_PER_TOKEN", "7")],
        &dir,
    );
    assert!(ok, "{out}{err}");
    assert!(!out.contains("s3cret"), "the password is printed:\n{out}");
    assert!(line(&out, "YIWANG_DATABASE_URL").contains("postgres://yiwang:***@db.internal/yiwang"));
    assert!(line(&out, "YIWANG_DATABASE_URL").contains("(file "));
    assert!(line(&out, "YIWANG_ADDR").contains("0.0.0.0:9090"));
    // The environment beats the file.
    let l = line(&out, "YIWANG_RATE_LIMIT_PER_TOKEN");
    assert!(l.contains(" 7 ") && l.contains("(environment)"), "{l}");
    assert!(line(&out, "YIWANG_SQLITE_READERS").contains("(file "));
    assert!(line(&out, "YIWANG_REWORK_DAYS").contains("(default)"));
    // The connection settings (issue 19).
    let l = line(&out, "YIWANG_HEADER_TIMEOUT_SECS");
    assert!(l.contains(" 10 ") && l.contains("(default)"), "{l}");
    let l = line(&out, "YIWANG_IDLE_TIMEOUT_SECS");
    assert!(l.contains(" 30 ") && l.contains("(file "), "{l}");
    let l = line(&out, "YIWANG_MAX_CONNECTIONS_PER_IP");
    assert!(l.contains(" 2048 ") && l.contains("(default)"), "{l}");
    assert!(out.contains("configuration ok"));
    // YIWANG_CONFIG names the file as well as the flag.
    let (ok, out, _) = run(&["config", "check"], &[("YIWANG_CONFIG", f)], &dir);
    assert!(
        ok && line(&out, "YIWANG_ADDR").contains("0.0.0.0:9090"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_and_unknown_settings_exit_non_zero_with_the_reason() {
    let dir = temp_dir();
    let file = dir.join("bad.toml");
    let f = file.to_str().unwrap();
    for (text, expected) in [
        ("sla_warn_fraction = 1.5\n", "1.5 is out of range"),
        ("adress = \"0.0.0.0:80\"\n", "unknown setting \"adress\""),
        (
            "addr = \"not an address\"\n",
            "invalid value 'not an address'",
        ),
        (
            "database_url = \"mysql://x\"\n",
            "must start with sqlite:// or postgres://",
        ),
        ("sqlite_readers = 0\n", "--sqlite-readers"),
        (
            "addr = [1, 2]\n",
            "must be a string, a number or true/false",
        ),
        ("addr = \n", "is not valid TOML"),
    ] {
        std::fs::write(&file, text).unwrap();
        let (ok, out, err) = run(&["--config", f, "config", "check"], &[], &dir);
        assert!(!ok, "{text}: accepted:\n{out}");
        assert!(err.contains(expected), "{text}: {err}");
    }
    let (ok, _, err) = run(
        &["--config", "/nonexistent/yiwang.toml", "config", "check"],
        &[],
        &dir,
    );
    assert!(!ok && err.contains("/nonexistent/yiwang.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_runs_with_the_settings_of_the_file() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.join("yiwang.toml");
    let db = dir.join("data").join("yiwang.db");
    std::fs::write(
        &file,
        format!(
            "database_url = \"sqlite://{}\"\naddr = \"127.0.0.1:{port}\"\nverify_interval_secs = 0\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["--config", file.to_str().unwrap(), "serve"])
        .env_remove("YIWANG_DATABASE_URL")
        .env_remove("YIWANG_ADDR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut up = false;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                up = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "serve did not answer on the file's address");
    assert!(db.exists(), "the file's database was not created");
    std::fs::remove_dir_all(&dir).unwrap();
}
