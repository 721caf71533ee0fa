//! The RESP side of users and ACLs: the permission check every command passes
//! ([`permit`], and [`recheck`] at EXEC), AUTH's password check ([`authenticate`]), and the
//! ACL command (SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG, SAVE, LOAD,
//! GENPASS, DRYRUN, HELP) over the node-wide table (`auth/`).
//!
//! Runs on the connection's shard. A session keeps the `Arc<User>` it runs as and looks it
//! up again only when the table's generation moved, so an unrestricted user costs one
//! atomic load per command.

use std::sync::Arc;

use super::connection::Local;
use super::session::Session;
use super::{encode, Ctx};
use crate::auth::acl::{self, Denied, User, CATEGORIES};
use crate::auth::{Caller, LogEntry, Reason, ScriptCaller};
use crate::proto::resp::command::Family;
use crate::proto::resp::command::{lookup, Spec};
use crate::proto::resp::errors::{self, unknown_subcommand};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use crate::shard::conn::{Conn, Proto};

pub enum Permit {
    Yes,
    /// Refused: the error to answer.
    No(String),
    /// The connection's user was deleted: close it, as Redis does.
    Gone,
}

pub const NOPERM_KEY: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";
const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";
const SAVE_FAILED: &str =
    "ERR There was an error trying to save the ACLs. Please check the server logs for more information";

fn noperm_cmd(name: &str) -> String {
    format!("NOPERM this user has no permissions to run the '{name}' command")
}

/// The session's user, looked up again if the table changed (None: it was deleted).
/// Borrowed, not cloned: every shard's connections share the default user's `Arc`, and a
/// reference count touched per command would be a cache line the shards fight over.
fn refresh<'s>(ctx: &Ctx, sess: &'s mut Session) -> Option<&'s User> {
    let users = &ctx.node.users;
    let g = users.generation();
    if sess.user.is_none() || sess.user_gen != g {
        let u = users.get(sess.username())?;
        sess.user = Some(u);
        sess.user_gen = g;
    }
    sess.user.as_deref()
}

fn client_info(sess: &Session, id: u64) -> String {
    let name = sess
        .name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!("id={id} name={name} user={}", sess.username())
}

fn log(ctx: &Ctx, sess: &Session, id: u64, reason: Reason, context: &'static str, object: &[u8]) {
    ctx.node.users.log(LogEntry {
        count: 1,
        reason,
        context,
        object: String::from_utf8_lossy(object).into_owned(),
        username: sess.username().to_string(),
        created: ctx.clock.now(),
        client_info: client_info(sess, id),
    });
}

/// Who runs a script command (EVAL, EVALSHA, FCALL and their _RO forms), carried to the
/// shard that runs it: a restricted user, whose `redis.call`s are checked there (Redis's
/// scriptVerifyACL); None for other commands and unrestricted users.
pub fn script_caller(ctx: &Ctx, conn: &Conn, spec: &Spec) -> ScriptCaller {
    if spec.family != Family::Script {
        return None;
    }
    let Proto::Resp(sess) = &conn.proto else {
        return None;
    };
    let user = sess.user.as_ref().filter(|u| !u.unrestricted())?;
    Some(Box::new(Caller {
        user: user.clone(),
        users: ctx.node.users.clone(),
        client_info: client_info(sess, conn.id),
    }))
}

/// May this authenticated session run `a`? Denials are logged (ACL LOG).
pub fn permit(ctx: &Ctx, sess: &mut Session, id: u64, spec: &Spec, a: &Args) -> Permit {
    let Some(u) = refresh(ctx, sess) else {
        return Permit::Gone;
    };
    if u.unrestricted() {
        return Permit::Yes;
    }
    let checked = u.check(spec, a);
    let context = if sess.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    match checked {
        Ok(()) => Permit::Yes,
        Err(Denied::Cmd(name)) => {
            log(ctx, sess, id, Reason::Command, context, name.as_bytes());
            Permit::No(noperm_cmd(&name))
        }
        Err(Denied::Key(k)) => {
            log(ctx, sess, id, Reason::Key, context, &k);
            Permit::No(NOPERM_KEY.into())
        }
    }
}

