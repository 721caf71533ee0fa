//! Commands about the node: INFO, DBSIZE, FLUSHDB/FLUSHALL, KEYS and RANDOMKEY (a part on
//! every shard), SCAN (the cursor is a slot, so one shard per call), and CONFIG.

use std::hash::BuildHasher;

use super::connection::{Local, REDIS_COMPAT_VERSION};
use super::join::{Join, Plan};
use super::{encode, Ctx};
use crate::cache::cmd::keys::help;
use crate::cache::cmd::server::{Setting, ShardInfo};
use crate::cache::entry::kind_of_name;
use crate::cache::op::Op;
use crate::cache::slot::SLOTS;
use crate::cache::store::{glob_match, Policy};
use crate::config::{parse_bytes, InertSetting, INERT_SETTINGS};
use crate::limits::EVICTION_SAMPLES_MAX;
use crate::metrics::CmdStat;
use crate::proto::resp::command::{self, Cmd, Spec};
use crate::proto::resp::errors::{
    self, config_failed, config_unknown, unknown_subcommand_short, wrong_args,
};
use crate::proto::resp::Args;
use crate::runtime::sys::{cpu_times, CpuOf};

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
        Cmd::Randomkey => {
            let seed = std::collections::hash_map::RandomState::new().hash_one(ctx.now_ms);
            Plan {
                parts: all(Op::RandomKey { seed }),
                join: Join::RandomKey {
                    seed: seed.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15,
                },
            }
        }
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
        // pinion's cursors are slots: a larger one was never handed out. Starting over
        // instead would send a client with a corrupt cursor round and round.
        _ => return Err(errors::INVALID_CURSOR.into()),
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

/// pinion's own settings, by their Redis names; the first three change at run time (on
/// every shard), the others are set by flags at start-up.
const OWN: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxclients",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "port",
    "databases",
    "requirepass",
];

/// The node's value of one of [`OWN`]. maxmemory is per shard in the stores, so the
/// node-wide value is the local share times the shard count.
fn own_value(ctx: &Ctx, name: &str) -> Option<String> {
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
        "requirepass" => cfg.requirepass.clone().unwrap_or_default(),
        _ => return None,
    })
}

/// What CONFIG GET reports for an inert setting: what CONFIG SET stored, else the default.
fn inert_value(ctx: &Ctx, index: usize, s: &InertSetting) -> String {
    ctx.store.inert.get(index).unwrap_or(s.default).to_string()
}

/// CONFIG's subcommands and their arities (Redis's convention).
const CONFIG_SUBCOMMANDS: &[(&str, i32)] = &[
    ("get", -3),
    ("set", -4),
    ("resetstat", 2),
    ("rewrite", 2),
    ("help", 2),
];

/// CONFIG GET answers here; CONFIG SET and RESETSTAT are a part on every shard.
pub fn config(ctx: &Ctx, a: &Args, resp3: bool) -> Result<Local, String> {
    let sub = a.get(1);
    let Some(&(name, arity)) = CONFIG_SUBCOMMANDS
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(sub))
    else {
        return Err(unknown_subcommand_short(sub, "CONFIG"));
    };
    let arity_ok = if arity >= 0 {
        a.len() == arity as usize
    } else {
        a.len() >= arity.unsigned_abs() as usize
    };
    if !arity_ok || (name == "set" && a.len() % 2 != 0) {
        return Err(wrong_args(&format!("config|{name}")));
    }
    let n = ctx.node.nshards;
    let everywhere = |s: Setting| (0..n).map(move |shard| (shard, Op::Configure(s.clone())));
    match name {
        "get" => Ok(Local::Reply(encode(resp3, |o| {
            let found = config_get(ctx, a);
            o.map(found.len());
            for (n, v) in &found {
                o.bulk(n.as_bytes());
                o.bulk(v.as_bytes());
            }
        }))),
        "set" => {
            let settings = config_set(ctx, a)?;
            let parts = settings.into_iter().flat_map(everywhere).collect();
            Ok(Local::Plan(Plan {
                parts,
                join: Join::Ok,
            }))
        }
        "resetstat" => Ok(Local::Plan(Plan {
            parts: everywhere(Setting::ResetStats).collect(),
            join: Join::Ok,
        })),
        "rewrite" => Err(errors::NO_CONFIG_FILE.into()),
        _ => Ok(Local::Reply(encode(resp3, |o| {
            help(
                o,
                "CONFIG",
                &[
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                    "REWRITE",
                    "    Rewrite the configuration file.",
                ],
            )
        }))),
    }
}

