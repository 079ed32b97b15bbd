// A gig contract's rules, as plain functions over plain data: who may take
// which step in which state, and when the delivery deadline releases the
// escrow by itself. The entity (entity.cpp) applies them; the unit tests
// exercise them without an actor system.
//
// The contract's life (API.md's statuses; `opening` and `void` are the
// entity's own and never shown):
//
//   accept (gig owner) ─▶ opening ── escrow lock refused ─▶ void (as if never)
//                            │ locked (agreed_price: client's available → escrow)
//                            ▼
//                         active ── deliver (hustler) ─▶ delivered ── approve (client),
//                            │                              │         or the deadline
//                            │ dispute (either party)       │         (contract_auto_release)
//                            ▼                              │         ──▶ completed
//                         disputed ◀── dispute (either) ────┘             (released to
//                            │                                             the hustler)
//                            ├── resolve (admin), release_to hustler ─▶ completed
//                            └── resolve (admin), release_to client  ─▶ refunded
//                                                                       (back to the
//                                                                        client)
//
// A step that moves money (approve, the deadline, resolve) is decided
// first (`settling` names its move, durably), then made by the client's
// wallet under an id derived from the contract and the decision; the status
// changes when the wallet answers. Activation finishes a decided move.
// Reviews: each party once, after completed or refunded.
#pragma once

#include <cstdint>
#include <string>

namespace gm::contract {

struct contract {
  std::string id;
  std::string gig_id;
  std::string proposal_id;
  std::string client_id;
  std::string hustler_id;
  std::string title;
  int64_t agreed_price = 0;
  int32_t delivery_days = 0;
  std::string status;    // "" (no row), opening, void, active, delivered, disputed, completed, refunded
  std::string settling;  // "", lock, release, refund
  std::string settle_by;  // who decided the move in `settling` ("" the deadline)
  std::string delivery_note;
  std::string dispute_reason;
  std::string disputed_by;
  std::string resolution;  // hustler, client, auto
  std::string delivered_at;
  int64_t auto_release_at_ms = 0;  // 0: none
  std::string completed_at;
  bool client_reviewed = false;
  bool hustler_reviewed = false;
  std::string created_at;
};

/// Who the caller is to this contract.
enum class party { stranger, client, hustler, admin };

party party_of(const contract& c, const std::string& user, const std::string& role);

/// Is the contract shown at all (not before its escrow is locked)?
bool shown(const contract& c);

enum class verdict { ok, not_found, forbidden, conflict, invalid };

struct decision {
  verdict v = verdict::ok;
  std::string detail;
  bool ok() const { return v == verdict::ok; }
};

enum class action { deliver, approve, dispute, resolve, review };

/// Returns the action named `s` (deliver, approve, dispute, resolve), or
/// false.
bool parse_action(const std::string& s, action& out);

/// May `p` take `a` now? Strangers never see the contract (not_found); a
/// party that may not take this step is forbidden; the wrong state (or a
/// move under way) is a conflict.
decision can(const contract& c, action a, party p);

/// The status a step leads to (resolve: by `release_to`).
std::string status_after(action a, const std::string& release_to);

/// The escrow move a step makes: "release", "refund", or "" (none).
std::string move_of(action a, const std::string& release_to);

/// Is the delivery deadline past, so that the contract releases the escrow
/// by itself?
bool auto_release_due(const contract& c, int64_t now_ms);

/// The deadline of a delivery at `now_ms`.
int64_t auto_release_at(int64_t now_ms, int64_t after_ms);

} // namespace gm::contract
