use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // `sqlx::migrate!` embeds schema/*/ at compile time; a new or edited migration must
    // rebuild the crate even when no Rust source changed.
    println!("cargo:rerun-if-changed=schema");
    revision();
}

/// `YIWANG_REVISION` for `yiwang_build_info` (src/metrics.rs): the variable of the
/// same name if the build sets it (an image built from a source archive), else the
/// commit git checked out here, else `unknown` (no git, or not a checkout).
fn revision() {
    println!("cargo:rerun-if-env-changed=YIWANG_REVISION");
    let revision = std::env::var("YIWANG_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| {
            let head = git(&["rev-parse", "HEAD"])?;
            // Build again when HEAD moves: HEAD itself (a checkout) and the branch
            // it names (a commit), in this worktree's and the shared git directory.
            for dir in [
                git(&["rev-parse", "--git-dir"]),
                git(&["rev-parse", "--git-common-dir"]),
            ]
            .into_iter()
            .flatten()
            {
                watch(&Path::new(&dir).join("HEAD"));
                watch(&Path::new(&dir).join("packed-refs"));
                if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    watch(&Path::new(&dir).join(branch));
                }
            }
            Some(head)
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=YIWANG_REVISION={}", revision.trim());
}

/// The trimmed output of a git command run in the crate's directory, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from)?;
    let out = Command::new("git")
        .args(args)
        .current_dir(&dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if text.is_empty() {
        return None;
    }
    // --git-dir and --git-common-dir may be relative to the crate's directory.
    if args.first() == Some(&"rev-parse") && args.get(1).is_some_and(|a| a.starts_with("--git")) {
        return Some(dir.join(text).to_string_lossy().into_owned());
    }
    Some(text)
}

/// Reruns the build script when `path` changes; a path that does not exist is left
/// out (cargo would otherwise run the script on every build).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
