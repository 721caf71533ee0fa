//! Every internal bound of the node, in one place, with its unit in its name and the reason
//! for its value. Bounds an operator may want to change are flags instead (`config/mod.rs`);
//! `Config::validate` checks the ones derived from flags against these at start-up.

use std::time::Duration;

// ----- the loop ---------------------------------------------------------------------------

/// The periodic tick: active expiry, retention, interval fsync, shutdown progress.
pub const TICK: Duration = Duration::from_millis(100);
/// At most one log line per this interval for failing accepts (EMFILE floods).
pub const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// How long a long-polling fetch waits before asking its partitions again.
pub const FETCH_POLL: Duration = Duration::from_millis(5);
/// Rounds of flushing dirty connections per loop turn (a close after the last send can
/// dirty a connection again); whatever is left keeps the next turn from sleeping.
pub const FLUSH_ROUNDS_PER_TURN: usize = 4;
/// How long a shard waits before it submits again after the kernel refused (ENOMEM ...).
pub const SUBMIT_RETRY: Duration = Duration::from_millis(1);
/// Rounds of active expiry per tick at most while a quarter or more of what was examined
/// had expired (Redis repeats the same way), and the time they may take together (a quarter
/// of a tick, Redis's 25% of CPU): an expiry storm drains in slices, the shard keeps serving.
pub const EXPIRE_ROUNDS_PER_TICK: usize = 64;
pub const EXPIRE_TIME_PER_TICK: Duration = Duration::from_millis(25);

// ----- connections ------------------------------------------------------------------------

/// Unparsed input above which a connection that cannot make progress (blocked on the mesh,
/// or at --max-inflight-per-conn) also stops being read.
pub const QUERY_PAUSE_BYTES: usize = 1 << 20;
/// A ready reply at least this large moves into the output buffer instead of being copied.
pub const MOVE_REPLY_BYTES: usize = 64 << 10;
/// A send buffer that grew past this is given back after its send, so one burst of large
/// replies does not pin memory for the connection's life.
pub const SEND_BUF_KEEP_BYTES: usize = 1 << 20;
/// Receive buffer memory per shard (--recv-buffers x --recv-buffer-bytes) stays below this.
pub const RECV_MEMORY_MAX_BYTES: usize = 1 << 30;
/// Listen backlog of every listener.
pub const LISTEN_BACKLOG: i32 = 4096;
/// How long start-up retries a port that a node which just exited still holds.
pub const PORT_CLAIM_WAIT: Duration = Duration::from_secs(2);

// ----- RESP -------------------------------------------------------------------------------

/// Largest bulk string by default (Redis's proto-max-bulk-len; --max-bulk-bytes).
pub const BULK_BYTES_DEFAULT: usize = 512 * 1024 * 1024;
/// Elements in one multibulk request (Redis 7: INT_MAX). A large one is parsed
/// `PARSE_SLICE_ARGS` arguments a loop turn, its memory charged to the budget.
pub const MULTIBULK_LEN_MAX: usize = i32::MAX as usize;
/// Bytes of an inline request line, and of a multibulk or bulk header (Redis: 64 KiB).
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// Arguments, and bytes of one argument, a connection may send before it authenticates
/// (Redis's own limits for unauthenticated clients).
pub const UNAUTHENTICATED_MULTIBULK_LEN_MAX: usize = 10;
pub const UNAUTHENTICATED_BULK_BYTES_MAX: usize = 16 * 1024;
/// Commands one MULTI may queue. Redis has no count limit, only the query buffer; a count
/// keeps one transaction's locks and messages bounded.
pub const MULTI_QUEUED_MAX: usize = 100_000;
/// Longest command name the table may hold (lookups of longer names fail at once).
pub const COMMAND_NAME_MAX: usize = 24;
/// Slots (empty ones cost a few ns each) one SCAN call may visit before it returns.
pub const SCAN_EMPTY_SLOTS_MAX: usize = 16384;
/// Keys sampled per eviction may be set from 1 to this (Redis's maxmemory-samples).
pub const EVICTION_SAMPLES_MAX: usize = 64;
/// Bytes of a client-supplied word an error line repeats (Redis shows 128).
pub const ERROR_WORD_SHOWN_BYTES_MAX: usize = 128;
/// --output-buffer-limit-bytes may not be set below this (or below --max-bulk-bytes when
/// that is smaller): the limit is for clients that stop reading, not for large replies.
pub const OUTPUT_LIMIT_FLOOR_BYTES: usize = 1 << 20;

// ----- the mesh ---------------------------------------------------------------------------

