// Implements the rider's store.
#include "actors/rider/store.hpp"

#include <cstdio>

#include "actors/money/moves.hpp"
#include "common/ids.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::rider {

using journal::value;

namespace {

value number(double x) {
  if (std::isnan(x)) return value{};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.8f", x);
  return value{std::string{buf}};
}

double number_of(const std::string& s) {
  return s.empty() ? NAN : std::stod(s);
}

} // namespace

const journal::table_spec& riders_table() {
  static const journal::table_spec t{
    "riders",
    {{"user_id", "uuid"}, {"status", "text"}, {"lat", "double precision"},
     {"lng", "double precision"}, {"heading", "double precision"}, {"speed", "double precision"},
     {"located_at", "timestamptz"}, {"region", "text"}, {"rating", "double precision"},
     {"xp", "bigint"}, {"level", "integer"}, {"completed_tasks", "bigint"}, {"task_id", "uuid"},
     {"version", "bigint"}, {"offer_task_id", "uuid"}, {"offer_until", "timestamptz"}},
    {0}, 13, journal::write_mode::upsert_versioned};
  return t;
}

journal::row rider_row(const std::string& id, const profile& p, int64_t version) {
  return {&riders_table(), version,
          journal::values_of(
            money::id_value(id), p.status, p.located ? number(p.lat) : value{},
            p.located ? number(p.lng) : value{}, number(p.heading), number(p.speed),
            p.located_at_ms == 0 ? value{} : value{rfc3339_of_ms(p.located_at_ms)},
            p.region.empty() ? value{} : value{p.region}, number(p.rating), value::integer(p.xp),
            value::integer(p.level), value::integer(p.completed_tasks),
            money::id_value(p.task_id), value::integer(version),
            money::id_value(p.offer_task),
            p.offer_until_ms == 0 ? value{} : value{rfc3339_of_ms(p.offer_until_ms)})};
}

loaded load_rows(pg::connection& c, const std::string& id) {
  loaded l;
  auto r = c.exec(
    "SELECT u.role, r.status, r.lat, r.lng, r.heading, r.speed, "
    "coalesce((extract(epoch FROM r.located_at) * 1000)::bigint, 0), r.region, "
    "coalesce(r.xp, 0), coalesce(r.level, 1), coalesce(r.completed_tasks, 0), r.task_id, "
    "coalesce(r.version, 0), "
    "(SELECT coalesce(avg(rating), 0) FROM reviews WHERE reviewee_id = u.id), "
    "coalesce(r.offer_task_id::text, ''), "
    "coalesce((extract(epoch FROM r.offer_until) * 1000)::bigint, 0) "
    "FROM users u LEFT JOIN riders r ON r.user_id = u.id WHERE u.id = $1",
    {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty() || r.value(0, 0) != "rider") return l;
  l.found = true;
  auto& p = l.p;
  p.status = r.value(0, 1, "offline");
  if (p.status.empty()) p.status = "offline";
  p.located = !r.value(0, 2).empty();
  p.lat = p.located ? std::stod(r.value(0, 2)) : 0;
  p.lng = p.located ? std::stod(r.value(0, 3)) : 0;
  p.heading = number_of(r.value(0, 4));
  p.speed = number_of(r.value(0, 5));
  p.located_at_ms = std::stoll(r.value(0, 6, "0"));
  p.region = r.value(0, 7);
  p.xp = std::stoll(r.value(0, 8, "0"));
  p.level = std::stoi(r.value(0, 9, "1"));
  p.completed_tasks = std::stoll(r.value(0, 10, "0"));
  p.task_id = r.value(0, 11);
  l.version = std::stoll(r.value(0, 12, "0"));
  p.rating = std::stod(r.value(0, 13, "0"));
  p.offer_task = r.value(0, 14);
  p.offer_until_ms = std::stoll(r.value(0, 15, "0"));
  return l;
}

} // namespace gm::rider
