// Implements the router over the local shards.
#include "actors/router.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "common/metrics.hpp"
#include "common/registry.hpp"

namespace gm::actors {


caf::actor shard_of(caf::actor_system& sys, const std::string& type) {
  // The shard's name (shard.cpp's registry_name): a string, since kinds'
  // names may be longer than a CAF atom.
  return find_registered(sys, "shard:" + type);
}

namespace {

std::atomic<placement_fn> placement{nullptr};
std::atomic<handoff_fn> handoff{nullptr};

/// Returns true if another node owns `ref` (its endpoint in `endpoint`).
bool remote(const entity_ref& ref, caf::actor& endpoint) {
  auto f = placement.load(std::memory_order_acquire);
  return f != nullptr && f(ref.type, ref.id, endpoint);
}

metrics::counter& remote_messages() {
  static auto& c = metrics::global().get_counter(
    "gigmesh_cluster_forwarded_total", "commands sent to entities on other nodes");
  return c;
}

/// A bound for asks to another node: a request to a node that died times
/// out rather than fails (CAF 0.17), so it never waits unbounded.
std::chrono::milliseconds remote_timeout(caf::infinite_t) { return std::chrono::seconds{30}; }
std::chrono::milliseconds remote_timeout(std::chrono::milliseconds t) { return t; }
template <class Rep, class Period>
std::chrono::milliseconds remote_timeout(std::chrono::duration<Rep, Period> t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t);
}

entity_reply unreachable(const entity_ref& ref) {
  return fail(errc::unavailable,
              "the node that owns this " + ref.type + " is not reachable right now");
}

} // namespace

void set_placement(placement_fn f) { placement.store(f, std::memory_order_release); }
void set_handoff(handoff_fn f) { handoff.store(f, std::memory_order_release); }

bool owned_elsewhere(const std::string& type, const std::string& id, caf::actor& endpoint) {
  auto f = placement.load(std::memory_order_acquire);
  return f != nullptr && f(type, id, endpoint);
}

bool owned_here(const std::string& type, const std::string& id) {
  caf::actor ignored;
  auto f = placement.load(std::memory_order_acquire);
  return f == nullptr || !f(type, id, ignored);
}

std::chrono::milliseconds handoff_wait(const std::string& type, const std::string& id) {
  auto f = handoff.load(std::memory_order_acquire);
  return f ? f(type, id) : std::chrono::milliseconds{0};
}

namespace {

// Kinds whose entities take commands straight from routers. Written when
// their shards start; read when a thread learns (again) where a kind's
// shard is, not per command.
std::mutex direct_mx;
std::vector<std::string> direct_types;

bool is_direct(const std::string& type) {
  std::lock_guard<std::mutex> lock{direct_mx};
  return std::find(direct_types.begin(), direct_types.end(), type) != direct_types.end();
}

/// What one thread knows of the way to one kind's entities.
struct kind_route {
  caf::actor_system* sys = nullptr;
  std::string type;
  caf::actor_addr shard;  // weak: a restarted shard is a new actor
  bool direct = false;
  /// Entities of a direct kind that answered a command routed from this
  /// thread with success: id → the entity, weakly (it may have quit).
  std::unordered_map<std::string, caf::actor_addr> live;
  /// Commands sent to entities of this kind (/metrics, the console).
  metrics::counter* messages = nullptr;
};

metrics::counter& messages_of(const std::string& type) {
  return metrics::global().get_counter("gigmesh_entity_messages_total",
                                       "commands sent to entities, by kind (asks and tells)",
                                       {{"type", type}});
}

/// Bounds each thread's `live` map (cleared when full): a weak address
/// keeps a quit entity's memory until it is dropped.
constexpr size_t max_live = 4096;

// Per thread, so no locks: these are hints. An actor may run on another
// thread next time and find nothing there; the shard is the way then.
thread_local std::vector<kind_route> routes;

kind_route* find_route(caf::actor_system& sys, const std::string& type) {
  for (auto& r : routes) {
    if (r.sys == &sys && r.type == type) return &r;
  }
  return nullptr;
}

/// Returns this thread's route to entities of `type` and their shard in
/// `shard`, or null if there is no shard.
kind_route* route_of(caf::actor_system& sys, const std::string& type, caf::actor& shard) {
  auto r = find_route(sys, type);
  if (r) {
    shard = caf::actor_cast<caf::actor>(r->shard);
    if (shard) return r;
  }
  shard = shard_of(sys, type);
  if (!shard) return nullptr;
  if (!r) {
    routes.emplace_back();
    r = &routes.back();
    r->sys = &sys;
    r->type = type;
    r->messages = &messages_of(type);
  }
  r->shard = shard.address();
  r->direct = is_direct(type);
  r->live.clear();  // entities of the shard before: gone with it
  return r;
}

} // namespace