/// Parts waiting for one destination in a loop turn's outgoing batch. A command that would
/// pass it waits (its connection is blocked) until the batch has gone; later rounds of
/// operations already started may pass it, so nothing in flight is ever stuck.
pub const MESH_BATCH_PARTS_MAX: usize = 4096;
/// Emptied vectors of received batches an endpoint keeps, of each kind, for batches it
/// sends (so a batch costs no allocation in steady state).
pub const MESH_SPARE_VECS_MAX: usize = 16;
/// A batch byte arena larger than this is freed rather than kept (one forwarded huge value
/// must not pin its memory for good).
pub const MESH_SPARE_BYTES_MAX: usize = 1 << 20;
/// --ring-capacity may be at least this and at most the next (lane slots per ordered pair
/// of shards).
pub const RING_CAPACITY_MIN: usize = 16;
pub const RING_CAPACITY_MAX: usize = 1 << 20;

// ----- the log ----------------------------------------------------------------------------

/// Group commits of one partition in flight at once: the next group's write goes to the
/// disk while the previous fdatasync runs.
pub const COMMITS_IN_FLIGHT: usize = 4;
/// Fetch reads at least this large start a read-ahead of the partition's next range.
pub const READ_AHEAD_MIN_BYTES: usize = 1 << 20;
/// A fetch reads and holds at most the larger of one batch (--max-message-bytes) and this
/// per partition, whatever size the client names.
pub const FETCH_PARTITION_BYTES_MIN: usize = 8 << 20;
/// The longest a fetch may long-poll (clients name max_wait_ms).
pub const FETCH_WAIT_MS_MAX: i32 = 60_000;
/// Partitions one topic may have.
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;
/// One sparse index entry per this many bytes of a segment.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Batch headers kept per idempotent producer for duplicate detection (Kafka keeps 5).
pub const PRODUCER_BATCHES: usize = 5;

// ----- memory -----------------------------------------------------------------------------

// ----- metrics ----------------------------------------------------------------------------

/// Admin HTTP connections served at once (each on a small thread, with timeouts); more are
/// closed at once.
pub const ADMIN_CONNECTIONS_MAX: usize = 4096;
/// Stack of an admin connection's thread (it parses a request line and writes text).
pub const ADMIN_THREAD_STACK_BYTES: usize = 256 << 10;

/// Largest latency a histogram records (ns); longer ones are clamped.
pub const HIST_MAX_NS: u64 = 60_000_000_000;

// ----- bitmaps and string ranges ----------------------------------------------------------

/// Longest string SETBIT, SETRANGE and BITFIELD may make, and the largest transient table
/// LCS may build: Redis's proto-max-bulk-len default (512 MiB), which its tests and clients
/// expect exactly (a bit offset is refused when its byte is at or past this).
pub const STRING_BYTES_MAX: usize = BULK_BYTES_DEFAULT;

// ----- lists ------------------------------------------------------------------------------

/// Bytes of entries one list node holds (Redis's default list-max-listpack-size -2: 8 KiB);
/// an element larger than this has a node of its own. A push at an end costs O(1) within a
/// node, an edit in the middle rewrites one node.
pub const LIST_NODE_BYTES_MAX: usize = 8 << 10;

// ----- sets -------------------------------------------------------------------------------

/// Members a set keeps as packed sorted integers while all are integers (Redis's
/// set-max-intset-entries default): one member more and it becomes a hash table, as in
/// Redis, so OBJECT ENCODING answers what Redis's own tests expect.
pub const SET_INTSET_ENTRIES_MAX: usize = 512;
/// Members a small set of strings keeps in one packed buffer, searched linearly (Redis 7.2's
/// set-max-listpack-entries); one member more and it becomes a hash table.
pub const SET_PACK_ENTRIES_MAX: usize = 128;
/// Bytes of the longest member a packed small set holds (Redis 7.2's
/// set-max-listpack-value); a longer one makes it a hash table.
pub const SET_PACK_MEMBER_BYTES_MAX: usize = 64;
/// Members SRANDMEMBER with a negative count may repeat in one reply. Redis streams any
/// count until the client is closed for its output buffer; pinion builds a reply whole, so
/// a larger count is refused instead of exhausting memory.
pub const SET_RANDOM_REPEATS_MAX: u64 = 1 << 24;

// ----- strings, hashes, keys and introspection ---------------------------------------------

/// A hash keeps the packed encoding ("listpack") up to this many fields (Redis 7.0's
/// hash-max-listpack-entries default) ...
pub const HASH_PACKED_ENTRIES_MAX: usize = 512;
/// ... each field and value at most this long (hash-max-listpack-value); past either it
/// becomes a table ("hashtable") for good.
pub const HASH_PACKED_VALUE_BYTES_MAX: usize = 64;
/// Elements a random pick with repetitions (HRANDFIELD with a negative count) may return:
/// the reply is built whole in memory, so an absurd count is refused ("value is out of
/// range") rather than allowed to exhaust it. Redis has no such bound but closes the client
/// when the reply passes its output buffer limit.
pub const RANDOM_REPEATS_MAX: usize = 1 << 22;

