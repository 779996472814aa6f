//! Driving the service binary: its CLI (migrate, org load, token create) and `serve`
//! on a free loopback port, stopped with SIGTERM.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long one CLI call may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server gets to answer GET /healthz with 200.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The service's CLI bound to one database.
#[derive(Clone, Debug)]
pub struct Cli {
    pub bin: PathBuf,
    pub database_url: String,
}

impl Cli {
    pub fn new(bin: &Path, database_url: &str) -> Result<Self> {
        if !bin.is_file() {
            bail!(
                "no service binary at {} (build it first: cargo build --release)",
                bin.display()
            );
        }
        Ok(Cli {
            bin: bin.to_path_buf(),
            database_url: database_url.to_string(),
        })
    }

    /// Run `yiwang ARGS --database-url URL`; its stdout on success.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let what = format!("yiwang {}", args.join(" "));
        let out = tokio::time::timeout(
            CLI_TIMEOUT,
            Command::new(&self.bin)
                .args(args)
                .arg("--database-url")
                .arg(&self.database_url)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .with_context(|| format!("`{what}` took longer than {CLI_TIMEOUT:?}"))?
        .with_context(|| format!("starting `{what}`"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            bail!(
                "`{what}` exited with {}: {}",
                out.status,
                tail(
                    if stderr.trim().is_empty() {
                        &stdout
                    } else {
                        &stderr
                    },
                    800
                )
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `yiwang token create …`; the token is the last non-empty line of stdout.
    pub async fn token(&self, user: &str, role: &str, unit: Option<&str>) -> Result<String> {
        let mut args = vec!["token", "create", "--user", user, "--role", role];
        if let Some(u) = unit {
            args.extend(["--unit", u]);
        }
        let out = self.run(&args).await?;
        out.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string)
            .with_context(|| format!("`yiwang token create` for {role} printed no token"))
    }
}

/// The last `n` bytes of `s` (on a character boundary), trimmed.
pub fn tail(s: &str, n: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_loopback_port() -> Result<u16> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

fn spawn_serve(
    cli: &Cli,
    addr: SocketAddr,
    log: &Path,
    env: &[(String, String)],
    append: bool,
) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(log)
        .with_context(|| format!("opening the server log {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new(&cli.bin)
        .arg("serve")
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(&cli.database_url)
        // No load balancer watches these servers' /readyz: a stop need not wait
        // for one (the `rolling` scenario, which has one, sets the drain back).
        .env("YIWANG_SHUTDOWN_DRAIN_SECS", "0")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Should anything below fail or panic, the server does not outlive us.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} serve", cli.bin.display()))
}

/// A running `yiwang serve` on 127.0.0.1.
pub struct Server {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    /// What it was started with, to start it again on the same address.
    cli: Cli,
    addr: SocketAddr,
    env: Vec<(String, String)>,
}

impl Server {
    /// Start `yiwang serve --addr 127.0.0.1:PORT` and wait until GET /healthz is 200.
    /// A database ready for the load (migrated, the demo organisation loaded), an
    /// admin token on it, and the service started: what `run` and `profile` share.
    pub async fn prepare_demo(cli: &Cli, http: &reqwest::Client) -> Result<(String, Server)> {
        eprintln!("preparing the database: migrate, org load --demo, tokens");
        cli.run(&["migrate"]).await?;
        cli.run(&["org", "load", "--demo"]).await?;
        let admin = cli.token("load-admin", "admin", None).await?;
        let server = Server::start(cli, http).await?;
        eprintln!(
            "yiwang serve is up at {} (log {})",
            server.base,
            server.log.display()
        );
        Ok((admin, server))
    }

    pub async fn start(cli: &Cli, http: &reqwest::Client) -> Result<Server> {
        Server::start_with(cli, http, &[]).await
    }

    /// [`Server::start`] with extra environment variables for the server.
    pub async fn start_with(
        cli: &Cli,
        http: &reqwest::Client,
        env: &[(String, String)],
    ) -> Result<Server> {
        let port = free_loopback_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = std::env::temp_dir().join(format!(
            "yiwang-load-serve-{}-{port}.log",
            std::process::id()
        ));
        let child = spawn_serve(cli, addr, &log, env, false)?;
        let mut server = Server {
            child,
            base: format!("http://{addr}"),
            log,
            cli: cli.clone(),
            addr,
            env: env.to_vec(),
        };
        server.wait_healthy(http).await?;
        Ok(server)
    }

    /// The CLI (binary and database URL) the server runs with.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    /// The environment the server is started with (on its next restart too).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The environment for the next [`Server::restart`].
    pub fn set_env(&mut self, env: Vec<(String, String)>) {
        self.env = env;
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident memory of the server process, in bytes (Linux `/proc`).
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// SIGKILL: no shutdown, no flush, whatever the process was doing.
    pub async fn kill9(&mut self) -> Result<()> {
        self.child
            .start_kill()
            .context("sending SIGKILL to the server")?;
        self.child
            .wait()
            .await
            .context("waiting for the killed server")?;
        Ok(())
    }

    /// Start the server again on the same address (after [`Server::kill9`]); its
    /// output is appended to the same log.
    pub async fn restart(&mut self, http: &reqwest::Client) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            bail!("the server at {} is still running", self.base);
        }
        // The port was just released by the killed process; another process may
        // not have taken it in between, but a bind can still race its teardown.
        let mut tries = 0;
        loop {
            self.child = spawn_serve(&self.cli, self.addr, &self.log, &self.env, true)?;
            match self.wait_healthy(http).await {
                Ok(()) => return Ok(()),
                Err(e) if tries < 3 && self.child.try_wait()?.is_some() => {
                    tries += 1;
                    eprintln!("restart on {} failed ({e:#}); trying again", self.base);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client) -> Result<()> {
        let url = format!("{}/healthz", self.base);
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "`yiwang serve` exited with {status} before it was healthy; log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
            let ok = http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "`yiwang serve` not healthy after {HEALTH_TIMEOUT:?}; log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        std::fs::read_to_string(&self.log)
            .map(|s| tail(&s, 2000).to_string())
            .unwrap_or_default()
    }

    /// SIGTERM, as an orchestrator stops an instance; [`Server::wait_exit`] then
    /// waits for it to finish draining.
    pub fn sigterm(&self) -> Result<()> {
        let pid = self.child.id().context("the server is not running")?;
        let pid = i32::try_from(pid).context("server pid out of range")?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).context("sending SIGTERM to the server")?;
        Ok(())
    }

    /// Waits for the server to exit, at most [`STOP_TIMEOUT`] (then it is killed
    /// and this fails); the server can be started again with [`Server::restart`].
    pub async fn wait_exit(&mut self) -> Result<ExitStatus> {
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!(
                    "`yiwang serve` did not exit {STOP_TIMEOUT:?} after SIGTERM; log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                )
            }
        }
    }

    /// SIGTERM, then wait; SIGKILL if it has not exited within [`STOP_TIMEOUT`].
    pub async fn stop(mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "`yiwang serve` had already exited with {status}; log {}:\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("server pid out of range")?;
            kill(Pid::from_raw(pid), Signal::SIGTERM).context("sending SIGTERM to the server")?;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                eprintln!("yiwang serve did not exit {STOP_TIMEOUT:?} after SIGTERM; killing it");
                self.child.kill().await?;
                Ok(self.child.wait().await?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("  abc  ", 2), "bc");
        assert_eq!(tail("已处理", 4), "理");
        assert_eq!(tail("ab", 10), "ab");
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_loopback_port().ok(), Some(0));
    }
}
