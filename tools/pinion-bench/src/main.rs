//! pinion-bench: a thread-per-core load generator for RESP and Kafka servers (pinion, and
//! redis-server or a Kafka broker to compare with), plus histogram merging and plotting.
//! See docs/pinion-bench.md.

mod engine;
mod hist;
mod kafka;
mod plot;
mod resp;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pinion-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// SET/GET load against a RESP server.
    Resp(RespArgs),
    /// Produce or consume load against a Kafka broker.
    Kafka(KafkaArgs),
    /// Merge or plot histogram files.
    #[command(subcommand)]
    Hist(HistCmd),
}

#[derive(Args, Clone)]
struct Load {
    /// Server address, HOST:PORT.
    #[arg(long)]
    addr: String,
    /// CPUs to run load threads on, one pinned thread each: "1", "1,3" or "2-5"
    /// (default: every CPU).
    #[arg(long)]
    cores: Option<String>,
    /// Connections in all, spread over the threads.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many measured operations instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open loop: operations per second across all connections, sent on schedule whether
    /// or not replies are back; latency counts from each one's intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Write a JSON summary here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the latency histogram here (percentile text) and to PATH.hlog (V2 log).
    #[arg(long)]
    hist_out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct RespArgs {
    #[command(flatten)]
    load: Load,
    /// SET:GET weights, e.g. 1:1, 1:10, 0:1 (GET only).
    #[arg(long, default_value = "1:1", value_parser = resp::parse_ratio)]
    ratio: (u32, u32),
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// uniform, or zipf:<s> (zipf:0.99 is a typical hot-key skew).
    #[arg(long, default_value = "uniform", value_parser = resp::parse_key_dist)]
    key_dist: resp::KeyDist,
    /// Value size for SET.
    #[arg(long, default_value_t = 64)]
    value_bytes: usize,
    /// Which keys each connection draws, by owning shard (pinion): any; local (only keys
    /// the shard it landed on owns: no mesh hop); remote (only keys other shards own: every
    /// operation crosses the mesh). Each connection asks CLIENT ID to learn its shard.
    #[arg(long, value_enum, default_value_t = resp::Placement::Any)]
    placement: resp::Placement,
    /// The node's shard count (its --cores); needed by --placement local|remote.
    #[arg(long)]
    shards: Option<usize>,
}

#[derive(Args)]
struct KafkaArgs {
    #[command(flatten)]
    load: Load,
    #[command(subcommand)]
    mode: KafkaMode,
}

#[derive(Subcommand)]
enum KafkaMode {
    /// Send batches of records; an operation is one record.
    Produce {
        #[arg(long, default_value = "pinion-bench")]
        topic: String,
        /// Partitions to create the topic with (an existing topic keeps its own).
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1024)]
        record_bytes: usize,
        /// Records per batch: this many bytes' worth (one batch per request). Keep it
        /// under the broker's message size limit (1 MiB by default, with overhead).
        #[arg(long, default_value_t = 512 << 10)]
        batch_bytes: usize,
        /// Open loop: the longest a record waits for its batch to fill before it is sent.
        #[arg(long, default_value_t = 5.0)]
        linger_ms: f64,
        /// 0 (no reply), 1 (leader) or -1/all (every replica; on pinion, after fsync).
        #[arg(long, default_value = "-1", value_parser = parse_acks, allow_hyphen_values = true)]
        acks: i16,
        #[arg(long, default_value = "none", value_parser = kafka::parse_compression)]
        compression: kafka_protocol::records::Compression,
    },
    /// Fetch from every partition; an operation is one fetch request.
    Consume {
        #[arg(long, default_value = "pinion-bench")]
        topic: String,
        /// earliest or latest.
        #[arg(long, default_value = "earliest", value_parser = ["earliest", "latest"])]
        from: String,
        /// Largest answer per partition per fetch.
        #[arg(long, default_value_t = 8 << 20)]
        partition_max_bytes: i32,
    },
}

#[derive(Subcommand)]
enum HistCmd {
    /// Add histogram files together into one (percentile text, and OUT.hlog).
    Merge {
        #[arg(short, long)]
        out: PathBuf,
        /// Files: .hlog, percentile text, or a pinion --hist-dump section as FILE@op=NAME.
        inputs: Vec<String>,
    },
    /// Draw the percentile curves of several runs on one chart.
    Plot {
        /// SVG output.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// PNG output.
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long, default_value = "latency by percentile")]
        title: String,
        /// A TrueType font for labels (default: DejaVu Sans from the usual places).
        #[arg(long)]
        font: Option<PathBuf>,
        /// LABEL=FILE (FILE as for merge; several files joined with + are merged).
        series: Vec<String>,
    },
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("'{s}': expected 0, 1, -1 or all")),
    }
}

