//! Commands about the connection or the node rather than a key: PING, ECHO, HELLO, AUTH,
//! SELECT, QUIT, COMMAND, CLIENT, CONFIG, and the text of INFO.

use std::time::Instant;

use super::join::JoinKind;
use super::Shard;
use crate::cache::exec::{self, Args, PartOp, ShardInfo};
use crate::cache::store::{glob_match, Policy};
use crate::config::parse_bytes;
use crate::proto::resp::command::{Cmd, Spec, TABLE};
use crate::proto::resp::write::Out;

/// The Redis version we report; clients use it to pick features, and we implement the
/// 7.0 behaviour of every command we serve.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

impl Shard {
    /// Returns false if a broadcast it needs could not be sent now (mesh backpressure).
    pub(super) fn exec_local(
        &mut self,
        slot: u32,
        spec: &'static Spec,
        a: Args,
        started: Instant,
    ) -> bool {
        match spec.cmd {
            Cmd::Ping => match a.len() {
                1 => self.reply_now(slot, |o| o.simple("PONG")),
                2 => self.reply_now(slot, |o| o.bulk(a.get(1))),
                _ => self.reply_now(slot, |o| {
                    o.error("ERR wrong number of arguments for 'ping' command")
                }),
            },
            Cmd::Echo => self.reply_now(slot, |o| o.bulk(a.get(1))),
            Cmd::Select => match a.int(1) {
                Some(0) => self.reply_now(slot, |o| o.ok()),
                Some(_) => self.reply_now(slot, |o| o.error("ERR DB index is out of range")),
                None => self.reply_now(slot, |o| o.error(exec::NOT_INT)),
            },
            Cmd::Quit => {
                self.reply_now(slot, |o| o.ok());
                self.close_conn(slot, false);
            }
            Cmd::Auth => self.auth(slot, a),
            Cmd::Hello => self.hello(slot, a),
            Cmd::Client => self.client(slot, a),
            Cmd::Command => self.command(slot, a),
            Cmd::Config => return self.config(slot, a, started),
            _ => self.reply_now(slot, |o| o.error("ERR internal: not a local command")),
        }
        let family = spec.family;
        self.metrics
            .record(family, started.elapsed().as_nanos() as u64);
        true
    }

