//! Every error reply the RESP service sends, worded as Redis 7 words it (clients and Redis's
//! own test suite match on these texts). Each starts with its code word: `ERR`, `WRONGTYPE`,
//! `OOM`, `NOAUTH`, `EXECABORT` ...

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const SYNTAX: &str = "ERR syntax error";
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub const HASH_NOT_INT: &str = "ERR hash value is not an integer";
pub const NX_XX_GT_LT: &str = "ERR NX and XX, GT or LT options at the same time are not compatible";
pub const GT_LT: &str = "ERR GT and LT options at the same time are not compatible";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
pub const DB_INDEX: &str = "ERR DB index is out of range";

pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const PROTO_NOT_INT: &str = "ERR Protocol version is not an integer or out of range";
pub const CLIENT_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";
pub const MAX_CLIENTS: &str = "ERR max number of clients reached";

pub const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
pub const EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
pub const DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
pub const WATCH_IN_MULTI: &str = "ERR WATCH inside MULTI is not allowed";
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
pub const MULTI_TOO_LONG: &str = "ERR Transaction has too many queued commands";
pub const MSETNX_ACROSS_SHARDS_IN_MULTI: &str =
    "ERR MSETNX inside MULTI must name keys of one shard (use a {hash tag})";
/// A command whose keys must run together names keys of several shards.
pub const CROSSSHARD: &str =
    "CROSSSLOT Keys in request don't hash to the same shard (use a {hash tag})";

pub fn wrong_args(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

pub fn invalid_expire(command: &str) -> String {
    format!("ERR invalid expire time in '{command}' command")
}

pub fn unsupported_option(option: &[u8]) -> String {
    format!("ERR Unsupported option {}", String::from_utf8_lossy(option))
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
pub fn unknown_command(name: &[u8], args: &[&[u8]]) -> String {
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        printable(name)
    );
    for a in args {
        msg.push_str(&format!("'{}' ", printable(a)));
    }
    msg
}

pub fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {command} HELP.",
        String::from_utf8_lossy(sub)
    )
}

pub fn unknown_subcommand_short(sub: &[u8], command: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(sub)
    )
}

pub fn hello_option(option: &[u8]) -> String {
    format!(
        "ERR Syntax error in HELLO option '{}'",
        String::from_utf8_lossy(option)
    )
}

pub fn config_unknown(name: &str) -> String {
    format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
}

/// CONFIG SET of a known parameter to a value it cannot take; `why` as Redis says it.
pub fn config_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

