// Implements the circle's store.
#include "actors/circle/store.hpp"

#include "actors/circle/circle.hpp"
#include "common/ids.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::circle {

using journal::value;

const journal::table_spec& circles_table() {
  static const journal::table_spec t{
    "circles",
    {{"id", "uuid"}, {"status", "text"}, {"current_round", "integer"}, {"pot", "bigint"},
     {"started_at", "timestamptz"}, {"version", "bigint"}, {"reminded_round", "integer"},
     {"overdue_round", "integer"}},
    {0}, 5, journal::write_mode::update_versioned};
  return t;
}

const journal::table_spec& members_table() {
  static const journal::table_spec t{
    "circle_members",
    {{"circle_id", "uuid"}, {"user_id", "uuid"}, {"joined", "integer"}, {"position", "integer"},
     {"paid_round", "integer"}, {"received_payout", "boolean"}, {"late_count", "integer"},
     {"version", "bigint"}, {"joined_at", "timestamptz"}},
    {0, 1}, 7, journal::write_mode::upsert_versioned};
  return t;
}

journal::row circle_row(const circle& c, int64_t version) {
  return {&circles_table(), version,
          journal::values_of(
            money::id_value(c.id), c.status, value::integer(c.current_round),
            value::integer(c.pot),
            c.started_at_ms == 0 ? value{} : value{rfc3339_of_ms(c.started_at_ms)},
            value::integer(version), value::integer(c.reminded_round),
            value::integer(c.overdue_round))};
}

journal::row member_row(const circle& c, const member& m, int64_t version) {
  return {&members_table(), version,
          journal::values_of(money::id_value(c.id), money::id_value(m.user_id),
                             value::integer(m.joined), value::integer(m.position),
                             value::integer(m.paid_round),
                             std::string{m.received_payout ? "true" : "false"},
                             value::integer(m.late_count), value::integer(version), m.joined_at)};
}

loaded load_rows(pg::connection& c, const std::string& id) {
  loaded l;
  auto r = c.exec(
    "SELECT name, creator_id, contribution_amount, frequency, max_members, payout_order, "
    "auto_payout, status, current_round, pot, "
    "coalesce((extract(epoch FROM started_at) * 1000)::bigint, 0), version, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "reminded_round, overdue_round "
    "FROM circles WHERE id = $1",
    {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty()) return l;
  l.found = true;
  auto& x = l.c;
  x.id = id;
  x.name = r.value(0, 0);
  x.creator_id = r.value(0, 1);
  x.contribution_amount = std::stoll(r.value(0, 2, "0"));
  x.frequency = r.value(0, 3);
  x.max_members = std::stoi(r.value(0, 4, "0"));
  x.payout_order = r.value(0, 5);
  x.auto_payout = r.value(0, 6) == "t";
  x.status = r.value(0, 7);
  x.current_round = std::stoi(r.value(0, 8, "0"));
  x.pot = std::stoll(r.value(0, 9, "0"));
  x.started_at_ms = std::stoll(r.value(0, 10, "0"));
  l.version = std::stoll(r.value(0, 11, "0"));
  x.created_at = r.value(0, 12);
  x.reminded_round = std::stoi(r.value(0, 13, "0"));
  x.overdue_round = std::stoi(r.value(0, 14, "0"));
  auto m = c.exec(
    "SELECT user_id, joined, position, paid_round, received_payout, late_count, "
    "to_char(joined_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM circle_members WHERE circle_id = $1 ORDER BY joined",
    {id});
  if (!m.ok()) {
    l.error = m.error;
    return l;
  }
  for (size_t i = 0; i < m.rows.size(); ++i) {
    member mb;
    mb.user_id = m.value(i, 0);
    mb.joined = std::stoi(m.value(i, 1, "0"));
    mb.position = std::stoi(m.value(i, 2, "0"));
    mb.paid_round = std::stoi(m.value(i, 3, "0"));
    mb.received_payout = m.value(i, 4) == "t";
    mb.late_count = std::stoi(m.value(i, 5, "0"));
    mb.joined_at = m.value(i, 6);
    x.members.push_back(std::move(mb));
  }
  money::load_pending(c, type, id, l.moves, l.error);
  return l;
}

} // namespace gm::circle
