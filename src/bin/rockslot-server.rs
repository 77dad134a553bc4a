//! `rockslot-server [config-file] [--directive value ...]`: one rockslot node.

use std::process::ExitCode;

use rockslot::config::{self, LiveConfig};

fn init_logging(c: &config::Config) -> anyhow::Result<()> {
    let level = c.loglevel.tracing_level();
    let filter = match level {
        Some(l) => tracing_subscriber::filter::LevelFilter::from_level(l),
        None => tracing_subscriber::filter::LevelFilter::OFF,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if c.logfile.is_empty() {
        builder.with_writer(std::io::stdout).init();
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&c.logfile)?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init();
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-v" | "--version")) {
        println!("rockslot-server v={}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let loaded = match config::parse_args(&args).and_then(|src| config::load(&src)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("\n*** FATAL CONFIG FILE ERROR ***\n{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_logging(&loaded.config) {
        eprintln!("cannot open logfile {}: {e}", loaded.config.logfile);
        return ExitCode::FAILURE;
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        // `io-threads` (0 = cores - 1): client connections and the bus share these threads;
        // RocksDB's flushes and compactions run on its own background threads.
        .worker_threads(loaded.config.worker_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let shared = rockslot::server::open(LiveConfig::new(&loaded))?;
        rockslot::server::run(shared).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rockslot-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