/// CONFIG GET pattern [pattern ...]: each setting once, under the name that matched (a
/// pattern without glob characters is a name, which may be a Redis alias).
fn config_get(ctx: &Ctx, a: &Args) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    // Settings already reported, by canonical name.
    let mut seen: Vec<&str> = Vec::new();
    for i in 2..a.len() {
        let given = String::from_utf8_lossy(a.get(i)).into_owned();
        let lower = given.to_ascii_lowercase();
        let glob = lower.contains(['*', '?', '[']);
        for name in OWN {
            let hit = if glob {
                glob_match(lower.as_bytes(), name.as_bytes(), true)
            } else {
                lower == *name
            };
            if hit && !seen.contains(name) {
                if let Some(v) = own_value(ctx, name) {
                    seen.push(name);
                    found.push((
                        if glob {
                            name.to_string()
                        } else {
                            given.clone()
                        },
                        v,
                    ));
                }
            }
        }
        for (index, s) in INERT_SETTINGS.iter().enumerate() {
            if seen.contains(&s.name) {
                continue;
            }
            let shown = if glob {
                let matches = |n: &str| glob_match(lower.as_bytes(), n.as_bytes(), true);
                if matches(s.name) {
                    Some(s.name.to_string())
                } else {
                    s.alias.filter(|a| matches(a)).map(str::to_string)
                }
            } else {
                s.named(&lower).then(|| given.clone())
            };
            if let Some(shown) = shown {
                seen.push(s.name);
                found.push((shown, inert_value(ctx, index, s)));
            }
        }
    }
    found
}

/// CONFIG SET name value [name value ...]: every pair checked before any applies, as Redis
/// does; the settings to apply on every shard.
fn config_set(ctx: &Ctx, a: &Args) -> Result<Vec<Setting>, String> {
    let n = ctx.node.nshards;
    let mut settings = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for i in (2..a.len()).step_by(2) {
        let name = String::from_utf8_lossy(a.get(i)).to_ascii_lowercase();
        let value = String::from_utf8_lossy(a.get(i + 1)).to_string();
        let inert = INERT_SETTINGS.iter().position(|s| s.named(&name));
        let canonical = inert.map_or(name.as_str(), |i| INERT_SETTINGS[i].name);
        if names.iter().any(|n| n == canonical) {
            return Err(config_failed(&name, "duplicate parameter"));
        }
        names.push(canonical.to_string());
        let setting = match (name.as_str(), inert) {
            (_, Some(index)) => Setting::Inert {
                index,
                value: INERT_SETTINGS[index]
                    .check(&value)
                    .map_err(|why| config_failed(&name, &why))?
                    .into(),
            },
            ("maxmemory", _) => parse_bytes(&value)
                .map(|b| Setting::Maxmemory(b.div_ceil(n)))
                .map_err(|_| config_failed(&name, "argument must be a memory value"))?,
            ("maxmemory-policy", _) => Policy::from_redis_name(&value)
                .map(Setting::Policy)
                .ok_or_else(|| {
                    let why = format!(
                        "argument(s) must be one of the following: {}",
                        Policy::NAMES
                    );
                    config_failed(&name, &why)
                })?,
            ("maxmemory-samples", _) => value
                .parse::<usize>()
                .ok()
                .filter(|s| (1..=EVICTION_SAMPLES_MAX).contains(s))
                .map(Setting::Samples)
                .ok_or_else(|| {
                    let why =
                        format!("argument must be between 1 and {EVICTION_SAMPLES_MAX} inclusive");
                    config_failed(&name, &why)
                })?,
            (own, _) if OWN.contains(&own) => {
                return Err(config_failed(
                    &name,
                    "can't set immutable config (pinion sets it with a flag at start-up)",
                ))
            }
            _ => return Err(config_unknown(&name)),
        };
        settings.push(setting);
    }
    // The script time limit is node-wide; it applies once every pair has checked out.
    for s in &settings {
        if let Setting::Inert { index, value } = s {
            if INERT_SETTINGS[*index].name == "busy-reply-threshold" {
                if let Ok(ms) = value.parse::<u64>() {
                    ctx.node.scripts.set_busy_ms(ms);
                }
            }
        }
    }
    Ok(settings)
}

/// INFO's sections: those a bare INFO (or `default`) shows, in order ...
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
/// ... and those only `all`, `everything` or their name shows.
const EXTRA_SECTIONS: &[&str] = &["commandstats", "latencystats"];

