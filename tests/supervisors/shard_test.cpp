// The entity shard with a small in-memory entity kind: activation on first
// message, passivation (with messages held meanwhile), restarts and their
// intensity. No database: the kind keeps a counter in memory.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <caf/all.hpp>

#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "supervisors/shard.hpp"

using namespace std::chrono_literals;
using namespace gm::actors;

namespace {

using get_atom = caf::atom_constant<caf::atom("t_get")>;
using inc_atom = caf::atom_constant<caf::atom("t_inc")>;
using crash_atom = caf::atom_constant<caf::atom("t_crash")>;
using hold_atom = caf::atom_constant<caf::atom("t_hold")>;
using release_atom = caf::atom_constant<caf::atom("t_release")>;
using mute_atom = caf::atom_constant<caf::atom("t_mute")>;
using go_atom = caf::atom_constant<caf::atom("t_go")>;
using open_atom = caf::atom_constant<caf::atom("t_open")>;
using peer_atom = caf::atom_constant<caf::atom("t_peer")>;

struct counter_state {
  entity_core core;
  int64_t n = 0;
};

std::string no_state(caf::stateful_actor<counter_state>*) {
  return "{}";
}

// Kinds: "counter" goes through its shard only; "dcounter" takes commands
// straight from routers (entity_kind::direct), so its get and inc check
// note_command first.
caf::behavior counter_impl(caf::stateful_actor<counter_state>* self, std::string id,
                           const char* type) {
  self->state.core.id = std::move(id);
  self->state.core.status = "active";
  caf::message_handler own{
    [self, type](get_atom) -> caf::result<entity_reply> {
      if (note_command(self, type, self->state.core)) return refused_command();
      return success(std::to_string(self->state.n), self->state.core.version);
    },
    [self, type](inc_atom) -> caf::result<entity_reply> {
      if (note_command(self, type, self->state.core)) return refused_command();
      ++self->state.n;
      ++self->state.core.version;
      return success(std::to_string(self->state.n), self->state.core.version);
    },
    [](crash_atom) -> entity_reply { throw std::runtime_error("crash on purpose"); },
    // Outstanding work for a while: passivation must wait for it.
    [self](hold_atom) {
      ++self->state.core.busy;
      self->delayed_send(self, 300ms, release_atom::value);
      return success("held", 0);
    },
    [self](release_atom) {
      --self->state.core.busy;
      finish_if_idle(self, self->state.core);
    },
    // Never answers (as if the entity died holding the request).
    [](mute_atom) { return caf::delegated<entity_reply>{}; },
    // Answered here only while the shard does not know this one loaded.
    [](exists_atom) { return success("asked the entity", 0); },
    // Ends this entity for good (as a closed room would).
    [self](release_atom, bool) {
      announce_deleted(self, "counter", self->state.core.id);
      return success("deleted", 0);
    },
    // `(peer_atom, peer, bool peer_loaded)`: the flag is the shard's word.
    [](peer_atom, const std::string&, bool peer_loaded) {
      return success(peer_loaded ? "peer loaded" : "peer unknown", 0);
    },
  };
  // Entities named "loaded-…" tell their shard they loaded, as wallets do.
  if (self->state.core.id.rfind("loaded-", 0) == 0) {
    announce_loaded(self, "counter", self->state.core.id);
  }
  return own.or_else(entity_handlers(self, &no_state));
}

entity_kind counter_kind(bool direct = false) {
  entity_kind k;
  const char* type = direct ? "dcounter" : "counter";
  k.type = type;
  k.direct = direct;
  k.spawn = [type](caf::local_actor* shard, const std::string& id) {
    return shard->spawn(counter_impl, id, type);
  };
  k.annotate = [](caf::message& cmd, const std::function<bool(const std::string&)>& loaded) {
    if (cmd.match_elements<peer_atom, std::string, bool>() &&
        loaded(cmd.get_as<std::string>(1))) {
      cmd.get_mutable_as<bool>(2) = true;
    }
  };
  return k;
}

/// One worker thread for the direct kind: routers remember entities per
/// thread, so with one the second command always finds what the first
/// learned.
caf::actor_system_config& threads_for(caf::actor_system_config& cfg, bool direct) {
  if (direct) cfg.set("scheduler.max-threads", size_t{1});
  return cfg;
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self{sys};
  caf::actor shard;

  explicit fixture(gm::shard::options opts, bool direct = false)
    : sys{threads_for(cfg, direct)} {
    shard = gm::shard::spawn_shard(self.ptr(), counter_kind(direct), opts);
    // One round trip: the shard has started, so it is registered and
    // callers that go through the router find it.
    live();
  }
  ~fixture() { self->send_exit(shard, caf::exit_reason::user_shutdown); }

  /// Returns what `dest` answers to `xs`, or an error reply with `code`.
  template <class... Ts>
  entity_reply reply_of(const caf::actor& dest, errc code, Ts&&... xs) {
    entity_reply out = fail(code, "no answer");
    self->request(dest, 5s, std::forward<Ts>(xs)...)
      .receive([&](entity_reply& r) { out = std::move(r); },
               [&](caf::error& e) { out = fail(code, caf::to_string(e)); });
    return out;
  }

  /// Returns the reply of entity `id` to `msg`, or an error reply.
  entity_reply ask(const std::string& id, caf::message msg) {
    return reply_of(shard, errc::unavailable, fwd_atom::value, id, std::move(msg));
  }

  int64_t live() {
    int64_t n = -1;
    self->request(shard, 5s, count_atom::value).receive([&](int64_t x) { n = x; },
                                                         [](caf::error&) {});
    return n;
  }

  /// Asks the shard to passivate `id`; returns whether it was live.
  bool passivate(const std::string& id) {
    bool live = false;
    self->request(shard, 5s, passivate_atom::value, id)
      .receive([&](bool b) { live = b; }, [](caf::error&) {});
    return live;
  }

  entity_info inspect(const std::string& id) {
    entity_info out;
    self->request(shard, 5s, inspect_atom::value, id)
      .receive([&](entity_info& i) { out = std::move(i); }, [](caf::error&) {});
    return out;
  }

  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 100; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

gm::shard::options opts(std::chrono::milliseconds idle = 60s, int intensity = 3) {
  gm::shard::options o;
  o.node_id = "test";
  o.idle_timeout = idle;
  o.intensity = intensity;
  o.period = 5s;
  return o;
}

} // namespace

TEST_CASE("the first message activates an entity; later messages reach the same one") {
  fixture f{opts()};
  CHECK(f.live() == 0);
  f.ask("a", caf::make_message(inc_atom::value));
  f.ask("a", caf::make_message(inc_atom::value));
  f.ask("b", caf::make_message(inc_atom::value));
  CHECK(f.ask("a", caf::make_message(get_atom::value)).body == "2");
  CHECK(f.ask("b", caf::make_message(get_atom::value)).body == "1");
  CHECK(f.live() == 2);
  auto info = f.inspect("a");
  CHECK(info.type == "counter");
  CHECK(info.version == 2);
  CHECK(info.status == "active");
}

TEST_CASE("an idle entity is passivated and the next message activates it again") {
  fixture f{opts(100ms)};
  f.ask("a", caf::make_message(inc_atom::value));
  CHECK(f.live() == 1);
  REQUIRE(f.eventually([&] { return f.live() == 0; }));
  // A fresh activation: this kind keeps nothing, so it starts from zero.
  CHECK(f.ask("a", caf::make_message(get_atom::value)).body == "0");
}

TEST_CASE("messages sent while an entity passivates are held, then answered by a new one") {
  fixture f{opts()};
  f.ask("a", caf::make_message(inc_atom::value));
  f.ask("a", caf::make_message(hold_atom::value));  // busy for 300 ms
  REQUIRE(f.passivate("a"));
  auto start = std::chrono::steady_clock::now();
  auto r = f.ask("a", caf::make_message(get_atom::value));
  CHECK(r.ok());
  CHECK(r.body == "0");  // answered by the next activation, after the old one finished
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
}

TEST_CASE("a crashed entity is restarted; past the intensity it is left passive") {
  fixture f{opts(60s, 2)};
  f.ask("a", caf::make_message(inc_atom::value));
  CHECK_FALSE(f.ask("a", caf::make_message(crash_atom::value)).ok());
  REQUIRE(f.eventually([&] { return f.inspect("a").restarts == 1; }));
  CHECK(f.ask("a", caf::make_message(get_atom::value)).body == "0");  // restarted from nothing
  f.ask("a", caf::make_message(crash_atom::value));
  REQUIRE(f.eventually([&] { return f.inspect("a").restarts == 2; }));
  f.ask("a", caf::make_message(crash_atom::value));  // the third within the period
  REQUIRE(f.eventually([&] { return f.live() == 0; }));
  CHECK(f.ask("a", caf::make_message(get_atom::value)).ok());  // activates on demand again
}

TEST_CASE("kill crashes a live entity on purpose and its shard restarts it") {
  fixture f{opts()};
  f.ask("a", caf::make_message(inc_atom::value));
  bool live = false;
  f.self->request(f.shard, 5s, kill_atom::value, std::string{"a"})
    .receive([&](bool b) { live = b; }, [](caf::error&) {});
  CHECK(live);
  REQUIRE(f.eventually([&] { return f.inspect("a").restarts == 1; }));
  bool unknown = true;
  f.self->request(f.shard, 5s, kill_atom::value, std::string{"nobody"})
    .receive([&](bool b) { unknown = b; }, [](caf::error&) {});
  CHECK_FALSE(unknown);
}

TEST_CASE("the shard answers exists for an entity that said it loaded, without a hop") {
  fixture f{opts()};
  auto exists = [&](const std::string& id) {
    return f.ask(id, caf::make_message(exists_atom::value));
  };
  // Not announced: the entity answers (and is activated by the question).
  CHECK(exists("plain").body == "asked the entity");
  CHECK(exists("plain").body == "asked the entity");
  // Announced: once the shard has the entity's word, it answers itself
  // (an empty body; the entity's own answer says who answered).
  CHECK(exists("loaded-a").ok());
  REQUIRE(f.eventually([&] { return exists("loaded-a").body.empty(); }));
  auto r = exists("loaded-a");
  CHECK(r.ok());
  CHECK(r.body.empty());
  // A restarted entity starts unannounced; the new one announces again.
  f.self->send(f.shard, kill_atom::value, std::string{"plain"});
  REQUIRE(f.eventually([&] { return f.inspect("plain").restarts == 1; }));
  CHECK(exists("plain").body == "asked the entity");
  // An entity that ends (deleted) is no longer vouched for by the shard,
  // even before it passivates.
  CHECK(f.ask("loaded-a", caf::make_message(release_atom::value, true)).body == "deleted");
  REQUIRE(f.eventually([&] { return exists("loaded-a").body == "asked the entity"; }));
}

TEST_CASE("kinds with names longer than a CAF atom get shards of their own") {
  // atom_from_string returns the empty atom past 10 characters: shards
  // registered as atoms under such names would all be one.
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto kind_named = [](const char* type) {
    entity_kind k = counter_kind();
    k.type = type;
    k.annotate = nullptr;
    return k;
  };
  auto circles = gm::shard::spawn_shard(self.ptr(), kind_named("savings_circle"), opts());
  auto contracts = gm::shard::spawn_shard(self.ptr(), kind_named("gig_contract"), opts());
  auto rooms = gm::shard::spawn_shard(self.ptr(), kind_named("chat_room"), opts());
  // One round trip each: registered once started.
  for (auto& s : {circles, contracts, rooms}) {
    self->request(s, 5s, count_atom::value).receive([](int64_t) {}, [](caf::error&) {});
  }
  CHECK(shard_of(sys, "savings_circle") == circles);
  CHECK(shard_of(sys, "gig_contract") == contracts);
  CHECK(shard_of(sys, "chat_room") == rooms);
  CHECK_FALSE(shard_of(sys, "unknown_kind_name"));
  for (auto& s : {circles, contracts, rooms}) {
    self->send_exit(s, caf::exit_reason::user_shutdown);
    self->wait_for(s);
  }
  // Gone with their shards.
  CHECK_FALSE(shard_of(sys, "savings_circle"));
}

TEST_CASE("the shard tells an entity which of its peers have loaded (annotate)") {
  fixture f{opts()};
  auto about = [&](const std::string& peer) {
    return f.ask("x", caf::make_message(peer_atom::value, peer, false)).body;
  };
  CHECK(about("loaded-b") == "peer unknown");  // not activated yet
  CHECK(f.ask("loaded-b", caf::make_message(get_atom::value)).ok());
  REQUIRE(f.eventually([&] { return about("loaded-b") == "peer loaded"; }));
  // Live but never announced: the shard does not vouch for it.
  CHECK(f.ask("plain", caf::make_message(get_atom::value)).ok());
  CHECK(about("plain") == "peer unknown");
  // A restarted peer counts once it has announced again.
  f.self->send(f.shard, kill_atom::value, std::string{"loaded-b"});
  REQUIRE(f.eventually([&] { return f.inspect("loaded-b").restarts == 1; }));
  REQUIRE(f.eventually([&] { return about("loaded-b") == "peer loaded"; }));
  // Commands it does not annotate pass unchanged.
  CHECK(f.ask("x", caf::make_message(get_atom::value)).body == "0");
}

namespace {

struct caller_state {
  std::shared_ptr<ask_book> asks;
};

/// Asks counter "a" through the router with deadlines kept in an ask_book.
caf::behavior caller_impl(caf::stateful_actor<caller_state>* self) {
  return {
    [self](go_atom, caf::message& cmd, int64_t timeout_ms) {
      auto rp = self->make_response_promise<entity_reply>();
      ask(self, self->state.asks, {"counter", "a"}, std::move(cmd),
          std::chrono::milliseconds{timeout_ms}, [rp](entity_reply& r) mutable {
            rp.deliver(r);
          });
      return rp;
    },
    [self](ask_tick_atom) { on_ask_tick(self, *self->state.asks); },
    [self](open_atom) {
      return static_cast<int64_t>(self->state.asks ? self->state.asks->open.size() : 0);
    },
  };
}

} // namespace

TEST_CASE("an ask_book answers an ask the entity never answers at its deadline, once") {
  fixture f{opts()};
  auto caller = f.sys.spawn(caller_impl);
  auto go = [&](caf::message cmd, int64_t ms) {
    entity_reply out = fail(errc::conflict, "no answer at all");
    f.self->request(caller, 5s, go_atom::value, std::move(cmd), ms)
      .receive([&](entity_reply& r) { out = std::move(r); },
               [&](caf::error& e) { out = fail(errc::conflict, caf::to_string(e)); });
    return out;
  };
  auto open = [&] {
    int64_t n = -1;
    f.self->request(caller, 5s, open_atom::value).receive([&](int64_t x) { n = x; },
                                                          [](caf::error&) {});
    return n;
  };
  auto start = std::chrono::steady_clock::now();
  auto r = go(caf::make_message(mute_atom::value), 200);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.error() == errc::unavailable);
  CHECK(r.detail == "counter did not answer in time");
  CHECK(took >= 190ms);
  CHECK(took < 2s);
  CHECK(open() == 0);
  // Answered in time: the reply, and nothing at the deadline (the caller's
  // promise would be delivered twice otherwise; the book is empty at once).
  auto ok = go(caf::make_message(inc_atom::value), 300);
  CHECK(ok.ok());
  CHECK(ok.body == "1");
  CHECK(open() == 0);
  std::this_thread::sleep_for(400ms);  // past the tick
  CHECK(go(caf::make_message(get_atom::value), 300).body == "1");
  f.self->send_exit(caller, caf::exit_reason::user_shutdown);
}

