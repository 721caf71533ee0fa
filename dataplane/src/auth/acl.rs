//! One user and its rules, with Redis 7's ACL grammar: flags (`on`, `off`, `nopass`),
//! passwords (`>pass`, `<pass`, `resetpass`, and pinion's salted `scram$...` credentials),
//! commands (`+cmd`, `-cmd`, `+cmd|sub`, `+@cat`, `-@cat`, `allcommands`, `nocommands`), key
//! patterns (`~pattern`, `allkeys`, `resetkeys`), channels (`&pattern`, kept and shown;
//! pinion has no pub/sub), `reset`, and pinion's Kafka topic rules
//! (`topic:<read|write|create|describe|delete|all>:<pattern>`).
//!
//! A [`User`] is immutable once in the node's table (`auth/mod.rs`); ACL SETUSER edits a copy
//! and swaps the table. Commands are allowed by a bitset over [`Ids`]: every command of the
//! table, then each subcommand (`config|get`) of the containers pinion serves, with Redis
//! 7.0.15's categories (`categories.rs`).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::categories::REDIS_CATEGORIES;
use super::scram::{Cred, CRED_PREFIX};
use crate::cache::glob::glob_match;
use crate::proto::resp::command::{self, Family, Spec};
use crate::proto::resp::Args;

/// Redis's ACL categories, as bits.
pub mod cat {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
}

/// Category names in Redis's order (ACL CAT lists them so).
pub const CATEGORIES: [(&str, u32); 21] = [
    ("keyspace", cat::KEYSPACE),
    ("read", cat::READ),
    ("write", cat::WRITE),
    ("set", cat::SET),
    ("sortedset", cat::SORTEDSET),
    ("list", cat::LIST),
    ("hash", cat::HASH),
    ("string", cat::STRING),
    ("bitmap", cat::BITMAP),
    ("hyperloglog", cat::HYPERLOGLOG),
    ("geo", cat::GEO),
    ("stream", cat::STREAM),
    ("pubsub", cat::PUBSUB),
    ("admin", cat::ADMIN),
    ("fast", cat::FAST),
    ("slow", cat::SLOW),
    ("blocking", cat::BLOCKING),
    ("dangerous", cat::DANGEROUS),
    ("connection", cat::CONNECTION),
    ("transaction", cat::TRANSACTION),
    ("scripting", cat::SCRIPTING),
];

pub fn category(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, b)| *b)
}

/// The ACL's command ids: the table's commands (id = `command::index`), then subcommands.
pub struct Ids {
    pub names: Vec<String>,
    pub cats: Vec<u32>,
    by_name: HashMap<String, usize>,
    /// Per top-level id, its subcommands' ids (empty for a plain command).
    children: Vec<Vec<usize>>,
}

/// pinion's own commands' categories. The slot-move commands delete, freeze and redirect a
/// whole slot: @admin @dangerous like Redis's CLUSTER SETSLOT, and @keyspace @write like
/// MIGRATE and RESTORE, so `-@dangerous` or `-@admin` keeps a user off them.
const PINION_CATEGORIES: &[(&str, u32)] = &[
    (
        "pinion.moveslot",
        cat::KEYSPACE | cat::WRITE | cat::ADMIN | cat::SLOW | cat::DANGEROUS,
    ),
    (
        "pinion.movein",
        cat::KEYSPACE | cat::WRITE | cat::ADMIN | cat::SLOW | cat::DANGEROUS,
    ),
];

/// Categories of any other command Redis 7.0.15 does not have (none today): from its family.
fn fallback_categories(s: &Spec) -> u32 {
    let fam = match s.family {
        Family::Connection => cat::CONNECTION,
        Family::Read | Family::Write => cat::STRING,
        Family::Keyspace => cat::KEYSPACE,
        Family::Hash => cat::HASH,
        Family::Server => cat::ADMIN | cat::DANGEROUS,
        Family::Transaction => cat::TRANSACTION,
        Family::List => cat::LIST,
        Family::Set => cat::SET,
        Family::Zset => cat::SORTEDSET,
        Family::Bitmap => cat::BITMAP,
        Family::Script => cat::SCRIPTING,
    };
    let rw = if s.writes() {
        cat::WRITE
    } else if s.flags & command::READONLY != 0 {
        cat::READ
    } else {
        0
    };
    fam | rw | cat::SLOW
}

