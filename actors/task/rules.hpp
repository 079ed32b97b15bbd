// A delivery task's rules, as plain functions over plain data: who may take
// which step in which state, when an offer has run out, when a delivery is
// due. The entity (entity.cpp) applies them; the unit tests exercise them
// without an actor system (tests/actors/task_rules_test.cpp).
//
// The task's life (API.md's statuses; `opening` and `void` are the
// entity's own and never shown):
//
//   create (client or dispatcher) ─▶ opening ── fee lock refused ─▶ void (as if never: 409)
//                                       │ fee locked (creator's available → escrow)
//                                       ▼
//        ┌─────────────────────────▶ pending ── no candidate left, or
//        │ decline, or the offer        │       dispatch_max_offers made ─▶ unassigned
//        │ runs out (the next           │ the best candidate holds the offer     │
//        │ candidate)                   ▼                                        │
//        └─────────────────────────── offered                                    │
//                                       │ accept (the rider offered it)          │
//                                       ▼                                        │
//              assign (dispatcher) ─▶ assigned ◀──── assign (dispatcher) ────────┘
//              from pending/offered     │ pickup (its rider)
//                                       ▼
//                                   picked_up ── complete (its rider) ─▶ completed
//                                                 (fee: creator's escrow → the rider's
//                                                  wallet, as `earning`; XP awarded)
//
//   cancel (creator, dispatcher, admin) from pending, offered, assigned or
//   unassigned ─▶ canceled (fee: escrow → back to the creator). Not after
//   pickup.
//
// A step that moves money (create, complete, cancel) is decided first
// (`settling` names the move, durably), then made by the creator's wallet
// under an id derived from the task and the decision; the status changes
// when the wallet answers. Activation finishes a decided move, re-arms an
// offer's timeout, or resumes a dispatch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm::task {

struct task {
  std::string id;
  std::string creator_id;
  std::string status;    // "" (no row), opening, void, pending, offered, assigned, picked_up,
                         // completed, canceled, unassigned
  int64_t fee = 0;
  double pickup_lat = 0, pickup_lng = 0, dropoff_lat = 0, dropoff_lng = 0;
  std::string description;
  bool has_description = false;
  std::string rider_id;    // assigned (assigned, picked_up, completed)
  std::string offered_to;  // offered
  int64_t offer_until_ms = 0;
  int32_t offers = 0;
  std::vector<std::string> tried;  // riders offered it so far
  std::string settling;  // "", lock, pay, refund
  std::string settle_by;
  std::string proof;
  bool has_proof = false;
  int64_t due_at_ms = 0;  // set at assignment
  bool on_time = false;   // completed
  int64_t dispatch_us = 0;  // the latest offer: dispatch start → offer sent
  // Unix microseconds (0: not yet).
  int64_t created_us = 0, offered_us = 0, assigned_us = 0, picked_up_us = 0, completed_us = 0,
          canceled_us = 0;
};

/// Who the caller is to this task (a user may be several: a dispatcher who
/// created it).
struct caller {
  bool creator = false;
  bool rider = false;    // the assigned rider
  bool offered = false;  // the rider it is offered to now
  bool staff = false;    // dispatcher or admin
  bool any() const { return creator || rider || offered || staff; }
};

caller caller_of(const task& t, const std::string& user, const std::string& role);

/// Is the task shown at all (not before its fee is locked)?
bool shown(const task& t);

enum class verdict { ok, not_found, forbidden, conflict };

struct decision {
  verdict v = verdict::ok;
  std::string detail;
  bool ok() const { return v == verdict::ok; }
};

enum class action { accept, decline, pickup, complete, cancel, assign };

/// Returns the action named `s`, or false.
bool parse_action(const std::string& s, action& out);

/// May `who` take step `what` now (Unix ms `now_ms`)? Those who may not see
/// the task get not_found; those who see it but may not take the step,
/// forbidden; a step the task's state does not allow, conflict.
decision can(const task& t, action what, const caller& who, int64_t now_ms);

/// The money move a step decides ("pay", "refund"), or "" for none.
std::string move_of(action what);

/// Has the offer run out at `now_ms`?
bool offer_expired(const task& t, int64_t now_ms);

/// Returns the great-circle distance between two points, in meters.
double distance_m(double lat1, double lng1, double lat2, double lng2);

/// When a task assigned at `assigned_ms` is due: a quarter of an hour to
/// reach the pickup and hand over, plus its pickup → dropoff distance at
/// 15 km/h (a rider in city traffic).
int64_t due_at_ms(const task& t, int64_t assigned_ms);

/// Was the task delivered on time (completed at `completed_ms`)?
bool delivered_on_time(const task& t, int64_t completed_ms);

/// `tried` as stored (comma-separated ids) and back.
std::string join_ids(const std::vector<std::string>& ids);
std::vector<std::string> split_ids(const std::string& s);

/// The statuses a list may filter by.
bool is_status(const std::string& s);

} // namespace gm::task