namespace {

using ask_atom = caf::atom_constant<caf::atom("t_ask")>;

/// Asks entities of "dcounter" through the router, as gateway workers and
/// entities do: `(ask_atom, id, cmd)` → the entity_reply.
caf::behavior router_caller_impl(caf::event_based_actor* self) {
  return {
    [self](ask_atom, const std::string& id, caf::message& cmd) {
      auto rp = self->make_response_promise<entity_reply>();
      ask(self, {"dcounter", id}, std::move(cmd), [rp](entity_reply& r) mutable {
        rp.deliver(r);
      });
      return rp;
    },
  };
}

struct direct_fixture : fixture {
  caf::actor caller;

  explicit direct_fixture(gm::shard::options o) : fixture(o, true) {
    caller = sys.spawn(router_caller_impl);
  }
  ~direct_fixture() { self->send_exit(caller, caf::exit_reason::user_shutdown); }

  /// Returns the reply of entity `id` to `cmd`, asked through the router.
  entity_reply routed(const std::string& id, caf::message cmd) {
    return reply_of(caller, errc::conflict, ask_atom::value, id, std::move(cmd));
  }
};

} // namespace

TEST_CASE("a direct kind's live entity gets commands straight from the router") {
  direct_fixture f{opts()};
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "1");  // through the shard
  std::this_thread::sleep_for(300ms);
  // Straight to the entity: the shard saw nothing, so its idle clock ran
  // on (the entity tells it at most about once a second).
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "2");
  CHECK(f.inspect("a").idle_ms >= 250);
  CHECK(f.routed("a", caf::make_message(get_atom::value)).body == "2");
  CHECK(f.live() == 1);
}