/// Which sections INFO's arguments ask for (Redis 7.0's rules: no argument is `default`;
/// `all` and `everything` are every section; names are case-insensitive; unknown names
/// show nothing).
fn wanted_sections(args: &[String]) -> Vec<&'static str> {
    let all = args.iter().any(|x| x == "all" || x == "everything");
    let default = args.is_empty() || args.iter().any(|x| x == "default");
    DEFAULT_SECTIONS
        .iter()
        .chain(EXTRA_SECTIONS)
        .copied()
        .filter(|name| {
            all || (default && DEFAULT_SECTIONS.contains(name))
                || args
                    .iter()
                    .any(|x| x == name || (x == "module_list" && *name == "modules"))
        })
        .collect()
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
    let now_ms = ctx.now_ms;
    let aof = ctx.store.inert.get(inert_index("appendonly")) == Some("yes");
    let hz = ctx
        .store
        .inert
        .get(inert_index("hz"))
        .unwrap_or("10")
        .to_string();
    let wanted = wanted_sections(&sections);
    // Cluster mode (issue 12): a node under a control plane, or one whose shards are
    // listed as masters on their own ports, is a cluster node to its clients.
    let cluster_enabled = u8::from(ctx.node.cluster.managed || ctx.node.cfg.shard_ports.is_some());
    Box::new(move |s: &ShardInfo| {
        let mut t = String::new();
        let mut section = |name: &str, title: &str, body: &dyn Fn(&mut String)| {
            if wanted.contains(&name) {
                if !t.is_empty() {
                    t.push_str("\r\n");
                }
                t.push_str("# ");
                t.push_str(title);
                t.push_str("\r\n");
                body(&mut t);
            }
        };
        let line = |t: &mut String, k: &str, v: &dyn std::fmt::Display| {
            t.push_str(&format!("{k}:{v}\r\n"));
        };
        section("server", "Server", &|t| {
            line(t, "redis_version", &REDIS_COMPAT_VERSION);
            line(t, "pinion_version", &env!("CARGO_PKG_VERSION"));
            line(t, "redis_git_sha1", &"00000000");
            line(t, "redis_git_dirty", &0);
            line(t, "redis_mode", &"standalone");
            line(t, "os", &std::env::consts::OS);
            line(t, "arch_bits", &64);
            line(t, "multiplexing_api", &"io_uring");
            line(t, "process_id", &std::process::id());
            line(t, "tcp_port", &port);
            line(t, "server_time_usec", &(now_ms * 1000));
            line(t, "uptime_in_seconds", &uptime.as_secs());
            line(t, "uptime_in_days", &(uptime.as_secs() / 86_400));
            line(t, "hz", &hz);
            line(t, "configured_hz", &hz);
            line(t, "io_threads_active", &0);
            line(t, "shards", &shards);
        });
        section("clients", "Clients", &|t| {
            line(t, "connected_clients", &s.clients);
            line(t, "cluster_connections", &0);
            line(t, "maxclients", &max_clients);
            line(t, "blocked_clients", &s.blocked_clients);
            line(t, "tracking_clients", &0);
            line(t, "clients_in_timeout_table", &s.blocked_clients);
        });
        section("memory", "Memory", &|t| {
            line(t, "used_memory", &s.used_bytes);
            line(t, "used_memory_human", &human(s.used_bytes));
            line(t, "used_memory_peak", &s.used_bytes);
            line(t, "used_memory_peak_human", &human(s.used_bytes));
            line(t, "maxmemory", &s.maxmemory_bytes);
            line(t, "maxmemory_human", &human(s.maxmemory_bytes));
            line(t, "maxmemory_policy", &policy);
            line(t, "mem_allocator", &"libc");
        });
        section("persistence", "Persistence", &|t| {
            line(t, "loading", &0);
            line(t, "async_loading", &0);
            line(t, "rdb_changes_since_last_save", &s.changes);
            line(t, "rdb_bgsave_in_progress", &0);
            line(t, "rdb_last_bgsave_status", &"ok");
            line(t, "aof_enabled", &(aof as u8));
            line(t, "aof_rewrite_in_progress", &0);
            line(t, "aof_rewrite_scheduled", &0);
            line(t, "aof_last_bgrewrite_status", &"ok");
            line(t, "aof_last_write_status", &"ok");
        });
        section("stats", "Stats", &|t| {
            line(t, "total_connections_received", &s.connections_received);
            line(t, "total_commands_processed", &s.commands);
            line(t, "instantaneous_ops_per_sec", &0);
            line(t, "total_net_input_bytes", &s.bytes_in);
            line(t, "total_net_output_bytes", &s.bytes_out);
            line(t, "rejected_connections", &s.rejected_connections);
            line(t, "expired_keys", &s.expired);
            line(t, "evicted_keys", &s.evicted);
            line(t, "keyspace_hits", &s.hits);
            line(t, "keyspace_misses", &s.misses);
            line(t, "pubsub_channels", &0);
            line(t, "pubsub_patterns", &0);
            line(t, "total_blocking_keys", &0);
        });
        section("replication", "Replication", &|t| {
            line(t, "role", &"master");
            line(t, "connected_slaves", &0);
            line(t, "master_failover_state", &"no-failover");
            line(
                t,
                "master_replid",
                &"0000000000000000000000000000000000000000",
            );
            line(t, "master_repl_offset", &0);
            line(t, "second_repl_offset", &-1);
            line(t, "repl_backlog_active", &0);
        });
        section("cpu", "CPU", &|t| {
            let (user, sys) = cpu_times(CpuOf::Process);
            let (cuser, csys) = cpu_times(CpuOf::Children);
            let (tuser, tsys) = cpu_times(CpuOf::Thread);
            line(t, "used_cpu_sys", &format!("{sys:.6}"));
            line(t, "used_cpu_user", &format!("{user:.6}"));
            line(t, "used_cpu_sys_children", &format!("{csys:.6}"));
            line(t, "used_cpu_user_children", &format!("{cuser:.6}"));
            line(t, "used_cpu_sys_main_thread", &format!("{tsys:.6}"));
            line(t, "used_cpu_user_main_thread", &format!("{tuser:.6}"));
        });
        section("modules", "Modules", &|_| {});
        section("errorstats", "Errorstats", &|_| {});
        section("cluster", "Cluster", &|t| {
            line(t, "cluster_enabled", &cluster_enabled)
        });
        section("keyspace", "Keyspace", &|t| {
            if s.keys > 0 {
                t.push_str(&format!(
                    "db0:keys={},expires={},avg_ttl=0\r\n",
                    s.keys, s.expires
                ));
            }
        });
        section("commandstats", "Commandstats", &|t| {
            for (spec, c) in command::all().zip(&s.by_command) {
                if *c != CmdStat::default() {
                    commandstat(t, spec.name, c);
                }
            }
        });
        section("latencystats", "Latencystats", &|_| {});
        t
    })
}

