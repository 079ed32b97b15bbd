// Implements the delivery task's store.
#include "actors/task/store.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "actors/money/moves.hpp"
#include "common/ids.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::task {

using journal::value;
using nlohmann::json;

namespace {

value number(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.8f", x);
  return value{std::string{buf}};
}

value text_or_null(bool has, const std::string& s) {
  return has ? value{s} : value{};
}

value time_or_null(int64_t us) {
  return us == 0 ? value{} : value{rfc3339_of_us(us)};
}

/// The columns load and list read, in the order from_row takes them.
const char* columns() {
  return "id, creator_id, status, fee, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, "
         "description, coalesce(rider_id::text, ''), coalesce(offered_to::text, ''), "
         "coalesce((extract(epoch FROM offer_until) * 1000)::bigint, 0), offers, tried, "
         "settling, coalesce(settle_by::text, ''), proof, "
         "coalesce((extract(epoch FROM due_at) * 1000)::bigint, 0), coalesce(on_time, false), "
         "coalesce(dispatch_us, 0), "
         "(extract(epoch FROM created_at) * 1000000)::bigint, "
         "coalesce((extract(epoch FROM offered_at) * 1000000)::bigint, 0), "
         "coalesce((extract(epoch FROM assigned_at) * 1000000)::bigint, 0), "
         "coalesce((extract(epoch FROM picked_up_at) * 1000000)::bigint, 0), "
         "coalesce((extract(epoch FROM completed_at) * 1000000)::bigint, 0), "
         "coalesce((extract(epoch FROM canceled_at) * 1000000)::bigint, 0), version";
}

task from_row(const pg::result& r, size_t i, int64_t& version) {
  task t;
  auto i64 = [&](size_t col) { return std::stoll(r.value(i, col, "0")); };
  t.id = r.value(i, 0);
  t.creator_id = r.value(i, 1);
  t.status = r.value(i, 2);
  t.fee = i64(3);
  t.pickup_lat = std::stod(r.value(i, 4, "0"));
  t.pickup_lng = std::stod(r.value(i, 5, "0"));
  t.dropoff_lat = std::stod(r.value(i, 6, "0"));
  t.dropoff_lng = std::stod(r.value(i, 7, "0"));
  t.has_description = r.rows[i][8].has_value();
  t.description = r.value(i, 8);
  t.rider_id = r.value(i, 9);
  t.offered_to = r.value(i, 10);
  t.offer_until_ms = i64(11);
  t.offers = static_cast<int32_t>(i64(12));
  t.tried = split_ids(r.value(i, 13));
  t.settling = r.value(i, 14);
  t.settle_by = r.value(i, 15);
  t.has_proof = r.rows[i][16].has_value();
  t.proof = r.value(i, 16);
  t.due_at_ms = i64(17);
  t.on_time = r.value(i, 18) == "t";
  t.dispatch_us = i64(19);
  t.created_us = i64(20);
  t.offered_us = i64(21);
  t.assigned_us = i64(22);
  t.picked_up_us = i64(23);
  t.completed_us = i64(24);
  t.canceled_us = i64(25);
  version = i64(26);
  return t;
}

} // namespace

const journal::table_spec& tasks_table() {
  static const journal::table_spec t{
    "tasks",
    {{"id", "uuid"}, {"creator_id", "uuid"}, {"status", "text"}, {"fee", "bigint"},
     {"pickup_lat", "double precision"}, {"pickup_lng", "double precision"},
     {"dropoff_lat", "double precision"}, {"dropoff_lng", "double precision"},
     {"description", "text"}, {"rider_id", "uuid"}, {"offered_to", "uuid"},
     {"offer_until", "timestamptz"}, {"offers", "integer"}, {"tried", "text"},
     {"settling", "text"}, {"settle_by", "uuid"}, {"proof", "text"}, {"due_at", "timestamptz"},
     {"on_time", "boolean"}, {"dispatch_us", "bigint"}, {"created_at", "timestamptz"},
     {"offered_at", "timestamptz"}, {"assigned_at", "timestamptz"},
     {"picked_up_at", "timestamptz"}, {"completed_at", "timestamptz"},
     {"canceled_at", "timestamptz"}, {"version", "bigint"}, {"updated_at", "timestamptz"}},
    {0}, 26, journal::write_mode::upsert_versioned};
  return t;
}

