// Implements a savings circle's rules.
#include "actors/circle/rules.hpp"

#include <algorithm>

namespace gm::circle {

const member* find_member(const circle& c, const std::string& user) {
  for (auto& m : c.members) {
    if (m.user_id == user) return &m;
  }
  return nullptr;
}

member* find_member(circle& c, const std::string& user) {
  for (auto& m : c.members) {
    if (m.user_id == user) return &m;
  }
  return nullptr;
}

decision can_join(const circle& c, const std::string& user) {
  if (c.status != "forming") return {verdict::conflict, "the circle has already started"};
  if (find_member(c, user) != nullptr) return {verdict::conflict, "you are already a member"};
  if (static_cast<int32_t>(c.members.size()) >= c.max_members) {
    return {verdict::conflict, "the circle is full"};
  }
  return {};
}

decision can_start(const circle& c, const std::string& user) {
  if (user != c.creator_id) return {verdict::forbidden, "only the circle's creator may start it"};
  if (c.status != "forming") return {verdict::conflict, "the circle has already started"};
  if (c.members.size() < 2) return {verdict::conflict, "a circle needs at least 2 members"};
  return {};
}

decision can_contribute(const circle& c, const std::string& user) {
  auto* m = find_member(c, user);
  if (m == nullptr) return {verdict::not_member, "only members contribute"};
  if (c.status != "active") {
    return {verdict::conflict, c.status == "forming" ? "the circle has not started"
                                                     : "the circle has completed"};
  }
  if (m->paid_round >= c.current_round) {
    return {verdict::conflict, "you have already paid this round"};
  }
  return {};
}

decision can_payout(const circle& c, const std::string& user, bool admin) {
  if (!admin && user != c.creator_id) {
    return {verdict::forbidden, "only the circle's creator or an admin may pay out"};
  }
  if (c.status != "active") {
    return {verdict::conflict, c.status == "forming" ? "the circle has not started"
                                                     : "the circle has completed"};
  }
  if (!all_paid(c)) return {verdict::conflict, "not every member has paid this round"};
  return {};
}

void assign_positions(circle& c, const std::vector<size_t>& shuffled) {
  std::vector<member*> by_join;
  for (auto& m : c.members) by_join.push_back(&m);
  std::sort(by_join.begin(), by_join.end(),
            [](const member* a, const member* b) { return a->joined < b->joined; });
  bool random = c.payout_order == "random" && shuffled.size() == by_join.size();
  for (size_t i = 0; i < by_join.size(); ++i) {
    by_join[random ? shuffled[i] : i]->position = static_cast<int32_t>(i + 1);
  }
}

std::string recipient(const circle& c) {
  for (auto& m : c.members) {
    if (m.position == c.current_round) return m.user_id;
  }
  return {};
}

bool all_paid(const circle& c) {
  return std::all_of(c.members.begin(), c.members.end(),
                     [&c](const member& m) { return m.paid_round >= c.current_round; });
}

int64_t period_ms(const std::string& frequency, int64_t day_ms) {
  if (frequency == "weekly") return 7 * day_ms;
  if (frequency == "monthly") return 30 * day_ms;
  return day_ms;
}

int64_t due_at_ms(const circle& c, int32_t round, int64_t day_ms) {
  return c.started_at_ms + static_cast<int64_t>(round) * period_ms(c.frequency, day_ms);
}

bool record_contribution(circle& c, const std::string& user, int64_t now_ms, int64_t day_ms) {
  auto* m = find_member(c, user);
  if (m == nullptr) return false;
  m->paid_round = c.current_round;
  bool late = now_ms > due_at_ms(c, c.current_round, day_ms);
  if (late) ++m->late_count;
  return late;
}

void record_payout(circle& c) {
  auto to = recipient(c);
  if (auto* m = find_member(c, to)) m->received_payout = true;
  if (c.current_round >= static_cast<int32_t>(c.members.size())) {
    c.status = "completed";
  } else {
    ++c.current_round;
  }
}

void undo_payout(circle& c, const std::string& recipient_id) {
  auto* m = find_member(c, recipient_id);
  if (m == nullptr) return;
  m->received_payout = false;
  if (c.status == "completed") {
    c.status = "active";
  } else {
    --c.current_round;
  }
}

int64_t reminder_at_ms(const circle& c, int32_t round, int64_t day_ms) {
  return due_at_ms(c, round, day_ms) - period_ms(c.frequency, day_ms) / 4;
}

due_moment next_due_moment(const circle& c, int64_t day_ms) {
  if (c.status != "active" || all_paid(c)) return {};
  auto r = c.current_round;
  if (c.reminded_round < r && c.overdue_round < r) {
    return {due_event::remind, reminder_at_ms(c, r, day_ms)};
  }
  if (c.overdue_round < r) return {due_event::overdue, due_at_ms(c, r, day_ms)};
  return {};
}

std::vector<std::string> unpaid(const circle& c) {
  std::vector<std::string> out;
  for (auto& m : c.members) {
    if (m.paid_round < c.current_round) out.push_back(m.user_id);
  }
  return out;
}

} // namespace gm::circle