/// A client-supplied word made safe for an error line (Redis shows at most 128 bytes).
fn printable(b: &[u8]) -> String {
    let shown = b.len().min(crate::limits::ERROR_WORD_SHOWN_BYTES_MAX);
    String::from_utf8_lossy(&b[..shown])
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

// ----- bitmaps and string ranges ----------------------------------------------------------

pub const BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
pub const BIT_VALUE: &str = "ERR bit is not an integer or out of range";
pub const BITPOS_BIT: &str = "ERR The bit argument must be 1 or 0.";
pub const BITOP_NOT_ONE_KEY: &str = "ERR BITOP NOT must be called with a single source key.";
pub const BITFIELD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
pub const BITFIELD_OVERFLOW: &str = "ERR Invalid OVERFLOW type specified";
pub const BITFIELD_RO_GET_ONLY: &str = "ERR BITFIELD_RO only supports the GET subcommand";
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub const LCS_NOT_STRINGS: &str = "ERR The specified keys must contain string values";
pub const LCS_LEN_AND_IDX: &str =
    "ERR If you want both the length and indexes, please just use IDX.";
pub const LCS_TOO_LONG: &str = "ERR String too long for LCS";
pub const LCS_TABLE_TOO_BIG: &str =
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
pub const LCS_NO_MEMORY: &str =
    "ERR Insufficient memory, failed allocating transient memory for LCS";

// ----- lists ------------------------------------------------------------------------------

pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
/// A count that must be 0 or more (LPOP/RPOP's count), malformed or negative.
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
pub const LPOS_RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
pub const LPOS_COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
pub const LPOS_MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
pub const NUMKEYS_POSITIVE: &str = "ERR numkeys should be greater than 0";
pub const COUNT_POSITIVE: &str = "ERR count should be greater than 0";
/// A blocking command's timeout (seconds, as a float) that does not parse.
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
/// A timeout too large for the clock (Redis 7.0 leaves this undefined; 7.2 words it so).
pub const TIMEOUT_OUT_OF_RANGE: &str = "ERR timeout is out of range";

// ----- sets -------------------------------------------------------------------------------

/// SPOP's count that is not a non-negative integer.
pub const SET_COUNT_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
/// SRANDMEMBER's count outside what a C long can negate.
pub const SET_COUNT_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// SRANDMEMBER's negative count past `limits::SET_RANDOM_REPEATS_MAX`.
pub const SET_COUNT_TOO_LARGE: &str = "ERR value is out of range";
/// SINTERCARD's numkeys that is not a positive integer.
pub const SET_NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
/// SINTERCARD's numkeys larger than the arguments that follow it.
pub const SET_NUMKEYS_OVER_ARGS: &str = "ERR Number of keys can't be greater than number of args";
/// SINTERCARD's LIMIT that is not a non-negative integer.
pub const SET_LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

// ----- strings, hashes, keys and introspection ---------------------------------------------

pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
pub const VALUE_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
pub const OUT_OF_RANGE: &str = "ERR value is out of range";
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
pub const IDLETIME_UNDER_LFU: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
pub const FREQ_WITHOUT_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
pub const INVALID_COMMAND: &str = "ERR Invalid command specified";
pub const INVALID_COMMAND_ARITY: &str = "ERR Invalid number of arguments specified for command";
pub const NO_KEY_ARGUMENTS: &str = "ERR The command has no key arguments";
pub const NO_CONFIG_FILE: &str = "ERR The server is running without a config file";

// ----- sorted sets ------------------------------------------------------------------------

pub const ZADD_XX_NX: &str = "ERR XX and NX options at the same time are not compatible";
pub const ZADD_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
pub const ZADD_INCR_PAIR: &str = "ERR INCR option supports a single increment-element pair";
pub const SCORE_NAN: &str = "ERR resulting score is not a number (NaN)";
pub const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
pub const MIN_MAX_NOT_LEX: &str = "ERR min or max not valid string range item";
pub const LIMIT_WITH_RANK: &str =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
pub const WITHSCORES_WITH_BYLEX: &str =
    "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
pub const WEIGHT_NOT_FLOAT: &str = "ERR weight value is not a float";
pub const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";
pub const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
pub const COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";
/// ZRANDMEMBER with a repeat count whose reply passes `ZRANDMEMBER_REPLY_BYTES_MAX` (Redis
/// has no such bound: it stops at the client's output limit).
pub const ZRANDMEMBER_TOO_LARGE: &str = "ERR ZRANDMEMBER reply too large: ask for fewer members";

/// ZUNION, ZINTER, ZDIFF ... with a key count below 1.
pub fn at_least_one_key(command: &str) -> String {
    format!("ERR at least 1 input key is needed for '{command}' command")
}

/// An integer argument outside `min..=max`.
pub fn out_of_range_between(min: i64, max: i64) -> String {
    format!("ERR value is out of range, value must between {min} and {max}")
}

// ----- SORT -------------------------------------------------------------------------------

pub const SORT_NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";
pub const SORT_BY_ACROSS_SHARDS: &str = "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";
pub const SORT_GET_ACROSS_SHARDS: &str = "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";

// ----- scripting --------------------------------------------------------------------------

pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
/// SCRIPT KILL (or FUNCTION STATS) while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
/// FUNCTION KILL (or FUNCTION STATS) while an EVAL script runs.
pub const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const NUMKEYS_TOO_MANY: &str = "ERR Number of keys can't be greater than number of args";
pub const NUMKEYS_NEGATIVE: &str = "ERR Number of keys can't be negative";
pub const NUMKEYS_BAD: &str = "ERR Bad number of keys provided";
pub const FUNCTION_NOT_FOUND: &str = "ERR Function not found";
pub const LIBRARY_NOT_FOUND: &str = "ERR Library not found";
pub const RO_WITH_WRITE_FLAG: &str =
    "ERR Can not execute a script with write flag using *_ro command.";
pub const SCRIPT_OOM: &str =
    "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'";
pub const SCRIPT_FLUSH_OPTION: &str = "ERR SCRIPT FLUSH only support SYNC|ASYNC option";
pub const FUNCTION_FLUSH_OPTION: &str = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option";
pub const FUNCTION_CODE_MISSING: &str = "ERR Function code is missing";
pub const FUNCTION_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
pub const FUNCTION_RESTORE_POLICY: &str =
    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.";
pub const LIBRARY_NAME_MISSING: &str = "ERR library name argument was not given";
/// SCRIPT DEBUG: the Lua debugger needs a connection that stays with the script between
/// steps; pinion has none.
pub const SCRIPT_DEBUG: &str = "ERR SCRIPT DEBUG is not supported by pinion";

/// Errors a script's `redis.call` raises, as Lua sees them (the `ERR ` is added there).
pub mod script {
    pub const NO_ARGS: &str = "Please specify at least one argument for this redis lib call";
    pub const BAD_ARG: &str = "Lua redis lib command arguments must be strings or integers";
    pub const UNKNOWN_COMMAND: &str = "Unknown Redis command called from script";
    pub const ARITY: &str = "Wrong number of args calling Redis command from script";
    pub const NOT_ALLOWED: &str = "This Redis command is not allowed from script";
    pub const READ_ONLY: &str = "Write commands are not allowed from read-only scripts.";
    pub const KILLED: &str = "Script killed by user with SCRIPT KILL...";
    pub const LOAD_TIMEOUT: &str = "FUNCTION LOAD timeout";
    /// pinion's own: a one-shard node has no other shard to take SCRIPT KILL.
    pub const KILLED_SLOW: &str = "Script killed after running past the busy threshold: on a one-shard node no connection can reach SCRIPT KILL while it runs";
    /// pinion's own: a command that must run on every shard.
    pub const ALL_SHARDS: &str =
        "This command spans every shard and is not allowed from a script on a node with several shards";

    /// pinion's own: a script runs on the shard that owns the keys it declares, so a key it
    /// did not declare may live elsewhere (or be held by a transaction there).
    pub fn undeclared(key: &[u8]) -> String {
        format!(
            "Script attempted to access key '{}' that was not declared in KEYS: every key a script touches must be passed in KEYS",
            super::printable(key)
        )
    }
}
/// CONFIG SET or RESETSTAT queued with a command over keys of several shards: that
/// transaction runs on gathered copies of its keys, where a setting has nowhere to go.
pub const CONFIG_IN_GATHERED_EXEC: &str =
    "ERR CONFIG SET and RESETSTAT cannot run in a transaction with a command over keys of several shards";

/// pinion's own (the memory budget, issue 13): the shard's budget is spent, nothing was
/// released for a while, and this connection holds the largest partial request; it is
/// closed so that the others can finish theirs.
pub fn budget_exhausted(partial_bytes: usize) -> String {
    format!(
        "ERR memory budget exhausted: closing the connection with the largest partial request ({partial_bytes} bytes received); send smaller requests or raise --memory-budget"
    )
}

// ----- connection hygiene (issue 13, f-hygiene) -----
/// A source address past --max-connections-per-ip.
pub const MAX_CLIENTS_PER_IP: &str = "ERR max number of clients per address reached";
/// Redis's protected-mode refusal, with pinion's ways out (its flags, no config file).
pub const DENIED_PROTECTED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to pinion you may adopt one of the following solutions: 1) Restart pinion with the '--protected-mode no' option, however MAKE SURE it is not publicly accessible from internet if you do so. 2) Set up an authentication password for the default user with '--requirepass'. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

