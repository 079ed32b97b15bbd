// The delivery task's rules (actors/task/rules.hpp), without actors: who may
// take which step in which state, offers running out, due times.
#include <doctest/doctest.h>

#include "actors/task/rules.hpp"

using namespace gm::task;

namespace {

const std::string creator = "c0000000-0000-4000-8000-000000000001";
const std::string rider_a = "a0000000-0000-4000-8000-000000000002";
const std::string rider_b = "b0000000-0000-4000-8000-000000000003";
const std::string stranger = "d0000000-0000-4000-8000-000000000004";

task a_task(const std::string& status) {
  task t;
  t.id = "e0000000-0000-4000-8000-000000000005";
  t.creator_id = creator;
  t.status = status;
  t.fee = 500;
  t.pickup_lat = -1.2921;
  t.pickup_lng = 36.8219;
  t.dropoff_lat = -1.2921 + 0.02;  // about 2.2 km north
  t.dropoff_lng = 36.8219;
  if (status == "offered") {
    t.offered_to = rider_a;
    t.offer_until_ms = 10000;
  }
  if (status == "assigned" || status == "picked_up" || status == "completed") t.rider_id = rider_a;
  return t;
}

verdict try_step(const task& t, action a, const std::string& user, const std::string& role,
                 int64_t now = 5000) {
  return can(t, a, caller_of(t, user, role), now).v;
}

} // namespace

TEST_CASE("a task is not shown before its fee is locked") {
  CHECK_FALSE(shown(a_task("")));
  CHECK_FALSE(shown(a_task("opening")));
  CHECK_FALSE(shown(a_task("void")));
  CHECK(shown(a_task("pending")));
  CHECK(try_step(a_task("opening"), action::cancel, creator, "client") == verdict::not_found);
}

TEST_CASE("only the rider it is offered to answers an offer, and only before it runs out") {
  auto t = a_task("offered");
  CHECK(try_step(t, action::accept, rider_a, "rider") == verdict::ok);
  CHECK(try_step(t, action::decline, rider_a, "rider") == verdict::ok);
  CHECK(try_step(t, action::accept, rider_b, "rider") == verdict::not_found);  // sees nothing
  CHECK(try_step(t, action::accept, creator, "client") == verdict::forbidden);
  CHECK(try_step(t, action::accept, rider_a, "rider", 10000) == verdict::conflict);
  CHECK(offer_expired(t, 10000));
  CHECK_FALSE(offer_expired(t, 9999));
  // Once it moved on, the first rider is no longer a party at all.
  t.status = "pending";
  t.offered_to.clear();
  CHECK(try_step(t, action::accept, rider_a, "rider") == verdict::not_found);
}

TEST_CASE("pickup, then complete, by the assigned rider only") {
  auto t = a_task("assigned");
  CHECK(try_step(t, action::complete, rider_a, "rider") == verdict::conflict);  // pick up first
  CHECK(try_step(t, action::pickup, rider_a, "rider") == verdict::ok);
  CHECK(try_step(t, action::pickup, creator, "client") == verdict::forbidden);
  CHECK(try_step(t, action::pickup, rider_b, "rider") == verdict::not_found);
  t.status = "picked_up";
  CHECK(try_step(t, action::pickup, rider_a, "rider") == verdict::conflict);
  CHECK(try_step(t, action::complete, rider_a, "rider") == verdict::ok);
  t.settling = "pay";
  CHECK(try_step(t, action::complete, rider_a, "rider") == verdict::conflict);
  CHECK(move_of(action::complete) == "pay");
  CHECK(move_of(action::pickup).empty());
}

TEST_CASE("cancel: the creator or a dispatcher, before pickup only") {
  for (auto s : {"pending", "offered", "assigned", "unassigned"}) {
    CAPTURE(s);
    CHECK(try_step(a_task(s), action::cancel, creator, "client") == verdict::ok);
    CHECK(try_step(a_task(s), action::cancel, stranger, "dispatcher") == verdict::ok);
  }
  CHECK(try_step(a_task("assigned"), action::cancel, rider_a, "rider") == verdict::forbidden);
  CHECK(try_step(a_task("picked_up"), action::cancel, creator, "client") == verdict::conflict);
  CHECK(try_step(a_task("completed"), action::cancel, creator, "client") == verdict::conflict);
  CHECK(try_step(a_task("canceled"), action::cancel, creator, "client") == verdict::conflict);
  CHECK(try_step(a_task("pending"), action::cancel, stranger, "client") == verdict::not_found);
  CHECK(move_of(action::cancel) == "refund");
}

TEST_CASE("a dispatcher assigns a task that no rider carries yet") {
  for (auto s : {"pending", "offered", "unassigned"}) {
    CAPTURE(s);
    CHECK(try_step(a_task(s), action::assign, stranger, "dispatcher") == verdict::ok);
  }
  CHECK(try_step(a_task("assigned"), action::assign, stranger, "admin") == verdict::conflict);
  CHECK(try_step(a_task("pending"), action::assign, creator, "client") == verdict::forbidden);
}

TEST_CASE("a delivery is due a quarter of an hour plus its distance at 15 km/h after assignment") {
  auto t = a_task("assigned");
  double m = distance_m(t.pickup_lat, t.pickup_lng, t.dropoff_lat, t.dropoff_lng);
  CHECK(m == doctest::Approx(2224).epsilon(0.01));
  auto due = due_at_ms(t, 1000000);
  CHECK(due == doctest::Approx(1000000 + 900000 + m / 15000.0 * 3600000).epsilon(0.0001));
  t.due_at_ms = due;
  CHECK(delivered_on_time(t, due));
  CHECK_FALSE(delivered_on_time(t, due + 1));
  t.due_at_ms = 0;
  CHECK_FALSE(delivered_on_time(t, 0));
}

TEST_CASE("tried riders round-trip through their stored form") {
  CHECK(split_ids("").empty());
  CHECK(join_ids({}).empty());
  std::vector<std::string> ids{rider_a, rider_b};
  CHECK(split_ids(join_ids(ids)) == ids);
  CHECK(is_status("unassigned"));
  CHECK_FALSE(is_status("opening"));
  CHECK_FALSE(is_status("void"));
}