// ----- sorted sets ------------------------------------------------------------------------

/// A sorted set stays one packed buffer (OBJECT ENCODING `listpack`) while it has at most
/// this many members (Redis's zset-max-listpack-entries default)...
pub const ZSET_LISTPACK_ENTRIES_MAX: usize = 128;
/// ... and while every member is at most this long (zset-max-listpack-value).
pub const ZSET_LISTPACK_VALUE_BYTES_MAX: usize = 64;
/// A leaf of a large sorted set's tree splits when its packed entries pass this many bytes:
/// a lookup scans one leaf, so this bounds the scan; larger leaves cost less per element.
pub const ZSET_LEAF_BYTES_MAX: usize = 1024;
/// Children of an inner node of that tree before it splits.
pub const ZSET_NODE_KIDS_MAX: usize = 64;
/// ZRANDMEMBER with a negative count (repeats allowed) is the one reply not bounded by the
/// data: past this many bytes it is refused instead (Redis stops at its output limit).
pub const ZRANDMEMBER_REPLY_BYTES_MAX: usize = 256 << 20;

// ----- scripting --------------------------------------------------------------------------

/// A script running this long is slow: it is logged, and on a one-shard node (where no other
/// shard can take SCRIPT KILL) it is stopped if it has not written. Redis's
/// `busy-reply-threshold` (`lua-time-limit`) default.
pub const SCRIPT_BUSY_MS: u64 = 5_000;
/// Lua instructions between two checks of a running script's clock and kill flag (Redis's
/// count hook period).
pub const SCRIPT_HOOK_INSTRUCTIONS: u32 = 100_000;
/// FUNCTION LOAD runs a library's top level to register its functions; past this it is
/// stopped (Redis's load timeout).
pub const FUNCTION_LOAD_TIMEOUT_MS: u64 = 500;
/// Nesting of a script's reply (and of a command reply a script reads) before the nested
/// value is answered with an error: a table that contains itself would never end.
pub const SCRIPT_REPLY_DEPTH_MAX: usize = 128;
/// Memory one Lua state may hold; past it an allocation fails and the script errors, instead
/// of the node running out of memory.
pub const SCRIPT_MEMORY_MAX_BYTES: usize = 1 << 30;
/// Lua invocations between two incremental garbage collection steps (Redis does 50).
pub const SCRIPT_GC_PERIOD: u32 = 50;
/// Nesting cjson.encode and cjson.decode accept (lua-cjson's default).
pub const SCRIPT_JSON_DEPTH_MAX: usize = 1_000;

// ----- scripting: cmsgpack ----------------------------------------------------------------

/// Tables nested deeper than this are packed as nil (lua-cmsgpack's LUACMSGPACK_MAX_NESTING),
/// which also bounds a table that contains itself.
pub const SCRIPT_MSGPACK_DEPTH_MAX: usize = 16;
/// Nesting the decoder follows before it calls the input malformed (bounds the recursion).
pub const SCRIPT_MSGPACK_DECODE_DEPTH_MAX: usize = 512;
/// Values `cmsgpack.unpack` returns at once at most (a Lua call's returns sit on its stack).
pub const SCRIPT_MSGPACK_RETURNS_MAX: usize = 4000;

// ----- collections held inline ----------------------------------------------------------------

/// A collection whose small encoding (with what rebuilds it) takes at most this many bytes
/// lives inside its key's entry between commands (`Store::settle`): larger ones keep an
/// object slot. Each command on such a key copies it out and back, so the bound keeps that
/// copy cheap, while a 10-element hash, set or sorted set (100-200 bytes) fits.
pub const COLLECTION_INLINE_BYTES_MAX: usize = 512;

// ----- Kafka compatibility (f-kbugs) ------------------------------------------------------

/// Bytes of one compressed batch a ListOffsets by timestamp inflates to find its record (a
/// producer's batch is about 1 MB before compression); past it the batch's base offset
/// answers. Bounds the work a lookup does on the shard's thread (~10 ms of gzip).
pub const TIME_LOOKUP_INFLATED_BYTES_MAX: usize = 8 << 20;
/// Smallest `segment.bytes` a topic may set (Kafka 4.0's floor): every segment keeps a file
/// handle open, so tiny segments would run a partition out of descriptors.
pub const TOPIC_SEGMENT_BYTES_MIN: u64 = 1 << 20;

// ----- Kafka request decoding (kdecode) ---------------------------------------------------

/// Array elements one Kafka request may hold, all its arrays together; a request with more is
/// refused before decoding (`proto::kafka::schema`). An element costs up to about 125 bytes
/// decoded (41 per byte on the wire at worst), so this caps what decoding one request may
/// allocate at about 130 MB, whatever `--max-request-bytes` allows; real clients send
/// thousands (a Produce to 10,000 partitions holds about 10,000).
pub const KAFKA_REQUEST_ELEMENTS_MAX: u64 = 1 << 20;

