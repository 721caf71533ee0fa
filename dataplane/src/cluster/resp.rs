//! CLUSTER SLOTS, SHARDS, NODES, INFO, KEYSLOT and MYID from the view; READONLY, READWRITE and ASKING accepted. Runs on the connection's shard.
//!
//! What a client sees as a "master" is a node, or with `--shard-ports` each shard of a
//! node on its own port. `myself` is the master the connection speaks to: its shard's
//! entry when the node lists shard ports, else the node.

use super::view::View;
use crate::cache::slot::{key_slot, SLOTS};
use crate::proto::resp::command::cluster::ClusterCmd;
use crate::proto::resp::errors::{self, unknown_subcommand};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// A master as clients see it: a node, or one shard of it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Master {
    node: usize,
    shard: Option<usize>,
}

fn masters(view: &View) -> Vec<Master> {
    let mut out = Vec::new();
    for (i, n) in view.nodes.iter().enumerate() {
        if n.shard_endpoints.is_empty() {
            out.push(Master {
                node: i,
                shard: None,
            });
        } else {
            out.extend((0..n.shard_endpoints.len()).map(|s| Master {
                node: i,
                shard: Some(s),
            }));
        }
    }
    out
}

fn myself(view: &View, me_shard: usize) -> Option<Master> {
    let node = view.me?;
    let shard = (!view.nodes[node].shard_endpoints.is_empty()).then_some(me_shard);
    Some(Master { node, shard })
}

fn addr(view: &View, m: Master) -> (&str, u16) {
    view.nodes[m.node].endpoint(m.shard.unwrap_or(0))
}

fn name(view: &View, m: Master) -> String {
    view.nodes[m.node].name(m.shard)
}

/// The slot ranges of each master, in slot order.
fn ranges_of(view: &View, m: Master) -> Vec<(u16, u16)> {
    view.client_runs()
        .into_iter()
        .filter(|&(_, _, n, s)| n == m.node && s == m.shard)
        .map(|(a, b, _, _)| (a, b))
        .collect()
}

/// Answer a cluster command for a connection on shard `me_shard`.
pub fn command(view: &View, me_shard: usize, cmd: ClusterCmd, a: &Args, o: &mut Out) {
    match cmd {
        ClusterCmd::Readonly | ClusterCmd::Readwrite | ClusterCmd::Asking => o.ok(),
        ClusterCmd::Cluster => cluster(view, me_shard, a, o),
        // Keyed (`cache/migrate.rs`): they never run as connection commands.
        ClusterCmd::MoveSlot | ClusterCmd::MoveIn => o.error("ERR an internal command"),
    }
}

fn cluster(view: &View, me_shard: usize, a: &Args, o: &mut Out) {
    let sub = a.get(1);
    let is = |w: &str| sub.eq_ignore_ascii_case(w.as_bytes());
    let n = a.len();
    if is("slots") && n == 2 {
        slots(view, o);
    } else if is("shards") && n == 2 {
        shards(view, o);
    } else if is("nodes") && n == 2 {
        o.bulk(nodes(view, me_shard).as_bytes());
    } else if is("info") && n == 2 {
        o.bulk(info(view).as_bytes());
    } else if is("myid") && n == 2 {
        match myself(view, me_shard) {
            Some(m) => o.bulk(name(view, m).as_bytes()),
            None => o.error(errors::CLUSTERDOWN),
        }
    } else if is("keyslot") && n == 3 {
        o.int(i64::from(key_slot(a.get(2))));
    } else if is("countkeysinslot") && n == 3 || is("getkeysinslot") && n == 4 {
        o.error("ERR CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT are not supported by pinion");
    } else if is("help") {
        let lines = [
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "SLOTS, SHARDS, NODES, INFO, MYID, KEYSLOT <key>",
            "Slots are assigned by pinion-control (cluster mode) or by the node's shards (standalone).",
        ];
        o.array(lines.len());
        for l in lines {
            o.simple(l);
        }
    } else if [
        "meet",
        "addslots",
        "addslotsrange",
        "delslots",
        "delslotsrange",
        "setslot",
        "forget",
        "replicate",
        "reset",
        "failover",
        "flushslots",
        "bumpepoch",
    ]
    .iter()
    .any(|w| is(w))
    {
        o.error(errors::CLUSTER_BY_CONTROL);
    } else {
        o.error(&unknown_subcommand(sub, "CLUSTER"));
    }
}