/// EXEC checks each queued command again, in case the rules changed since it was queued
/// (Redis 7 does); the error is that command's element of EXEC's reply.
pub fn recheck(ctx: &Ctx, sess: &mut Session, id: u64, spec: &Spec, a: &Args) -> Option<String> {
    let checked = refresh(ctx, sess)?.check(spec, a);
    let reason = match checked {
        Ok(()) => return None,
        Err(Denied::Cmd(name)) => {
            log(ctx, sess, id, Reason::Command, "multi", name.as_bytes());
            "no permission to execute the command or subcommand"
        }
        Err(Denied::Key(k)) => {
            log(ctx, sess, id, Reason::Key, "multi", &k);
            "no permission to touch the specified keys"
        }
    };
    Some(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"))
}

/// AUTH [user] pass, and HELLO's AUTH: the user on success; failures are logged.
pub fn authenticate(
    ctx: &Ctx,
    sess: &mut Session,
    id: u64,
    object: &[u8],
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), &'static str> {
    let users = &ctx.node.users;
    let name = match user {
        Some(u) => String::from_utf8_lossy(u).into_owned(),
        None => {
            if users.default_open() {
                return Err(errors::NO_PASSWORD);
            }
            "default".to_string()
        }
    };
    // Failed authentications per address (issue 13, f-harden): refused before the
    // password is looked at.
    let now = ctx.clock.now();
    if users.guard.admit(sess.peer, ctx.me, now).is_err() {
        return Err(errors::AUTH_REFUSED);
    }
    let g = users.generation();
    match users.authenticate(&name, pass) {
        Some(u) => {
            sess.authed = true;
            sess.user = Some(u);
            sess.user_gen = g;
            Ok(())
        }
        None => {
            users.guard.failed(sess.peer, now);
            users.log(LogEntry {
                count: 1,
                reason: Reason::Auth,
                context: if sess.multi.is_some() {
                    "multi"
                } else {
                    "toplevel"
                },
                object: String::from_utf8_lossy(object).into_owned(),
                username: name,
                created: ctx.clock.now(),
                client_info: client_info(sess, id),
            });
            Err(errors::WRONGPASS)
        }
    }
}

