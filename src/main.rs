use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

/// jemalloc: see the note in Cargo.toml.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read by jemalloc itself when it starts (the environment's
/// `_RJEM_MALLOC_CONF` overrides them): a background thread gives freed pages back
/// to the system within about a second (`dirty_decay_ms`), off the request path,
/// instead of keeping up to 10 s of them in the process; two arenas, not eight per
/// two cores, keep fewer partly used pages. Under the mixed load on SQLite, one run
/// each: 2,065 and 2,312 commands/s with these settings, 1,814 and 1,873 without
/// (BENCHMARKS.md, "Mixed load with a year").
/// A null-terminated string, as jemalloc's `malloc_conf` is declared.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    // The configuration file first, while this is the only thread: its settings
    // become environment variables, which clap then reads (src/config.rs).
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = yiwang::config::load(&args, &yiwang::cli::Cli::command()) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = yiwang::cli::Cli::parse();
    // Still the only thread: the connection counts given as flags become the
    // environment variables the store reads.
    cli.export_connection_settings();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: yiwang::cli::Cli) -> std::process::ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == yiwang::cli::LogFormat::Pretty {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            // The request's span (method, path, request_id) once, under `span`; the
            // list of every enclosing span (`spans`) would repeat it.
            .with_current_span(true)
            .with_span_list(false)
            .init();
    }
    match yiwang::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