fn slots(view: &View, o: &mut Out) {
    let runs = view.client_runs();
    o.array(runs.len());
    for (first, last, node, shard) in runs {
        let m = Master { node, shard };
        let (host, port) = addr(view, m);
        o.array(3);
        o.int(i64::from(first));
        o.int(i64::from(last));
        o.array(3);
        o.bulk(host.as_bytes());
        o.int(i64::from(port));
        o.bulk(name(view, m).as_bytes());
    }
}

fn shards(view: &View, o: &mut Out) {
    let ms = masters(view);
    o.array(ms.len());
    for m in ms {
        let ranges = ranges_of(view, m);
        let (host, port) = addr(view, m);
        o.map(2);
        o.bulk(b"slots");
        o.array(ranges.len() * 2);
        for (a, b) in ranges {
            o.int(i64::from(a));
            o.int(i64::from(b));
        }
        o.bulk(b"nodes");
        o.array(1);
        o.map(7);
        o.bulk(b"id");
        o.bulk(name(view, m).as_bytes());
        o.bulk(b"port");
        o.int(i64::from(port));
        o.bulk(b"ip");
        o.bulk(host.as_bytes());
        o.bulk(b"endpoint");
        o.bulk(host.as_bytes());
        o.bulk(b"role");
        o.bulk(b"master");
        o.bulk(b"replication-offset");
        o.int(0);
        o.bulk(b"health");
        o.bulk(b"online");
    }
}

/// CLUSTER NODES: one line per master, Redis's format.
pub(crate) fn nodes(view: &View, me_shard: usize) -> String {
    let me = myself(view, me_shard);
    let mut text = String::new();
    for m in masters(view) {
        let (host, port) = addr(view, m);
        let flags = if Some(m) == me {
            "myself,master"
        } else {
            "master"
        };
        text.push_str(&format!(
            "{} {host}:{port}@{} {flags} - 0 0 {} connected",
            name(view, m),
            u32::from(port) + 10000,
            view.epoch
        ));
        for (a, b) in ranges_of(view, m) {
            if a == b {
                text.push_str(&format!(" {a}"));
            } else {
                text.push_str(&format!(" {a}-{b}"));
            }
        }
        text.push('\n');
    }
    text
}

fn info(view: &View) -> String {
    let assigned = view.slots_assigned();
    let ms = masters(view);
    let serving = ms
        .iter()
        .filter(|m| !ranges_of(view, **m).is_empty())
        .count();
    let state = if assigned == SLOTS { "ok" } else { "fail" };
    format!(
        "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{serving}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        ms.len(),
        view.epoch,
        view.epoch
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ViewNode;

    fn view(endpoints: bool) -> View {
        View::standalone(ViewNode {
            id: 1,
            host: "127.0.0.1".into(),
            port: 7000,
            kafka_host: "127.0.0.1".into(),
            kafka_port: 9092,
            shards: 2,
            shard_endpoints: if endpoints {
                vec![("127.0.0.1".into(), 7100), ("127.0.0.1".into(), 7101)]
            } else {
                Vec::new()
            },
        })
    }

    #[test]
    fn nodes_lists_each_shard_port_as_a_master_and_marks_myself() {
        let v = view(true);
        let text = nodes(&v, 1);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(" 127.0.0.1:7100@17100 master - 0 0 0 connected 0-8191"));
        assert!(lines[1].contains(" 127.0.0.1:7101@17101 myself,master "));
        assert!(lines[1].ends_with(" 8192-16383"));
        let one = nodes(&view(false), 1);
        assert!(one
            .trim_end()
            .ends_with("127.0.0.1:7000@17000 myself,master - 0 0 0 connected 0-16383"));
    }
}
