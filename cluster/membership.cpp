// Implements cluster membership and the cluster endpoint.
//
// Membership is one detached actor (its own thread: PostgreSQL and connects
// block). Every heartbeat it
//   1. joins (first) or heartbeats this node's row; a heartbeat that finds
//      the row no longer up with this incarnation means the others declared
//      this node down: it stops at once (exit_fenced), as nothing it writes
//      would be accepted (gm_fence) and entities live here may live
//      elsewhere now;
//   2. declares down every node whose heartbeat is older than down_after,
//      or older than two heartbeats if its middleman connection dropped
//      (a killed process: failover in about a second);
//   3. reads who is up and, if that changed, installs a new view and asks
//      every shard to pass on the entities it no longer owns;
//   4. connects to the nodes it has no connection to yet (each connect on a
//      thread of its own, so a node that does not answer stalls nothing).
#include "cluster/membership.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/entity.hpp"
#include "actors/kinds.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "cluster/view.hpp"
#include "common/ids.hpp"
#include "common/inspect_feed.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"
#include "persistence/pg.hpp"
#include "supervisors/shard.hpp"

namespace gm::cluster {
namespace {

/// Connects to the endpoint at host:port. Blocks.
caf::expected<caf::actor> connect(caf::actor_system& sys, const std::string& host, uint16_t port) {
  return sys.middleman().remote_actor(host, port);
}

using tick_atom = caf::atom_constant<caf::atom("c_tick")>;
using connected_atom = caf::atom_constant<caf::atom("c_conn")>;
using unreachable_atom = caf::atom_constant<caf::atom("c_unreach")>;
// Node → node's endpoint: an event raised there, for subscribers here.
using topic_atom = caf::atom_constant<caf::atom("c_topic")>;
// Node → seed's endpoint: who is up? → std::vector<std::string> of
// "id host:port" (cluster addresses).
using members_atom = caf::atom_constant<caf::atom("c_members")>;

using clock = std::chrono::steady_clock;

struct shared_status {
  std::atomic<bool> clustered{false};
  std::atomic<bool> joined{false};
  std::atomic<int64_t> epoch{0};
  std::atomic<int64_t> members{0};
  std::atomic<int64_t> last_beat_ms{0};  // steady clock, ms
};

shared_status& shared() {
  static shared_status s;
  return s;
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now().time_since_epoch())
    .count();
}

// ---- placement and forwarding, read by routers on every command ------------

bool place(const std::string& type, const std::string& given, caf::actor& endpoint) {
  auto& v = current_here();
  // The shard's key: a UUID with capitals names the same entity as its
  // lower-case form, so it must hash the same (rare: no copy otherwise).
  thread_local std::string lowered;
  bool upper = std::any_of(given.begin(), given.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  const std::string& id = upper && is_uuid(given) ? (lowered = lower_uuid(given)) : given;
  // Before its first view a clustered node owns nothing: whoever owns the
  // entity is not known yet (answered `unavailable`, endpoint invalid).
  if (v.up.empty()) return shared().clustered.load(std::memory_order_relaxed);
  if (v.up.size() < 2) return false;
  auto m = owner(v, type, id);
  if (!m || m->id == v.self) return false;
  endpoint = m->endpoint;
  return true;
}

std::chrono::milliseconds handoff_for(const std::string& type, const std::string& id) {
  auto& v = current_here();
  std::chrono::milliseconds wait{0};
  if (v.recent.empty() || v.handoff.count() == 0) return wait;
  auto now = clock::now();
  for (auto& c : v.recent) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.at + v.handoff - now);
    if (left <= wait) continue;
    auto prev = owner_among(c.before, type, id);
    if (prev.empty() || prev == v.self) continue;
    // Only if the node it leaves is still up: one that died is fenced.
    bool up = std::any_of(v.up.begin(), v.up.end(), [&](const member& m) { return m.id == prev; });
    if (up) wait = left;
  }
  return wait;
}

void forward_event(const std::string& topic, const std::string& event, int64_t seq,
                   const std::string& data) {
  auto& v = current_here();
  if (v.up.size() < 2) return;
  // system:inspect is each node's own (its console shows that node; node.up
  // and node.down are noted by every node that sees the change).
  if (topic.rfind("system:", 0) == 0) return;
  for (auto& m : v.up) {
    if (m.endpoint) caf::anon_send(m.endpoint, topic_atom::value, topic, event, seq, data);
  }
}

// ---- the endpoint -----------------------------------------------------------