TEST_CASE("a command for a direct entity that quit goes through the shard to a new one") {
  direct_fixture f{opts()};
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "1");
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "2");
  // Passivated (nothing outstanding: it quits at once). The router still
  // remembers it; the command bounces and goes through the shard, which
  // activates a new one (this kind keeps nothing: it starts from zero).
  f.self->send(f.shard, passivate_atom::value, std::string{"a"});
  REQUIRE(f.eventually([&] { return f.live() == 0; }));
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "1");
  // Crashed on purpose: the same, through the shard's restart.
  f.self->send(f.shard, kill_atom::value, std::string{"a"});
  REQUIRE(f.eventually([&] { return f.inspect("a").restarts == 1; }));
  CHECK(f.routed("a", caf::make_message(get_atom::value)).body == "0");
}

TEST_CASE("a direct entity that passivates refuses the router's commands; the shard holds them") {
  direct_fixture f{opts()};
  CHECK(f.routed("a", caf::make_message(inc_atom::value)).body == "1");
  CHECK(f.routed("a", caf::make_message(hold_atom::value)).ok());  // busy for 300 ms
  REQUIRE(f.passivate("a"));
  // The old entity still runs (outstanding work) but refuses; the shard
  // holds the command until it has quit, then a new one answers.
  auto start = std::chrono::steady_clock::now();
  auto r = f.routed("a", caf::make_message(inc_atom::value));
  CHECK(r.ok());
  CHECK(r.body == "1");
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
}

