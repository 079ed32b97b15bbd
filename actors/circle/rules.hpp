// A savings circle's rules, as plain functions over plain data: who may
// join, start, contribute and pay out, in which order members receive the
// pot, and when a round is due. The entity (entity.cpp) applies them; the
// unit tests exercise them without an actor system.
//
// The circle's life:
//
//            join (until full)                 contribute (each member,
//            ┌──────┐                          once per round)
//            │      ▼                          ┌──────┐
//   create ─▶ forming ── start (creator, ≥2) ─▶ active ◀─┘
//                                               │   ▲
//                         payout (all paid; the │   │ next round
//                         round's recipient) ───┘───┘
//                                               │ payout of the last round
//                                               ▼
//                                           completed
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm::circle {

struct member {
  std::string user_id;
  int32_t joined = 0;     // 1 for the creator, then in join order
  int32_t position = 0;   // payout order, fixed at start (0 while forming)
  int32_t paid_round = 0;  // the last round this member paid
  bool received_payout = false;
  int32_t late_count = 0;
  std::string joined_at;
};

struct circle {
  std::string id;
  std::string name;
  std::string creator_id;
  int64_t contribution_amount = 0;
  std::string frequency;  // daily | weekly | monthly
  int32_t max_members = 0;
  std::string payout_order = "join";  // join | random
  bool auto_payout = false;
  std::string status = "forming";  // forming | active | completed
  int32_t current_round = 0;       // 1.. once active
  int64_t pot = 0;
  int64_t started_at_ms = 0;       // Unix ms, once active
  int32_t reminded_round = 0;      // the last round whose "due soon" reminder went out
  int32_t overdue_round = 0;       // the last round whose "overdue" notice went out
  std::string created_at;
  std::vector<member> members;
};

/// A rule's verdict: ok, or the HTTP-ish reason it refuses.
enum class verdict { ok, forbidden, not_member, conflict, invalid };

struct decision {
  verdict v = verdict::ok;
  std::string detail;
  bool ok() const noexcept { return v == verdict::ok; }
};

/// Returns the member `user`, or nullptr.
const member* find_member(const circle& c, const std::string& user);
member* find_member(circle& c, const std::string& user);

decision can_join(const circle& c, const std::string& user);
decision can_start(const circle& c, const std::string& user);
decision can_contribute(const circle& c, const std::string& user);
/// `admin`: the caller is an admin (who may pay out any circle).
decision can_payout(const circle& c, const std::string& user, bool admin);

/// Fixes the payout order at start: positions 1..n by join order, or in
/// the order `shuffled` gives (a permutation of 0..n-1 of the members
/// sorted by join order) for "random".
void assign_positions(circle& c, const std::vector<size_t>& shuffled);

/// Returns the user id of this round's recipient ("" if none).
std::string recipient(const circle& c);

/// Returns true if every member has paid the current round.
bool all_paid(const circle& c);

/// The length of one period of `frequency` in ms, given the length of a
/// day (config circle_day_ms): daily 1, weekly 7, monthly 30 days.
int64_t period_ms(const std::string& frequency, int64_t day_ms);

/// When round `round` (1..) is due: the end of its period from the start.
int64_t due_at_ms(const circle& c, int32_t round, int64_t day_ms);

/// Records member `user`'s contribution to the current round at `now_ms`
/// (late if after the round's due date); returns whether it was late.
bool record_contribution(circle& c, const std::string& user, int64_t now_ms, int64_t day_ms);

/// Applies a payout of the current round: the recipient has received, the
/// next round begins, or the circle completes after the last round.
void record_payout(circle& c);

/// Undoes record_payout (the recipient's wallet refused the money).
void undo_payout(circle& c, const std::string& recipient_id);

/// When members who have not paid round `round` are reminded: a quarter of
/// a period before its due date.
int64_t reminder_at_ms(const circle& c, int32_t round, int64_t day_ms);

/// The next moment the circle must act on by itself: remind the members
/// who have not paid (before the due date), or tell them it passed.
enum class due_event { none, remind, overdue };
struct due_moment {
  due_event what = due_event::none;
  int64_t at_ms = 0;
};
/// Returns the current round's next due moment not yet acted on (none if
/// the circle is not active, or both went out).
due_moment next_due_moment(const circle& c, int64_t day_ms);

/// Returns the members who have not paid the current round.
std::vector<std::string> unpaid(const circle& c);

} // namespace gm::circle