caf::behavior endpoint_impl(caf::event_based_actor* self, std::shared_ptr<topics::store> events) {
  return {
    [self](actors::fwd_atom, const std::string& type, const std::string& id, int32_t hops,
           caf::message& msg) {
      auto rp = self->make_response_promise();
      caf::actor other;
      if (actors::owned_elsewhere(type, id, other)) {
        // The sender's view and ours differ (a change is under way): one
        // more hop to the owner ours names, never two.
        if (hops == 0 && other) {
          rp.delegate(other, actors::fwd_atom::value, type, id, int32_t{1}, std::move(msg));
        } else {
          rp.deliver(actors::fail(actors::errc::unavailable,
                                  "the cluster is changing: try again in a moment"));
        }
        return;
      }
      actors::deliver_here(self, type, id, std::move(msg), rp);
    },
    [self, events](topic_atom, const std::string& topic, std::string& name, int64_t seq,
                   std::string& data) {
      topics::publish_from_peer(self->system(), events.get(), topic, std::move(name), seq,
                                std::move(data));
    },
    [self](admin_atom, const std::string& type, caf::message& msg) {
      auto rp = self->make_response_promise();
      auto shard = actors::shard_of(self->system(), type);
      if (!shard) {
        rp.deliver(caf::make_error(caf::sec::invalid_argument));
        return;
      }
      rp.delegate(shard, std::move(msg));
    },
    [](members_atom) {
      std::vector<std::string> out;
      for (auto& m : current()->up) out.push_back(m.id + " " + m.cluster_address);
      return out;
    },
  };
}

// ---- membership ---------------------------------------------------------------

struct peer {
  int64_t incarnation = 0;
  std::string cluster_address;
  std::string http_address;
  caf::actor endpoint;
  bool connecting = false;
  bool lost = false;  // its connection dropped: declared down sooner
};

struct state {
  options opts;
  std::unique_ptr<pg::connection> conn;
  caf::actor endpoint;
  std::string cluster_address;
  bool joined = false;
  int64_t epoch = 0;
  std::map<std::string, peer> peers;  // the other nodes up, by id
  std::vector<std::string> up_ids;    // as last installed, this node included
  std::string last_error;
  static inline const char* name = "gm.cluster";

  ~state() {
    // A graceful stop (the journal has flushed: it stops before this):
    // leave, so the others take this node's entities at once.
    if (joined && conn) {
      conn->exec("WITH e AS (UPDATE cluster_epoch SET epoch = epoch + 1) "
                 "UPDATE nodes SET status = 'down', down_at = now() "
                 "WHERE node_id = $1 AND incarnation = $2 AND status = 'up'",
                 {opts.node_id, std::to_string(opts.incarnation)});
      gm::log::get("cluster")->info("left the cluster");
    }
    shared().joined = false;
    // No handles to other nodes may outlive the actor system.
    actors::set_placement(nullptr);
    topics::set_forwarder(nullptr);
    install(std::make_shared<view>());
  }
};

using membership_actor = caf::stateful_actor<state>;

std::string with_timeouts(const std::string& url, std::chrono::milliseconds tcp,
                          std::chrono::milliseconds lock) {
  // A partition must not hang the heartbeat in a read forever, nor a row
  // lock (a stalled node's batch holding its row) stop this node's own
  // heartbeat: a statement that waits longer for a lock fails, and the
  // next tick tries again.
  auto l = std::to_string(lock.count());
  bool uri = url.find("://") != std::string::npos;
  if (uri) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "tcp_user_timeout=" + std::to_string(tcp.count()) +
           "&options=-c%20lock_timeout%3D" + l;
  }
  return url + " tcp_user_timeout=" + std::to_string(tcp.count()) +
         " options='-c lock_timeout=" + l + "'";
}