journal::row task_row(const task& t, int64_t version) {
  return {&tasks_table(), version,
          journal::values_of(
            money::id_value(t.id), money::id_value(t.creator_id), t.status, value::integer(t.fee),
            number(t.pickup_lat), number(t.pickup_lng), number(t.dropoff_lat),
            number(t.dropoff_lng), text_or_null(t.has_description, t.description),
            money::id_value(t.rider_id), money::id_value(t.offered_to),
            t.offer_until_ms == 0 ? value{} : value{rfc3339_of_ms(t.offer_until_ms)},
            value::integer(t.offers), join_ids(t.tried), t.settling, money::id_value(t.settle_by),
            text_or_null(t.has_proof, t.proof),
            t.due_at_ms == 0 ? value{} : value{rfc3339_of_ms(t.due_at_ms)},
            t.status == "completed" ? value{std::string{t.on_time ? "true" : "false"}} : value{},
            t.dispatch_us == 0 ? value{} : value::integer(t.dispatch_us),
            rfc3339_of_us(t.created_us), time_or_null(t.offered_us), time_or_null(t.assigned_us),
            time_or_null(t.picked_up_us), time_or_null(t.completed_us),
            time_or_null(t.canceled_us), value::integer(version), now_rfc3339())};
}

std::string render(const task& t, int64_t version) {
  json j = {{"id", t.id},
            {"status", t.status},
            {"creator_id", t.creator_id},
            {"fee", t.fee},
            {"pickup", {{"lat", t.pickup_lat}, {"lng", t.pickup_lng}}},
            {"dropoff", {{"lat", t.dropoff_lat}, {"lng", t.dropoff_lng}}},
            {"offers", t.offers},
            {"created_at", rfc3339_of_us(t.created_us)},
            {"version", version}};
  if (t.has_description) j["description"] = t.description;
  if (!t.rider_id.empty()) j["rider_id"] = t.rider_id;
  if (t.status == "offered") {
    j["offered_to"] = t.offered_to;
    j["offer_expires_at"] = rfc3339_of_ms(t.offer_until_ms);
  }
  auto at = [&j](const char* name, int64_t us) {
    if (us != 0) j[name] = rfc3339_of_us(us);
  };
  at("offered_at", t.offered_us);
  at("assigned_at", t.assigned_us);
  at("picked_up_at", t.picked_up_us);
  at("completed_at", t.completed_us);
  at("canceled_at", t.canceled_us);
  if (t.due_at_ms != 0) j["due_at"] = rfc3339_of_ms(t.due_at_ms);
  if (t.status == "completed") j["on_time"] = t.on_time;
  if (t.has_proof) j["proof"] = t.proof;
  if (t.dispatch_us != 0) j["dispatch_ms"] = static_cast<double>(t.dispatch_us) / 1000.0;
  if (t.settling == "pay") j["payment"] = "under way";
  if (t.settling == "refund") j["refund"] = "under way";
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

loaded load_rows(pg::connection& c, const std::string& id) {
  loaded l;
  auto r = c.exec(std::string{"SELECT "} + columns() + " FROM tasks WHERE id = $1", {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty()) return l;
  l.found = true;
  l.t = from_row(r, 0, l.version);
  return l;
}

bool list(pg::connection& c, const list_query& q, std::vector<std::string>& out,
          std::string& error) {
  std::string sql = std::string{"SELECT "} + columns() +
                    " FROM tasks WHERE status NOT IN ('opening', 'void')";
  pg::params p;
  if (!q.everyone) {
    p.push_back(q.user);
    sql += " AND (creator_id = $1 OR rider_id = $1)";
  }
  if (!q.status.empty()) {
    p.push_back(q.status);
    sql += " AND status = $" + std::to_string(p.size());
  }
  sql += " ORDER BY created_at DESC, id LIMIT " + std::to_string(q.limit) + " OFFSET " +
         std::to_string(q.offset);
  auto r = c.exec(sql, p);
  if (!r.ok()) {
    error = r.error;
    return false;
  }
  for (size_t i = 0; i < r.rows.size(); ++i) {
    int64_t version = 0;
    out.push_back(render(from_row(r, i, version), version));
  }
  return true;
}

} // namespace gm::task
