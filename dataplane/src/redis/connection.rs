//! Commands about the connection rather than a key: PING, ECHO, SELECT, QUIT, AUTH, HELLO,
//! CLIENT, COMMAND; and CONFIG, which [`super::server`] answers.

use super::join::Plan;
use super::session::Session;
use super::{encode, launch, server, session, Ctx};
use crate::proto::resp::command::{all, lookup, Cmd, Spec};
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
        Cmd::Auth => auth(ctx, sess, a),
        Cmd::Hello => hello(ctx, sess, id, a),
        Cmd::Client => client(sess, id, a),
        Cmd::Command => Local::Reply(encode(sess.resp3, |o| command(a, o))),
        Cmd::Config => match server::config(ctx, a, sess.resp3) {
            Ok(local) => local,
            Err(e) => reply(sess, &|o| o.error(&e)),
        },
        _ => panic!("{} is not a connection command", spec.name),
    }
}

fn check_password(ctx: &Ctx, user: &[u8], pass: &[u8]) -> Result<(), &'static str> {
    match &ctx.node.cfg.requirepass {
        None => Err(errors::NO_PASSWORD),
        Some(p) if user == b"default" && p.as_bytes() == pass => Ok(()),
        Some(_) => Err(errors::WRONGPASS),
    }
}

fn auth(ctx: &Ctx, sess: &mut Session, a: &Args) -> Local {
    let r = match a.len() {
        2 => check_password(ctx, b"default", a.get(1)),
        3 => check_password(ctx, a.get(1), a.get(2)),
        _ => Err(errors::SYNTAX),
    };
    if r.is_ok() {
        sess.authed = true;
    }
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
            name = Some(a.get(i + 1).to_vec());
            i += 2;
        } else {
            return err(sess, &errors::hello_option(a.get(i)));
        }
    }
    if let Some((u, p)) = auth {
        if let Err(e) = check_password(ctx, u, p) {
            return err(sess, e);
        }
        sess.authed = true;
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

fn client(sess: &mut Session, id: u64, a: &Args) -> Local {
    let sub = a.get(1).to_ascii_uppercase();
    let r3 = sess.resp3;
    let reply = |f: &dyn Fn(&mut Out)| Local::Reply(encode(r3, f));
    match (sub.as_slice(), a.len()) {
        (b"SETNAME", 3) => {
            if a.get(2).iter().any(|&b| b <= b' ' || b > b'~') {
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

fn command(a: &Args, o: &mut Out) {
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
        o.array(all().count());
        for s in all() {
            write_entry(o, s);
        }
        return;
    }
    match a.get(1).to_ascii_uppercase().as_slice() {
        b"COUNT" => o.int(all().count() as i64),
        // redis-cli asks for docs to show hints; having none is a valid answer.
        b"DOCS" => o.map(0),
        b"INFO" => {
            o.array(a.len() - 2);
            for i in 2..a.len() {
                match lookup(a.get(i)) {
                    Some(s) => write_entry(o, s),
                    None => o.null_array(),
                }
            }
        }
        b"LIST" => {
            o.array(all().count());
            for s in all() {
                o.bulk(s.name.as_bytes());
            }
        }
        _ => o.error(&unknown_subcommand_short(a.get(1), "COMMAND")),
    }
}
