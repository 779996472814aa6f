//! Running the service: `serve` (the listener, the metrics listener, the
//! organisation refresh, the drain on SIGTERM) and `healthcheck`, which asks a
//! running one whether it is ready.

use super::*;

pub(super) async fn serve(url: &str, args: ServeArgs) -> anyhow::Result<()> {
    let calendar = match &args.calendar_dir {
        Some(d) => Calendar::from_dir(d)?,
        None => Calendar::embedded(),
    };
    if args.clock_offset_secs != 0 {
        tracing::warn!(
            offset_secs = args.clock_offset_secs,
            "business time is shifted from the system clock (YIWANG_CLOCK_OFFSET_SECS): a test or drill setting"
        );
    }
    let mut attachments = crate::attachments::Settings::for_database(url);
    if let Some(d) = &args.attachment_dir {
        attachments.dir = d.clone();
    }
    attachments.max_bytes = args.attachment_max_bytes;
    let app = crate::app::build_app_with(
        url,
        calendar,
        SlaSettings {
            rework_days: args.rework_days,
            warn_fraction: args.sla_warn_fraction,
        },
        crate::clock::Clock::offset(args.clock_offset_secs),
        attachments,
    )
    .await?;
    spawn_org_refresh(app.clone());
    let dir = app.attachments.dir.clone();
    tokio::task::spawn_blocking(move || {
        let n = crate::attachments::sweep_stale_uploads(&dir);
        if n > 0 {
            tracing::info!(removed = n, dir = %dir.display(), "removed uploads left unfinished by a crash");
        }
    });
    crate::sla::watcher::spawn(app.clone(), Duration::from_secs(args.sla_interval_secs));
    crate::projections::spawn(app.projection_handles());
    if args.verify_interval_secs > 0 {
        crate::verify::spawn(
            app.store.pool(),
            app.metrics.clone(),
            app.integrity.clone(),
            Duration::from_secs(args.verify_interval_secs),
            args.anchor_file.clone(),
        );
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr, app.clone(), stop_rx.clone()).await?;
    }
    tracing::info!(addr = %args.addr, database = %redact(url), engine = app.store.engine(), "yiwang serving");
    let metrics = app.metrics.clone();
    let drain = Duration::from_secs(args.shutdown_drain_secs);
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let shutdown =
        crate::http::server::Shutdown::new(args.shutdown_drain_secs + args.shutdown_grace_secs);
    let router = crate::http::app_with_edge(app, args.limits(), args.edge())
        .layer(axum::Extension(shutdown.clone()));
    let closing = shutdown.clone();
    let server =
        crate::http::server::serve(listener, router, args.connections(), metrics, async move {
            closing.closing().await
        });
    let mut server = tokio::spawn(server);
    shutdown_signal().await;
    shutdown.drain();
    tracing::info!(
        drain_secs = args.shutdown_drain_secs,
        "shutting down: /readyz answers 503; still serving while load balancers notice"
    );
    // A second signal cuts the drain short (Ctrl-C twice by hand).
    tokio::select! {
        () = tokio::time::sleep(drain) => {}
        () = shutdown_signal() => tracing::info!("second signal: closing now"),
    }
    shutdown.close();
    tracing::info!(
        grace_secs = args.shutdown_grace_secs,
        "listener closed, live event streams ended; finishing requests in flight"
    );
    match tokio::time::timeout(grace, &mut server).await {
        Ok(r) => r?,
        Err(_) => {
            server.abort();
            tracing::warn!(
                grace_secs = args.shutdown_grace_secs,
                "requests still in flight after the grace period were cut off"
            );
        }
    }
    // The metrics listener serves to the end: the drain is worth watching.
    let _ = stop_tx.send(true);
    tracing::info!("stopped");
    Ok(())
}

/// `yiwang healthcheck`: one `GET` over plain HTTP/1.1 (a container's HEALTHCHECK
/// has no curl); Ok on a 2xx, an error (exit code 1) on anything else.
pub(super) async fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let mut addr = args.addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}/readyz")
        }
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    let (status, detail) = tokio::time::timeout(timeout, http_get_status(&url))
        .await
        .map_err(|_| anyhow::anyhow!("not ready: no answer from {url} within {timeout:?}"))?
        .with_context(|| format!("not ready: {url}"))?;
    anyhow::ensure!(
        (200..300).contains(&status),
        "not ready: {url} answered {status}{}",
        detail.map(|d| format!(": {d}")).unwrap_or_default()
    );
    println!("ready: {url} answered {status}");
    Ok(())
}

/// The status of `GET url` (`http://host[:port][/path]`), and the `detail` of a
/// problem+json answer when there is one.
async fn http_get_status(url: &str) -> anyhow::Result<(u16, Option<String>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").with_context(|| {
        format!("{url:?}: only http:// URLs (the probe runs beside the service)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    anyhow::ensure!(!authority.is_empty(), "{url:?}: no host");
    // host:port, [v6]:port, or a host alone (port 80).
    let target = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let mut stream = tokio::net::TcpStream::connect(&target)
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: yiwang-healthcheck\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // `Connection: close`: the answer ends with the connection. A readiness answer
    // is a few hundred bytes; more than 64 KiB is not one.
    let mut answer = Vec::new();
    (&mut stream)
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .await
        .context("reading the answer")?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP answer from {target}"))?;
    let detail = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string));
    Ok((status, detail))
}

/// `serve --metrics-addr`: /metrics alone on its own listener, until `stop`.
async fn serve_metrics(
    addr: SocketAddr,
    app: Arc<App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--metrics-addr)"))?;
    tracing::info!(addr = %addr, "serving /metrics");
    let router = crate::http::metrics_app(app);
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Another process (`yiwang org load`) may replace the organisation: look for it.
fn spawn_org_refresh(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            match org::current(&app.store.pool()).await {
                // Parsing a stored, already validated document is cheap at this rate.
                Ok(Some(o)) => app.org.replace(o),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not refresh the organisation"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
