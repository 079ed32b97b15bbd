// Implements the room's store.
#include "actors/room/store.hpp"

#include <nlohmann/json.hpp>

#include "actors/money/moves.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::room {

using journal::value;

namespace {

constexpr const char* rfc3339_sql = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

} // namespace

const journal::table_spec& members_table() {
  static const journal::table_spec t{
    "room_members",
    {{"room_id", "uuid"}, {"user_id", "uuid"}, {"joined", "integer"}, {"read_seq", "bigint"},
     {"version", "bigint"}, {"joined_at", "timestamptz"}},
    {0, 1}, 4, journal::write_mode::upsert_versioned};
  return t;
}

const journal::table_spec& messages_table() {
  static const journal::table_spec t{
    "room_messages",
    {{"room_id", "uuid"}, {"seq", "bigint"}, {"id", "uuid"}, {"sender_id", "uuid"},
     {"text", "text"}, {"created_at", "timestamptz"}},
    {0, 1}, 0, journal::write_mode::insert_once};
  return t;
}

journal::row member_row(const std::string& room_id, const member& m, int64_t version) {
  return {&members_table(), version,
          journal::values_of(money::id_value(room_id), money::id_value(m.user_id),
                             value::integer(m.joined), value::integer(m.read_seq),
                             value::integer(version), m.joined_at)};
}

journal::row message_row(const std::string& room_id, const message& m) {
  return {&messages_table(), m.seq,
          journal::values_of(money::id_value(room_id), value::integer(m.seq),
                             money::id_value(m.id), money::id_value(m.sender_id), m.text,
                             m.created_at),
          true};
}

std::string message_json(const std::string& room_id, const message& m) {
  nlohmann::json j = {{"id", m.id},           {"room_id", room_id}, {"sender_id", m.sender_id},
                      {"text", m.text},       {"seq", m.seq},       {"created_at", m.created_at}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

loaded load_rows(pg::connection& c, const std::string& id) {
  loaded l;
  auto r = c.exec(std::string{"SELECT name, creator_id, to_char(created_at AT TIME ZONE 'UTC', "} +
                    rfc3339_sql +
                    "), (SELECT coalesce(max(seq), 0) FROM room_messages WHERE room_id = $1) "
                    "FROM rooms WHERE id = $1",
                  {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty()) return l;
  l.found = true;
  l.r.id = id;
  l.r.name = r.value(0, 0);
  l.r.creator_id = r.value(0, 1);
  l.r.created_at = r.value(0, 2);
  l.r.last_seq = std::stoll(r.value(0, 3, "0"));
  auto m = c.exec(std::string{"SELECT user_id, joined, read_seq, version, "
                              "to_char(joined_at AT TIME ZONE 'UTC', "} +
                    rfc3339_sql + ") FROM room_members WHERE room_id = $1 ORDER BY joined",
                  {id});
  if (!m.ok()) {
    l.error = m.error;
    return l;
  }
  for (size_t i = 0; i < m.rows.size(); ++i) {
    member x;
    x.user_id = m.value(i, 0);
    x.joined = std::stoi(m.value(i, 1, "0"));
    x.read_seq = std::stoll(m.value(i, 2, "0"));
    l.version = std::max<int64_t>(l.version, std::stoll(m.value(i, 3, "0")));
    x.joined_at = m.value(i, 4);
    l.r.members.push_back(std::move(x));
  }
  reindex(l.r);
  return l;
}

bool read_messages(pg::connection& c, const std::string& id, bool newest_first, int64_t before,
                   int64_t after, int64_t upto, int64_t limit, std::vector<message>& out,
                   std::string& error) {
  std::string cols = std::string{"SELECT id, sender_id, text, seq, to_char(created_at AT TIME "
                                 "ZONE 'UTC', "} +
                     rfc3339_sql + ") FROM room_messages WHERE room_id = $1 ";
  auto r = newest_first
             ? c.exec(cols + "AND seq < $2 ORDER BY seq DESC LIMIT $3",
                      {id, std::to_string(before), std::to_string(limit)})
             : c.exec(cols + "AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
                      {id, std::to_string(after), std::to_string(upto), std::to_string(limit)});
  if (!r.ok()) {
    error = r.error;
    return false;
  }
  for (size_t i = 0; i < r.rows.size(); ++i) {
    message m;
    m.id = r.value(i, 0);
    m.sender_id = r.value(i, 1);
    m.text = r.value(i, 2);
    m.seq = std::stoll(r.value(i, 3, "0"));
    m.created_at = r.value(i, 4);
    out.push_back(std::move(m));
  }
  return true;
}

} // namespace gm::room