    fn check_password(&self, user: &[u8], pass: &[u8]) -> Result<(), &'static str> {
        match &self.shared.cfg.requirepass {
            None => Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            Some(p) if user == b"default" && p.as_bytes() == pass => Ok(()),
            Some(_) => Err("WRONGPASS invalid username-password pair or user is disabled."),
        }
    }

    fn auth(&mut self, slot: u32, a: Args) {
        let r = match a.len() {
            2 => self.check_password(b"default", a.get(1)),
            3 => self.check_password(a.get(1), a.get(2)),
            _ => Err(exec::SYNTAX),
        };
        if r.is_ok() {
            if let Some(c) = self.conns[slot as usize].as_mut() {
                c.authed = true;
            }
        }
        self.reply_now(slot, |o| match r {
            Ok(()) => o.ok(),
            Err(e) => o.error(e),
        });
    }

    fn hello(&mut self, slot: u32, a: Args) {
        let mut proto = None;
        let mut i = 1;
        if a.len() > 1 {
            match a.int(1) {
                Some(v @ (2 | 3)) => proto = Some(v),
                Some(_) => {
                    return self
                        .reply_now(slot, |o| o.error("NOPROTO unsupported protocol version"))
                }
                None => {
                    return self.reply_now(slot, |o| {
                        o.error("ERR Protocol version is not an integer or out of range")
                    })
                }
            }
            i = 2;
        }
        let mut auth: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut name = None;
        while i < a.len() {
            if a.eq(i, "AUTH") && i + 2 < a.len() {
                auth = Some((a.get(i + 1).to_vec(), a.get(i + 2).to_vec()));
                i += 3;
            } else if a.eq(i, "SETNAME") && i + 1 < a.len() {
                name = Some(a.get(i + 1).to_vec());
                i += 2;
            } else {
                let msg = format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(a.get(i))
                );
                return self.reply_now(slot, |o| o.error(&msg));
            }
        }
        if let Some((u, p)) = auth {
            if let Err(e) = self.check_password(&u, &p) {
                return self.reply_now(slot, |o| o.error(e));
            }
            if let Some(c) = self.conns[slot as usize].as_mut() {
                c.authed = true;
            }
        }
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if !c.authed {
            return self.reply_now(slot, |o| o.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
        }
        if let Some(p) = proto {
            c.resp3 = p == 3;
        }
        if name.is_some() {
            c.name = name;
        }
        let (id, resp3) = (c.id, c.resp3);
        self.reply_now(slot, |o| {
            o.map(7);
            o.bulk(b"server");
            o.bulk(b"redis");
            o.bulk(b"version");
            o.bulk(REDIS_COMPAT_VERSION.as_bytes());
            o.bulk(b"proto");
            o.int(if resp3 { 3 } else { 2 });
            o.bulk(b"id");
            o.int(id as i64);
            o.bulk(b"mode");
            o.bulk(b"standalone");
            o.bulk(b"role");
            o.bulk(b"master");
            o.bulk(b"modules");
            o.array(0);
        });
    }

    fn client(&mut self, slot: u32, a: Args) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        let sub = a.get(1).to_ascii_uppercase();
        match (sub.as_slice(), a.len()) {
            (b"SETNAME", 3) => {
                if a.get(2).iter().any(|&b| b <= b' ' || b > b'~') {
                    return self.reply_now(slot, |o| o.error("ERR Client names cannot contain spaces, newlines or special characters."));
                }
                c.name = if a.get(2).is_empty() {
                    None
                } else {
                    Some(a.get(2).to_vec())
                };
                self.reply_now(slot, |o| o.ok());
            }
            (b"GETNAME", 2) => {
                let name = c.name.clone();
                self.reply_now(slot, |o| o.bulk_opt(name.as_deref()));
            }
            (b"ID", 2) => {
                let id = c.id as i64;
                self.reply_now(slot, |o| o.int(id));
            }
            // Library identification (redis-py, ioredis send it on connect) and hints we
            // accept and have nothing to do with.
            (b"SETINFO", 4) | (b"NO-EVICT", 3) | (b"NO-TOUCH", 3) => {
                self.reply_now(slot, |o| o.ok())
            }
            _ => {
                let msg = format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(a.get(1))
                );
                self.reply_now(slot, |o| o.error(&msg));
            }
        }
    }

    fn command(&mut self, slot: u32, a: Args) {
        let write_entry = |o: &mut Out, s: &Spec| {
            let (first, last, step) = s.key_positions();
            o.array(6);
            o.bulk(s.name.as_bytes());
            o.int(s.arity as i64);
            let flags = s.flag_names();
            o.array(flags.len());
            for f in flags {
                o.simple(f);
            }
            o.int(first);
            o.int(last);
            o.int(step);
        };
        if a.len() == 1 {
            return self.reply_now(slot, |o| {
                o.array(TABLE.len());
                for s in TABLE {
                    write_entry(o, s);
                }
            });
        }
        let sub = a.get(1).to_ascii_uppercase();
        match sub.as_slice() {
            b"COUNT" => self.reply_now(slot, |o| o.int(TABLE.len() as i64)),
            // redis-cli asks for docs to show hints; having none is a valid answer.
            b"DOCS" => self.reply_now(slot, |o| o.map(0)),
            b"INFO" => self.reply_now(slot, |o| {
                o.array(a.len() - 2);
                for i in 2..a.len() {
                    match crate::proto::resp::command::lookup(a.get(i)) {
                        Some(s) => write_entry(o, s),
                        None => o.null_array(),
                    }
                }
            }),
            b"LIST" => self.reply_now(slot, |o| {
                o.array(TABLE.len());
                for s in TABLE {
                    o.bulk(s.name.as_bytes());
                }
            }),
            _ => {
                let msg = format!(
                    "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                    String::from_utf8_lossy(a.get(1))
                );
                self.reply_now(slot, |o| o.error(&msg));
            }
        }
    }

    /// The node's view of a config parameter. maxmemory is per shard in the stores, so the
    /// node-wide value is the local share times the shard count.
    fn config_value(&self, name: &str) -> Option<String> {
        let cfg = &self.shared.cfg;
        Some(match name {
            "maxmemory" => (self.store.maxmemory_bytes * self.shared.nshards).to_string(),
            "maxmemory-policy" => self.store.policy.redis_name().to_string(),
            "maxmemory-samples" => self.store.samples.to_string(),
            "maxclients" => cfg.max_connections.to_string(),
            "proto-max-bulk-len" => cfg.max_bulk_bytes.to_string(),
            "client-query-buffer-limit" => cfg.max_query_buffer_bytes.to_string(),
            "port" => self.shared.resp_port.to_string(),
            "databases" => "1".to_string(),
            "save" => String::new(),
            "appendonly" => "no".to_string(),
            "timeout" => "0".to_string(),
            "requirepass" => String::new(),
            _ => return None,
        })
    }

    fn config(&mut self, slot: u32, a: Args, started: Instant) -> bool {
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
        let sub = a.get(1).to_ascii_uppercase();
        match sub.as_slice() {
            b"GET" if a.len() >= 3 => {
                let mut found: Vec<(&str, String)> = Vec::new();
                for i in 2..a.len() {
                    let pat = a.get(i).to_ascii_lowercase();
                    for p in PARAMS {
                        if glob_match(&pat, p.as_bytes(), true)
                            && !found.iter().any(|(n, _)| n == p)
                        {
                            if let Some(v) = self.config_value(p) {
                                found.push((p, v));
                            }
                        }
                    }
                }
                self.reply_now(slot, |o| {
                    o.map(found.len());
                    for (n, v) in &found {
                        o.bulk(n.as_bytes());
                        o.bulk(v.as_bytes());
                    }
                });
            }
            b"SET" if a.len() >= 4 && a.len() % 2 == 0 => {
                let n = self.shared.nshards;
                let mut ops: Vec<PartOp> = Vec::new();
                for i in (2..a.len()).step_by(2) {
                    let name = String::from_utf8_lossy(a.get(i)).to_ascii_lowercase();
                    let value = String::from_utf8_lossy(a.get(i + 1)).to_string();
                    let op = match name.as_str() {
                        "maxmemory" => parse_bytes(&value)
                            .ok()
                            .map(|b| PartOp::SetMaxmemory(b.div_ceil(n))),
                        "maxmemory-policy" => {
                            Policy::from_redis_name(&value).map(PartOp::SetPolicy)
                        }
                        "maxmemory-samples" => value
                            .parse::<usize>()
                            .ok()
                            .filter(|&s| (1..=64).contains(&s))
                            .map(PartOp::SetSamples),
                        _ => {
                            let msg = format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'");
                            self.reply_now(slot, |o| o.error(&msg));
                            return true;
                        }
                    };
                    match op {
                        Some(op) => ops.push(op),
                        None => {
                            let msg =
                                format!("ERR Invalid argument '{value}' for CONFIG SET '{name}'");
                            self.reply_now(slot, |o| o.error(&msg));
                            return true;
                        }
                    }
                }
                let parts = ops
                    .iter()
                    .flat_map(|op| (0..n).map(move |s| (s, op.clone())))
                    .collect();
                return self.launch_new(
                    slot,
                    parts,
                    JoinKind::Ok,
                    crate::proto::resp::command::Family::Server,
                    started,
                );
            }
            b"RESETSTAT" if a.len() == 2 => self.reply_now(slot, |o| o.ok()),
            _ => {
                let msg = format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                    String::from_utf8_lossy(a.get(1))
                );
                self.reply_now(slot, |o| o.error(&msg));
            }
        }
        true
    }

    /// Build the function that turns summed shard figures into INFO text.
    pub(super) fn info_renderer(
        &self,
        sections: Vec<String>,
    ) -> Box<dyn Fn(&ShardInfo) -> String + Send> {
        let shared = self.shared.clone();
        let policy = self.store.policy.redis_name();
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
                t.push_str(&format!("tcp_port:{}\r\n", shared.resp_port));
                t.push_str(&format!(
                    "uptime_in_seconds:{}\r\n",
                    shared.started.elapsed().as_secs()
                ));
                t.push_str(&format!("shards:{}\r\n\r\n", shared.nshards));
            }
            if want("clients") {
                t.push_str("# Clients\r\n");
                t.push_str(&format!("connected_clients:{}\r\n", s.clients));
                t.push_str(&format!(
                    "maxclients:{}\r\n\r\n",
                    shared.cfg.max_connections
                ));
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