// ----- consumer groups (issue 11, f-groups) -----------------------------------------------

/// Partitions of Kafka's `__consumer_offsets` (offsets.topic.num.partitions): a group belongs
/// to partition `abs(javaHash(group id)) % this`, and each partition to one shard, its
/// coordinator. Each partition has its own offsets file, so the mapping survives a change of
/// core count.
pub const GROUP_OFFSET_PARTITIONS: u32 = 50;
/// Largest session, rebalance or initial-delay timeout a flag or a JoinGroup may set (Kafka's
/// own maximum session timeout is 30 minutes; rebalance timeouts are max.poll.interval.ms).
pub const GROUP_TIMEOUT_MS_MAX: u64 = 24 * 3600 * 1000;
/// A member that joined but whose first rebalance never completed is dropped after this
/// (Kafka's NewMemberJoinTimeoutMs), so clients that disconnect mid-join do not pile up.
pub const GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// Members (joined or pending) of one group (Kafka's group.max.size, unbounded there); a
/// join past it is answered GROUP_MAX_SIZE_REACHED.
pub const GROUP_MEMBERS_MAX: usize = 10_000;
/// Groups one shard coordinates; a new group past it is refused (COORDINATOR_NOT_AVAILABLE).
pub const GROUPS_PER_SHARD_MAX: usize = 100_000;
/// Bytes of an offset commit's metadata string (Kafka's offset.metadata.max.bytes).
pub const GROUP_OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// Partitions one group may hold committed offsets for; commits past it are refused
/// (OFFSET_METADATA_TOO_LARGE is the nearest Kafka error), bounding a group's memory.
pub const GROUP_OFFSETS_MAX: usize = 1_000_000;
/// An offsets file is rewritten with only the latest offset per (group, topic, partition)
/// once it passes twice the size of that live set, and at least this size.
pub const GROUP_LOG_REWRITE_MIN_BYTES: u64 = 4 << 20;
/// Bytes one offsets file accepts per write; further commits wait for the next write.
pub const GROUP_LOG_WRITE_MAX_BYTES: usize = 4 << 20;

// ----- the memory budget (`budget.rs`, --memory-budget) ------------------------------------

/// Without --memory-budget, the node's budget is this fraction of the memory it may use
/// (RAM, or its cgroup's limit when lower): the rest is for the binary, stacks, the
/// allocator's slack and the kernel's socket buffers.
pub const BUDGET_AUTO_RAM_NUMERATOR: usize = 3;
pub const BUDGET_AUTO_RAM_DENOMINATOR: usize = 4;
/// The transient purposes (input, output, produce, fetch) may always use at least this
/// fraction (1/n) of a shard's share, whatever the cache holds, so a full cache never stalls
/// the node; --maxmemory may therefore be at most (n-1)/n of --memory-budget.
pub const BUDGET_TRANSIENT_FLOOR_DIVISOR: usize = 8;
/// Paused connections go on once the transient bytes are this fraction (1/n) of the limit
/// below it, so they do not flap at the limit.
pub const BUDGET_RESUME_DIVISOR: usize = 16;
/// The smallest --memory-budget accepted.
pub const BUDGET_MIN_BYTES: usize = 32 << 20;
/// Under pressure a connection may still hold this much unparsed input (a partial frame
/// smaller than this is read on): small requests are always served, and no connection
/// waits on others to finish a frame this size.
pub const BUDGET_INPUT_ALLOWANCE_BYTES: usize = 64 << 10;
/// Under pressure a connection whose queued replies are below this still has its requests
/// run; above it, it waits until its client reads.
pub const BUDGET_OUTPUT_ALLOWANCE_BYTES: usize = 64 << 10;
/// Under pressure, a turn of the check below that released or sent less than this made no
/// progress ...
pub const BUDGET_PROGRESS_BYTES: u64 = 1 << 20;
/// ... and after this many checks in a row without progress, with connections paused on
/// partial frames, the one with the largest partial frame is closed (so the node never
/// deadlocks on frames that cannot all fit).
pub const BUDGET_STUCK_CHECKS: u32 = 3;
/// How often the budget is checked for lack of progress and stalled readers.
pub const BUDGET_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// A query buffer larger than this is shrunk back when it holds less than a quarter of it.
pub const QUERY_KEEP_BYTES: usize = 64 << 10;
/// A query buffer grows by doubling up to this step, then by this step: its capacity (what
/// the budget charges) stays close to the bytes really received.
pub const QUERY_GROW_STEP_MAX_BYTES: usize = 1 << 20;
/// A client whose queued replies passed --output-buffer-limit-bytes and that took none of
/// them for this long has stopped reading: it is closed. One that keeps reading is not,
/// however large the reply (a GET of a 500 MB value).
pub const OUTPUT_STALL: Duration = Duration::from_millis(500);
/// A whole Kafka request at least this large at the front of a query buffer is handed on
/// without a copy (the rest of the buffer is copied instead).
pub const MOVE_FRAME_BYTES: usize = 1 << 20;
/// A partition keeps a written commit buffer for its next group only up to this size, so
/// one burst of large produce requests does not pin its memory for the partition's life.
pub const COMMIT_BUF_KEEP_BYTES: usize = 8 << 20;
/// Replies a connection may expect from requests in flight, at its running average reply
/// size (together with --max-inflight-per-conn): a pipeline of 2000 GETs of 100 KB values
/// has about 40 in flight, not 1024 whose 100 MB of replies land at once.
pub const INFLIGHT_REPLY_BYTES_MAX: usize = 4 << 20;
/// The running average reply size a connection starts with (so at most 64 requests are in
/// flight before its first replies say how large they are).
pub const REPLY_ESTIMATE_START_BYTES: usize = 64 << 10;
/// A connection whose unparsed input reaches this (a large frame arriving) is read by direct
/// receives into its query buffer instead of the shared provided buffers.
pub const DIRECT_RECV_MIN_BYTES: usize = 64 << 10;
/// Bytes one direct receive may take, and direct receives in flight per shard: large
/// uploads add at most their product (1 MiB) of copying to a loop turn, and are served in
/// turn.
pub const DIRECT_RECV_BYTES: usize = 128 << 10;
pub const DIRECT_RECVS_MAX: usize = 8;
/// Buffers at least this large are freed on a helper thread (`budget::free_elsewhere`):
/// unmapping hundreds of MB of touched pages takes tens of ms that a shard must not spend.
pub const FREE_ELSEWHERE_MIN_BYTES: usize = 4 << 20;

