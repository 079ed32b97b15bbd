// The savings circle's rules (actors/circle/rules.hpp), without actors.
#include <doctest/doctest.h>

#include "actors/circle/rules.hpp"

using namespace gm::circle;

namespace {

circle forming(int members, int max = 5) {
  circle c;
  c.id = "c1";
  c.creator_id = "u1";
  c.contribution_amount = 100;
  c.frequency = "weekly";
  c.max_members = max;
  for (int i = 1; i <= members; ++i) {
    member m;
    m.user_id = "u" + std::to_string(i);
    m.joined = i;
    c.members.push_back(m);
  }
  return c;
}

circle started(int members) {
  auto c = forming(members, members);
  assign_positions(c, {});
  c.status = "active";
  c.current_round = 1;
  c.started_at_ms = 1000;
  return c;
}

} // namespace

TEST_CASE("joining: only while forming, once, until full") {
  auto c = forming(2, 3);
  CHECK(can_join(c, "u9").ok());
  CHECK(can_join(c, "u2").v == verdict::conflict);  // a member already
  member third;
  third.user_id = "u3";
  third.joined = 3;
  c.members.push_back(third);
  CHECK(can_join(c, "u9").v == verdict::conflict);  // full
  auto s = started(2);
  CHECK(can_join(s, "u9").v == verdict::conflict);  // started
}

TEST_CASE("starting: the creator, with at least two members, once") {
  CHECK(can_start(forming(1), "u1").v == verdict::conflict);
  CHECK(can_start(forming(2), "u2").v == verdict::forbidden);
  CHECK(can_start(forming(2), "u1").ok());
  CHECK(can_start(started(2), "u1").v == verdict::conflict);
}

TEST_CASE("positions follow join order, or the shuffle for random circles") {
  auto c = forming(3);
  assign_positions(c, {2, 0, 1});
  CHECK(c.members[0].position == 1);  // join order: the shuffle is ignored
  CHECK(c.members[2].position == 3);
  c.payout_order = "random";
  assign_positions(c, {2, 0, 1});
  CHECK(c.members[2].position == 1);
  CHECK(c.members[0].position == 2);
  CHECK(c.members[1].position == 3);
}

TEST_CASE("a member contributes once per round; strangers never") {
  auto c = started(3);
  CHECK(can_contribute(c, "u9").v == verdict::not_member);
  CHECK(can_contribute(c, "u2").ok());
  CHECK_FALSE(record_contribution(c, "u2", 1000, 100));
  CHECK(can_contribute(c, "u2").v == verdict::conflict);
  CHECK(can_contribute(forming(3), "u1").v == verdict::conflict);
}

TEST_CASE("a contribution after the round's due date is late") {
  auto c = started(2);  // weekly, started at 1000 ms; a day of 100 ms
  CHECK(due_at_ms(c, 1, 100) == 1000 + 700);
  CHECK_FALSE(record_contribution(c, "u1", 1700, 100));
  CHECK(record_contribution(c, "u2", 1701, 100));
  CHECK(find_member(c, "u2")->late_count == 1);
  CHECK(period_ms("daily", 100) == 100);
  CHECK(period_ms("monthly", 100) == 3000);
}

TEST_CASE("payout: creator or admin, once everyone paid; rounds advance to completed") {
  auto c = started(2);
  CHECK(can_payout(c, "u2", false).v == verdict::forbidden);
  CHECK(can_payout(c, "u1", false).v == verdict::conflict);  // nobody paid
  record_contribution(c, "u1", 0, 100);
  CHECK(can_payout(c, "u1", false).v == verdict::conflict);
  record_contribution(c, "u2", 0, 100);
  CHECK(can_payout(c, "u2", true).ok());  // an admin
  CHECK(recipient(c) == "u1");
  record_payout(c);
  CHECK(c.current_round == 2);
  CHECK(find_member(c, "u1")->received_payout);
  CHECK_FALSE(all_paid(c));
  record_contribution(c, "u1", 0, 100);
  record_contribution(c, "u2", 0, 100);
  CHECK(recipient(c) == "u2");
  record_payout(c);
  CHECK(c.status == "completed");
  CHECK(can_payout(c, "u1", false).v == verdict::conflict);
  // A payout the recipient's wallet refused is undone: the round pays again.
  undo_payout(c, "u2");
  CHECK(c.status == "active");
  CHECK(c.current_round == 2);
  CHECK_FALSE(find_member(c, "u2")->received_payout);
  CHECK(can_payout(c, "u1", false).ok());
}

TEST_CASE("due moments: a reminder a quarter period before, then overdue, each once") {
  auto c = started(2);  // weekly from 1000 ms; a day of 100 ms: due at 1700
  auto m = next_due_moment(c, 100);
  CHECK(m.what == due_event::remind);
  CHECK(m.at_ms == 1700 - 175);
  c.reminded_round = 1;
  m = next_due_moment(c, 100);
  CHECK(m.what == due_event::overdue);
  CHECK(m.at_ms == 1700);
  c.overdue_round = 1;
  CHECK(next_due_moment(c, 100).what == due_event::none);
  CHECK(unpaid(c).size() == 2);
  // Everyone paid: nothing to remind of.
  auto d = started(2);
  record_contribution(d, "u1", 0, 100);
  CHECK(unpaid(d) == std::vector<std::string>{"u2"});
  record_contribution(d, "u2", 0, 100);
  CHECK(next_due_moment(d, 100).what == due_event::none);
  // The next round has its own moments.
  record_payout(d);
  CHECK(next_due_moment(d, 100).what == due_event::remind);
  CHECK(next_due_moment(d, 100).at_ms == 1000 + 1400 - 175);
}
