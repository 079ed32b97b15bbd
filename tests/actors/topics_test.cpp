// The topic store (history, repeats, subscriptions) and the hub over it: an
// event reaches a subscriber after its subscription's answer, a topic nobody
// watches costs no message, and a restarted hub still serves the store's
// subscribers.
#include <doctest/doctest.h>

#include <chrono>

#include <caf/all.hpp>

#include "actors/topics.hpp"
#include "common/registry.hpp"
#include "gateway/topic_hub.hpp"

using namespace std::chrono_literals;
using gm::topics::store;

namespace {

std::vector<int64_t> seqs(const std::vector<gm::topics::event>& es) {
  std::vector<int64_t> out;
  for (auto& e : es) out.push_back(e.seq);
  return out;
}

/// Waits until the hub is registered (a freshly spawned one registers as it starts).
caf::actor hub_of(caf::actor_system& sys) {
  for (int i = 0; i < 200; ++i) {
    if (auto h = gm::find_registered(sys, gm::topics::registry_name())) return h;
    std::this_thread::sleep_for(5ms);
  }
  return {};
}

} // namespace

TEST_CASE("the store keeps each topic's last events in order and drops repeats") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  store::options o;
  o.history_per_topic = 3;
  store s{o};
  std::vector<caf::actor> to;
  for (int64_t v : {1, 2, 3, 4, 5}) {
    std::string data = "{\"v\":" + std::to_string(v) + "}";
    CHECK(s.record("wallet:a", "wallet.updated", v, data, to));
    CHECK(to.empty());
  }
  std::string again = "{}";
  CHECK_FALSE(s.record("wallet:a", "wallet.updated", 5, again, to));  // a repeat
  CHECK_FALSE(s.record("wallet:a", "wallet.updated", 2, again, to));  // out of order
  CHECK(s.record("wallet:b", "wallet.updated", 1, again, to));        // another topic
  caf::scoped_actor self{sys};
  std::vector<gm::topics::event> missed;
  CHECK(s.subscribe("wallet:a", self, 3, missed) == 5);
  CHECK(seqs(missed) == std::vector<int64_t>{4, 5});
  CHECK(missed.back().data == "{\"v\":5}");
  missed.clear();
  CHECK(s.subscribe("wallet:a", self, -1, missed) == 5);  // again: no second entry, no replay
  CHECK(missed.empty());
  CHECK(s.subscribers().size() == 1);
  std::string data = "{\"v\":6}";
  CHECK(s.record("wallet:a", "wallet.updated", 6, data, to));
  REQUIRE(to.size() == 1);
  CHECK(data == "{\"v\":6}");  // left to the caller for the subscriber
  s.unsubscribe("wallet:a", self->address());
  CHECK(s.subscribers().empty());
  CHECK(s.topic_count() == 2);
}

TEST_CASE("advance names a topic's current seq without an event; events go on after it") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  store s;
  s.advance("room:r", 500);
  caf::scoped_actor self{sys};
  std::vector<gm::topics::event> missed;
  // The store holds nothing before 500: a subscriber learns the seq, and
  // that what it missed must come from elsewhere (the room's history).
  CHECK(s.subscribe("room:r", self, 480, missed) == 500);
  CHECK(missed.empty());
  s.advance("room:r", 400);  // never back
  std::vector<caf::actor> to;
  std::string data = "{}";
  CHECK(s.record("room:r", "message.received", 501, data, to));
  missed.clear();
  CHECK(s.subscribe("room:r", self, 480, missed) == 501);
  CHECK(seqs(missed) == std::vector<int64_t>{501});
}

TEST_CASE("the store drops topics nobody watches beyond its bound, never a watched one") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  store::options o;
  o.max_topics = 32;  // two per stripe
  store s{o};
  caf::scoped_actor self{sys};
  std::vector<gm::topics::event> missed;
  s.subscribe("watched", self, -1, missed);
  std::vector<caf::actor> to;
  for (int i = 0; i < 1000; ++i) {
    std::string data = "{}";
    s.record("t" + std::to_string(i), "e", 1, data, to);
  }
  CHECK(s.topic_count() <= 32 + 1);
  std::string data = "{}";
  CHECK(s.record("watched", "e", 1, data, to));
  CHECK(to.size() == 1);
}

TEST_CASE("the hub answers a subscription before the events after it, and survives a restart") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto events = std::make_shared<store>();
  caf::scoped_actor self{sys};
  auto hub = gm::gateway::spawn_topic_hub(self.ptr(), events);
  REQUIRE(hub_of(sys));
  std::string data = "{\"balance\":1}";
  gm::topics::publish(sys, events.get(), "wallet:x", "wallet.updated", 1, data);
  int64_t seq = -1;
  std::vector<gm::topics::event> missed;
  self->request(hub, caf::infinite, gm::topics::subscribe_atom::value, std::string{"wallet:x"},
                caf::actor_cast<caf::actor>(self), int64_t{0})
    .receive([&](int64_t s, std::vector<gm::topics::event>& m) { seq = s, missed = m; },
             [&](caf::error& e) { FAIL(caf::to_string(e)); });
  CHECK(seq == 1);
  CHECK(seqs(missed) == std::vector<int64_t>{1});
  auto expect_event = [&](int64_t want) {
    bool got = false;
    self->receive(
      [&](gm::topics::event_atom, const std::string& topic, int64_t s,
          const gm::topics::frame_ptr& frame) {
        CHECK(topic == "wallet:x");
        CHECK(s == want);
        CHECK(frame->find("\"seq\":" + std::to_string(want)) != std::string::npos);
        got = true;
      },
      caf::after(5s) >> [] {});
    CHECK(got);
  };
  gm::topics::publish(sys, events.get(), "wallet:x", "wallet.updated", 2, "{\"balance\":2}");
  expect_event(2);
  // A crashed hub's successor finds the subscriber in the store.
  self->send_exit(hub, caf::exit_reason::kill);
  for (int i = 0; i < 200 && gm::find_registered(sys, gm::topics::registry_name()); ++i) {
    std::this_thread::sleep_for(5ms);
  }
  auto hub2 = gm::gateway::spawn_topic_hub(self.ptr(), events);
  REQUIRE(hub_of(sys) == hub2);
  gm::topics::publish(sys, events.get(), "wallet:x", "wallet.updated", 3, "{\"balance\":3}");
  expect_event(3);
  // A subscriber that goes down leaves the store.
  auto gone = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
  self->request(hub2, caf::infinite, gm::topics::subscribe_atom::value, std::string{"wallet:y"},
                gone, int64_t{-1})
    .receive([](int64_t, std::vector<gm::topics::event>&) {},
             [&](caf::error& e) { FAIL(caf::to_string(e)); });
  CHECK(events->subscribers().size() == 2);
  self->send_exit(gone, caf::exit_reason::kill);
  for (int i = 0; i < 200 && events->subscribers().size() > 1; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(events->subscribers().size() == 1);
  self->send_exit(hub2, caf::exit_reason::user_shutdown);
}
