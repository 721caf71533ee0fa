//! `pinion-control`: the control plane (`serve`) and its operator CLI.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use pinion_control::limits::{IDLE_TIMEOUT_MS, WRITE_TIMEOUT_MS};
use pinion_control::server::{self, msg::Op, ServeArgs};
use pinion_control::wire::{self, Conn};

#[derive(Parser)]
#[command(
    name = "pinion-control",
    version,
    about = "pinion's control plane: the cluster map, placement, and map changes by two-phase commit"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the control plane.
    Serve {
        /// Address to listen on for nodes and operators.
        #[arg(long, default_value = "127.0.0.1:7100")]
        listen: String,
        /// Where the write-ahead file lives (one control plane per directory).
        #[arg(long)]
        data_dir: PathBuf,
        /// The shared secret that authenticates every message (at least 16 bytes).
        #[arg(long)]
        secret_file: PathBuf,
        /// Where the map and the 2PC log live: `file` (the write-ahead file in --data-dir),
        /// or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (etcd, with one leader among the
        /// control planes that use it and the others standing by).
        #[arg(long, default_value = "file")]
        store: String,
    },
    /// The coordinator's state: epoch, phase, connected nodes.
    Status(Common),
    /// The nodes of the map with their shares and load.
    Nodes(Common),
    /// The committed map.
    Map(Common),
    /// Add a node (it joins when it registers, then owns its share).
    AddNode {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: u32,
        /// The node's RESP address (host:port).
        #[arg(long)]
        resp: String,
        /// The node's Kafka address (host:port).
        #[arg(long)]
        kafka: String,
        #[arg(long, default_value_t = 1)]
        shards: u16,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// One address per shard, comma-separated, when shards listen on their own ports.
        #[arg(long, value_delimiter = ',')]
        shard_endpoints: Vec<String>,
    },
    /// Remove a node: its slots and partitions move to the others.
    RemoveNode {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: u32,
    },
    /// Drain a node: it keeps serving while everything moves away from it.
    Drain {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        id: u32,
    },
    /// Change a node's operator weight (`--id N --weight W`), or pin one shard's connection
    /// weight for `--conn-balance weighted` (`--node N --shard S W`; `auto` unpins it).
    SetWeight {
        #[command(flatten)]
        c: Common,
        /// The node whose operator weight changes (with --weight).
        #[arg(long, requires = "weight", conflicts_with_all = ["node", "shard", "conn_weight"])]
        id: Option<u32>,
        /// The node's operator weight (placement's share).
        #[arg(long, requires = "id")]
        weight: Option<u32>,
        /// The node one of whose shards gets a connection weight (with --shard and W).
        #[arg(long, requires_all = ["shard", "conn_weight"])]
        node: Option<u32>,
        #[arg(long, requires = "node")]
        shard: Option<u16>,
        /// The shard's connection weight, 0..=1000 (0: no new connections), or `auto`: the
        /// load sets it again.
        #[arg(value_name = "W", requires = "node")]
        conn_weight: Option<String>,
    },
    /// Re-place by measured load (bounded moves per round).
    Rebalance(Common),
}

#[derive(Args)]
struct Common {
    /// The control plane's address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: String,
    /// The shared secret file (or $PINION_CONTROL_SECRET_FILE).
    #[arg(long, env = "PINION_CONTROL_SECRET_FILE")]
    secret_file: PathBuf,
    /// Print the reply as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let (c, op, kind) = match cli.cmd {
        Cmd::Serve {
            listen,
            data_dir,
            secret_file,
            store,
        } => {
            let args = ServeArgs {
                listen: &listen,
                data_dir: &data_dir,
                secret_file: &secret_file,
                store: &store,
            };
            return match server::serve(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pinion-control: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Status(c) => (c, Op::Status, "status"),
        Cmd::Nodes(c) => (c, Op::Nodes, "nodes"),
        Cmd::Map(c) => (c, Op::Map, "map"),
        Cmd::AddNode {
            c,
            id,
            resp,
            kafka,
            shards,
            weight,
            shard_endpoints,
        } => (
            c,
            Op::AddNode {
                id,
                resp_addr: resp,
                kafka_addr: kafka,
                shard_endpoints,
                shards,
                weight,
            },
            "change",
        ),
        Cmd::RemoveNode { c, id } => (c, Op::RemoveNode { id }, "change"),
        Cmd::Drain { c, id } => (c, Op::Drain { id }, "change"),
        Cmd::SetWeight {
            c,
            id,
            weight,
            node,
            shard,
            conn_weight,
        } => match (id, weight, node, shard, conn_weight) {
            (Some(id), Some(weight), None, None, None) => {
                (c, Op::SetWeight { id, weight }, "change")
            }
            (None, None, Some(node), Some(shard), Some(w)) => {
                let weight = match w.as_str() {
                    "auto" => None,
                    w => match w.parse::<u32>() {
                        Ok(w) => Some(w),
                        Err(_) => {
                            eprintln!("pinion-control: set-weight: {w:?} is not a weight (0..=1000) or `auto`");
                            return ExitCode::FAILURE;
                        }
                    },
                };
                let op = Op::SetConnWeight {
                    node,
                    shard,
                    weight,
                };
                (c, op, "change")
            }
            _ => {
                eprintln!(
                    "pinion-control: set-weight needs --id N --weight W, or --node N --shard S W"
                );
                return ExitCode::FAILURE;
            }
        },
        Cmd::Rebalance(c) => (c, Op::Rebalance, "change"),
    };
    match request(&c, &op) {
        Ok(reply) => print_reply(&reply, c.json, kind),
        Err(e) => {
            eprintln!("pinion-control: {e}");
            ExitCode::FAILURE
        }
    }
}

fn request(c: &Common, op: &Op) -> Result<Value, String> {
    let reply = request_at(&c.addr, c, op)?;
    // A standby control plane (etcd store) names the leader: ask it there, once.
    match reply["leader"].as_str() {
        Some(leader) if reply["ok"] == json!(false) && leader != c.addr => {
            request_at(leader, c, op)
        }
        _ => Ok(reply),
    }
}

fn request_at(addr: &str, c: &Common, op: &Op) -> Result<Value, String> {
    let secret = wire::read_secret(&c.secret_file)?;
    let stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let timeout = Duration::from_millis(IDLE_TIMEOUT_MS);
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)));
    let mut conn = Conn::client(stream, &secret).map_err(|e| format!("{addr}: {e}"))?;
    conn.send(&json!({"type": "op", "op": op}))
        .map_err(|e| format!("{addr}: {e}"))?;
    conn.recv().map_err(|e| match e {
        wire::WireError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("{addr}: the control plane closed the connection (is the shared secret right?)")
        }
        e => format!("{addr}: {e}"),
    })
}

