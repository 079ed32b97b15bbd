// Implements the entity shard. One slot per live entity:
//
//   (none) ──first message──▶ active ──idle / gone / admin──▶ passivating
//     ▲                         │  ▲                              │
//     │                  crash  │  └── messages held meanwhile ◀──┤ down
//     │        (within intensity: restart at once)                │
//     └────────────────────────── nothing held ◀──────────────────┘
//
// Entities are watched, not linked: each carries a small attachable that
// tells the shard which slot it held when it exits (so the shard needs no
// address-to-id map), and the shard stops its entities itself when it stops.
#include "supervisors/shard.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/router.hpp"
#include "common/ids.hpp"
#include "common/inspect_feed.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"

namespace gm::shard {
namespace {

using namespace actors;
using sweep_atom = caf::atom_constant<caf::atom("sh_sweep")>;
// Entity attachable → shard: `(down_atom, slot key address, entity, reason)`.
using down_atom = caf::atom_constant<caf::atom("sh_down")>;
// Shard → itself: the wait for an entity's previous owner is over.
using handoff_atom = caf::atom_constant<caf::atom("sh_handoff")>;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct held {
  caf::message msg;
  caf::response_promise rp;
};

/// Entities of shards that stopped, until each has exited: a shard that
/// starts again (a restart) must not activate a second live copy of one
/// of them, which would write the same rows beside it. Empty in steady
/// state; a shard's stop fills it, the entities' exits empty it.
class stopping_entities {
public:
  void add(const std::string& key, const caf::actor_addr& who) {
    std::lock_guard<std::mutex> lock{m_};
    by_key_[key] = who;
    count_.store(by_key_.size(), std::memory_order_release);
  }
  /// Returns the copy of `key` still alive, if any.
  caf::actor find(const std::string& key) {
    if (count_.load(std::memory_order_acquire) == 0) return {};
    std::lock_guard<std::mutex> lock{m_};
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return {};
    auto alive = caf::actor_cast<caf::actor>(it->second);
    if (!alive) by_key_.erase(it);
    count_.store(by_key_.size(), std::memory_order_release);
    return alive;
  }
  void exited(const caf::actor_addr& who) {
    if (count_.load(std::memory_order_acquire) == 0) return;
    std::lock_guard<std::mutex> lock{m_};
    for (auto it = by_key_.begin(); it != by_key_.end(); ++it) {
      if (it->second == who) {
        by_key_.erase(it);
        break;
      }
    }
    count_.store(by_key_.size(), std::memory_order_release);
  }

private:
  std::mutex m_;
  std::unordered_map<std::string, caf::actor_addr> by_key_;
  std::atomic<size_t> count_{0};
};

stopping_entities& stopping() {
  static stopping_entities s;
  return s;
}

std::string stopping_key(const std::string& type, const std::string& id) {
  return type + '\x1f' + id;
}

// What only a slot in trouble needs: messages held while its entity
// passivates, and the times of its recent crashes.
struct trouble {
  std::vector<held> held_msgs;
  std::vector<int64_t> crash_times;
};

// One per live entity, so it stays small.
struct slot {
  caf::actor handle;
  int64_t last_used_ms = 0;
  int32_t restarts = 0;
  bool passivating = false;
  bool loaded = false;  // the entity said it loaded: it exists
  std::unique_ptr<trouble> t;

  bool holding() const { return t && !t->held_msgs.empty(); }
  trouble& more() {
    if (!t) t = std::make_unique<trouble>();
    return *t;
  }
};

struct state {
  entity_kind kind;
  options opts;
  // A node-based map: keys stay where they are, so an entity's attachable
  // can name its slot by the key's address.
  std::unordered_map<std::string, slot> slots;
  metrics::gauge* live = nullptr;
  metrics::counter* restarts = nullptr;
  metrics::counter* activations = nullptr;
  // For kind.annotate: has entity `id` loaded (so it exists)?
  std::function<bool(const std::string&)> is_loaded = [this](const std::string& id) {
    auto it = slots.find(id);
    return it != slots.end() && it->second.loaded;
  };
  static inline const char* name = "gm.shard";

