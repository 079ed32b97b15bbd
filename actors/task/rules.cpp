// Implements a delivery task's rules.
#include "actors/task/rules.hpp"

#include <algorithm>
#include <cmath>

namespace gm::task {

caller caller_of(const task& t, const std::string& user, const std::string& role) {
  caller c;
  if (user.empty()) return c;
  c.creator = user == t.creator_id;
  c.rider = !t.rider_id.empty() && user == t.rider_id;
  c.offered = t.status == "offered" && user == t.offered_to;
  c.staff = role == "dispatcher" || role == "admin";
  return c;
}

bool shown(const task& t) {
  return !t.status.empty() && t.status != "opening" && t.status != "void";
}

bool parse_action(const std::string& s, action& out) {
  static const std::pair<const char*, action> names[] = {
    {"accept", action::accept},     {"decline", action::decline}, {"pickup", action::pickup},
    {"complete", action::complete}, {"cancel", action::cancel},   {"assign", action::assign}};
  for (auto& [name, a] : names) {
    if (s == name) {
      out = a;
      return true;
    }
  }
  return false;
}

namespace {

decision no(verdict v, std::string why) {
  return {v, std::move(why)};
}

} // namespace

decision can(const task& t, action what, const caller& who, int64_t now_ms) {
  if (!shown(t) || !who.any()) return no(verdict::not_found, "no such task");
  const auto& s = t.status;
  switch (what) {
    case action::accept:
    case action::decline:
      if (!who.offered) {
        return no(verdict::forbidden, "only the rider the task is offered to may answer its offer");
      }
      if (!t.settling.empty()) return no(verdict::conflict, "the task is being canceled");
      if (offer_expired(t, now_ms)) return no(verdict::conflict, "the offer has run out");
      return {};
    case action::pickup:
    case action::complete:
      if (!who.rider) return no(verdict::forbidden, "only the task's rider may do this");
      if (!t.settling.empty()) return no(verdict::conflict, "the task's payment is under way");
      if (what == action::pickup && s != "assigned") {
        return no(verdict::conflict, s == "picked_up" ? "the task has been picked up already"
                                                      : "the task is " + s);
      }
      if (what == action::complete && s != "picked_up") {
        return no(verdict::conflict,
                  s == "assigned" ? "pick the task up first" : "the task is " + s);
      }
      return {};
    case action::cancel:
      if (!who.creator && !who.staff) {
        return no(verdict::forbidden, "only the task's creator or a dispatcher may cancel it");
      }
      if (!t.settling.empty()) return no(verdict::conflict, "a payment of the task is under way");
      if (s == "picked_up") return no(verdict::conflict, "a task cannot be canceled after pickup");
      if (s != "pending" && s != "offered" && s != "assigned" && s != "unassigned") {
        return no(verdict::conflict, "the task is " + s);
      }
      return {};
    case action::assign:
      if (!who.staff) return no(verdict::forbidden, "only dispatchers assign tasks");
      if (!t.settling.empty()) return no(verdict::conflict, "a payment of the task is under way");
      if (s != "pending" && s != "offered" && s != "unassigned") {
        return no(verdict::conflict, "the task is " + s);
      }
      return {};
  }
  return no(verdict::conflict, "not a step of a task");
}

std::string move_of(action what) {
  if (what == action::complete) return "pay";
  if (what == action::cancel) return "refund";
  return "";
}

bool offer_expired(const task& t, int64_t now_ms) {
  return t.status == "offered" && now_ms >= t.offer_until_ms;
}

double distance_m(double lat1, double lng1, double lat2, double lng2) {
  constexpr double r = 6371008.8;  // mean Earth radius
  constexpr double rad = M_PI / 180;
  double dlat = (lat2 - lat1) * rad;
  double dlng = (lng2 - lng1) * rad;
  double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * rad) * std::cos(lat2 * rad) * std::sin(dlng / 2) * std::sin(dlng / 2);
  return 2 * r * std::asin(std::min(1.0, std::sqrt(a)));
}

int64_t due_at_ms(const task& t, int64_t assigned_ms) {
  constexpr int64_t handling_ms = 15 * 60 * 1000;
  constexpr double meters_per_ms = 15000.0 / 3600000.0;
  auto meters = distance_m(t.pickup_lat, t.pickup_lng, t.dropoff_lat, t.dropoff_lng);
  return assigned_ms + handling_ms + static_cast<int64_t>(std::ceil(meters / meters_per_ms));
}

bool delivered_on_time(const task& t, int64_t completed_ms) {
  return t.due_at_ms != 0 && completed_ms <= t.due_at_ms;
}

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (auto& id : ids) {
    if (!out.empty()) out += ',';
    out += id;
  }
  return out;
}

std::vector<std::string> split_ids(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    auto comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

bool is_status(const std::string& s) {
  static const char* all[] = {"pending",   "offered",   "assigned",  "picked_up",
                              "completed", "canceled",  "unassigned"};
  return std::any_of(std::begin(all), std::end(all), [&](const char* x) { return s == x; });
}

} // namespace gm::task