// ----- stall detection (issue 13, f-stall) -----
/// A shard logs at most one stall warning per this interval; the next one says how many
/// stalls went unlogged in between.
pub const STALL_WARN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes of a command's name kept to name it in a stall warning (longer names are cut).
pub const STALL_NAME_BYTES: usize = 24;
/// Items (a slot's table, a collection object) a shard frees per loop turn of what a
/// FLUSHALL or FLUSHDB dropped (`cache/lazy_free.rs`): at 2M keys a slot table holds about
/// 120 entries on one shard, so a turn frees some 8k allocations, well under a millisecond.
pub const LAZY_FREE_ITEMS_PER_TURN: usize = 64;

// ----- connection hygiene (issue 13, f-hygiene) -------------------------------------------

/// A request still arriving after --partial-frame-timeout-s must have come at this average
/// rate since its first byte (Apache's mod_reqtimeout MinRate is 500): a slowloris dribbling a
/// byte every few seconds is closed, a large value on a slow link is not.
pub const PARTIAL_FRAME_MIN_BYTES_PER_S: u64 = 1024;
/// Slowloris and idle closes are logged at most this often per shard, with a count of the
/// rest.
pub const HYGIENE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

// ----- krobust: produce-time record checks -----
/// Bytes a produced compressed batch may inflate to while its records are walked on
/// produce (the stream is read through, never held). Kafka has no such bound; 64 MiB is 64
/// times the default `max.message.bytes`, far past real codecs' ratios on real data, and
/// caps the CPU a compression bomb can cost one shard (about 0.1 s of inflate). A batch
/// past it is refused with CORRUPT_MESSAGE.
pub const PRODUCE_INFLATED_BYTES_MAX: usize = 64 << 20;
/// Window a produced zstd batch may use (2^24 = 16 MiB), the memory a shard's kept zstd
/// context may grow to. Kafka clients' zstd levels use 2^17..2^22 for batches of any size;
/// zstd's own default would let one frame ask 128 MiB.
pub const PRODUCE_ZSTD_WINDOW_LOG_MAX: u32 = 24;

// ----- TLS (issue 13) ----------------------------------------------------------------------

/// What rustls may queue to send on one connection before it takes no more plaintext (its
/// default); the shard drains it into the send buffer as it seals.
pub const TLS_BUFFER_BYTES: usize = 64 << 10;
/// Plaintext sealed into one send of a TLS connection: a large reply goes out in records of
/// this many bytes per send (the ciphertext buffer stays this size, not the reply's), and a
/// 256 KiB send is already past the size where a send's fixed cost matters.
pub const TLS_SEAL_PLAIN_BYTES_MAX: usize = 256 << 10;
/// Input the memory budget charges a TLS connection for rustls's own buffers: a record
/// being received (up to 16 KiB and its header), handshake messages, decrypted plaintext
/// before it moves to the query buffer, and the connection's state.
pub const TLS_CONN_BYTES: usize = 48 << 10;
/// Failed TLS handshakes are logged at most this often per shard, with a count of the rest.
pub const TLS_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