pub fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let redis: HashMap<&str, u32> = REDIS_CATEGORIES
            .iter()
            .chain(PINION_CATEGORIES)
            .copied()
            .collect();
        let mut ids = Ids {
            names: Vec::new(),
            cats: Vec::new(),
            by_name: HashMap::new(),
            children: Vec::new(),
        };
        for s in command::all() {
            ids.by_name.insert(s.name.to_string(), ids.names.len());
            ids.names.push(s.name.to_string());
            ids.cats.push(
                redis
                    .get(s.name)
                    .copied()
                    .unwrap_or_else(|| fallback_categories(s)),
            );
            ids.children.push(Vec::new());
        }
        // CLIENT SETINFO came with Redis 7.2 (clients send it on connect): its categories there.
        const LATER: &[(&str, u32)] = &[("client|setinfo", cat::SLOW | cat::CONNECTION)];
        for (full, cats) in REDIS_CATEGORIES.iter().chain(LATER) {
            let Some((parent, _)) = full.split_once('|') else {
                continue;
            };
            let Some(&top) = ids.by_name.get(parent) else {
                continue;
            };
            let id = ids.names.len();
            ids.by_name.insert(full.to_string(), id);
            ids.names.push(full.to_string());
            ids.cats.push(*cats);
            ids.children[top].push(id);
        }
        ids
    })
}

impl Ids {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The id a request is checked against: its subcommand's, for a container. None for a
    /// subcommand Redis does not have: as in Redis, the command answers "unknown
    /// subcommand" rather than NOPERM (clients probe with such subcommands on connect).
    pub fn of_request(&self, spec: &Spec, a: &Args) -> Option<usize> {
        let top = command::index(spec);
        match self.children.get(top) {
            Some(c) if !c.is_empty() && a.len() > 1 => {
                let sub = String::from_utf8_lossy(a.get(1)).to_ascii_lowercase();
                self.by_name.get(&format!("{}|{sub}", spec.name)).copied()
            }
            _ => Some(top),
        }
    }

    fn children(&self, id: usize) -> &[usize] {
        self.children.get(id).map_or(&[], |v| v.as_slice())
    }
}

/// What a Kafka principal may do to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOp {
    Read,
    Write,
    Create,
    Describe,
    Delete,
    All,
}

impl TopicOp {
    pub fn name(self) -> &'static str {
        match self {
            TopicOp::Read => "read",
            TopicOp::Write => "write",
            TopicOp::Create => "create",
            TopicOp::Describe => "describe",
            TopicOp::Delete => "delete",
            TopicOp::All => "all",
        }
    }

    fn parse(s: &str) -> Option<TopicOp> {
        [
            TopicOp::Read,
            TopicOp::Write,
            TopicOp::Create,
            TopicOp::Describe,
            TopicOp::Delete,
            TopicOp::All,
        ]
        .into_iter()
        .find(|o| o.name().eq_ignore_ascii_case(s))
    }

    /// Does a rule for `self` grant `want`? As in Kafka, read, write and delete imply
    /// describe.
    fn grants(self, want: TopicOp) -> bool {
        self == want
            || self == TopicOp::All
            || (want == TopicOp::Describe
                && matches!(self, TopicOp::Read | TopicOp::Write | TopicOp::Delete))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    pub op: TopicOp,
    pub pattern: String,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (or subcommand); its full name.
    Cmd(String),
    /// A key it names.
    Key(Vec<u8>),
}

// Redis's texts for a rule it cannot apply (ACLSetUserStringError).
pub const E_UNKNOWN: &str = "Unknown command or category name in ACL";
pub const E_SYNTAX: &str = "Syntax error";
pub const E_KEYS_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
pub const E_CHANNELS_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
pub const E_NO_SUCH_PASS: &str =
    "The password you are trying to remove from the user does not exist";
pub const E_FIRST_ARG: &str = "Allowing first-arg of a subcommand is not supported";
pub const E_HASHED: &str = "pinion keeps salted SCRAM credentials, not SHA-256 hashes: give the password with '>' (or a 'scram$...' credential)";
pub const E_NO_RANDOM: &str = "no randomness for a salt";

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    pub creds: Vec<Cred>,
    allowed: Vec<u64>,
    /// The command rules as applied since the last `+@all`/`-@all` (what ACL LIST shows).
    cmd_rules: Vec<String>,
    pub allkeys: bool,
    pub keys: Vec<Vec<u8>>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
    pub topics: Vec<TopicRule>,
}

