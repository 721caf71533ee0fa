//! Commands about the connection rather than a key: PING, ECHO, SELECT, QUIT, AUTH, HELLO,
//! CLIENT, COMMAND; and CONFIG, which [`super::server`] answers.

use super::join::Plan;
use super::session::Session;
use super::{encode, launch, server, session, Ctx};
use crate::proto::resp::command::{all, lookup, Cmd, Family, Spec};
use crate::proto::resp::errors::{self, unknown_subcommand, unknown_subcommand_short};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::conn::Conn;
use crate::shard::Act;

/// The Redis version we report; clients use it to pick features, and we implement the
/// 7.0 behaviour of every command we serve.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// What a connection command comes to.
pub enum Local {
    Reply(Vec<u8>),
    /// Reply, then close the connection (QUIT).
    Close(Vec<u8>),
    /// Parts on every shard (CONFIG SET).
    Plan(Plan),
}

/// Run a connection command now (standalone).
pub fn exec(ctx: &mut Ctx, conn: &mut Conn, spec: &'static Spec, a: Args) -> Act {
    let id = conn.id;
    let resp3 = conn.resp3();
    let local = run(ctx, session(conn), id, spec, &a);
    match local {
        Local::Reply(b) => {
            conn.reply(|o| o.buf.extend_from_slice(&b));
            ctx.record(spec.family);
            Act::Done
        }
        Local::Close(b) => {
            conn.reply(|o| o.buf.extend_from_slice(&b));
            Act::Close
        }
        Local::Plan(p) => launch(ctx, p, false, spec, resp3),
    }
}

/// Run a connection command for `sess` (standalone, or as EXEC runs it).
pub fn run(ctx: &mut Ctx, sess: &mut Session, id: u64, spec: &Spec, a: &Args) -> Local {
    let reply = |sess: &Session, f: &dyn Fn(&mut Out)| Local::Reply(encode(sess.resp3, f));
    match spec.cmd {
        Cmd::Ping => match a.len() {
            1 => reply(sess, &|o| o.simple("PONG")),
            2 => reply(sess, &|o| o.bulk(a.get(1))),
            _ => reply(sess, &|o| o.error(&errors::wrong_args("ping"))),
        },
        Cmd::Echo => reply(sess, &|o| o.bulk(a.get(1))),
        Cmd::Select => match a.int(1) {
            Some(0) => reply(sess, &|o| o.ok()),
            Some(_) => reply(sess, &|o| o.error(errors::DB_INDEX)),
            None => reply(sess, &|o| o.error(errors::NOT_INT)),
        },
        Cmd::Quit => Local::Close(encode(sess.resp3, |o| o.ok())),
        Cmd::Auth => auth(ctx, sess, id, a),
        Cmd::Hello => hello(ctx, sess, id, a),
        Cmd::Client => client(sess, id, a),
        Cmd::Command => Local::Reply(encode(sess.resp3, |o| command(a, o))),
        Cmd::Time => {
            let us = ctx.clock.unix_ms().saturating_mul(1000);
            reply(sess, &|o| {
                o.array(2);
                o.bulk((us / 1_000_000).to_string().as_bytes());
                o.bulk((us % 1_000_000).to_string().as_bytes());
            })
        }
        Cmd::Acl => super::acl::command(ctx, sess, a),
        Cmd::Scripts(_) => Local::Reply(encode(sess.resp3, |o| crate::script::admin(spec, a, o))),
        Cmd::Cluster(c) => {
            if c == crate::proto::resp::command::cluster::ClusterCmd::Asking {
                sess.asking = true;
            }
            let me = ctx.me;
            Local::Reply(encode(sess.resp3, |o| {
                ctx.node
                    .cluster
                    .with(|v| crate::cluster::resp::command(v, me, c, a, o))
            }))
        }
        Cmd::Config => match server::config(ctx, a, sess.resp3) {
            Ok(local) => local,
            Err(e) => reply(sess, &|o| o.error(&e)),
        },
        _ => panic!("{} is not a connection command", spec.name),
    }
}