TEST_CASE("a direct entity in use is not passivated as idle: it tells its shard") {
  direct_fixture f{opts(2s)};
  int n = 0;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    auto r = f.routed("a", caf::make_message(inc_atom::value));
    REQUIRE(r.ok());
    ++n;
    std::this_thread::sleep_for(100ms);
  }
  // One activation all along: it kept its count (a new one starts at 0).
  CHECK(f.routed("a", caf::make_message(get_atom::value)).body == std::to_string(n));
  CHECK(f.inspect("a").idle_ms < 2000);
}

namespace {

std::atomic<int> slow_live{0};
std::atomic<int> slow_max_live{0};

/// An entity that takes 300 ms to stop when its shard stops it (as one
/// busy finishing a handler would): it counts the copies alive at once.
caf::behavior slow_stopper(caf::stateful_actor<counter_state>* self, std::string id) {
  self->state.core.id = std::move(id);
  self->state.core.status = "active";
  int now = ++slow_live;
  int seen = slow_max_live.load();
  while (now > seen && !slow_max_live.compare_exchange_weak(seen, now)) {
    // retry
  }
  self->attach_functor([] { --slow_live; });
  self->set_exit_handler([self](caf::exit_msg& em) {
    self->delayed_send(self, 300ms, release_atom::value);
    self->state.core.busy = 1;
    (void)em;
  });
  return {
    [self](get_atom) { return success(std::to_string(self->state.n), 0); },
    [self](inc_atom) { return success(std::to_string(++self->state.n), 0); },
    [self](release_atom) { self->quit(caf::exit_reason::user_shutdown); },
  };
}

} // namespace