void tell(caf::actor_system& sys, const entity_ref& ref, caf::message cmd) {
  caf::actor endpoint;
  if (remote(ref, endpoint)) {
    remote_messages().inc();
    if (endpoint) caf::anon_send(endpoint, fwd_atom::value, ref.type, ref.id, int32_t{0}, std::move(cmd));
    return;  // news: a node that cannot be reached misses it, as a stopped entity would
  }
  caf::actor shard;
  if (auto r = route_of(sys, ref.type, shard)) {
    r->messages->inc();
    caf::anon_send(shard, fwd_atom::value, ref.id, std::move(cmd));
  }
}

namespace {

/// Remembers that `who` answered for `ref` with success.
void learn(caf::actor_system& sys, const entity_ref& ref, const caf::strong_actor_ptr& who) {
  auto r = find_route(sys, ref.type);
  if (!r || !r->direct || !who) return;
  auto addr = caf::actor_cast<caf::actor_addr>(who);
  if (addr == r->shard) return;  // the shard answered itself (exists_atom)
  if (r->live.size() >= max_live) r->live.clear();
  r->live[ref.id] = std::move(addr);
}

void forget(caf::actor_system& sys, const entity_ref& ref) {
  if (auto r = find_route(sys, ref.type)) r->live.erase(ref.id);
}

entity_reply path_failed(const std::string& type, const caf::error& e) {
  return fail(errc::unavailable, e == caf::sec::request_timeout
                                   ? type + " did not answer in time"
                                   : type + " could not answer: " + caf::to_string(e));
}

/// Sends through `shard`; for a direct kind, remembers who answered.
template <class Timeout, class OnReply, class OnError>
void via_shard(caf::event_based_actor* self, const caf::actor& shard, bool direct,
               const entity_ref& ref, caf::message cmd, Timeout timeout, OnReply on_reply,
               OnError on_error) {
  auto rh = self->request(shard, timeout, fwd_atom::value, ref.id, std::move(cmd));
  if (!direct) {
    std::move(rh).then(std::move(on_reply), std::move(on_error));
    return;
  }
  std::move(rh).then(
    [self, ref, on_reply](entity_reply& r) mutable {
      if (r.ok()) learn(self->system(), ref, self->current_sender());
      on_reply(r);
    },
    std::move(on_error));
}

/// A command sent straight to its entity, kept until it is answered: if
/// the entity refuses it undelivered, it goes through the shard.
template <class Timeout, class OnReply, class OnError>
struct direct_send {
  entity_ref ref;
  caf::message cmd;
  Timeout timeout;
  OnReply on_reply;
  OnError on_error;
};

/// Sends `cmd` straight to the entity if this thread knows it live, else
/// through the shard of `ref.type`; answers `unavailable` at once if there
/// is no shard.
template <class Timeout, class OnReply, class OnError>
void send_via_shard(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
                    Timeout timeout, OnReply on_reply, OnError on_error,
                    const reply_fn& unavailable) {
  caf::actor endpoint;
  if (remote(ref, endpoint)) {
    if (!endpoint) {
      auto e = unreachable(ref);
      unavailable(e);
      return;
    }
    remote_messages().inc();
    self->request(endpoint, remote_timeout(timeout), fwd_atom::value, ref.type, ref.id,
                  int32_t{0}, std::move(cmd))
      .then(std::move(on_reply), std::move(on_error));
    return;
  }
  caf::actor shard;
  auto r = route_of(self->system(), ref.type, shard);
  if (!r) {
    auto e = fail(errc::unavailable, ref.type + " entities are not available right now");
    unavailable(e);
    return;
  }
  r->messages->inc();
  if (r->direct) {
    auto it = r->live.find(ref.id);
    if (it != r->live.end()) {
      if (auto entity = caf::actor_cast<caf::actor>(it->second)) {
        using pending = direct_send<Timeout, OnReply, OnError>;
        auto p = std::make_shared<pending>(
          pending{ref, cmd, timeout, std::move(on_reply), std::move(on_error)});
        self->request(entity, timeout, std::move(cmd))
          .then([p](entity_reply& rep) { p->on_reply(rep); },
                [self, p](caf::error& e) {
                  if (e != caf::sec::request_receiver_down) {
                    p->on_error(e);
                    return;
                  }
                  // Not delivered (the entity quit or passivates): the
                  // shard holds it for the entity's next activation.
                  forget(self->system(), p->ref);
                  caf::actor sh;
                  auto again = route_of(self->system(), p->ref.type, sh);
                  if (!again) {
                    p->on_error(e);
                    return;
                  }
                  via_shard(self, sh, again->direct, p->ref, std::move(p->cmd), p->timeout,
                            std::move(p->on_reply), std::move(p->on_error));
                });
        return;
      }
      r->live.erase(it);
    }
  }
  via_shard(self, shard, r->direct, ref, std::move(cmd), timeout, std::move(on_reply),
            std::move(on_error));
}

void schedule_tick(caf::event_based_actor* self, ask_book& book,
                   std::chrono::steady_clock::duration in) {
  book.tick_pending = true;
  auto wait = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(in),
                       std::chrono::milliseconds{10});
  self->delayed_send(self, wait, ask_tick_atom::value);
}

