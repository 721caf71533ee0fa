//! Topics under a control plane (`--control`): the map holds the cluster's topics (name,
//! partition count, configs, each partition's owner), so a topic is created, grown and
//! deleted once, on any node, for the whole cluster.
//!
//! Two directions, both through the membership thread (`member.rs`):
//! - **Asking.** A shard that takes CreateTopics, CreatePartitions or DeleteTopics (or
//!   auto-creates a topic) checks it locally first, then queues a [`TopicOp`] here
//!   ([`Requests::ask`]) and runs a [`Forward`] flight that polls its [`Ticket`]s; the
//!   membership thread sends the queued requests (`{type: "topic", id, change}`) and hands
//!   each `topic_reply` back ([`Requests::answer`]). The control plane answers once the map
//!   change is done, so the Kafka response comes after the commit (or with its error). A
//!   dropped connection answers what was sent and not answered REQUEST_TIMED_OUT.
//! - **Applying.** When the node installs a map ([`installed`]), and every
//!   `TOPIC_RECONCILE_MS` after ([`reconcile`]), it makes its own topics match the map's:
//!   it creates a map topic it lacks (with the map's partition count and configs), grows
//!   one it holds with fewer partitions, and deletes one the previous map had and this one
//!   has not. It does so through its own Kafka port as a client whose id is
//!   [`APPLY_CLIENT_ID`], which the handlers serve locally, as standalone. Every node holds
//!   every map topic (the partitions it does not lead stay empty), so DescribeConfigs,
//!   ListOffsets and a later partition move find it anywhere.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
pub use pinion_control::map::TopicSpec;
pub use pinion_control::server::topics::TopicOp;

use crate::limits::{
    TOPIC_ANSWER_POLL_MS, TOPIC_ANSWER_WAIT_MS, TOPIC_APPLY_IO_TIMEOUT_MS,
    TOPIC_APPLY_RESPONSE_BYTES_MAX, TOPIC_REQUESTS_IN_FLIGHT_MAX,
};
use crate::txn::{Res, Rounds, Step};

/// The client id of the node's own calls that apply the map: served locally.
pub const APPLY_CLIENT_ID: &str = "pinion-apply";
/// The client id of a partition pull's calls (`log/pull/client.rs`): served locally too (a
/// pull creates the topic it copies as its source has it).
pub const PULL_CLIENT_ID: &str = "pinion-pull";
/// Kafka's REQUEST_TIMED_OUT.
pub const REQUEST_TIMED_OUT: i16 = 7;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Whether a request comes from the node itself (a map being applied, a pull): topic
/// requests are then served locally, as on a standalone node.
pub fn internal_client(client_id: Option<&str>) -> bool {
    matches!(client_id, Some(APPLY_CLIENT_ID | PULL_CLIENT_ID))
}

/// The control plane's answer to one topic request: Kafka's error code (0: done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub error: i16,
    pub message: Option<String>,
}

impl Answer {
    pub fn timed_out(why: &str) -> Answer {
        Answer {
            error: REQUEST_TIMED_OUT,
            message: Some(why.to_string()),
        }
    }
}

type Slot = Arc<Mutex<Option<Answer>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere aborts the process (panic = "abort"), so poisoning cannot be seen
    // in release; in tests, go on with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a flight waits on: one request's answer.
pub struct Ticket(Slot);

impl Ticket {
    pub fn answer(&self) -> Option<Answer> {
        lock(&self.0).clone()
    }

    /// A ticket answered at once (a request refused before it was sent).
    pub fn answered(a: Answer) -> Ticket {
        Ticket(Arc::new(Mutex::new(Some(a))))
    }
}

/// The node's topic requests to the control plane: queued by shards, sent and answered by
/// the membership thread.
#[derive(Default)]
pub struct Requests {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Not sent yet (the ids, in order).
    unsent: Vec<u64>,
    /// Every request not answered yet.
    waiting: HashMap<u64, (TopicOp, Slot)>,
}

impl Requests {
    /// Queues `op` for the control plane.
    pub fn ask(&self, op: TopicOp) -> Ticket {
        let mut g = lock(&self.inner);
        if g.waiting.len() >= TOPIC_REQUESTS_IN_FLIGHT_MAX {
            return Ticket::answered(Answer::timed_out(
                "too many topic requests are waiting for the control plane; retry",
            ));
        }
        g.next_id += 1;
        let id = g.next_id;
        let slot: Slot = Arc::new(Mutex::new(None));
        g.unsent.push(id);
        g.waiting.insert(id, (op, slot.clone()));
        Ticket(slot)
    }

    /// Whether a create of `name` is waiting (auto-creation asks once).
    pub fn creating(&self, name: &str) -> bool {
        lock(&self.inner)
            .waiting
            .values()
            .any(|(op, _)| matches!(op, TopicOp::Create { name: n, .. } if n == name))
    }

    /// The requests to send now, as `topic` messages; they count as sent.
    pub fn take_unsent(&self) -> Vec<serde_json::Value> {
        let mut g = lock(&self.inner);
        let ids = std::mem::take(&mut g.unsent);
        ids.into_iter()
            .filter_map(|id| {
                let (op, _) = g.waiting.get(&id)?;
                Some(serde_json::json!({"type": "topic", "id": id, "change": op}))
            })
            .collect()
    }