fn print_reply(reply: &Value, as_json: bool, kind: &str) -> ExitCode {
    let ok = reply["ok"].as_bool() == Some(true);
    let mut out = std::io::stdout().lock();
    if as_json {
        let v = if ok { &reply["result"] } else { reply };
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_default()
        );
    } else if !ok {
        eprintln!(
            "pinion-control: {}",
            reply["error"].as_str().unwrap_or("request failed")
        );
    } else {
        let r = &reply["result"];
        match kind {
            "status" => {
                for (k, v) in r.as_object().into_iter().flatten() {
                    let _ = writeln!(out, "{k}: {v}");
                }
            }
            "nodes" => {
                let _ = writeln!(out, "epoch {}", r["epoch"]);
                let _ = writeln!(
                    out,
                    "{:>5} {:<9} {:>6} {:>6} {:>6} {:>10} {:<9} {:<21} conn weights",
                    "id", "state", "weight", "shards", "slots", "partitions", "connected", "resp"
                );
                for n in r["nodes"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "{:>5} {:<9} {:>6} {:>6} {:>6} {:>10} {:<9} {:<21} {}",
                        n["id"].to_string(),
                        n["state"].as_str().unwrap_or(""),
                        n["weight"].to_string(),
                        n["shards"].to_string(),
                        n["slots"].to_string(),
                        n["partitions"].to_string(),
                        n["connected"].to_string(),
                        n["resp_addr"].as_str().unwrap_or(""),
                        conn_weights_text(n)
                    );
                }
            }
            "map" => {
                let _ = writeln!(out, "epoch {} checksum {}", r["epoch"], r["checksum"]);
                for s in r["slots"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "slots {}-{} node {} shard {}",
                        s["start"], s["end"], s["node"], s["shard"]
                    );
                }
                for p in r["partitions"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "partition {}-{} node {} shard {}",
                        p["topic"].as_str().unwrap_or(""),
                        p["partition"],
                        p["node"],
                        p["shard"]
                    );
                }
                for c in r["conn_weights"].as_array().into_iter().flatten() {
                    let list = |k: &str| {
                        let v: Vec<String> = c[k]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(Value::to_string)
                            .collect();
                        v.join(",")
                    };
                    let _ = writeln!(
                        out,
                        "conn-weights node {} weights {} pinned [{}]",
                        c["node"],
                        list("weights"),
                        list("pinned")
                    );
                }
            }
            _ => {
                if r["changed"] == json!(false) {
                    let _ = writeln!(out, "epoch {}: nothing to change", r["epoch"]);
                } else {
                    let _ = writeln!(
                        out,
                        "epoch {} committed; moved {} slots, {} partitions",
                        r["epoch"], r["moved"]["slots"], r["moved"]["partitions"]
                    );
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A node's connection weights as `nodes` prints them: `3,1`, a pinned one marked `*`.
fn conn_weights_text(n: &Value) -> String {
    let pinned: Vec<u64> = n["conn_pinned"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    n["conn_weights"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, w)| {
            let mark = if pinned.contains(&(i as u64)) {
                "*"
            } else {
                ""
            };
            format!("{w}{mark}")
        })
        .collect::<Vec<_>>()
        .join(",")
}