/// An ask whose wait `timeout` bounds (a CAF timeout, or caf::infinite).
template <class Timeout>
void plain_ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
               Timeout timeout, reply_fn done) {
  send_via_shard(
    self, ref, std::move(cmd), timeout, [done](entity_reply& r) { done(r); },
    [done, type = ref.type](caf::error& e) {
      auto r = path_failed(type, e);
      done(r);
    },
    done);
}

} // namespace

void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         std::chrono::milliseconds timeout, reply_fn done) {
  plain_ask(self, ref, std::move(cmd), timeout, std::move(done));
}

void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         reply_fn done) {
  plain_ask(self, ref, std::move(cmd), caf::infinite, std::move(done));
}

void ask(caf::event_based_actor* self, std::shared_ptr<ask_book>& book, const entity_ref& ref,
         caf::message cmd, std::chrono::milliseconds timeout, reply_fn done) {
  if (!book) book = std::make_shared<ask_book>();
  auto token = ++book->next;
  auto due = std::chrono::steady_clock::now() + timeout;
  book->open.emplace(token, ask_book::open_ask{due, std::move(done), ref.type});
  if (!book->tick_pending) schedule_tick(self, *book, timeout);
  // Runs the open ask's callback once: with the reply, or not at all if
  // the tick failed it first.
  auto finish = [b = book, token](entity_reply& r) {
    auto it = b->open.find(token);
    if (it == b->open.end()) return;  // answered `unavailable` at its deadline
    auto f = std::move(it->second.done);
    b->open.erase(it);
    f(r);
  };
  send_via_shard(
    self, ref, std::move(cmd), caf::infinite, finish,
    [finish, type = ref.type](caf::error& e) {
      auto r = path_failed(type, e);
      finish(r);
    },
    finish);
}

void on_ask_tick(caf::event_based_actor* self, ask_book& book) {
  book.tick_pending = false;
  auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<reply_fn, std::string>> overdue;
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto it = book.open.begin(); it != book.open.end();) {
    if (it->second.due <= now) {
      overdue.emplace_back(std::move(it->second.done), std::move(it->second.type));
      it = book.open.erase(it);
    } else {
      next = std::min(next, it->second.due);
      ++it;
    }
  }
  if (!book.open.empty()) schedule_tick(self, book, next - now);
  for (auto& [done, type] : overdue) {
    auto r = fail(errc::unavailable, type + " did not answer in time");
    done(r);
  }
}

void deliver_here(caf::event_based_actor* self, const std::string& type, const std::string& id,
                  caf::message msg, caf::response_promise rp) {
  caf::actor shard;
  auto r = route_of(self->system(), type, shard);
  if (!r) {
    rp.deliver(fail(errc::unavailable, type + " entities are not available right now"));
    return;
  }
  r->messages->inc();
  rp.delegate(shard, fwd_atom::value, id, std::move(msg));
}

void allow_direct(const std::string& type) {
  std::lock_guard<std::mutex> lock{direct_mx};
  if (std::find(direct_types.begin(), direct_types.end(), type) == direct_types.end()) {
    direct_types.push_back(type);
  }
}

bool known_live(caf::actor_system& sys, const std::string& type, const std::string& id) {
  auto r = find_route(sys, type);
  if (!r) return false;
  auto it = r->live.find(id);
  return it != r->live.end() && caf::actor_cast<caf::actor>(it->second) != nullptr;
}

const char* to_string(errc x) {
  switch (x) {
    case errc::ok: return "ok";
    case errc::not_found: return "not_found";
    case errc::invalid: return "invalid";
    case errc::insufficient_funds: return "insufficient_funds";
    case errc::conflict: return "conflict";
    case errc::in_progress: return "in_progress";
    case errc::key_reused: return "key_reused";
    case errc::unavailable: return "unavailable";
    case errc::outcome_unknown: return "outcome_unknown";
    case errc::forbidden: return "forbidden";
  }
  return "unknown";
}

entity_reply fail(errc code, std::string detail) {
  entity_reply r;
  r.code = static_cast<int32_t>(code);
  r.detail = std::move(detail);
  return r;
}

entity_reply success(std::string body, int64_t version) {
  entity_reply r;
  r.body = std::move(body);
  r.version = version;
  return r;
}

} // namespace gm::actors
