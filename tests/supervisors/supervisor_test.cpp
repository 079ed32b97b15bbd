// Supervisor strategies, intensity, escalation and ordered stop, each with a
// real actor system and children that crash on command.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "supervisors/supervisor.hpp"

using namespace std::chrono_literals;
using gm::sup::child_spec;
using gm::sup::options;
using gm::sup::strategy;

namespace {

using crash_atom = caf::atom_constant<caf::atom("t_crash")>;
using ask_atom = caf::atom_constant<caf::atom("t_ask")>;
using quit_atom = caf::atom_constant<caf::atom("t_quit")>;

/// Records every start and stop of the test children, in order.
struct journal {
  std::mutex mtx;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard<std::mutex> g{mtx};
    events.push_back(std::move(e));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> g{mtx};
    return events;
  }
  size_t count(const std::string& e) {
    auto s = snapshot();
    return static_cast<size_t>(std::count(s.begin(), s.end(), e));
  }
};

caf::behavior child_impl(caf::event_based_actor* self, std::string name,
                         std::shared_ptr<journal> j) {
  self->attach_functor([name, j](const caf::error&) { j->add("stop " + name); });
  return {
    [](crash_atom) -> int { throw std::runtime_error("crash on purpose"); },
    [name](ask_atom) { return name; },
    [self](quit_atom) { self->quit(); },
  };
}

child_spec child(const std::string& name, std::shared_ptr<journal> j,
                 gm::sup::restart policy = gm::sup::restart::permanent) {
  child_spec s;
  s.name = name;
  s.policy = policy;
  s.shutdown_timeout = 1000ms;
  // Recorded at spawn: the supervisor promises spawn order, while the
  // scheduler may run the children's initialization in any order.
  s.start = [name, j](caf::local_actor* sup) {
    j->add("start " + name);
    return sup->spawn(child_impl, name, j);
  };
  return s;
}

/// Waits (bounded) until `pred` holds; returns whether it did.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

gm::sup::supervisor_report report(caf::scoped_actor& self, const caf::actor& sup) {
  gm::sup::supervisor_report out;
  self->request(sup, 2s, gm::sup::report_atom::value)
    .receive([&](const gm::sup::supervisor_report& r) { out = r; },
             [&](const caf::error& e) { FAIL("no report: " << self->system().render(e)); });
  return out;
}

/// Returns the report once every child is running again.
gm::sup::supervisor_report settled(caf::scoped_actor& self, const caf::actor& sup) {
  gm::sup::supervisor_report r;
  eventually([&] {
    r = report(self, sup);
    return std::all_of(r.children.begin(), r.children.end(),
                       [](auto& c) { return c.running; });
  });
  return r;
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  fixture() {
    cfg.set("scheduler.max-threads", size_t{2});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};


// Children are reached through handles the test factories record.
std::mutex handles_mtx;
std::map<std::string, caf::actor> handles;

child_spec tracked(const std::string& name, std::shared_ptr<journal> j,
                   gm::sup::restart policy = gm::sup::restart::permanent) {
  auto s = child(name, j, policy);
  auto inner = s.start;
  s.start = [name, inner](caf::local_actor* sup) {
    auto h = inner(sup);
    std::lock_guard<std::mutex> g{handles_mtx};
    handles[name] = h;
    return h;
  };
  return s;
}

caf::actor handle_of(const std::string& name) {
  std::lock_guard<std::mutex> g{handles_mtx};
  return handles[name];
}

void crash(caf::actor_system&, caf::scoped_actor& self, const caf::actor&,
           std::shared_ptr<journal>, const std::string& name) {
  self->send(handle_of(name), crash_atom::value);
}
} // namespace