// ----- fd budget (issue 11/13, f-kadmin) ----------------------------------------------------

/// File descriptors an idle partition holds: its active segment's read and write handles.
/// Each older segment still on disk holds one more (its read handle) until retention or
/// DeleteRecords removes it; docs/operations.md says how to size `ulimit -n` for that.
pub const FDS_PER_PARTITION: u64 = 2;
/// Descriptors the node holds whatever it serves: stdio, the log, the data-dir lock, the
/// admin endpoint and its connections, the group offset files, a few file jobs.
pub const FDS_NODE_RESERVED: u64 = 64;
/// Descriptors each shard holds: its ring, control eventfds, RESP and Kafka listeners,
/// the handles of file jobs in flight (segment opens, topic.meta writes).
pub const FDS_PER_SHARD_RESERVED: u64 = 32;
/// Of the descriptors left after the reserves above, connections keep at least
/// `1/FDS_CONNECTION_SHARE_DIVISOR` (or what --max-connections and --max-kafka-connections
/// ask, if less); partitions may use the rest. A connection over the fd limit is refused
/// at accept (EMFILE, retried); a partition over it would fail its writes.
pub const FDS_CONNECTION_SHARE_DIVISOR: u64 = 8;
/// Read handles of segments other than their partition's active one that a shard keeps
/// open, least recently read closed first (`log/readers.rs`); a read of another one opens
/// it again. Without a bound every rolled segment held a descriptor while on disk.
pub const SEGMENT_READERS_PER_SHARD: usize = 64;
/// The soft `ulimit -n` pinion raises itself to at start-up (never past the hard limit).
pub const NOFILE_WANTED: u64 = 1 << 20;

// ----- log compaction (issue 11, f-compact) ------------------------------------------------
/// Bytes of a segment one compaction slice reads and works through in one loop turn (a batch
/// larger than this is read whole, alone). 256 KiB of records is parsed, hashed and filtered
/// in well under a millisecond.
pub const COMPACT_SLICE_BYTES: usize = 256 << 10;
/// Distinct keys one compaction pass maps (32 bytes a slot: 16 of key hash and 8 of offset,
/// aligned; up to 64 MiB of table at the bound, which the shard keeps between passes). A
/// pass whose segments hold more cleans the segments mapped before the map filled; the next
/// pass goes on from there.
pub const COMPACT_MAP_KEYS_MAX: usize = 1 << 20;
/// The fewest bytes of segment per key a pass reserves its key map for (it estimates from
/// the records of its first batches; a stored record with its share of the batch header
/// takes at least this much), up to the bound above: the table is sized once, since growing
/// it rehashes every key in one slice.
pub const COMPACT_MAP_BYTES_PER_KEY_MIN: u64 = 64;
/// Bytes a stored compressed batch may inflate to while it is compacted; a batch past it is
/// kept whole (its keys are neither mapped nor filtered).
pub const COMPACT_INFLATED_BYTES_MAX: usize = 16 << 20;

// ----- Transactions (issue 11, f-txn) -------------------------------------------------------

/// Transactional ids one shard coordinates (InitProducerId for a new one past it answers
/// COORDINATOR_NOT_AVAILABLE).
pub const TXN_IDS_PER_SHARD_MAX: usize = 100_000;
/// Partitions one transaction may write (AddPartitionsToTxn past it: INVALID_REQUEST).
pub const TXN_PARTITIONS_MAX: usize = 10_000;
/// The largest `transaction.timeout.ms` a producer may ask for: Kafka's default
/// `transaction.max.timeout.ms` (15 minutes).
pub const TXN_TIMEOUT_MS_MAX: i32 = 900_000;
/// How long a marker flight waits before writing markers that failed again.
pub const TXN_MARKER_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

// ----- users, ACLs and SASL (issue 13, f-sec) -----
/// PBKDF2 iterations of a credential made by ACL SETUSER or `pinion users add`: Kafka's
/// minimum for SCRAM (RFC 7677 recommends at least 4096). A wrong password costs one
/// PBKDF2 of this many rounds (about a millisecond) on the shard that checks it.
pub const SCRAM_ITERATIONS: u32 = 4096;
/// Iterations a users file may ask for: more would let one AUTH stall a shard for seconds.
pub const SCRAM_ITERATIONS_MAX: u32 = 100_000;
/// Salt bytes of a new credential.
pub const SCRAM_SALT_BYTES: usize = 16;
/// Random bytes in a SCRAM server nonce.
pub const SCRAM_NONCE_BYTES: usize = 18;
/// Passwords a shard remembers as verified (a SHA-256 of salt and password, in memory
/// only) so that a repeated AUTH costs one hash, not a PBKDF2; cleared when full.
pub const AUTH_VERIFIED_CACHE_MAX: usize = 1024;
/// Entries ACL LOG keeps (Redis's acl-log-max-len default).
pub const ACL_LOG_MAX: usize = 128;
/// Users a users file or ACL SETUSER may define.
pub const ACL_USERS_MAX: usize = 10_000;
/// Bytes of a users file read at start or by ACL LOAD.
pub const USERS_FILE_BYTES_MAX: usize = 16 << 20;
/// Bytes of one SaslAuthenticate message (PLAIN or a SCRAM step) we parse.
pub const SASL_MESSAGE_BYTES_MAX: usize = 8192;