/// One `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`
/// line.
fn commandstat(t: &mut String, name: &str, c: &CmdStat) {
    let usec = c.ns / 1000;
    let per_call = if c.calls > 0 {
        c.ns as f64 / 1000.0 / c.calls as f64
    } else {
        0.0
    };
    t.push_str(&format!(
        "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls=0\r\n",
        c.calls, c.rejected
    ));
}

/// The place of a setting in [`INERT_SETTINGS`] (a name this file spells right; the unit
/// test below checks).
fn inert_index(name: &str) -> usize {
    INERT_SETTINGS
        .iter()
        .position(|s| s.name == name)
        .unwrap_or(usize::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn w(args: &[&str]) -> Vec<&'static str> {
        wanted_sections(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn info_sections_follow_redis_rules() {
        assert_eq!(w(&[]), DEFAULT_SECTIONS);
        assert_eq!(w(&["default"]), DEFAULT_SECTIONS);
        assert_eq!(w(&["cpu"]), ["cpu"]);
        assert_eq!(w(&["cpu", "sentinel"]), ["cpu"]);
        assert_eq!(w(&["commandstats"]), ["commandstats"]);
        let all = w(&["cpu", "all"]);
        assert!(all.contains(&"commandstats") && all.contains(&"replication"));
        assert_eq!(all.iter().filter(|s| **s == "cpu").count(), 1);
        let d = w(&["cpu", "default"]);
        assert!(d.contains(&"memory") && !d.contains(&"commandstats"));
        assert_eq!(
            w(&["everything"]).len(),
            DEFAULT_SECTIONS.len() + EXTRA_SECTIONS.len()
        );
    }

    #[test]
    fn settings_this_file_names_exist() {
        for n in ["appendonly", "hz"] {
            assert!(inert_index(n) < INERT_SETTINGS.len(), "{n}");
        }
    }

    #[test]
    fn commandstat_lines() {
        let mut t = String::new();
        let c = CmdStat {
            calls: 4,
            ns: 10_000,
            rejected: 1,
        };
        commandstat(&mut t, "get", &c);
        assert_eq!(
            t,
            "cmdstat_get:calls=4,usec=10,usec_per_call=2.50,rejected_calls=1,failed_calls=0\r\n"
        );
    }
}