impl User {
    /// A new user, as ACL SETUSER creates one: off, no password, no commands, no keys.
    pub fn new(name: &str) -> User {
        let words = ids().len().div_ceil(64);
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            creds: Vec::new(),
            allowed: vec![0; words],
            cmd_rules: vec!["-@all".into()],
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
            topics: Vec::new(),
        }
    }

    /// Redis's default user: `on nopass ~* &* +@all`, and every topic.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for r in ["on", "nopass", "~*", "&*", "+@all", "topic:all:*"] {
            // Fixed rules every build accepts.
            u.apply(r.as_bytes()).expect("default rules");
        }
        u
    }

    fn set(&mut self, id: usize, on: bool) {
        let (w, b) = (id / 64, 1u64 << (id % 64));
        if let Some(x) = self.allowed.get_mut(w) {
            if on {
                *x |= b;
            } else {
                *x &= !b;
            }
        }
    }

    fn allows_id(&self, id: usize) -> bool {
        self.allowed
            .get(id / 64)
            .is_some_and(|x| x & (1 << (id % 64)) != 0)
    }

    fn all_commands(&self) -> bool {
        let n = ids().len();
        (0..n).all(|i| self.allows_id(i))
    }

    /// Every command on every key: the permission check has nothing to do.
    pub fn unrestricted(&self) -> bool {
        self.allkeys && self.cmd_rules.len() == 1 && self.cmd_rules[0] == "+@all"
    }

    /// Apply one rule (ACL SETUSER's grammar); an error leaves the user as it was only if
    /// the caller works on a copy (ACL SETUSER does).
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), &'static str> {
        let r = std::str::from_utf8(rule).map_err(|_| E_SYNTAX)?;
        let lower = r.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.creds.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.creds.clear();
            }
            "allkeys" => {
                self.allkeys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            "allchannels" => {
                self.allchannels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => self.all(true),
            "nocommands" | "-@all" => self.all(false),
            "sanitize-payload" | "skip-sanitize-payload" => {}
            "reset" => {
                for x in ["resetpass", "resetkeys", "resetchannels", "off", "-@all"] {
                    self.apply(x.as_bytes())?;
                }
                self.topics.clear();
            }
            _ => return self.apply_prefixed(r, rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, r: &str, raw: &[u8]) -> Result<(), &'static str> {
        if let Some(p) = raw.strip_prefix(b">") {
            self.nopass = false;
            if !self.creds.iter().any(|c| c.verify(p)) {
                self.creds.push(Cred::new(p).map_err(|_| E_NO_RANDOM)?);
            }
        } else if let Some(p) = raw.strip_prefix(b"<") {
            let before = self.creds.len();
            self.creds.retain(|c| !c.verify(p));
            if self.creds.len() == before {
                return Err(E_NO_SUCH_PASS);
            }
        } else if r.starts_with('#') || r.starts_with('!') {
            return Err(E_HASHED);
        } else if r.starts_with(CRED_PREFIX) {
            let c = Cred::from_token(r).ok_or(E_SYNTAX)?;
            self.nopass = false;
            if !self.creds.contains(&c) {
                self.creds.push(c);
            }
        } else if let Some(p) = raw.strip_prefix(b"~") {
            if self.allkeys {
                return Err(E_KEYS_AFTER_ALL);
            }
            if p == b"*" {
                self.allkeys = true;
                self.keys.clear();
            } else if !self.keys.iter().any(|k| k == p) {
                self.keys.push(p.to_vec());
            }
        } else if let Some(p) = raw.strip_prefix(b"&") {
            if self.allchannels {
                return Err(E_CHANNELS_AFTER_ALL);
            }
            if p == b"*" {
                self.allchannels = true;
                self.channels.clear();
            } else if !self.channels.iter().any(|k| k == p) {
                self.channels.push(p.to_vec());
            }
        } else if let Some(rest) = r.strip_prefix("topic:") {
            let (op, pattern) = rest.split_once(':').ok_or(E_SYNTAX)?;
            let op = TopicOp::parse(op).ok_or(E_SYNTAX)?;
            if pattern.is_empty() {
                return Err(E_SYNTAX);
            }
            let rule = TopicRule {
                op,
                pattern: pattern.to_string(),
            };
            if !self.topics.contains(&rule) {
                self.topics.push(rule);
            }
        } else if let Some(c) = r.strip_prefix("+@").or_else(|| r.strip_prefix("-@")) {
            let on = r.starts_with('+');
            let bit = category(c).ok_or(E_UNKNOWN)?;
            let ids = ids();
            for id in 0..ids.len() {
                if ids.cats[id] & bit != 0 {
                    self.set(id, on);
                }
            }
            self.cmd_rules.push(r.to_ascii_lowercase());
        } else if let Some(c) = r.strip_prefix('+').or_else(|| r.strip_prefix('-')) {
            let on = r.starts_with('+');
            let ids = ids();
            let id = ids.lookup(c).ok_or_else(|| {
                if c.contains('|') && ids.lookup(c.split('|').next().unwrap_or("")).is_some() {
                    E_FIRST_ARG
                } else {
                    E_UNKNOWN
                }
            })?;
            self.set(id, on);
            for &child in ids.children(id) {
                self.set(child, on);
            }
            self.cmd_rules.push(r.to_ascii_lowercase());
        } else {
            return Err(E_SYNTAX);
        }
        Ok(())
    }

    fn all(&mut self, on: bool) {
        let n = ids().len();
        for id in 0..n {
            self.set(id, on);
        }
        self.cmd_rules = vec![if on { "+@all" } else { "-@all" }.into()];
    }

    /// May this user run `a` (whose table row is `spec`) on the keys it names?
    pub fn check(&self, spec: &Spec, a: &Args) -> Result<(), Denied> {
        let ids = ids();
        if let Some(id) = ids.of_request(spec, a) {
            if !self.allows_id(id) {
                return Err(Denied::Cmd(ids.names[id].clone()));
            }
        }
        self.check_keys(spec, a)
    }

    /// May this user run the command (or subcommand) of `a`, whatever its keys? For a
    /// request whose arity is wrong, where keys cannot be read (`redis.acl_check_cmd`).
    pub fn allows_command(&self, spec: &Spec, a: &Args) -> bool {
        ids()
            .of_request(spec, a)
            .is_none_or(|id| self.allows_id(id))
    }

    /// The key patterns alone (`a`'s arity is right).
    fn check_keys(&self, spec: &Spec, a: &Args) -> Result<(), Denied> {
        if self.allkeys {
            return Ok(());
        }
        let mut bad = None;
        spec.for_each_key(a, |k| {
            if bad.is_none() && !self.key_allowed(k) {
                bad = Some(k.to_vec());
            }
        });
        match bad {
            Some(k) => Err(Denied::Key(k)),
            None => Ok(()),
        }
    }

    pub fn key_allowed(&self, key: &[u8]) -> bool {
        self.allkeys || self.keys.iter().any(|p| glob_match(p, key, false))
    }

    /// May this principal do `op` to `topic`?
    pub fn topic_allowed(&self, op: TopicOp, topic: &str) -> bool {
        self.topics
            .iter()
            .any(|r| r.op.grants(op) && glob_match(r.pattern.as_bytes(), topic.as_bytes(), false))
    }

    /// Is `password` this user's? (Any password for a `nopass` user; never for one that is
    /// off.)
    pub fn authenticates(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        // Every credential is checked, so the time does not tell which one matched.
        let mut ok = self.nopass;
        for c in &self.creds {
            ok |= c.verify(password);
        }
        ok
    }

    /// Is `password` one of this user's passwords? Unlike [`User::authenticates`], `nopass`
    /// does not count: SASL needs a credential (the default user of a users file without a
    /// `default` line is `nopass`, and must not open Kafka to any password).
    pub fn has_password(&self, password: &[u8]) -> bool {
        let mut ok = false;
        for c in &self.creds {
            ok |= c.verify(password);
        }
        self.enabled && ok
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f
    }

    pub fn commands_text(&self) -> String {
        if self.all_commands() {
            return "+@all".into();
        }
        self.cmd_rules.join(" ")
    }

    pub fn keys_text(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let v: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("~{}", String::from_utf8_lossy(k)))
            .collect();
        v.join(" ")
    }

    pub fn channels_text(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|k| format!("&{}", String::from_utf8_lossy(k)))
            .collect();
        v.join(" ")
    }

    /// The user as one line of rules (ACL LIST, and the users file): applying the rules to a
    /// new user gives this user back.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = vec![format!("user {}", self.name)];
        parts.extend(self.flags().iter().map(|s| s.to_string()));
        parts.extend(self.creds.iter().map(|c| c.to_token()));
        let keys = self.keys_text();
        if !keys.is_empty() {
            parts.push(keys);
        }
        let ch = self.channels_text();
        parts.push(if ch.is_empty() {
            "resetchannels".into()
        } else {
            ch
        });
        parts.push(self.commands_text());
        parts.extend(
            self.topics
                .iter()
                .map(|t| format!("topic:{}:{}", t.op.name(), t.pattern)),
        );
        parts.join(" ")
    }
}