// --- fuzzing (issue 13, item 3) ---

/// The most a snappy block inflates to per byte of it: its densest element is a 3-byte copy
/// of 64 bytes (21.3 per byte). A block whose length header claims more is refused before
/// anything is allocated for it.
pub const SNAPPY_INFLATE_RATIO_MAX: u64 = 22;

// ----- cluster mode (issue 12, f-cluster) -----
/// Longest --heartbeat-ms: the control plane closes a connection idle for 60 s.
pub const HEARTBEAT_MS_MAX: u64 = 30_000;

// ----- sliced KEYS (issue 13, f-slices) ---------------------------------------------------
/// Entries a shard examines per loop turn for its running KEYS commands (`shard/sliced.rs`):
/// at about 100 ns an entry (a glob match and a copy of a matching key) a slice takes about
/// a millisecond, so other clients of the shard are served between slices.
pub const KEYS_SLICE_ENTRIES: usize = 8192;

// ----- Kafka shard ports (issue 12, f-2pckill) --------------------------------------------
/// Broker ids per node under `--kafka-shard-ports`: shard `i` of node `n` is broker
/// `n × KAFKA_SHARD_BROKERS_PER_NODE + i`, so a node has at most this many shards there,
/// and its id at most `i32::MAX / KAFKA_SHARD_BROKERS_PER_NODE - 1`.
pub const KAFKA_SHARD_BROKERS_PER_NODE: i32 = 1000;
// ----- partition pulls (issue 12, f-pull) -------------------------------------------------
/// How long a pull waits for the source's Kafka port to accept its connection.
pub const PULL_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How long a pull waits on one request to the source (a Fetch long-polls far less).
pub const PULL_IO_TIMEOUT_MS: u64 = 30_000;
/// Bytes a pull asks for per Fetch: large enough that one round trip moves a lot, small
/// enough that the source reads it in one go.
pub const PULL_FETCH_BYTES: i32 = 8 << 20;
/// The largest answer a pull reads from the source (a Fetch of `PULL_FETCH_BYTES` plus
/// its frame, and at least a whole first batch as large as the largest one Kafka allows).
pub const PULL_RESPONSE_BYTES_MAX: usize = 64 << 20;
/// How long a pull's Fetch waits at the source for new records while it tails.
pub const PULL_FETCH_WAIT_MS: i32 = 100;
/// How long a release waits for the partition's appends and open transactions to end
/// before it answers that the partition has not settled.
pub const PULL_SETTLE_WAIT_MS: u64 = 10_000;
/// How long a finish waits for the copy to reach the end it was given.
pub const PULL_FINISH_WAIT_MS: u64 = 60_000;
/// Pulls a node runs (or keeps the outcome of) at once.
pub const PULLS_MAX: usize = 64;
/// How long a pull's thread waits for a shard to answer a command.
pub const PULL_SHARD_WAIT_MS: u64 = 5_000;

// ----- failed authentications per address (issue 13, f-harden) -----
/// Failed authentications (AUTH, HELLO AUTH, Kafka SaslAuthenticate) one client address may
/// make within `AUTH_FAILURE_WINDOW_MS` before its attempts are refused for
/// `AUTH_BLOCK_MS` (`--auth-failures-max`; 0 turns the limit off). Each failure costs a
/// PBKDF2 of `SCRAM_ITERATIONS` rounds; 100 a minute bounds a guesser to 100 guesses a
/// minute per address instead of about 600 a second per connection, and leaves room for
/// clients that retry a wrong password by themselves (redis-py 8 makes 11 attempts per
/// connection, librdkafka one every 100 ms or so) before an address is shut out.
pub const AUTH_FAILURES_MAX: u32 = 100;
/// The window the failures are counted in, from the first of them (`--auth-failure-window-ms`).
pub const AUTH_FAILURE_WINDOW_MS: u64 = 60_000;
/// How long an address that reached the limit is refused (`--auth-block-ms`).
pub const AUTH_BLOCK_MS: u64 = 60_000;
/// Addresses the node tracks failures for at once. Past it, addresses whose window and
/// cool-down are over are dropped, then the oldest address not refused; a node under a
/// guessing attack from more addresses than this still refuses those it tracks.
pub const AUTH_TRACKED_ADDRESSES_MAX: usize = 65_536;
/// Longest `--auth-block-ms` and `--auth-failure-window-ms`: a day.
pub const AUTH_LIMIT_MS_MAX: u64 = 86_400_000;