    /// A `topic_reply` from the control plane.
    pub fn answer(&self, v: &serde_json::Value) {
        let Some(id) = v.get("id").and_then(|i| i.as_u64()) else {
            return;
        };
        let error = v
            .get("error")
            .and_then(|e| e.as_i64())
            .and_then(|e| i16::try_from(e).ok())
            .unwrap_or(REQUEST_TIMED_OUT);
        let message = v
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        if let Some((_, slot)) = lock(&self.inner).waiting.remove(&id) {
            *lock(&slot) = Some(Answer { error, message });
        }
    }

    /// The connection dropped: what was sent will not be answered on it.
    pub fn connection_lost(&self) {
        let mut g = lock(&self.inner);
        let unsent: Vec<u64> = g.unsent.clone();
        g.waiting.retain(|id, (_, slot)| {
            if unsent.contains(id) {
                return true;
            }
            *lock(slot) = Some(Answer::timed_out(
                "the connection to the control plane dropped before it answered",
            ));
            false
        });
    }
}

/// What a forwarded request's response is built from: one answer per ticket, in order.
pub type Answered = Box<dyn FnMut(&[Answer]) -> Vec<u8> + Send>;

/// A flight that waits for its tickets' answers (polling every `TOPIC_ANSWER_POLL_MS`),
/// or until its deadline, when the unanswered ones are REQUEST_TIMED_OUT.
pub struct Forward {
    tickets: Vec<Ticket>,
    deadline: Option<Instant>,
    wait: Duration,
    finish: Answered,
    done: bool,
}

impl Forward {
    /// `timeout_ms`: the request's own timeout (bounded by `TOPIC_ANSWER_WAIT_MS`).
    pub fn new(tickets: Vec<Ticket>, timeout_ms: i32, finish: Answered) -> Forward {
        let ms = u64::try_from(timeout_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map_or(TOPIC_ANSWER_WAIT_MS, |ms| ms.min(TOPIC_ANSWER_WAIT_MS));
        Forward {
            tickets,
            deadline: None,
            wait: Duration::from_millis(ms),
            finish,
            done: false,
        }
    }
}

impl Rounds for Forward {
    fn next(&mut self, _: Vec<Res>, now: Instant) -> Step {
        if self.done {
            return Step::Reply(Vec::new());
        }
        let deadline = *self.deadline.get_or_insert(now + self.wait);
        let answers: Vec<Option<Answer>> = self.tickets.iter().map(Ticket::answer).collect();
        if answers.iter().all(Option::is_some) || now >= deadline {
            self.done = true;
            let all: Vec<Answer> = answers
                .into_iter()
                .map(|a| {
                    a.unwrap_or_else(|| {
                        Answer::timed_out("the control plane did not commit the change in time")
                    })
                })
                .collect();
            return Step::Reply((self.finish)(&all));
        }
        Step::Again {
            parts: Vec::new(),
            after: Duration::from_millis(TOPIC_ANSWER_POLL_MS),
        }
    }
}

// Applying the map's topics to this node.

/// The partition count of this node's copy of `topic`, read from its `topic.meta`.
fn local_partitions(data_dir: &Path, topic: &str) -> Option<u32> {
    let text =
        std::fs::read_to_string(crate::log::topics::topic_dir(data_dir, topic).join("topic.meta"))
            .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("partitions="))
        .and_then(|n| n.trim().parse().ok())
}

/// A map was installed: delete the topics `old` had and `new` has not, then reconcile.
pub fn installed(
    data_dir: &Path,
    kafka: &str,
    old: &BTreeMap<String, TopicSpec>,
    new: &BTreeMap<String, TopicSpec>,
) {
    let gone: Vec<String> = old
        .keys()
        .filter(|n| !new.contains_key(*n) && local_partitions(data_dir, n).is_some())
        .cloned()
        .collect();
    if !gone.is_empty() {
        let req = DeleteTopicsRequest::default()
            .with_topic_names(gone.iter().map(|n| name(n)).collect())
            .with_timeout_ms(TOPIC_APPLY_IO_TIMEOUT_MS as i32);
        match call(kafka, &req, 1) {
            Ok(r) => {
                for t in r.responses {
                    if t.error_code != 0 && t.error_code != UNKNOWN_TOPIC_OR_PARTITION {
                        tracing::warn!(topic = ?t.name, code = t.error_code, "deleting a topic the map dropped failed");
                    }
                }
                tracing::info!(topics = ?gone, "deleted the topics the map dropped");
            }
            Err(e) => tracing::warn!(error = %e, "deleting the topics the map dropped failed"),
        }
    }
    reconcile(data_dir, kafka, new);
}