TEST_CASE("a restarted shard activates an entity only once its old copy has exited") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  entity_kind k;
  k.type = "slowstop";
  k.spawn = [](caf::local_actor* shard, const std::string& id) {
    return shard->spawn(slow_stopper, id);
  };
  auto ask = [&](const caf::actor& shard, caf::message msg) {
    entity_reply out = fail(errc::unavailable, "no answer");
    self->request(shard, 5s, fwd_atom::value, std::string{"x"}, std::move(msg))
      .receive([&](entity_reply& r) { out = std::move(r); }, [](caf::error&) {});
    return out;
  };
  auto first = gm::shard::spawn_shard(self.ptr(), k, opts());
  CHECK(ask(first, caf::make_message(inc_atom::value)).body == "1");
  // The shard dies (as a crash would end it); its supervisor starts
  // another at once, which gets a message for the same entity.
  self->send_exit(first, caf::exit_reason::kill);
  self->wait_for(first);
  auto second = gm::shard::spawn_shard(self.ptr(), k, opts());
  auto r = ask(second, caf::make_message(get_atom::value));
  CHECK(r.ok());
  CHECK(r.body == "0");  // a new copy, activated after the old one exited
  CHECK(slow_max_live.load() == 1);
  self->send_exit(second, caf::exit_reason::user_shutdown);
  self->wait_for(second);
}