// ----- big hashes in slices (issue 13, f-harden) -----
/// Pairs of a hash that HGETALL, HKEYS or HVALS encode per loop turn (`shard/sliced.rs`);
/// a hash with more is answered over several turns from a frozen view of it. At about
/// 60-100 ns a pair (two bulk strings) a slice takes about a millisecond.
pub const HASH_REPLY_SLICE_PAIRS: usize = 16_384;
/// Field-value pairs of one HSET/HMSET applied per loop turn: a command with more is applied
/// over several turns while its key is held in the shard's scheduler, so no other command
/// sees it half-applied (`shard/sliced.rs`). About 0.4 us a pair: a few milliseconds a slice.
pub const HASH_WRITE_SLICE_PAIRS: usize = 8_192;

// Moving data when the map changes (issue 12, f-move): `cluster/mover.rs`.

/// Keys one TAKE of a frozen slot hands over (and one pipelined batch to the new owner).
pub const MOVE_TAKE_KEYS: usize = 256;
/// Bytes one TAKE aims at (it stops adding keys past this; one key may exceed it).
pub const MOVE_TAKE_BYTES: usize = 4 << 20;
/// A mover's read or write that waits this long fails the slot (it stays with this node).
pub const MOVE_IO_TIMEOUT_MS: u64 = 10_000;
/// The largest reply element the mover reads: a moved key's payload can be as large as a
/// bulk string may be (Redis's proto-max-bulk-len, 512 MiB), plus its encoding.
pub const MOVE_REPLY_BYTES_MAX: usize = (512 << 20) + 1024;

// Moving log partitions when the map changes (issue 12, f-pmove): `cluster/pmove.rs`.

/// A new owner's pulls of one order must catch up within this, or the order's partitions
/// that did not fail (they stay with their old owner).
pub const PMOVE_CATCHUP_WAIT_MS: u64 = 120_000;
/// A new owner waits this long for the old owner's `fenced` answer (its fences settle
/// within `PULL_SETTLE_WAIT_MS`).
pub const PMOVE_FENCE_ANSWER_WAIT_MS: u64 = PULL_SETTLE_WAIT_MS + 5_000;
/// A new owner reports an order still running this often, so the control plane does not
/// time it out while a large partition copies (its timeout is 30 s without a report).
pub const PMOVE_KEEPALIVE_MS: u64 = 5_000;
/// Log partitions a heartbeat reports holding (pinion-control places at most its
/// `PARTITIONS_REPORTED_MAX` of them).
pub const PMOVE_REPORTED_PARTITIONS_MAX: usize = 16_384;

// Parsing requests of many arguments over several loop turns (issue 13, h13):
// `proto/resp/parse.rs`, `shard/frames.rs`.

/// Arguments one connection's partial request may have parsed in one loop turn; past it the
/// parse stops and goes on in the next turn (about 1 ms of parsing at worst).
pub const PARSE_SLICE_ARGS: usize = 65_536;
/// A partial request with at least this many arguments parsed keeps them (and where it
/// stopped) in its connection between receives; a smaller one is parsed again from its
/// start when more bytes arrive (cheaper than keeping it).
pub const PARSE_KEEP_ARGS_MIN: usize = 1_024;

// Topics through the control plane (issue 12, f-topics): `cluster/topics.rs`.

/// Topic requests (create, add partitions, delete) a node has queued for or sent to the
/// control plane and not had answered; more are answered REQUEST_TIMED_OUT at once.
pub const TOPIC_REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// How often a forwarded topic request looks for its answer.
pub const TOPIC_ANSWER_POLL_MS: u64 = 5;
/// The longest a forwarded topic request waits for its answer (a request's own
/// `timeout_ms` is honoured below this; 0 or less means this).
pub const TOPIC_ANSWER_WAIT_MS: u64 = 60_000;
/// How often the membership thread checks that this node holds every topic of the map it
/// serves (creating those it lacks through its own Kafka port).
pub const TOPIC_RECONCILE_MS: u64 = 1_000;
/// A read or write of that local Kafka call that waits this long fails (it is retried at
/// the next check).
pub const TOPIC_APPLY_IO_TIMEOUT_MS: u64 = 10_000;
/// The largest answer that local Kafka call reads.
pub const TOPIC_APPLY_RESPONSE_BYTES_MAX: usize = 1 << 20;