bool split_address(const std::string& a, std::string& host, uint16_t& port) {
  auto colon = a.rfind(':');
  if (colon == std::string::npos) return false;
  host = a.substr(0, colon);
  try {
    auto p = std::stoi(a.substr(colon + 1));
    if (p <= 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

std::string live_counts_json() {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [type, n] : metrics::global().sum_by("gigmesh_entities", "type")) {
    j[type] = static_cast<int64_t>(n);
  }
  return j.dump();
}

void note_error(membership_actor* self, const std::string& what, const std::string& error) {
  auto& st = self->state;
  if (st.last_error != error) {
    gm::log::get("cluster")->warn("{}: {}", what, error);
    st.last_error = error;
  }
}

void connect_to(membership_actor* self, const std::string& id, peer& p) {
  std::string host;
  uint16_t port = 0;
  if (p.connecting || p.endpoint || !split_address(p.cluster_address, host, port)) return;
  p.connecting = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto inc = p.incarnation;
  self->spawn<caf::detached>([me, id, inc, host, port](caf::event_based_actor* c) {
    auto ep = connect(c->system(), host, port);
    if (ep) {
      c->send(me, connected_atom::value, id, inc, *ep);
    } else {
      c->send(me, unreachable_atom::value, id, inc, c->system().render(ep.error()));
    }
    c->quit();
  });
}

/// Installs the view of who is up now (`ids`, sorted, this node included).
void install_view(membership_actor* self, bool membership_changed) {
  auto& st = self->state;
  auto v = std::make_shared<view>();
  v->epoch = st.epoch;
  v->self = st.opts.node_id;
  std::vector<std::string> ids;
  ids.push_back(st.opts.node_id);
  for (auto& [id, p] : st.peers) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (auto& id : ids) {
    member m;
    m.id = id;
    if (id == st.opts.node_id) {
      m.incarnation = st.opts.incarnation;
      m.cluster_address = st.cluster_address;
      m.http_address = st.opts.http_address;
    } else {
      auto& p = st.peers[id];
      m.incarnation = p.incarnation;
      m.cluster_address = p.cluster_address;
      m.http_address = p.http_address;
      m.endpoint = p.endpoint;
    }
    v->up.push_back(std::move(m));
  }
  auto old = current();
  auto now = clock::now();
  v->handoff = st.opts.handoff;
  for (auto& c : old->recent) {
    if (c.at + st.opts.handoff > now) v->recent.push_back(c);
  }
  if (membership_changed) {
    view::change c;
    c.at = now;
    // The first view of a node that joins: the others held its entities.
    if (st.up_ids.empty()) {
      for (auto& id : ids) {
        if (id != st.opts.node_id) c.before.push_back(id);
      }
    } else {
      c.before = st.up_ids;
    }
    if (!c.before.empty()) v->recent.push_back(std::move(c));
  }
  st.up_ids = ids;
  install(v);
  shared().members = static_cast<int64_t>(ids.size());
  shared().epoch = st.epoch;
  if (!membership_changed) return;
  for (auto& k : actors::kinds()) {
    if (auto shard = find_registered(self->system(), shard::registry_name(k.type))) {
      self->send(shard, actors::rebalance_atom::value);
    }
  }
}

void join(membership_actor* self) {
  auto& st = self->state;
  auto r = st.conn->exec(
    "WITH e AS (UPDATE cluster_epoch SET epoch = epoch + 1 RETURNING epoch) "
    "INSERT INTO nodes (node_id, address, incarnation, started_at, last_heartbeat, status, "
    "cluster_address) VALUES ($1, $2, $3, to_timestamp($3::bigint / 1000.0), now(), 'up', $4) "
    "ON CONFLICT (node_id) DO UPDATE SET address = excluded.address, "
    "incarnation = excluded.incarnation, started_at = excluded.started_at, "
    "last_heartbeat = now(), status = 'up', cluster_address = excluded.cluster_address, "
    "down_at = NULL RETURNING (SELECT epoch FROM e)",
    {st.opts.node_id, st.opts.http_address, std::to_string(st.opts.incarnation),
     st.cluster_address});
  if (!r.ok()) {
    // Before the migrations ran, or PostgreSQL is down: next tick.
    note_error(self, "not joined yet", r.error);
    return;
  }
  st.joined = true;
  st.last_error.clear();
  st.epoch = std::stoll(r.value(0, 0, "0"));
  shared().joined = true;
  shared().last_beat_ms = steady_ms();
  st.opts.joined_incarnation->store(st.opts.incarnation);
  gm::log::get("cluster")->info("joined as {} (incarnation {}, epoch {}{}{})", st.opts.node_id,
                                st.opts.incarnation, st.epoch,
                                st.opts.clustered ? ", cluster address " : "",
                                st.cluster_address);
}

/// Heartbeat; returns false if PostgreSQL did not answer.
bool heartbeat(membership_actor* self) {
  auto& st = self->state;
  auto r = st.conn->exec(
    "UPDATE nodes SET last_heartbeat = now(), live = $3::jsonb "
    "WHERE node_id = $1 AND incarnation = $2 AND status = 'up'",
    {st.opts.node_id, std::to_string(st.opts.incarnation), live_counts_json()});
  if (!r.ok()) {
    note_error(self, "heartbeat failed", r.error);
    return false;
  }
  if (r.affected == 0) {
    exit_fenced("the cluster declared node " + st.opts.node_id + " (incarnation " +
                std::to_string(st.opts.incarnation) + ") down");
  }
  shared().last_beat_ms = steady_ms();
  return true;
}

/// Declares down the nodes that stopped heartbeating, then reads who is up.
void survey(membership_actor* self) {
  auto& st = self->state;
  auto log = gm::log::get("cluster");
  std::string lost = "{";
  for (auto& [id, p] : st.peers) {
    if (!p.lost) continue;
    if (lost.size() > 1) lost += ',';
    lost += "\"" + id + "\"";
  }
  lost += "}";
  auto d = st.conn->exec(
    "WITH d AS (UPDATE nodes SET status = 'down', down_at = now() "
    "  WHERE status = 'up' AND node_id <> $1 AND ("
    "    last_heartbeat < now() - $2::bigint * interval '1 millisecond' OR "
    "    (node_id = ANY($3::text[]) AND "
    "     last_heartbeat < now() - $4::bigint * interval '1 millisecond')) "
    "  RETURNING node_id, incarnation), "
    "e AS (UPDATE cluster_epoch SET epoch = epoch + 1 WHERE EXISTS (SELECT 1 FROM d)) "
    "SELECT node_id, incarnation FROM d",
    {st.opts.node_id, std::to_string(st.opts.down_after.count()), lost,
     std::to_string(std::max(2 * st.opts.heartbeat.count(), st.opts.down_after.count() / 2))});
  if (!d.ok()) {
    note_error(self, "could not check the other nodes", d.error);
    return;
  }
  for (size_t i = 0; i < d.rows.size(); ++i) {
    log->warn("declared node {} (incarnation {}) down: no heartbeat", d.value(i, 0),
              d.value(i, 1));
  }
  auto r = st.conn->exec(
    "SELECT n.node_id, n.incarnation, n.cluster_address, n.address, e.epoch "
    "FROM nodes n, cluster_epoch e WHERE n.status = 'up' AND n.cluster_address <> '' "
    "ORDER BY n.node_id");
  if (!r.ok()) {
    note_error(self, "could not read the members", r.error);
    return;
  }
  st.epoch = r.rows.empty() ? st.epoch : std::stoll(r.value(0, 4, "0"));
  std::map<std::string, peer> now;
  bool self_up = false;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    auto id = r.value(i, 0);
    if (id == st.opts.node_id) {
      self_up = true;
      continue;
    }
    peer p;
    p.incarnation = std::stoll(r.value(i, 1, "0"));
    p.cluster_address = r.value(i, 2);
    p.http_address = r.value(i, 3);
    auto old = st.peers.find(id);
    if (old != st.peers.end() && old->second.incarnation == p.incarnation) {
      p.endpoint = old->second.endpoint;
      p.connecting = old->second.connecting;
      p.lost = old->second.lost;
    }
    now.emplace(id, std::move(p));
  }
  if (!self_up) return;  // the heartbeat stops the node if it was declared down
  bool changed = now.size() != st.peers.size() ||
                 !std::equal(now.begin(), now.end(), st.peers.begin(),
                             [](auto& a, auto& b) {
                               return a.first == b.first &&
                                      a.second.incarnation == b.second.incarnation;
                             });
  if (changed) {
    for (auto& [id, p] : now) {
      if (!st.peers.count(id)) {
        log->info("node {} is up ({})", id, p.cluster_address);
        inspect::note({"node.up", {}, id, 0, p.http_address, 0});
      }
    }
    for (auto& [id, p] : st.peers) {
      if (now.count(id)) continue;
      log->info("node {} is down (left the view)", id);
      inspect::note({"node.down", {}, id, 0, "declared down", 0});
    }
  }
  st.peers = std::move(now);
  for (auto& [id, p] : st.peers) connect_to(self, id, p);
  if (changed || st.up_ids.empty()) install_view(self, true);
}

void tick(membership_actor* self) {
  auto& st = self->state;
  if (!st.joined) {
    join(self);
    if (st.joined && st.opts.clustered) survey(self);  // a view before serving
  } else if (heartbeat(self) && st.opts.clustered) {
    survey(self);
  }
  auto every = st.joined ? st.opts.heartbeat : std::chrono::milliseconds{100};
  self->delayed_send(self, every, tick_atom::value);
}

void ask_seeds(membership_actor* self) {
  // Seeds only speed up the first connections: who is up, and so who owns
  // what, comes from PostgreSQL (a node can join through the table alone).
  for (auto& seed : self->state.opts.seeds) {
    std::string host;
    uint16_t port = 0;
    if (!split_address(seed, host, port)) {
      gm::log::get("cluster")->warn("seed '{}' is not host:port: ignored", seed);
      continue;
    }
    self->spawn<caf::detached>([host, port, seed](caf::event_based_actor* c) {
      auto ep = connect(c->system(), host, port);
      if (!ep) {
        gm::log::get("cluster")->warn("seed {} did not answer: {}", seed,
                                      c->system().render(ep.error()));
        c->quit();
        return;
      }
      c->request(*ep, std::chrono::seconds{5}, members_atom::value)
        .then(
          [c, seed](const std::vector<std::string>& members) {
            gm::log::get("cluster")->info("seed {} knows {} nodes", seed, members.size());
            c->quit();
          },
          [c](caf::error&) { c->quit(); });
    });
  }
}

caf::behavior membership_impl(membership_actor* self, options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  if (!st.opts.joined_incarnation) st.opts.joined_incarnation = std::make_shared<std::atomic<int64_t>>(0);
  st.conn = std::make_unique<pg::connection>(
    with_timeouts(st.opts.pg_url, st.opts.down_after, st.opts.heartbeat), st.opts.connect_timeout);
  shared().clustered = st.opts.clustered;
  auto log = gm::log::get("cluster");
  if (st.opts.clustered) {
    st.endpoint = self->spawn<caf::linked>(endpoint_impl, st.opts.events);
    auto port = self->system().middleman().publish(st.endpoint, st.opts.port,
                                                   st.opts.host.c_str(), true);
    if (!port) {
      log->critical("cannot listen for the cluster on {}:{}: {}", st.opts.host, st.opts.port,
                    self->system().render(port.error()));
      self->quit(caf::make_error(caf::sec::cannot_open_port));
      return {};
    }
    st.cluster_address = st.opts.host + ":" + std::to_string(*port);
    log->info("cluster endpoint on {}", st.cluster_address);
    actors::set_placement(place);
    actors::set_handoff(handoff_for);
    topics::set_forwarder(forward_event);
    ask_seeds(self);
  }
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [id, p] : st.peers) {
      if (p.endpoint && p.endpoint.address() == dm.source) {
        gm::log::get("cluster")->warn("lost the connection to node {}: {}", id,
                                      self->system().render(dm.reason));
        p.endpoint = nullptr;
        p.lost = true;
        install_view(self, false);
        return;
      }
    }
  });
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) { tick(self); },
    [self](connected_atom, const std::string& id, int64_t inc, caf::actor& ep) {
      auto& st = self->state;
      auto it = st.peers.find(id);
      if (it == st.peers.end() || it->second.incarnation != inc) return;  // gone meanwhile
      it->second.connecting = false;
      it->second.lost = false;
      it->second.endpoint = ep;
      self->monitor(ep);
      gm::log::get("cluster")->info("connected to node {} ({})", id, it->second.cluster_address);
      install_view(self, false);
    },
    [self](unreachable_atom, const std::string& id, int64_t inc, const std::string& why) {
      auto& st = self->state;
      auto it = st.peers.find(id);
      if (it == st.peers.end() || it->second.incarnation != inc) return;
      it->second.connecting = false;
      it->second.lost = true;
      note_error(self, "cannot reach node " + id, why);
    },
  };
}

} // namespace