/// ACL <subcommand> ...
pub fn command(ctx: &mut Ctx, sess: &mut Session, a: &Args) -> Local {
    let r3 = sess.resp3;
    let reply = |f: &dyn Fn(&mut Out)| Local::Reply(encode(r3, f));
    let err = |e: &str| Local::Reply(encode(r3, |o| o.error(e)));
    let sub = a.get(1).to_ascii_uppercase();
    let users = ctx.node.users.clone();
    match (sub.as_slice(), a.len()) {
        (b"SETUSER", n) if n >= 3 => {
            let name = a.get(2);
            if !acl::valid_name(name) {
                return err("ERR Usernames can't contain spaces or null characters");
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let r = users.update(|t| {
                let mut u = match t.get(&name) {
                    Some(u) => (**u).clone(),
                    None => {
                        if t.len() >= crate::limits::ACL_USERS_MAX {
                            return Err(format!(
                                "ERR more than {} users",
                                crate::limits::ACL_USERS_MAX
                            ));
                        }
                        User::new(&name)
                    }
                };
                for i in 3..a.len() {
                    if let Err(e) = u.apply(a.get(i)) {
                        return Err(format!(
                            "ERR Error in ACL SETUSER modifier '{}': {e}",
                            String::from_utf8_lossy(a.get(i))
                        ));
                    }
                }
                t.insert(name.clone(), Arc::new(u));
                Ok(())
            });
            match r {
                Ok(()) => reply(&|o| o.ok()),
                Err(e) => err(&e),
            }
        }
        (b"GETUSER", 3) => {
            let Some(u) = users.get(&String::from_utf8_lossy(a.get(2))) else {
                return reply(&|o| o.null());
            };
            reply(&|o| getuser(o, &u))
        }
        (b"DELUSER", n) if n >= 3 => {
            if (2..n).any(|i| a.get(i) == b"default") {
                return err("ERR The 'default' user cannot be removed");
            }
            let deleted = users.update(|t| {
                let mut d = 0;
                for i in 2..n {
                    d += t
                        .remove(String::from_utf8_lossy(a.get(i)).as_ref())
                        .is_some() as i64;
                }
                Ok::<i64, ()>(d)
            });
            reply(&|o| o.int(deleted.unwrap_or(0)))
        }
        (b"LIST", 2) => {
            let t = users.table();
            reply(&|o| {
                o.array(t.len());
                for u in t.values() {
                    o.bulk(u.describe().as_bytes());
                }
            })
        }
        (b"USERS", 2) => {
            let t = users.table();
            reply(&|o| {
                o.array(t.len());
                for name in t.keys() {
                    o.bulk(name.as_bytes());
                }
            })
        }
        (b"WHOAMI", 2) => {
            let name = sess.username().to_string();
            reply(&|o| o.bulk(name.as_bytes()))
        }
        (b"CAT", 2) => reply(&|o| {
            o.array(CATEGORIES.len());
            for (n, _) in CATEGORIES {
                o.bulk(n.as_bytes());
            }
        }),
        (b"CAT", 3) => {
            let name = String::from_utf8_lossy(a.get(2));
            let Some(bit) = acl::category(&name) else {
                return err(&format!("ERR Unknown category '{name}'"));
            };
            let ids = acl::ids();
            let names: Vec<&String> = (0..ids.len())
                .filter(|&i| ids.cats[i] & bit != 0)
                .map(|i| &ids.names[i])
                .collect();
            reply(&|o| {
                o.array(names.len());
                for n in &names {
                    o.bulk(n.as_bytes());
                }
            })
        }
        (b"LOG", 2 | 3) => {
            let mut count = 10;
            if a.len() == 3 {
                if a.eq(2, "RESET") {
                    users.log_reset();
                    return reply(&|o| o.ok());
                }
                match a.int(2) {
                    Some(c) if c >= 0 => count = c as usize,
                    _ => return err(errors::NOT_INT),
                }
            }
            let now = ctx.clock.now();
            let entries = users.log_entries(count);
            reply(&|o| {
                o.array(entries.len());
                for e in &entries {
                    o.map(7);
                    o.bulk(b"count");
                    o.int(e.count as i64);
                    o.bulk(b"reason");
                    o.bulk(e.reason.name().as_bytes());
                    o.bulk(b"context");
                    o.bulk(e.context.as_bytes());
                    o.bulk(b"object");
                    o.bulk(e.object.as_bytes());
                    o.bulk(b"username");
                    o.bulk(e.username.as_bytes());
                    o.bulk(b"age-seconds");
                    o.double(now.saturating_duration_since(e.created).as_secs_f64());
                    o.bulk(b"client-info");
                    o.bulk(e.client_info.as_bytes());
                }
            })
        }
        (b"SAVE" | b"LOAD", 2) if users.file.is_none() => err(NO_ACL_FILE),
        (b"SAVE", 2) => match users.save() {
            Ok(()) => reply(&|o| o.ok()),
            Err(e) => {
                tracing::warn!(error = %e, "ACL SAVE failed");
                err(SAVE_FAILED)
            }
        },
        (b"LOAD", 2) => match users.load() {
            Ok(()) => reply(&|o| o.ok()),
            Err(e) => err(&format!("ERR {e}")),
        },
        (b"GENPASS", 2 | 3) => {
            let bits = if a.len() == 3 { a.int(2) } else { Some(256) };
            let Some(bits) = bits.filter(|b| (1..=4096).contains(b)) else {
                return err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
            };
            let chars = (bits as usize).div_ceil(4);
            let mut raw = vec![0u8; chars.div_ceil(2)];
            if crate::auth::scram::random(&mut raw).is_err() {
                return err("ERR no randomness available");
            }
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            reply(&|o| o.bulk(&hex.as_bytes()[..chars]))
        }
        (b"DRYRUN", n) if n >= 4 => {
            let Some(u) = users.get(&String::from_utf8_lossy(a.get(2))) else {
                return err(&format!(
                    "ERR User '{}' not found",
                    String::from_utf8_lossy(a.get(2))
                ));
            };
            let inner = Args {
                src: a.src,
                ranges: &a.ranges[3..],
            };
            let Some(spec) = lookup(inner.get(0)) else {
                return err(&format!(
                    "ERR Command '{}' not found",
                    String::from_utf8_lossy(a.get(3))
                ));
            };
            if !spec.arity_ok(inner.len()) {
                return err(&errors::wrong_args(spec.name));
            }
            match u.check(spec, &inner) {
                Ok(()) => reply(&|o| o.ok()),
                Err(Denied::Cmd(c)) => {
                    let msg = format!("This user has no permissions to run the '{c}' command");
                    reply(&|o| o.bulk(msg.as_bytes()))
                }
                Err(Denied::Key(k)) => {
                    let msg = format!(
                        "This user has no permissions to access the '{}' key",
                        String::from_utf8_lossy(&k)
                    );
                    reply(&|o| o.bulk(msg.as_bytes()))
                }
            }
        }
        (b"HELP", 2) => reply(&|o| {
            crate::cache::cmd::keys::help(
                o,
                "ACL",
                &[
                    "CAT [<category>]",
                    "    List all commands that belong to <category>, or all command categories",
                    "    when no category is specified.",
                    "DELUSER <username> [<username> ...]",
                    "    Delete a list of users.",
                    "DRYRUN <username> <command> [<arg> ...]",
                    "    Returns whether the user can execute the given command without executing the command.",
                    "GETUSER <username>",
                    "    Get the user's details.",
                    "GENPASS [<bit-length>]",
                    "    Generate a secure 256-bit user password. The optional `bit-length` argument can",
                    "    be used to specify a different size.",
                    "LIST",
                    "    Show users details in config file format.",
                    "LOAD",
                    "    Reload users from the ACL file.",
                    "LOG [<count> | RESET]",
                    "    Show the ACL log entries.",
                    "SAVE",
                    "    Save the current config to the ACL file.",
                    "SETUSER <username> <attribute> [<attribute> ...]",
                    "    Create or modify a user with the specified attributes.",
                    "USERS",
                    "    List all the registered usernames.",
                    "WHOAMI",
                    "    Return the current connection username.",
                ],
            )
        }),
        _ => err(&unknown_subcommand(a.get(1), "ACL")),
    }
}

/// ACL GETUSER's map, in Redis 7.0's shape.
fn getuser(o: &mut Out, u: &User) {
    o.map(6);
    o.bulk(b"flags");
    let flags = u.flags();
    o.set(flags.len());
    for f in flags {
        o.bulk(f.as_bytes());
    }
    o.bulk(b"passwords");
    o.array(u.creds.len());
    for c in &u.creds {
        o.bulk(c.to_token().as_bytes());
    }
    o.bulk(b"commands");
    o.bulk(u.commands_text().as_bytes());
    o.bulk(b"keys");
    o.bulk(u.keys_text().as_bytes());
    o.bulk(b"channels");
    o.bulk(u.channels_text().as_bytes());
    o.bulk(b"selectors");
    o.array(0);
}
