//! Commands about the node: INFO, DBSIZE, FLUSHDB/FLUSHALL and KEYS (a part on every
//! shard), SCAN (the cursor is a slot, so one shard per call), and CONFIG.

use super::connection::{Local, REDIS_COMPAT_VERSION};
use super::join::{Join, Plan};
use super::{encode, Ctx};
use crate::cache::cmd::server::{Setting, ShardInfo};
use crate::cache::entry::kind_of_name;
use crate::cache::op::Op;
use crate::cache::slot::SLOTS;
use crate::cache::store::{glob_match, Policy};
use crate::config::parse_bytes;
use crate::limits::EVICTION_SAMPLES_MAX;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{self, config_failed, config_unknown, unknown_subcommand};
use crate::proto::resp::Args;

/// The parts of an all-shard command or of SCAN.
pub fn plan(ctx: &Ctx, spec: &Spec, a: Args) -> Result<Plan, String> {
    let all = |op: Op| (0..ctx.node.nshards).map(|s| (s, op.clone())).collect();
    Ok(match spec.cmd {
        Cmd::Dbsize => Plan {
            parts: all(Op::Dbsize),
            join: Join::Sum,
        },
        Cmd::Flushdb | Cmd::Flushall => {
            if a.len() > 2 || (a.len() == 2 && !a.eq(1, "ASYNC") && !a.eq(1, "SYNC")) {
                return Err(errors::SYNTAX.into());
            }
            Plan {
                parts: all(Op::Flush),
                join: Join::Ok,
            }
        }
        Cmd::Keys => Plan {
            parts: all(Op::Keys(a.get(1).to_vec())),
            join: Join::Keys,
        },
        Cmd::Scan => scan(ctx, a)?,
        Cmd::Info => {
            let sections = (1..a.len())
                .map(|i| String::from_utf8_lossy(a.get(i)).to_ascii_lowercase())
                .collect();
            Plan {
                parts: all(Op::Info),
                join: Join::Info(info_renderer(ctx, sections)),
            }
        }
        _ => panic!("{} is not an all-shard command", spec.name),
    })
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the cursor is a slot, so a shard.
fn scan(ctx: &Ctx, a: Args) -> Result<Plan, String> {
    let cursor = match std::str::from_utf8(a.get(1))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(c) if c < SLOTS as u64 => c as usize,
        Some(_) => 0,
        None => return Err(errors::INVALID_CURSOR.into()),
    };
    let (mut count, mut pattern, mut kind) = (10usize, None, None);
    let mut i = 2;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Err(errors::SYNTAX.into());
        }
        if a.eq(i, "COUNT") {
            match a.int(i + 1) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return Err(errors::SYNTAX.into()),
                None => return Err(errors::NOT_INT.into()),
            }
        } else if a.eq(i, "MATCH") {
            pattern = Some(a.get(i + 1).to_vec());
        } else if a.eq(i, "TYPE") {
            // A type we do not have matches nothing.
            kind = Some(kind_of_name(a.get(i + 1)).unwrap_or(u8::MAX));
        } else {
            return Err(errors::SYNTAX.into());
        }
        i += 2;
    }
    let owner = ctx.owner.shard(cursor as u16);
    Ok(Plan {
        parts: vec![(
            owner,
            Op::Scan {
                cursor,
                count,
                pattern,
                kind,
            },
        )],
        join: Join::Scan,
    })
}

/// Parameters CONFIG GET knows.
const PARAMS: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxclients",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "port",
    "databases",
    "save",
    "appendonly",
    "timeout",
    "requirepass",
];

/// The node's view of a config parameter. maxmemory is per shard in the stores, so the
/// node-wide value is the local share times the shard count.
fn config_value(ctx: &Ctx, name: &str) -> Option<String> {
    let cfg = &ctx.node.cfg;
    Some(match name {
        "maxmemory" => (ctx.store.maxmemory_bytes * ctx.node.nshards).to_string(),
        "maxmemory-policy" => ctx.store.policy.redis_name().to_string(),
        "maxmemory-samples" => ctx.store.samples.to_string(),
        "maxclients" => cfg.max_connections.to_string(),
        "proto-max-bulk-len" => cfg.max_bulk_bytes.to_string(),
        "client-query-buffer-limit" => cfg.max_query_buffer_bytes.to_string(),
        "port" => ctx.node.resp_port.to_string(),
        "databases" => "1".to_string(),
        "save" => String::new(),
        "appendonly" => "no".to_string(),
        "timeout" => "0".to_string(),
        "requirepass" => String::new(),
        _ => return None,
    })
}