void announce(caf::actor_system_config& cfg) {
  cfg.add_message_type<actors::entity_reply>("gm_reply")
    .add_message_type<actors::entity_info>("gm_entity_info")
    .add_message_type<std::vector<actors::entity_info>>("gm_entity_infos");
}

caf::actor spawn_membership(caf::local_actor* parent, options opts) {
  return parent->spawn<caf::detached>(membership_impl, std::move(opts));
}

std::vector<node_handle> admin_nodes(const std::string& self_id) {
  std::vector<node_handle> out;
  auto v = current();
  if (v->up.empty()) {
    out.push_back({self_id, {}});
    return out;
  }
  for (auto& m : v->up) {
    if (m.id == v->self) {
      out.push_back({m.id, {}});
    } else if (m.endpoint) {
      out.push_back({m.id, m.endpoint});
    }
  }
  return out;
}

status current_status() {
  auto& s = shared();
  status out;
  out.clustered = s.clustered;
  out.joined = s.joined;
  out.epoch = s.epoch;
  out.members = s.members;
  auto beat = s.last_beat_ms.load();
  out.heartbeat_ms_ago = beat == 0 ? -1 : steady_ms() - beat;
  return out;
}

void exit_fenced(const std::string& why) {
  gm::log::get("cluster")->critical(
    "{}: stopping now; nothing unacknowledged is kept and nothing more is written. Start the "
    "node again to rejoin with a new incarnation.", why);
  gm::log::get("cluster")->flush();
  _exit(3);
}

} // namespace gm::cluster