// Users and ACLs (issue 13, f-sec): passwords are checked against the users' salted
// credentials (`redis/acl.rs`, `auth/`).
fn auth(ctx: &Ctx, sess: &mut Session, id: u64, a: &Args) -> Local {
    let r = match a.len() {
        2 => super::acl::authenticate(ctx, sess, id, a.get(0), None, a.get(1)),
        3 => super::acl::authenticate(ctx, sess, id, a.get(0), Some(a.get(1)), a.get(2)),
        _ => Err(errors::SYNTAX),
    };
    Local::Reply(encode(sess.resp3, |o| match r {
        Ok(()) => o.ok(),
        Err(e) => o.error(e),
    }))
}

fn hello(ctx: &Ctx, sess: &mut Session, id: u64, a: &Args) -> Local {
    let err = |sess: &Session, e: &str| Local::Reply(encode(sess.resp3, |o| o.error(e)));
    let mut proto = None;
    let mut i = 1;
    if a.len() > 1 {
        match a.int(1) {
            Some(v @ (2 | 3)) => proto = Some(v),
            Some(_) => return err(sess, errors::NOPROTO),
            None => return err(sess, errors::PROTO_NOT_INT),
        }
        i = 2;
    }
    let mut auth: Option<(&[u8], &[u8])> = None;
    let mut name = None;
    while i < a.len() {
        if a.eq(i, "AUTH") && i + 2 < a.len() {
            auth = Some((a.get(i + 1), a.get(i + 2)));
            i += 3;
        } else if a.eq(i, "SETNAME") && i + 1 < a.len() {
            if !valid_client_name(a.get(i + 1)) {
                return err(sess, errors::CLIENT_NAME);
            }
            name = Some(a.get(i + 1).to_vec());
            i += 2;
        } else {
            return err(sess, &errors::hello_option(a.get(i)));
        }
    }
    if let Some((u, p)) = auth {
        if let Err(e) = super::acl::authenticate(ctx, sess, id, a.get(0), Some(u), p) {
            return err(sess, e);
        }
    }
    if !sess.authed {
        return err(sess, errors::NOAUTH_HELLO);
    }
    if let Some(p) = proto {
        sess.resp3 = p == 3;
    }
    if name.is_some() {
        sess.name = name;
    }
    let resp3 = sess.resp3;
    Local::Reply(encode(resp3, |o| {
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
    }))
}

/// A client name has no spaces, newlines or other special characters (Redis's rule, for
/// CLIENT SETNAME and HELLO SETNAME alike).
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| b > b' ' && b <= b'~')
}

fn client(sess: &mut Session, id: u64, a: &Args) -> Local {
    let sub = a.get(1).to_ascii_uppercase();
    let r3 = sess.resp3;
    let reply = |f: &dyn Fn(&mut Out)| Local::Reply(encode(r3, f));
    match (sub.as_slice(), a.len()) {
        (b"SETNAME", 3) => {
            if !valid_client_name(a.get(2)) {
                return reply(&|o| o.error(errors::CLIENT_NAME));
            }
            sess.name = (!a.get(2).is_empty()).then(|| a.get(2).to_vec());
            reply(&|o| o.ok())
        }
        (b"GETNAME", 2) => {
            let name = sess.name.clone();
            reply(&|o| o.bulk_opt(name.as_deref()))
        }
        (b"ID", 2) => reply(&|o| o.int(id as i64)),
        // Library identification (redis-py, ioredis send it on connect) and hints we
        // accept and have nothing to do with.
        (b"SETINFO", 4) | (b"NO-EVICT", 3) | (b"NO-TOUCH", 3) => reply(&|o| o.ok()),
        _ => reply(&|o| o.error(&unknown_subcommand(a.get(1), "CLIENT"))),
    }
}