  // Slots waiting for an old copy of their entity to exit (see
  // stopping_entities), by that copy's address.
  std::unordered_map<caf::actor_addr, std::string> waiting_for;

  ~state() {
    // Entities never outlive their shard, and a restarted shard activates
    // none of them again until it has exited (activate()).
    for (auto& kv : slots) {
      if (!kv.second.handle) continue;
      stopping().add(stopping_key(kind.type, kv.first), kv.second.handle.address());
      caf::anon_send_exit(kv.second.handle, caf::exit_reason::user_shutdown);
    }
  }
};

using shard_actor = caf::stateful_actor<state>;

void activate(shard_actor* self, const std::string& key, slot& s) {
  auto& st = self->state;
  if (auto old = stopping().find(stopping_key(st.kind.type, key))) {
    // A copy from this kind's previous shard is still stopping: hold what
    // comes for the entity until it has exited, then activate.
    s.handle = nullptr;
    s.passivating = true;
    st.waiting_for.emplace(old.address(), key);
    self->monitor(old);
    return;
  }
  auto wait = handoff_wait(st.kind.type, key);
  if (wait.count() > 0) {
    // The cluster changed and the node that owned the entity is still up:
    // it passivates the entity (flushing its writes) meanwhile. What comes
    // for the entity is held until then.
    s.handle = nullptr;
    s.passivating = true;
    self->delayed_send(self, wait, handoff_atom::value, key);
    return;
  }
  s.handle = st.kind.spawn(self, key);
  const std::string* slot_key = &key;
  s.handle->attach_functor([shard = self->address(), slot_key,
                            who = s.handle.address()](const caf::error& reason) {
    stopping().exited(who);
    if (auto sh = caf::actor_cast<caf::actor>(shard)) {
      caf::anon_send(sh, down_atom::value, reinterpret_cast<uintptr_t>(slot_key), who, reason);
    }
  });
  s.passivating = false;
  s.loaded = false;
  s.last_used_ms = now_ms();
  st.activations->inc();
  inspect::note({"actor.activated", st.kind.type, key, s.restarts, {}, 0});
}

/// Returns the key for `id`: a UUID written with capitals names the same
/// entity as its lower-case form (PostgreSQL compares them equal), so it
/// must reach the same actor, not activate a second copy beside it. Rare,
/// so the common case is not copied; `buf` holds the lower-cased form.
const std::string& canonical_id(const std::string& id, std::string& buf) {
  bool upper = std::any_of(id.begin(), id.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!upper || !is_uuid(id)) return id;
  buf = lower_uuid(id);
  return buf;
}

slot& slot_for(shard_actor* self, const std::string& id) {
  auto& st = self->state;
  auto it = st.slots.find(id);
  if (it != st.slots.end()) return it->second;
  it = st.slots.emplace(id, slot{}).first;
  activate(self, it->first, it->second);
  st.live->set(static_cast<int64_t>(st.slots.size()));
  return it->second;
}

void passivate(shard_actor* self, slot& s) {
  if (s.passivating || !s.handle) return;
  s.passivating = true;
  self->send(s.handle, passivate_atom::value);
}

void activate_and_deliver(shard_actor* self, const std::string& key, slot& s);

/// Entity `who`, which held the slot at `key`, exited with `reason`.
void on_down(shard_actor* self, const std::string& key, const caf::actor_addr& who,
             const caf::error& reason) {
  auto& st = self->state;
  auto log = gm::log::get("shard");
  auto it = st.slots.find(key);
  if (it == st.slots.end() || !it->second.handle || it->second.handle.address() != who) return;
  auto& s = it->second;
  s.handle = nullptr;
  bool normal = !reason || reason == caf::exit_reason::normal ||
                reason == caf::exit_reason::user_shutdown;
  if (normal && s.passivating && !s.holding()) {
    inspect::note({"actor.passivated", st.kind.type, key, s.restarts, {}, 0});
    st.slots.erase(it);
    st.live->set(static_cast<int64_t>(st.slots.size()));
    return;
  }
  if (!normal) {
    auto now = now_ms();
    auto& times = s.more().crash_times;
    times.push_back(now);
    auto cutoff = now - st.opts.period.count();
    times.erase(std::remove_if(times.begin(), times.end(), [cutoff](int64_t t) { return t < cutoff; }),
                times.end());
    ++s.restarts;
    st.restarts->inc();
    inspect::note({"actor.crashed", st.kind.type, key, s.restarts, caf::to_string(reason), 0});
    if (static_cast<int>(times.size()) > st.opts.intensity && !s.holding()) {
      log->error("{} {} crashed {} times within {} ms ({}): left passive until its next message",
                 st.kind.type, key, times.size(), st.opts.period.count(),
                 caf::to_string(reason));
      st.slots.erase(it);
      st.live->set(static_cast<int64_t>(st.slots.size()));
      return;
    }
    log->warn("{} {} crashed ({}): restarting it", st.kind.type, key, caf::to_string(reason));
    inspect::note({"actor.restarted", st.kind.type, key, s.restarts, caf::to_string(reason), 0});
  }
  // Restart after a crash, or activate again for messages held meanwhile.
  activate_and_deliver(self, key, s);
}

/// Activates the entity of slot `s` and hands it what was held for it. An
/// entity another node owns now (the cluster changed while it stopped) is
/// not activated: what was held for it goes to its owner.
void activate_and_deliver(shard_actor* self, const std::string& key, slot& s) {
  auto& st = self->state;
  caf::actor owner;
  if (owned_elsewhere(st.kind.type, key, owner)) {
    if (s.holding()) {
      for (auto& h : s.t->held_msgs) {
        if (owner) {
          h.rp.delegate(owner, fwd_atom::value, st.kind.type, key, int32_t{1}, std::move(h.msg));
        } else {
          h.rp.deliver(fail(errc::unavailable, "the node that owns this " + st.kind.type +
                                                 " is not reachable right now"));
        }
      }
    }
    std::string k = key;  // `key` may be the slot's own key
    st.slots.erase(k);
    st.live->set(static_cast<int64_t>(st.slots.size()));
    return;
  }
  activate(self, key, s);
  if (!s.handle) return;  // still waiting for an old copy
  if (s.holding()) {
    auto held_msgs = std::move(s.t->held_msgs);
    s.t->held_msgs.clear();
    for (auto& h : held_msgs) h.rp.delegate(s.handle, std::move(h.msg));
  }
}

/// Rows of the console's actor list: the `limit` live entities with the
/// highest `sort` (mailbox, messages, restarts, idle), highest first. Idle
/// time and restarts are the shard's own; version, mailbox and messages
/// come from the entities (`stats_atom`, at high priority). Sorting by
/// mailbox or messages asks the `max_asked` entities used most recently
/// (a mailbox fills only while messages arrive; asking 100,000 entities
/// took the shard longer than a request may wait), else only the rows
/// returned.
constexpr size_t max_asked = 2000;

caf::result<std::vector<entity_info>> sorted_list(shard_actor* self, int64_t limit,
                                                  const std::string& sort) {
  auto& st = self->state;
  auto now = now_ms();
  std::vector<entity_info> rows;
  std::vector<caf::actor> handles;
  rows.reserve(st.slots.size());
  for (auto& kv : st.slots) {
    entity_info i;
    i.type = st.kind.type;
    i.id = kv.first;
    i.node = st.opts.node_id;
    i.status = kv.second.passivating ? "passivating" : "active";
    i.restarts = kv.second.restarts;
    i.idle_ms = now - kv.second.last_used_ms;
    rows.push_back(std::move(i));
    handles.push_back(kv.second.handle);
  }
  // By value: the rows are ranked again when the entities have answered,
  // after this message (and its string) is gone.
  auto key = [by = sort](const entity_info& i) {
    if (by == "messages") return i.messages;
    if (by == "restarts") return i.restarts;
    if (by == "idle") return i.idle_ms;
    return i.mailbox;
  };
  auto top = [limit, key](std::vector<entity_info>& v) {
    auto n = std::min<size_t>(v.size(), static_cast<size_t>(std::max<int64_t>(0, limit)));
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(),
                      [&key](const entity_info& a, const entity_info& b) {
                        auto ka = key(a), kb = key(b);
                        return ka != kb ? ka > kb : a.id < b.id;
                      });
    v.resize(n);
  };
  bool ask_all = sort == "mailbox" || sort == "messages" || sort.empty();
  std::vector<size_t> ask;
  if (ask_all) {
    std::vector<size_t> recent(rows.size());
    for (size_t i = 0; i < recent.size(); ++i) recent[i] = i;
    if (recent.size() > max_asked) {
      std::nth_element(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(max_asked),
                       recent.end(), [&rows](size_t a, size_t b) {
                         return rows[a].idle_ms < rows[b].idle_ms;
                       });
      recent.resize(max_asked);
    }
    ask = std::move(recent);
  } else {
    // Sort by the shard's own figures first, then ask only those rows.
    std::vector<size_t> order(rows.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto n = std::min<size_t>(order.size(), static_cast<size_t>(std::max<int64_t>(0, limit)));
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                      [&](size_t a, size_t b) {
                        auto ka = key(rows[a]), kb = key(rows[b]);
                        return ka != kb ? ka > kb : rows[a].id < rows[b].id;
                      });
    order.resize(n);
    ask = std::move(order);
  }
  auto out = std::make_shared<std::vector<entity_info>>(std::move(rows));
  auto asked = std::make_shared<std::vector<size_t>>(ask);
  auto rp = self->make_response_promise<std::vector<entity_info>>();
  auto left = std::make_shared<size_t>(ask.size());
  auto finish = [out, asked, rp, top]() mutable {
    std::vector<entity_info> v;
    for (auto i : *asked) v.push_back((*out)[i]);
    top(v);
    rp.deliver(std::move(v));
  };
  if (ask.empty()) {
    finish();
    return rp;
  }
  for (auto i : ask) {
    auto done = [left, finish]() mutable {
      if (--*left == 0) finish();
    };
    if (!handles[i]) {
      done();
      continue;
    }
    self->request<caf::message_priority::high>(handles[i], caf::duration{std::chrono::seconds{2}},
                                               stats_atom::value)
      .then(
        [out, i, done](entity_info& info) mutable {
          auto& r = (*out)[i];
          r.version = info.version;
          r.mailbox = info.mailbox;
          r.messages = info.messages;
          if (r.status == "active") r.status = info.status;
          done();
        },
        [out, i, done](caf::error&) mutable {
          (*out)[i].status = "unresponsive";
          done();
        });
  }
  return rp;
}

caf::behavior shard_impl(shard_actor* self, entity_kind kind, options opts) {
  auto& st = self->state;
  st.kind = std::move(kind);
  st.opts = opts;
  auto& reg = metrics::global();
  metrics::labels l{{"type", st.kind.type}};
  st.live = &reg.get_gauge("gigmesh_entities", "live (activated) entities", l);
  st.restarts = &reg.get_counter("gigmesh_entity_restarts_total", "entity restarts after a crash", l);
  st.activations = &reg.get_counter("gigmesh_entity_activations_total", "entity activations", l);
  register_as(self, registry_name(st.kind.type));
  // An old copy of an entity (from this kind's previous shard) has exited:
  // its slot may activate now.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto w = st.waiting_for.find(dm.source);
    if (w == st.waiting_for.end()) return;
    auto key = w->second;
    st.waiting_for.erase(w);
    auto it = st.slots.find(key);
    if (it == st.slots.end()) return;
    it->second.passivating = false;
    activate_and_deliver(self, it->first, it->second);
  });
  if (st.kind.direct) allow_direct(st.kind.type);
  auto sweep_every = std::max<int64_t>(50, opts.idle_timeout.count() / 4);
  self->delayed_send(self, std::chrono::milliseconds{sweep_every}, sweep_atom::value);
  if (st.kind.on_start) st.kind.on_start(self);
  gm::log::get("shard")->info("{} shard started: idle timeout {} ms", st.kind.type,
                              opts.idle_timeout.count());
  return {
    [self](fwd_atom, const std::string& given, caf::message& msg) {
      std::string lowered;
      const auto& id = canonical_id(given, lowered);
      auto& st = self->state;
      caf::actor owner;
      if (st.slots.count(id) == 0 && owned_elsewhere(st.kind.type, id, owner)) {
        // Routed here before this node's view changed (a direct command
        // refused by a passivating entity, or one queued behind the
        // rebalance): never activate another node's entity here.
        auto rp = self->make_response_promise();
        if (owner) {
          rp.delegate(owner, fwd_atom::value, st.kind.type, id, int32_t{1}, std::move(msg));
        } else {
          rp.deliver(fail(errc::unavailable, "the node that owns this " + st.kind.type +
                                               " is not reachable right now"));
        }
        return;
      }
      auto& s = slot_for(self, id);
      s.last_used_ms = now_ms();
      auto rp = self->make_response_promise();
      if (s.passivating) {
        s.more().held_msgs.push_back({std::move(msg), rp});
        return;
      }
      if (s.loaded && msg.match_elements<exists_atom>()) {
        rp.deliver(success("", 0));  // a loaded entity exists: no hop to it
        return;
      }
      if (self->state.kind.annotate) self->state.kind.annotate(msg, self->state.is_loaded);
      rp.delegate(s.handle, std::move(msg));
    },
    [self](loaded_atom, const std::string& id) {
      auto it = self->state.slots.find(id);
      // Only from the entity that holds the slot now (not an old one).
      if (it != self->state.slots.end() && it->second.handle &&
          it->second.handle.address() == self->current_sender()) {
        it->second.loaded = true;
      }
    },
    [self](deleted_atom, const std::string& id) {
      auto it = self->state.slots.find(id);
      if (it != self->state.slots.end() && it->second.handle &&
          it->second.handle.address() == self->current_sender()) {
        it->second.loaded = false;
      }
    },
    [self](touch_atom, const std::string& id) {
      // Commands that went straight to the entity: it is not idle.
      auto it = self->state.slots.find(id);
      if (it != self->state.slots.end() && it->second.handle &&
          it->second.handle.address() == self->current_sender()) {
        it->second.last_used_ms = now_ms();
      }
    },
    [self](down_atom, uintptr_t key, const caf::actor_addr& who, const caf::error& reason) {
      // The key's slot lives until this very message is handled: slots are
      // erased only here, after their entity has exited.
      on_down(self, *reinterpret_cast<const std::string*>(key), who, reason);
    },
    [self](handoff_atom, const std::string& key) {
      auto it = self->state.slots.find(key);
      if (it == self->state.slots.end() || it->second.handle || !it->second.passivating) return;
      it->second.passivating = false;
      activate_and_deliver(self, it->first, it->second);
    },
    [self](rebalance_atom) {
      // The cluster changed: entities another node owns now stop here
      // (flushing their writes) and activate there at their next message.
      auto& st = self->state;
      int n = 0;
      for (auto& kv : st.slots) {
        if (kv.second.handle && !kv.second.passivating && !owned_here(st.kind.type, kv.first)) {
          passivate(self, kv.second);
          ++n;
        }
      }
      if (n > 0) gm::log::get("shard")->info("{}: {} entities moved to other nodes", st.kind.type, n);
    },
    [self](gone_atom, const std::string& id) {
      auto it = self->state.slots.find(id);
      if (it != self->state.slots.end()) {
        passivate(self, it->second);
      }
    },
    [self](sweep_atom) {
      auto& st = self->state;
      auto cutoff = now_ms() - st.opts.idle_timeout.count();
      for (auto& kv : st.slots) {
        if (!kv.second.passivating && kv.second.last_used_ms < cutoff) passivate(self, kv.second);
      }
      auto every = std::max<int64_t>(50, st.opts.idle_timeout.count() / 4);
      self->delayed_send(self, std::chrono::milliseconds{every}, sweep_atom::value);
    },
    [self](passivate_atom, const std::string& given) {
      std::string lowered;
      const auto& id = canonical_id(given, lowered);
      auto it = self->state.slots.find(id);
      if (it == self->state.slots.end()) return false;
      passivate(self, it->second);
      return true;
    },
    [self](kill_atom, const std::string& given) {
      std::string lowered;
      const auto& id = canonical_id(given, lowered);
      auto it = self->state.slots.find(id);
      if (it == self->state.slots.end() || !it->second.handle) return false;
      gm::log::get("shard")->warn("{} {} killed on request", self->state.kind.type, id);
      inspect::note({"actor.killed", self->state.kind.type, id, it->second.restarts, "on request", 0});
      self->send_exit(it->second.handle, caf::exit_reason::kill);
      return true;
    },
    [self](count_atom) { return static_cast<int64_t>(self->state.slots.size()); },
    [self](inspect_atom, const std::string& given) -> caf::result<entity_info> {
      auto& st = self->state;
      std::string lowered;
      auto it = st.slots.find(canonical_id(given, lowered));
      if (it == st.slots.end() || !it->second.handle) {
        return caf::make_error(caf::sec::invalid_argument);
      }
      auto rp = self->make_response_promise<entity_info>();
      auto restarts = it->second.restarts;
      auto idle = now_ms() - it->second.last_used_ms;
      auto type = st.kind.type;
      auto node = st.opts.node_id;
      self->request<caf::message_priority::high>(it->second.handle, caf::duration{std::chrono::seconds{2}},
                                                 inspect_atom::value)
        .then(
          [rp, restarts, idle, type, node](entity_info& info) mutable {
            info.type = type;
            info.node = node;
            info.restarts = restarts;
            info.idle_ms = idle;
            rp.deliver(std::move(info));
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](list_atom, int64_t limit, const std::string& sort)
      -> caf::result<std::vector<entity_info>> {
      return sorted_list(self, limit, sort);
    },
    [self](list_atom, int64_t limit) -> caf::result<std::vector<entity_info>> {
      auto& st = self->state;
      auto rp = self->make_response_promise<std::vector<entity_info>>();
      auto out = std::make_shared<std::vector<entity_info>>();
      auto left = std::make_shared<int64_t>(0);
      auto now = now_ms();
      std::vector<std::pair<caf::actor, entity_info>> asks;
      for (auto& kv : st.slots) {
        if (static_cast<int64_t>(asks.size()) >= limit) break;
        entity_info base;
        base.type = st.kind.type;
        base.id = kv.first;
        base.node = st.opts.node_id;
        base.status = kv.second.passivating ? "passivating" : "active";
        base.restarts = kv.second.restarts;
        base.idle_ms = now - kv.second.last_used_ms;
        if (kv.second.handle) {
          asks.emplace_back(kv.second.handle, std::move(base));
        } else {
          out->push_back(std::move(base));
        }
      }
      *left = static_cast<int64_t>(asks.size());
      if (*left == 0) {
        rp.deliver(std::move(*out));
        return rp;
      }
      for (auto& a : asks) {
        auto base = a.second;
        auto finish = [rp, out, left]() mutable {
          if (--*left == 0) rp.deliver(std::move(*out));
        };
        self->request<caf::message_priority::high>(a.first, caf::duration{std::chrono::seconds{2}},
                                                   inspect_atom::value)
          .then(
            [out, base, finish](entity_info& info) mutable {
              base.version = info.version;
              base.mailbox = info.mailbox;
              if (base.status == "active") base.status = info.status;
              out->push_back(std::move(base));
              finish();
            },
            [out, base, finish](caf::error&) mutable {
              base.status = "unresponsive";
              out->push_back(std::move(base));
              finish();
            });
      }
      return rp;
    },
  };
}

} // namespace

std::string registry_name(const std::string& type) {
  return "shard:" + type;
}

caf::actor spawn_shard(caf::local_actor* parent, actors::entity_kind kind, options opts) {
  return parent->spawn(shard_impl, std::move(kind), std::move(opts));
}

} // namespace gm::shard