TEST_CASE("one_for_one restarts only the child that failed") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 5, 5000ms},
                                       {tracked("a", j), tracked("b", j), tracked("c", j)});
  REQUIRE(eventually([&] { return j->count("start c") == 1; }));
  crash(*f.sys, self, sup, j, "b");
  // Expect: b stops and starts again; a and c are untouched.
  REQUIRE(eventually([&] { return j->count("start b") == 2; }));
  auto r = settled(self, sup);
  CHECK(r.restarts == 1);
  CHECK(r.children[0].restarts == 0);
  CHECK(r.children[1].restarts == 1);
  CHECK(r.children[1].last_reason.find("runtime_error") != std::string::npos);
  CHECK(r.children[2].restarts == 0);
  CHECK(j->count("start a") == 1);
  CHECK(j->count("start c") == 1);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("one_for_all stops the others in reverse order and restarts all in order") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_all, 5, 5000ms},
                                       {tracked("a", j), tracked("b", j), tracked("c", j)});
  REQUIRE(eventually([&] { return j->count("start c") == 1; }));
  crash(*f.sys, self, sup, j, "b");
  REQUIRE(eventually([&] { return j->count("start c") == 2; }));
  auto r = settled(self, sup);
  CHECK(r.children[0].restarts == 1);
  CHECK(r.children[1].restarts == 1);
  CHECK(r.children[2].restarts == 1);
  // Expect: b died, then c and a were stopped (reverse), then a, b, c started.
  auto ev = j->snapshot();
  std::vector<std::string> tail(ev.end() - 6, ev.end());
  CHECK(tail == std::vector<std::string>{"stop b", "stop c", "stop a", "start a", "start b",
                                         "start c"});
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("rest_for_one restarts the failed child and the ones started after it") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::rest_for_one, 5, 5000ms},
                                       {tracked("a", j), tracked("b", j), tracked("c", j)});
  REQUIRE(eventually([&] { return j->count("start c") == 1; }));
  crash(*f.sys, self, sup, j, "b");
  REQUIRE(eventually([&] { return j->count("start c") == 2; }));
  auto r = settled(self, sup);
  CHECK(r.children[0].restarts == 0);
  CHECK(r.children[1].restarts == 1);
  CHECK(r.children[2].restarts == 1);
  CHECK(j->count("start a") == 1);
  auto ev = j->snapshot();
  std::vector<std::string> tail(ev.end() - 4, ev.end());
  CHECK(tail == std::vector<std::string>{"stop b", "stop c", "start b", "start c"});
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("a temporary child is not restarted and a transient one only after a crash") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(
    *f.sys, {"t", strategy::one_for_one, 5, 5000ms},
    {tracked("temp", j, gm::sup::restart::temporary),
     tracked("trans", j, gm::sup::restart::transient)});
  REQUIRE(eventually([&] { return j->count("start trans") == 1; }));
  crash(*f.sys, self, sup, j, "temp");
  self->send(handle_of("trans"), quit_atom::value);
  REQUIRE(eventually([&] { return j->count("stop temp") == 1 && j->count("stop trans") == 1; }));
  crash(*f.sys, self, sup, j, "trans");  // already gone: a no-op
  auto r = report(self, sup);
  CHECK_FALSE(r.children[0].running);
  CHECK_FALSE(r.children[1].running);
  CHECK(r.restarts == 0);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("past its intensity a supervisor stops its children and escalates to its parent") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  // The parent allows many restarts; the child supervisor allows 2 in 5 s.
  auto inner = gm::sup::supervisor_child({"inner", strategy::one_for_one, 2, 5000ms},
                                         {tracked("w", j)});
  auto parent = gm::sup::spawn_supervisor(*f.sys, {"outer", strategy::one_for_one, 10, 5000ms},
                                          {inner, tracked("sibling", j)});
  REQUIRE(eventually([&] { return j->count("start w") == 1 && j->count("start sibling") == 1; }));
  // Expect: crashes 1 and 2 are absorbed by "inner"; crash 3 exceeds its
  // intensity, so "inner" gives up and the parent restarts it (w starts fresh).
  for (size_t n = 1; n <= 3; ++n) {
    auto starts_before = j->count("start w");
    crash(*f.sys, self, parent, j, "w");
    REQUIRE(eventually([&] { return j->count("start w") == starts_before + 1; }));
  }
  auto r = settled(self, parent);
  CHECK(r.children[0].name == "inner");
  CHECK(r.children[0].restarts == 1);
  CHECK(r.children[0].last_reason.find("gm_sup") != std::string::npos);
  CHECK(r.children[1].restarts == 0);  // one_for_one: the sibling is untouched
  self->send_exit(parent, caf::exit_reason::user_shutdown);
}