/// CONFIG GET answers here; CONFIG SET of the eviction settings is a part on every shard.
pub fn config(ctx: &Ctx, a: &Args, resp3: bool) -> Result<Local, String> {
    let sub = a.get(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" if a.len() >= 3 => {
            let mut found: Vec<(&str, String)> = Vec::new();
            for i in 2..a.len() {
                let pat = a.get(i).to_ascii_lowercase();
                for p in PARAMS {
                    if glob_match(&pat, p.as_bytes(), true) && !found.iter().any(|(n, _)| n == p) {
                        if let Some(v) = config_value(ctx, p) {
                            found.push((p, v));
                        }
                    }
                }
            }
            Ok(Local::Reply(encode(resp3, |o| {
                o.map(found.len());
                for (n, v) in &found {
                    o.bulk(n.as_bytes());
                    o.bulk(v.as_bytes());
                }
            })))
        }
        b"SET" if a.len() >= 4 && a.len() % 2 == 0 => {
            let n = ctx.node.nshards;
            let mut settings = Vec::new();
            for i in (2..a.len()).step_by(2) {
                let name = String::from_utf8_lossy(a.get(i)).to_ascii_lowercase();
                let value = String::from_utf8_lossy(a.get(i + 1)).to_string();
                let (setting, why) = match name.as_str() {
                    "maxmemory" => (
                        parse_bytes(&value)
                            .ok()
                            .map(|b| Setting::Maxmemory(b.div_ceil(n))),
                        "argument must be a memory value".to_string(),
                    ),
                    "maxmemory-policy" => (
                        Policy::from_redis_name(&value).map(Setting::Policy),
                        format!(
                            "argument(s) must be one of the following: {}",
                            Policy::NAMES
                        ),
                    ),
                    "maxmemory-samples" => (
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|s| (1..=EVICTION_SAMPLES_MAX).contains(s))
                            .map(Setting::Samples),
                        format!("argument must be between 1 and {EVICTION_SAMPLES_MAX} inclusive"),
                    ),
                    _ => return Err(config_unknown(&name)),
                };
                settings.push(setting.ok_or_else(|| config_failed(&name, &why))?);
            }
            let parts = settings
                .into_iter()
                .flat_map(|s| (0..n).map(move |shard| (shard, Op::Configure(s))))
                .collect();
            Ok(Local::Plan(Plan {
                parts,
                join: Join::Ok,
            }))
        }
        b"RESETSTAT" if a.len() == 2 => Ok(Local::Reply(encode(resp3, |o| o.ok()))),
        _ => Err(unknown_subcommand(a.get(1), "CONFIG")),
    }
}

/// The function that turns summed shard figures into INFO text.
fn info_renderer(ctx: &Ctx, sections: Vec<String>) -> Box<dyn Fn(&ShardInfo) -> String + Send> {
    let policy = ctx.store.policy.redis_name();
    let (port, shards, max_clients) = (
        ctx.node.resp_port,
        ctx.node.nshards,
        ctx.node.cfg.max_connections,
    );
    let uptime = ctx.started.saturating_duration_since(ctx.node.started);
    Box::new(move |s: &ShardInfo| {
        let want = |name: &str| {
            sections.is_empty()
                || sections
                    .iter()
                    .any(|x| x == name || x == "all" || x == "everything" || x == "default")
        };
        let mut t = String::new();
        if want("server") {
            t.push_str("# Server\r\n");
            t.push_str(&format!("redis_version:{REDIS_COMPAT_VERSION}\r\n"));
            t.push_str(&format!("pinion_version:{}\r\n", env!("CARGO_PKG_VERSION")));
            t.push_str("redis_mode:standalone\r\n");
            t.push_str("arch_bits:64\r\n");
            t.push_str("multiplexing_api:io_uring\r\n");
            t.push_str(&format!("process_id:{}\r\n", std::process::id()));
            t.push_str(&format!("tcp_port:{port}\r\n"));
            t.push_str(&format!("uptime_in_seconds:{}\r\n", uptime.as_secs()));
            t.push_str(&format!("shards:{shards}\r\n\r\n"));
        }
        if want("clients") {
            t.push_str("# Clients\r\n");
            t.push_str(&format!("connected_clients:{}\r\n", s.clients));
            t.push_str(&format!("maxclients:{max_clients}\r\n\r\n"));
        }
        if want("memory") {
            t.push_str("# Memory\r\n");
            t.push_str(&format!("used_memory:{}\r\n", s.used_bytes));
            t.push_str(&format!("used_memory_human:{}\r\n", human(s.used_bytes)));
            t.push_str(&format!("maxmemory:{}\r\n", s.maxmemory_bytes));
            t.push_str(&format!("maxmemory_human:{}\r\n", human(s.maxmemory_bytes)));
            t.push_str(&format!("maxmemory_policy:{policy}\r\n\r\n"));
        }
        if want("stats") {
            t.push_str("# Stats\r\n");
            t.push_str(&format!(
                "total_connections_received:{}\r\n",
                s.connections_received
            ));
            t.push_str(&format!("total_commands_processed:{}\r\n", s.commands));
            t.push_str(&format!(
                "rejected_connections:{}\r\n",
                s.rejected_connections
            ));
            t.push_str(&format!("total_net_input_bytes:{}\r\n", s.bytes_in));
            t.push_str(&format!("total_net_output_bytes:{}\r\n", s.bytes_out));
            t.push_str(&format!("expired_keys:{}\r\n", s.expired));
            t.push_str(&format!("evicted_keys:{}\r\n", s.evicted));
            t.push_str(&format!("keyspace_hits:{}\r\n", s.hits));
            t.push_str(&format!("keyspace_misses:{}\r\n\r\n", s.misses));
        }
        if want("keyspace") {
            t.push_str("# Keyspace\r\n");
            if s.keys > 0 {
                t.push_str(&format!(
                    "db0:keys={},expires={},avg_ttl=0\r\n",
                    s.keys, s.expires
                ));
            }
        }
        t
    })
}

fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2}{}", UNITS[u])
}
