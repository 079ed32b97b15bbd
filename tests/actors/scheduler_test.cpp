// The lean scheduler: actors on it exchange messages, steal work, use timers
// and request timeouts, and the system stops with every actor it ran.
#include <doctest/doctest.h>

#include <atomic>
#include <pthread.h>
#include <chrono>
#include <thread>

#include <caf/all.hpp>

#include "actors/scheduler.hpp"

using namespace std::chrono_literals;

namespace {

using hop_atom = caf::atom_constant<caf::atom("s_hop")>;
using tick_atom = caf::atom_constant<caf::atom("s_tick")>;
using get_atom = caf::atom_constant<caf::atom("s_get")>;

/// Passes a counter on to the next actor of the ring until it reaches zero.
caf::behavior ring_member(caf::event_based_actor* self, std::shared_ptr<std::atomic<int>> hops) {
  return {
    [self, hops](hop_atom, int left, const caf::actor& next, const caf::actor& done) {
      hops->fetch_add(1);
      if (left == 0) {
        self->send(done, hop_atom::value, 0, next, done);
      } else {
        self->send(next, hop_atom::value, left - 1, caf::actor_cast<caf::actor>(self), done);
      }
    },
  };
}

} // namespace

TEST_CASE("actors on the lean scheduler pass messages, tick and stop") {
  std::atomic<int> alive{0};
  auto hops = std::make_shared<std::atomic<int>>(0);
  {
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", size_t{2});
    gm::actors::use_lean_scheduler(cfg);
    caf::actor_system sys{cfg};
    CHECK(sys.scheduler().num_workers() == 2);
    caf::scoped_actor self{sys};
    // Actors run on its workers, not CAF's.
    auto namer = sys.spawn([]() -> caf::behavior {
      return {[](get_atom) {
        char name[16] = {};
        pthread_getname_np(pthread_self(), name, sizeof name);
        return std::string{name};
      }};
    });
    self->request(namer, 1s, get_atom::value)
      .receive([](const std::string& name) { CHECK(name == "gm.worker"); },
               [](caf::error& e) { FAIL(caf::to_string(e)); });
    self->send_exit(namer, caf::exit_reason::user_shutdown);
    // 50 pairs bouncing 2,000 hops each, all at once: the workers share them.
    std::vector<caf::actor> members;
    for (int i = 0; i < 100; ++i) members.push_back(sys.spawn(ring_member, hops));
    for (int i = 0; i < 100; i += 2) {
      self->send(members[i], hop_atom::value, 2000, members[i + 1],
                 caf::actor_cast<caf::actor>(self));
    }
    int finished = 0;
    self->receive_for(finished, 50)([](hop_atom, int, const caf::actor&, const caf::actor&) {});
    CHECK(hops->load() == 50 * 2001);
    // Timers run on the scheduler's clock; a request that gets no answer
    // times out.
    auto ticker = sys.spawn([&alive](caf::event_based_actor* t) -> caf::behavior {
      ++alive;
      t->attach_functor([&alive] { --alive; });
      auto ticks = std::make_shared<int>(0);
      return {
        [t, ticks](tick_atom, int left) {
          ++*ticks;
          if (left > 0) t->delayed_send(t, 5ms, tick_atom::value, left - 1);
        },
        [ticks](get_atom) { return *ticks; },
      };
    });
    self->send(ticker, tick_atom::value, 3);
    std::this_thread::sleep_for(200ms);
    self->request(ticker, 1s, get_atom::value)
      .receive([](int v) { CHECK(v == 4); }, [](caf::error& e) { FAIL(caf::to_string(e)); });
    // Holds its requests unanswered.
    auto silent = sys.spawn([](caf::event_based_actor* q) -> caf::behavior {
      auto held = std::make_shared<std::vector<caf::response_promise>>();
      return {[q, held](tick_atom, int) {
        held->push_back(q->make_response_promise());
        return held->back();
      }};
    });
    bool timed_out = false;
    self->request(silent, 50ms, tick_atom::value, 1)
      .receive([](caf::message&) {}, [&](caf::error& e) {
        timed_out = e == caf::sec::request_timeout;
      });
    CHECK(timed_out);
    CHECK(alive.load() == 1);
    for (auto& m : members) self->send_exit(m, caf::exit_reason::user_shutdown);
    self->send_exit(silent, caf::exit_reason::user_shutdown);
  }  // the system stops here: it waits for every actor, then its workers
  CHECK(alive.load() == 0);
}