TEST_CASE("a root supervisor that gives up terminates with reached_max_restart_intensity") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 1, 5000ms},
                                       {tracked("w", j)});
  self->monitor(sup);
  REQUIRE(eventually([&] { return j->count("start w") == 1; }));
  crash(*f.sys, self, sup, j, "w");
  REQUIRE(eventually([&] { return j->count("start w") == 2; }));
  crash(*f.sys, self, sup, j, "w");
  bool got_down = false;
  self->receive(
    [&](caf::down_msg& dm) {
      got_down = true;
      CHECK(dm.reason == gm::sup::make_error(gm::sup::errc::reached_max_restart_intensity));
    },
    caf::after(3s) >> [] {});
  CHECK(got_down);
  CHECK(j->count("stop w") == 2);
}

TEST_CASE("a significant child's crash is not restarted: the supervisor stops the rest and gives up") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto a = tracked("a", j);
  auto b = tracked("b", j);
  b.significant = true;
  // A generous intensity: giving up is the significant child's doing.
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 10, 5000ms},
                                       {a, b, tracked("c", j)});
  self->monitor(sup);
  REQUIRE(eventually([&] { return j->count("start c") == 1; }));
  crash(*f.sys, self, sup, j, "b");
  bool got_down = false;
  self->receive(
    [&](caf::down_msg& dm) {
      got_down = true;
      CHECK(dm.reason == gm::sup::make_error(gm::sup::errc::significant_child_failed));
    },
    caf::after(3s) >> [] {});
  CHECK(got_down);
  CHECK(j->count("start b") == 1);
  CHECK(j->count("stop a") == 1);
  CHECK(j->count("stop c") == 1);
}

TEST_CASE("a significant child that stops normally is treated like any other") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto b = tracked("b", j, gm::sup::restart::transient);
  b.significant = true;
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 10, 5000ms},
                                       {tracked("a", j), b});
  REQUIRE(eventually([&] { return j->count("start b") == 1; }));
  self->send_exit(handle_of("b"), caf::exit_reason::user_shutdown);
  REQUIRE(eventually([&] { return j->count("stop b") == 1; }));
  auto r = report(self, sup);
  CHECK(r.children[0].running);
  CHECK_FALSE(r.children[1].running);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("stopping a supervisor stops its children in reverse start order") {
  fixture f;
  auto j = std::make_shared<journal>();
  caf::scoped_actor self{*f.sys};
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 3, 5000ms},
                                       {tracked("a", j), tracked("b", j), tracked("c", j)});
  self->monitor(sup);
  REQUIRE(eventually([&] { return j->count("start c") == 1; }));
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  self->receive([&](caf::down_msg& dm) { CHECK(dm.reason == caf::exit_reason::user_shutdown); },
                caf::after(3s) >> [] { FAIL("supervisor did not stop"); });
  auto ev = j->snapshot();
  std::vector<std::string> tail(ev.end() - 3, ev.end());
  CHECK(tail == std::vector<std::string>{"stop c", "stop b", "stop a"});
}

TEST_CASE("a child that ignores the stop request is killed after its shutdown timeout") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  auto stubborn = std::make_shared<std::atomic<bool>>(false);
  child_spec s;
  s.name = "stubborn";
  s.shutdown_timeout = 200ms;
  s.start = [stubborn](caf::local_actor* sup) {
    return sup->spawn([stubborn](caf::event_based_actor* a) -> caf::behavior {
      a->set_exit_handler([](caf::exit_msg&) { /* ignores user_shutdown */ });
      a->attach_functor([stubborn](const caf::error&) { *stubborn = true; });
      return {[](ask_atom) { return 1; }};
    });
  };
  auto sup = gm::sup::spawn_supervisor(*f.sys, {"t", strategy::one_for_one, 3, 5000ms}, {s});
  self->monitor(sup);
  auto t0 = std::chrono::steady_clock::now();
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  caf::error reason;
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                caf::after(3s) >> [] { FAIL("supervisor did not stop"); });
  CHECK(*stubborn);
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
  // The stop was not clean, and the supervisor's exit says so (main exits 1).
  CHECK(reason == gm::sup::make_error(gm::sup::errc::stopped_uncleanly));
}
