// Implements the gig contract's rules.
#include "actors/contract/rules.hpp"

namespace gm::contract {

party party_of(const contract& c, const std::string& user, const std::string& role) {
  if (user == c.client_id) return party::client;
  if (user == c.hustler_id) return party::hustler;
  if (role == "admin") return party::admin;
  return party::stranger;
}

bool shown(const contract& c) {
  return !c.status.empty() && c.status != "opening" && c.status != "void";
}

bool parse_action(const std::string& s, action& out) {
  if (s == "deliver") {
    out = action::deliver;
  } else if (s == "approve") {
    out = action::approve;
  } else if (s == "dispute") {
    out = action::dispute;
  } else if (s == "resolve") {
    out = action::resolve;
  } else {
    return false;
  }
  return true;
}

namespace {

decision no(verdict v, std::string detail) {
  return {v, std::move(detail)};
}

bool ended(const contract& c) {
  return c.status == "completed" || c.status == "refunded";
}

} // namespace

decision can(const contract& c, action a, party p) {
  if (!shown(c) || p == party::stranger) return no(verdict::not_found, "no such contract");
  switch (a) {
    case action::deliver:
      if (p != party::hustler) return no(verdict::forbidden, "only the hustler delivers");
      break;
    case action::approve:
      if (p != party::client) return no(verdict::forbidden, "only the client approves");
      break;
    case action::dispute:
      if (p != party::client && p != party::hustler) {
        return no(verdict::forbidden, "only a party to the contract disputes it");
      }
      break;
    case action::resolve:
      if (p != party::admin) return no(verdict::forbidden, "only an admin resolves a dispute");
      break;
    case action::review:
      if (p != party::client && p != party::hustler) {
        return no(verdict::forbidden, "only a party to the contract reviews it");
      }
      if (!ended(c)) return no(verdict::conflict, "a contract is reviewed once it has ended");
      if ((p == party::client && c.client_reviewed) ||
          (p == party::hustler && c.hustler_reviewed)) {
        return no(verdict::conflict, "you have already reviewed this contract");
      }
      return {};
  }
  if (!c.settling.empty()) {
    return no(verdict::conflict, "the escrow's " + c.settling + " is under way");
  }
  switch (a) {
    case action::deliver:
      if (c.status != "active") return no(verdict::conflict, "the contract is " + c.status);
      break;
    case action::approve:
      if (c.status != "delivered") {
        return no(verdict::conflict, "only a delivered contract is approved; it is " + c.status);
      }
      break;
    case action::dispute:
      if (c.status != "active" && c.status != "delivered") {
        return no(verdict::conflict, "the contract is " + c.status);
      }
      break;
    case action::resolve:
      if (c.status != "disputed") return no(verdict::conflict, "the contract is not disputed");
      break;
    case action::review:
      break;
  }
  return {};
}

std::string status_after(action a, const std::string& release_to) {
  switch (a) {
    case action::deliver: return "delivered";
    case action::approve: return "completed";
    case action::dispute: return "disputed";
    case action::resolve: return release_to == "client" ? "refunded" : "completed";
    case action::review: return "";
  }
  return "";
}

std::string move_of(action a, const std::string& release_to) {
  if (a == action::approve) return "release";
  if (a == action::resolve) return release_to == "client" ? "refund" : "release";
  return "";
}

bool auto_release_due(const contract& c, int64_t now_ms) {
  return c.status == "delivered" && c.settling.empty() && c.auto_release_at_ms > 0 &&
         now_ms >= c.auto_release_at_ms;
}

int64_t auto_release_at(int64_t now_ms, int64_t after_ms) {
  return now_ms > INT64_MAX - after_ms ? INT64_MAX : now_ms + after_ms;
}

} // namespace gm::contract