// ----- cluster mode (issue 12, f-cluster) -----
/// Keys of several slots, not all served by this node (Redis Cluster's text).
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
/// A key whose slot no node serves yet (a cluster still forming).
pub const CLUSTERDOWN: &str = "CLUSTERDOWN Hash slot not served";
/// CLUSTER subcommands of Redis Cluster's that change the cluster: the control plane does.
pub const CLUSTER_BY_CONTROL: &str =
    "ERR this node's slots are assigned by pinion-control; use pinion-control to change the cluster";

// ----- scripts and ACLs (issue 13, f-harden) -----
/// Redis 7.0's `scriptVerifyACL` (script.c) with getAclErrorMessage's texts: the user
/// running a script may not run the command `redis.call` names, or not on one of its keys
/// (Lua adds `ERR `, as Redis's luaPushError does).
pub const SCRIPT_ACL_CMD: &str =
    "The user executing the script can't run this command or subcommand";
pub const SCRIPT_ACL_KEY: &str = "The user executing the script can't access at least one of the keys mentioned in the command arguments";

// ----- failed authentications per address (issue 13, f-harden) -----
/// AUTH or HELLO AUTH from an address past --auth-failures-max, during its cool-down
/// (the password is not checked, so a right one is refused too).
pub const AUTH_REFUSED: &str = "ERR too many failed authentication attempts from this address: refused until its cool-down ends (--auth-block-ms)";

// Moving data when the map changes (issue 12, f-move).
/// A command for a slot whose keys are being streamed to its new owner right now, or whose
/// keys span slots handed over and not (Redis's text for the latter).
pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
/// The internal move commands (`cache/migrate.rs`) on a node without `--control`.
pub const MOVE_STANDALONE: &str =
    "ERR PINION.MOVESLOT and PINION.MOVEIN move data between cluster nodes; this node is standalone";
