//! The `pinion` node binary: parse flags, start the shards, serve the admin endpoint, and
//! handle signals (SIGUSR1: dump histograms; SIGHUP: reload TLS certificates; SIGINT/SIGTERM:
//! drain and exit 0).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use pinion::config::Config;
use pinion::metrics;
use pinion::shard::node::Node;

fn main() {
    // `pinion users ...`: edit a users file (issue 13, f-sec), no node started.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("users") {
        match pinion::auth::users_tool(&argv[2..], &mut std::io::stdin()) {
            Ok(out) => print!("{out}"),
            Err(e) => {
                eprintln!("pinion users: {e}");
                std::process::exit(2);
            }
        }
        return;
    }
    let cfg = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file stays greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(cfg) {
        tracing::error!("{e:#}");
        eprintln!("pinion: {e:#}");
        std::process::exit(1);
    }
}

fn write_dump(path: &std::path::Path, shards: &[metrics::ShardMetrics]) {
    let text = metrics::dump_text(shards);
    let tmp = path.with_extension("tmp");
    match std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
        Ok(()) => tracing::info!(path = %path.display(), "histograms written"),
        Err(e) => tracing::error!(path = %path.display(), error = %e, "writing histograms failed"),
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    // Flags are checked before anything touches the disk: a refused start leaves no
    // data folder behind (Node::start checks them again for its other callers).
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating --data-dir {}", cfg.data_dir.display()))?;
    // Held until the process exits: a second node on this directory refuses to start.
    let _data_dir_lock = pinion::datadir::lock(&cfg.data_dir)?;
    // Register signal handlers before any thread starts, so every thread inherits them.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGHUP]).context("installing signal handlers")?;
    let admin = std::net::TcpListener::bind(cfg.admin_listen)
        .with_context(|| format!("binding --admin-listen {}", cfg.admin_listen))?;
    let admin_addr = admin.local_addr()?;
    let hist_dump = cfg.hist_dump.clone();
    let admin_token = metrics::admin::resolve_token(cfg.admin_token.as_deref())
        .context("reading --admin-token")?;
    let control_secret = pinion::cluster::member::secret(&cfg)?;
    let node = Node::start(cfg)?;
    // Partition moves (issue 12, f-pull): driven from the admin endpoint (and
    // the cluster's orchestration, which shares this one registry of pulls).
    let pulls = {
        let mut kafka_addr = node.kafka_addr;
        if kafka_addr.ip().is_unspecified() {
            kafka_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Arc::new(pinion::log::pull::Pulls::new(pinion::log::pull::NodeLink {
            data_dir: node.shared.cfg.data_dir.clone(),
            direct_io: node.shared.cfg.direct_io,
            nshards: node.shared.nshards,
            kafka_addr,
            send: node.pull_link(),
        }))
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(secret) = control_secret {
        pinion::cluster::member::spawn(&node, secret, stop.clone(), pulls.clone())?;
    }
    {
        let snap = node.snapshotter();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || metrics::admin::serve(admin, snap, stop, admin_token, pulls))?;
    }
    if let Some(a) = node.resp_tls_addr {
        tracing::info!(resp_tls = %a, "RESP over TLS");
    }
    if let Some(a) = node.kafka_tls_addr {
        tracing::info!(kafka_tls = %a, "Kafka over TLS");
    }
    tracing::info!(resp = %node.resp_addr, kafka = %node.kafka_addr, admin = %admin_addr, shards = node.shared.nshards, "pinion ready");
    for sig in signals.forever() {
        match sig {
            SIGUSR1 => match (&hist_dump, node.metrics(Duration::from_secs(2))) {
                (Some(p), Some(m)) => write_dump(p, &m),
                (None, _) => tracing::info!("SIGUSR1: no --hist-dump path set"),
                (_, None) => tracing::warn!("SIGUSR1: a shard did not answer"),
            },
            SIGHUP => match &node.shared.tls {
                Some(tls) => tls.reload_logged(),
                None => tracing::info!("SIGHUP: no TLS listener; nothing to reload"),
            },
            _ => break,
        }
    }
    tracing::info!("shutting down: draining connections");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let final_metrics = node.shutdown();
    if let Some(p) = &hist_dump {
        write_dump(p, &final_metrics);
    }
    tracing::info!("stopped");
    Ok(())
}