/// "1", "1,3", "2-5", "0-1,4".
fn parse_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
                if b < a {
                    bail!("'{part}': empty range");
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse()?),
        }
    }
    if out.is_empty() {
        bail!("'{s}': no CPUs named");
    }
    Ok(out)
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("--addr {addr}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--addr {addr}: no address"))
}

fn plan(l: &Load, linger: Duration) -> anyhow::Result<engine::Plan> {
    let cores = match &l.cores {
        Some(s) => parse_cores(s).with_context(|| format!("--cores {s}"))?,
        None => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    };
    if l.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of operations per second");
    }
    if !(l.duration >= 0.0 && l.warmup >= 0.0) {
        bail!("--duration and --warmup must not be negative");
    }
    Ok(engine::Plan {
        addr: resolve(&l.addr)?,
        cores,
        connections: l.connections,
        pipeline: l.pipeline.max(1),
        duration: Duration::from_secs_f64(l.duration),
        requests: l.requests,
        warmup: Duration::from_secs_f64(l.warmup),
        rate: l.rate,
        linger,
        progress: !l.quiet,
    })
}

/// Print the summary and write the files asked for; `extra` adds fields to the JSON.
fn report(
    what: &str,
    p: &engine::Plan,
    l: &Load,
    o: &engine::Outcome,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    let q = |x: f64| o.hist.value_at_quantile(x) as f64 / 1000.0;
    let ops_s = o.ops as f64 / o.seconds;
    let mode = match p.rate {
        Some(r) => format!("open loop at {r:.0} ops/s"),
        None => format!("closed loop, pipeline {}", p.pipeline),
    };
    println!(
        "pinion-bench {what} {}: {mode}, {} connections on {} thread(s)",
        p.addr,
        p.connections,
        p.cores.len().min(p.connections)
    );
    println!(
        "  {:<10} {:>14} in {:.2} s = {:.0} ops/s",
        "ops", o.ops, o.seconds, ops_s
    );
    if o.records > 0 || o.bytes > 0 {
        println!(
            "  {:<10} {:>14} = {:.0} records/s, {:.1} MB/s",
            "fetched",
            o.records,
            o.records as f64 / o.seconds,
            o.bytes as f64 / o.seconds / 1e6
        );
    }
    match &o.first_error {
        Some(e) => println!("  {:<10} {:>14} (first: {e})", "errors", o.errors),
        None => println!("  {:<10} {:>14}", "errors", o.errors),
    }
    println!(
        "  {:<10} p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (µs)",
        "latency",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        o.hist.max() as f64 / 1000.0
    );
    if let Some(path) = &l.json {
        let mut j = serde_json::json!({
            "tool": "pinion-bench",
            "workload": what,
            "addr": p.addr.to_string(),
            "mode": if p.rate.is_some() { "open" } else { "closed" },
            "rate": p.rate,
            "connections": p.connections,
            "pipeline": p.pipeline,
            "threads": p.cores.len().min(p.connections),
            "seconds": o.seconds,
            "ops": o.ops,
            "ops_per_sec": ops_s,
            "errors": o.errors,
            "first_error": o.first_error,
            "records": o.records,
            "bytes": o.bytes,
            "mb_per_sec": o.bytes as f64 / o.seconds / 1e6,
            "p50_us": q(0.5),
            "p90_us": q(0.9),
            "p99_us": q(0.99),
            "p999_us": q(0.999),
            "max_us": o.hist.max() as f64 / 1000.0,
            "mean_us": o.hist.mean() / 1000.0,
        });
        if let (Some(j), serde_json::Value::Object(x)) = (j.as_object_mut(), extra) {
            j.extend(x);
        }
        std::fs::write(path, serde_json::to_string_pretty(&j)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &l.hist_out {
        hist::write_files(
            path,
            &o.hist,
            &format!("pinion-bench {what} {mode}"),
            o.seconds,
        )?;
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Resp(a) => {
            let p = plan(&a.load, Duration::ZERO)?;
            let (ratio, keyspace, dist, vb) = (a.ratio, a.keyspace, a.key_dist, a.value_bytes);
            let placed = match (a.placement, a.shards) {
                (resp::Placement::Any, _) => None,
                (p, None) => bail!("--placement {} needs --shards N", p.name()),
                (p, Some(n)) => Some((p, Arc::new(resp::ShardKeys::new(keyspace, n)?))),
            };
            let shown = placed.clone();
            let make: Arc<engine::MakeDriver> = Arc::new(move |c| {
                let r = resp::Resp::new(ratio, keyspace, dist, vb, 0x9e37_79b9 ^ c as u64);
                Box::new(match &placed {
                    Some((p, keys)) => r.placed(*p, keys.clone()),
                    None => r,
                })
            });
            let o = engine::run(&p, make)?;
            let extra = match &shown {
                Some((pl, keys)) => {
                    let landed = keys.landed();
                    println!(
                        "  {:<10} {} keys; connections per shard {:?}",
                        "placement",
                        pl.name(),
                        landed
                    );
                    serde_json::json!({ "placement": pl.name(), "shards": keys.shards(),
                                        "connections_per_shard": landed })
                }
                None => serde_json::json!({ "placement": "any" }),
            };
            report("resp", &p, &a.load, &o, extra)
        }
        Cmd::Kafka(a) => match a.mode {
            KafkaMode::Produce {
                topic,
                partitions,
                record_bytes,
                batch_bytes,
                linger_ms,
                acks,
                compression,
            } => {
                let p = plan(
                    &a.load,
                    Duration::from_secs_f64(linger_ms.max(0.0) / 1000.0),
                )?;
                let partitions = kafka::ensure_topic(p.addr, &topic, partitions.max(1))?;
                let opts = Arc::new(kafka::ProduceOpts {
                    topic,
                    partitions,
                    record_bytes,
                    batch_records: (batch_bytes / record_bytes.max(1)).clamp(1, 1 << 20) as u32,
                    acks,
                    compression,
                });
                let make: Arc<engine::MakeDriver> =
                    Arc::new(move |c| Box::new(kafka::Producer::new(&opts, c)));
                let o = engine::run(&p, make)?;
                let ok = o.ops.saturating_sub(o.errors);
                let mb = ok as f64 * record_bytes as f64 / o.seconds / 1e6;
                report("kafka-produce", &p, &a.load, &o, serde_json::Value::Null)?;
                println!(
                    "  {:<10} {:>14.1} MB/s of record values acknowledged",
                    "produced", mb
                );
                Ok(())
            }
            KafkaMode::Consume {
                topic,
                from,
                partition_max_bytes,
            } => {
                if a.load.rate.is_some() {
                    bail!("consume runs closed loop only (each fetch follows the last reply)");
                }
                let mut p = plan(&a.load, Duration::ZERO)?;
                let partitions = kafka::ensure_topic(p.addr, &topic, 1)?;
                let which = if from == "latest" { -1 } else { -2 };
                let offsets = kafka::start_offsets(p.addr, &topic, partitions, which)?;
                // One connection per partition at most; partitions dealt round the connections.
                p.connections = p.connections.clamp(1, partitions.max(1) as usize);
                let n = p.connections;
                let make: Arc<engine::MakeDriver> = Arc::new(move |c| {
                    let mine = offsets
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| k % n == c)
                        .map(|(k, &o)| (k as i32, o))
                        .collect();
                    Box::new(kafka::Consumer::new(&topic, mine, partition_max_bytes))
                });
                let o = engine::run(&p, make)?;
                report("kafka-consume", &p, &a.load, &o, serde_json::Value::Null)
            }
        },
        Cmd::Hist(HistCmd::Merge { out, inputs }) => {
            if inputs.is_empty() {
                bail!("name at least one histogram file");
            }
            let mut all = engine::new_hist();
            for i in &inputs {
                all.add(hist::read(i)?)?;
            }
            hist::write_files(
                &out,
                &all,
                &format!("merged from {}", inputs.join(" ")),
                0.0,
            )?;
            println!(
                "{}: {} values, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                out.display(),
                all.len(),
                all.value_at_quantile(0.5) as f64 / 1000.0,
                all.value_at_quantile(0.99) as f64 / 1000.0,
                all.max() as f64 / 1000.0
            );
            Ok(())
        }
        Cmd::Hist(HistCmd::Plot {
            svg,
            png,
            title,
            font,
            series,
        }) => {
            if svg.is_none() && png.is_none() {
                bail!("name an output: --svg PATH and/or --png PATH");
            }
            let mut s = Vec::new();
            for spec in &series {
                let Some((label, files)) = spec.split_once('=') else {
                    bail!("'{spec}': expected LABEL=FILE");
                };
                let mut h = engine::new_hist();
                for f in files.split('+') {
                    h.add(hist::read(f)?)?;
                }
                s.push((label.to_string(), h));
            }
            plot::plot(
                &title,
                &s,
                svg.as_deref(),
                png.as_deref(),
                font.as_deref().map(Path::new),
            )
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("pinion-bench: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse() {
        assert_eq!(parse_cores("1").unwrap(), vec![1]);
        assert_eq!(parse_cores("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("x").is_err());
        assert_eq!(parse_acks("all"), Ok(-1));
        assert!(parse_acks("2").is_err());
    }
}