/// COMMAND [COUNT | LIST | INFO [name ...] | DOCS [name ...] | GETKEYS cmd args ... | HELP].
fn command(a: &Args, o: &mut Out) {
    if a.len() == 1 {
        o.array(all().count());
        for s in all() {
            command_entry(o, s);
        }
        return;
    }
    let sub = a.get(1).to_ascii_uppercase();
    match (sub.as_slice(), a.len()) {
        (b"COUNT", 2) => o.int(all().count() as i64),
        (b"LIST", _) => {
            o.array(all().count());
            for s in all() {
                o.bulk(s.name.as_bytes());
            }
        }
        (b"INFO", 2) => {
            o.array(all().count());
            for s in all() {
                command_entry(o, s);
            }
        }
        (b"INFO", _) => {
            o.array(a.len() - 2);
            for i in 2..a.len() {
                match lookup(a.get(i)) {
                    Some(s) => command_entry(o, s),
                    None => o.null_array(),
                }
            }
        }
        (b"DOCS", _) => {
            let named: Vec<&Spec> = if a.len() == 2 {
                all().collect()
            } else {
                (2..a.len()).filter_map(|i| lookup(a.get(i))).collect()
            };
            o.map(named.len());
            for s in named {
                o.bulk(s.name.as_bytes());
                o.map(2);
                o.bulk(b"summary");
                o.bulk(b"");
                o.bulk(b"group");
                o.bulk(group(s.family).as_bytes());
            }
        }
        (b"GETKEYS", n) if n >= 3 => getkeys(a, o),
        (b"HELP", 2) => crate::cache::cmd::keys::help(
            o,
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
            ],
        ),
        (b"COUNT" | b"HELP" | b"GETKEYS", _) => o.error(&errors::wrong_args(&format!(
            "command|{}",
            String::from_utf8_lossy(&sub).to_ascii_lowercase()
        ))),
        _ => o.error(&unknown_subcommand_short(a.get(1), "COMMAND")),
    }
}

/// One command's COMMAND INFO entry, in Redis 7.0's shape: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specifications, subcommands.
fn command_entry(o: &mut Out, s: &Spec) {
    let (first, last, step) = s.key_positions();
    o.array(10);
    o.bulk(s.name.as_bytes());
    o.int(s.arity as i64);
    let flags = s.flag_names();
    o.set(flags.len());
    for f in flags {
        o.simple(f);
    }
    o.int(first);
    o.int(last);
    o.int(step);
    let mut cats = vec![acl_category(s.family)];
    if s.writes() {
        cats.push("@write");
    } else if s.flags & crate::proto::resp::command::READONLY != 0 {
        cats.push("@read");
    }
    o.set(cats.len());
    for c in cats {
        o.simple(c);
    }
    o.set(0);
    o.array(0);
    o.array(0);
}

/// COMMAND DOCS's group of a command family.
fn group(f: Family) -> &'static str {
    match f {
        Family::Connection => "connection",
        Family::Read | Family::Write => "string",
        Family::Keyspace => "generic",
        Family::Hash => "hash",
        Family::Server => "server",
        Family::Transaction => "transactions",
        Family::List => "list",
        Family::Set => "set",
        Family::Zset => "sorted-set",
        Family::Bitmap => "bitmap",
        Family::Script => "scripting",
    }
}

/// The ACL category of a command family.
fn acl_category(f: Family) -> &'static str {
    match f {
        Family::Keyspace => "@keyspace",
        Family::Server => "@admin",
        Family::Transaction => "@transaction",
        Family::Zset => "@sortedset",
        Family::Script => "@scripting",
        other => match group(other) {
            "connection" => "@connection",
            "string" => "@string",
            "hash" => "@hash",
            "list" => "@list",
            "set" => "@set",
            _ => "@bitmap",
        },
    }
}

/// COMMAND GETKEYS cmd arg ...: the keys the command would touch.
fn getkeys(a: &Args, o: &mut Out) {
    let inner = Args {
        src: a.src,
        ranges: &a.ranges[2..],
    };
    let Some(spec) = lookup(inner.get(0)) else {
        return o.error(errors::INVALID_COMMAND);
    };
    if !spec.arity_ok(inner.len()) {
        return o.error(errors::INVALID_COMMAND_ARITY);
    }
    let mut keys = Vec::new();
    spec.for_each_key(&inner, |k| keys.push(k));
    if keys.is_empty() {
        return o.error(errors::NO_KEY_ARGUMENTS);
    }
    o.array(keys.len());
    for k in keys {
        o.bulk(k);
    }
}