/// A user name ACL SETUSER accepts (Redis's rule: no spaces or NUL).
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .iter()
            .any(|&b| b == b' ' || b == 0 || b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
        crate::proto::resp::args::split_words(line)
    }

    fn check(u: &User, line: &str) -> Result<(), Denied> {
        let (src, ranges) = args(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = command::lookup(a.get(0)).expect("a known command");
        u.check(spec, &a)
    }

    fn user(rules: &str) -> User {
        let mut u = User::new("u");
        for r in rules.split_whitespace() {
            u.apply(r.as_bytes()).unwrap();
        }
        u
    }

    #[test]
    fn categories_come_from_redis() {
        let ids = ids();
        let get = ids.lookup("get").unwrap();
        assert_eq!(ids.cats[get], cat::READ | cat::STRING | cat::FAST);
        let cg = ids.lookup("config|get").unwrap();
        assert!(ids.cats[cg] & cat::DANGEROUS != 0);
        assert!(ids.lookup("client|setname").is_some());
        assert!(ids.lookup("acl|whoami").is_some());
    }

    #[test]
    fn commands_categories_and_keys_are_checked() {
        let u = user("on +@read -hgetall ~app:* ~x");
        assert_eq!(check(&u, "get app:1"), Ok(()));
        assert_eq!(check(&u, "get x"), Ok(()));
        assert_eq!(check(&u, "get other"), Err(Denied::Key(b"other".to_vec())));
        assert_eq!(
            check(&u, "mget app:1 other"),
            Err(Denied::Key(b"other".to_vec()))
        );
        assert_eq!(check(&u, "set app:1 v"), Err(Denied::Cmd("set".into())));
        assert_eq!(
            check(&u, "hgetall app:h"),
            Err(Denied::Cmd("hgetall".into()))
        );
        assert_eq!(
            check(&user("on +@all ~a*"), "eval x 2 a1 b2"),
            Err(Denied::Key(b"b2".to_vec()))
        );
        let dang = user("on +@all -@dangerous allkeys");
        assert_eq!(
            check(&dang, "flushall"),
            Err(Denied::Cmd("flushall".into()))
        );
        assert_eq!(
            check(&dang, "config get maxmemory"),
            Err(Denied::Cmd("config|get".into()))
        );
        assert_eq!(check(&dang, "client setname x"), Ok(()));
        assert_eq!(
            check(&dang, "pinion.moveslot k FREEZE"),
            Err(Denied::Cmd("pinion.moveslot".into()))
        );
        assert_eq!(
            check(&user("on +@all -@admin allkeys"), "pinion.movein k -1 p"),
            Err(Denied::Cmd("pinion.movein".into()))
        );
        assert_eq!(check(&dang, "set a b"), Ok(()));
        let sub = user("on +config|get");
        assert_eq!(check(&sub, "config get x"), Ok(()));
        assert!(check(&sub, "config set x y").is_err());
        assert!(user("on +@all allkeys").unrestricted());
    }

    #[test]
    fn rules_fail_as_redis_says() {
        let mut u = User::new("u");
        assert_eq!(u.apply(b"+nosuch"), Err(E_UNKNOWN));
        assert_eq!(u.apply(b"+@nosuch"), Err(E_UNKNOWN));
        assert_eq!(u.apply(b"bogus"), Err(E_SYNTAX));
        assert_eq!(u.apply(b"<nopw"), Err(E_NO_SUCH_PASS));
        u.apply(b"allkeys").unwrap();
        assert_eq!(u.apply(b"~x"), Err(E_KEYS_AFTER_ALL));
        assert_eq!(u.apply(b"#abc"), Err(E_HASHED));
        assert_eq!(u.apply(b"topic:eat:x"), Err(E_SYNTAX));
    }

    #[test]
    fn passwords_and_description_round_trip() {
        let u = user("on >secret ~k:* &ch +@read -get topic:read:orders-*");
        assert!(u.authenticates(b"secret"));
        assert!(!u.authenticates(b"wrong"));
        let line = u.describe();
        assert!(!line.contains("secret"), "{line}");
        let mut back = User::new("u");
        for r in line.split_whitespace().skip(2) {
            back.apply(r.as_bytes()).unwrap();
        }
        assert_eq!(back.describe(), line);
        assert!(back.authenticates(b"secret"));
        assert!(back.topic_allowed(TopicOp::Read, "orders-1"));
        assert!(back.topic_allowed(TopicOp::Describe, "orders-1"));
        assert!(!back.topic_allowed(TopicOp::Write, "orders-1"));
        assert!(!back.topic_allowed(TopicOp::Read, "payments"));
        let mut off = back.clone();
        off.apply(b"off").unwrap();
        assert!(!off.authenticates(b"secret"));
        off.apply(b"reset").unwrap();
        assert_eq!(off.describe(), "user u off resetchannels -@all");
    }
}