/// Creates the map's topics this node lacks and grows those it holds with fewer
/// partitions. Failures are logged and tried again at the next check.
pub fn reconcile(data_dir: &Path, kafka: &str, topics: &BTreeMap<String, TopicSpec>) {
    let mut create = Vec::new();
    let mut grow = Vec::new();
    for (n, t) in topics {
        match local_partitions(data_dir, n) {
            None => create.push((n, t)),
            Some(have) if have < t.partitions => grow.push((n, t.partitions)),
            Some(_) => {}
        }
    }
    if !create.is_empty() {
        let topics = create
            .iter()
            .map(|(n, t)| {
                let configs = t
                    .configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect();
                CreatableTopic::default()
                    .with_name(name(n))
                    .with_num_partitions(t.partitions as i32)
                    .with_replication_factor(1)
                    .with_configs(configs)
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(TOPIC_APPLY_IO_TIMEOUT_MS as i32);
        match call(kafka, &req, 2) {
            Ok(r) => {
                for t in r.topics {
                    if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
                        tracing::warn!(topic = %t.name.0, code = t.error_code, message = ?t.error_message, "creating a topic of the map failed");
                    } else {
                        tracing::info!(topic = %t.name.0, "created a topic of the map");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "creating the map's topics failed"),
        }
    }
    if !grow.is_empty() {
        let topics = grow
            .iter()
            .map(|(n, count)| {
                CreatePartitionsTopic::default()
                    .with_name(name(n))
                    .with_count(*count as i32)
                    .with_assignments(None) // placed by the node, as Kafka places them
            })
            .collect();
        let req = CreatePartitionsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(TOPIC_APPLY_IO_TIMEOUT_MS as i32);
        match call(kafka, &req, 0) {
            Ok(r) => {
                for t in r.results {
                    if t.error_code != 0 {
                        tracing::warn!(topic = %t.name.0, code = t.error_code, message = ?t.error_message, "growing a topic of the map failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "growing the map's topics failed"),
        }
    }
}

fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.to_string()))
}

/// One request to this node's own Kafka port, as [`APPLY_CLIENT_ID`], and its answer.
fn call<R: Request>(addr: &str, req: &R, version: i16) -> Result<R::Response, String> {
    let sa = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let t = Duration::from_millis(TOPIC_APPLY_IO_TIMEOUT_MS);
    let mut s = TcpStream::connect_timeout(&sa, t).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(APPLY_CLIENT_ID)));
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, R::header_version(version))
        .and_then(|_| req.encode(&mut buf, version))
        .map_err(|e| format!("encoding: {e}"))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    s.write_all(&buf).map_err(|e| format!("{addr}: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(|e| format!("{addr}: {e}"))?;
    let len = i32::from_be_bytes(len);
    if len < 4 || len as usize > TOPIC_APPLY_RESPONSE_BYTES_MAX {
        return Err(format!("{addr}: answer size {len}"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| e.to_string())?;
    R::Response::decode(&mut body, version).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str) -> TopicOp {
        TopicOp::Create {
            name: name.into(),
            partitions: 3,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn requests_are_sent_once_and_answered_by_id() {
        let r = Requests::default();
        let a = r.ask(create("a"));
        let b = r.ask(create("b"));
        assert!(r.creating("a"));
        let sent = r.take_unsent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0]["change"]["name"], "a");
        assert!(r.take_unsent().is_empty());
        let id = sent[1]["id"].clone();
        r.answer(
            &serde_json::json!({"type": "topic_reply", "id": id, "error": 36, "message": "exists"}),
        );
        assert_eq!(b.answer().unwrap().error, 36);
        assert!(a.answer().is_none());
        // The connection drops: what was sent times out, what was not stays queued.
        let c = r.ask(create("c"));
        r.connection_lost();
        assert_eq!(a.answer().unwrap().error, REQUEST_TIMED_OUT);
        assert!(c.answer().is_none());
        assert_eq!(r.take_unsent().len(), 1);
        assert!(!r.creating("a"));
    }

    #[test]
    fn a_forward_answers_when_every_ticket_is_in_or_at_its_deadline() {
        let r = Requests::default();
        let t = r.ask(create("a"));
        let mut f = Forward::new(vec![t], 50, Box::new(|a: &[Answer]| vec![a[0].error as u8]));
        let now = Instant::now();
        assert!(matches!(f.next(Vec::new(), now), Step::Again { .. }));
        assert!(matches!(
            f.next(Vec::new(), now + Duration::from_millis(60)),
            Step::Reply(b) if b == vec![REQUEST_TIMED_OUT as u8]
        ));
        let t = r.ask(create("b"));
        // ("a" was never sent: both go now; "b" is the last.)
        let id = r.take_unsent().last().expect("two requests")["id"].clone();
        let mut f = Forward::new(vec![t], 0, Box::new(|a: &[Answer]| vec![a[0].error as u8]));
        assert!(matches!(f.next(Vec::new(), now), Step::Again { .. }));
        r.answer(&serde_json::json!({"id": id, "error": 0}));
        assert!(matches!(f.next(Vec::new(), now), Step::Reply(b) if b == vec![0]));
    }

    #[test]
    fn internal_clients_are_the_nodes_own() {
        assert!(internal_client(Some(APPLY_CLIENT_ID)));
        assert!(internal_client(Some(PULL_CLIENT_ID)));
        assert!(!internal_client(Some("rdkafka")));
        assert!(!internal_client(None));
    }
}
