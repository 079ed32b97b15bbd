// The Chat rooms routes of API.md, and two that chat users expect beside
// them: "my rooms" with unread counts, and moving one's read marker. A room
// is created here (its row and its members' rows, in one statement); from
// then on the room entity owns it. History and "my rooms" read PostgreSQL:
// every acknowledged message is there (the room answers only once its row
// committed).
#include <algorithm>
#include <unordered_set>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/room/room.hpp"
#include "actors/room/store.hpp"
#include "actors/router.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway {

namespace {

using nlohmann::json;

// The most members a room may be created with (more may join after).
constexpr size_t max_invited = 100;
// "My rooms" counts at most this many unread messages per room.
constexpr int64_t max_unread_counted = 10000;

std::optional<actors::entity_ref> room_of(const request& rq, const respond_fn& respond) {
  auto id = rq.path_params.at("id");
  if (!is_uuid(id)) {
    respond(problem(404, "not-found", "Not Found", "no such room"));
    return std::nullopt;
  }
  return actors::entity_ref{room::type, lower_uuid(id)};
}

template <class Cmd>
actor_handler ask_room(int ok_status, std::function<Cmd(const request&)> make) {
  return [ok_status, make](caf::event_based_actor* self, request& rq, respond_fn respond) {
    auto ref = room_of(rq, respond);
    if (!ref) return;
    ask_entity(self, *ref, caf::make_message(make(rq)), ok_status, std::move(respond));
  };
}

void create(caf::event_based_actor* self, api_context_ptr ctx, request& rq, respond_fn respond) {
  const auto& b = *rq.json;
  // The creator first, then the invited in the order given, each once.
  std::vector<std::string> members{rq.user_id};
  std::unordered_set<std::string> seen{rq.user_id};
  if (b.contains("member_ids")) {
    for (auto& m : b["member_ids"]) {
      auto id = lower_uuid(m.get<std::string>());
      if (seen.insert(id).second) members.push_back(id);
    }
  }
  std::string array = "{";
  for (size_t i = 0; i < members.size(); ++i) array += (i ? "," : "") + members[i];
  array += "}";
  json doc = {{"id", new_uuid()},
              {"name", b["name"].get<std::string>()},
              {"creator_id", rq.user_id},
              {"members", members},
              {"members_count", members.size()},
              {"last_seq", 0},
              {"read_seq", 0},
              {"unread", 0}};
  with_pool(self, *ctx, respond, [doc, array, respond](std::shared_ptr<pg::pool> pool) mutable {
    bool queued = pool->submit([doc, array, respond](pg::connection& c) mutable {
      // Every member must be a user; then the room and its members, in one
      // statement (one transaction).
      auto r = c.exec(
        "WITH want AS (SELECT u, n FROM unnest($4::uuid[]) WITH ORDINALITY AS t(u, n)), "
        "missing AS (SELECT w.u FROM want w WHERE NOT EXISTS "
        "  (SELECT 1 FROM users x WHERE x.id = w.u)), "
        "room AS (INSERT INTO rooms (id, name, creator_id, created_at) "
        "  SELECT $1, $2, $3, now() WHERE NOT EXISTS (SELECT 1 FROM missing) "
        "  RETURNING created_at), "
        "mem AS (INSERT INTO room_members (room_id, user_id, joined, read_seq, version, joined_at) "
        "  SELECT $1, w.u, w.n, 0, 1, room.created_at FROM want w, room RETURNING 1) "
        "SELECT (SELECT to_char(created_at AT TIME ZONE 'UTC', "
        "  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM room), "
        "(SELECT string_agg(u::text, ',') FROM missing), (SELECT count(*) FROM mem)",
        {doc["id"].get<std::string>(), doc["name"].get<std::string>(),
         doc["creator_id"].get<std::string>(), array});
      if (!r.ok() || r.rows.empty()) {
        gm::log::get("room")->warn("creating a room failed: {}", r.error);
        respond(unavailable("the database is unavailable, retry shortly"));
        return;
      }
      if (r.value(0, 0).empty()) {
        auto missing = r.value(0, 1);
        auto p = problem(422, "invalid-body", "Unprocessable Entity",
                         "member_ids names users that do not exist: " + missing);
        respond(std::move(p));
        return;
      }
      doc["created_at"] = r.value(0, 0);
      respond(json_response(201, doc.dump()));
    });
    if (!queued) respond(unavailable("the database queue is full"));
  });
}

/// The caller's rooms, newest first, with the last seq, the caller's read
/// marker and unread count: the other members' messages after the marker
/// (one's own are read; counted up to max_unread_counted). Read markers are
/// buffered writes, so the read waits until the journal has committed what
/// it holds (read-your-writes).
void list_mine(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
               respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto limit = pg_page->limit;
  auto offset = pg_page->cursor.value_or("0");
  auto uid = rq.user_id;
  auto read = [self, ctx, uid, limit, offset, respond] {
    with_pool(self, *ctx, respond, [uid, limit, offset, respond](std::shared_ptr<pg::pool> pool) {
      bool queued = pool->submit([uid, limit, offset, respond](pg::connection& c) {
        auto r = c.exec(
          "SELECT r.id, r.name, r.creator_id, "
          "(SELECT count(*) FROM room_members x WHERE x.room_id = r.id), "
          "coalesce((SELECT max(seq) FROM room_messages g WHERE g.room_id = r.id), 0), "
          "m.read_seq, to_char(r.created_at AT TIME ZONE 'UTC', "
          "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
          "(SELECT count(*) FROM (SELECT 1 FROM room_messages g WHERE g.room_id = r.id "
          "AND g.seq > m.read_seq AND g.sender_id <> m.user_id LIMIT $4) u) "
          "FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 "
          "ORDER BY r.created_at DESC, r.id LIMIT $2 OFFSET $3",
          {uid, std::to_string(limit + 1), offset, std::to_string(max_unread_counted)});
        if (!r.ok()) {
          gm::log::get("room")->warn("listing rooms failed: {}", r.error);
          respond(unavailable("the database is unavailable, retry shortly"));
          return;
        }
        json items = json::array();
        size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
        for (size_t i = 0; i < n; ++i) {
          auto last = std::stoll(r.value(i, 4, "0"));
          auto read_seq = std::stoll(r.value(i, 5, "0"));
          items.push_back({{"id", r.value(i, 0)},
                           {"name", r.value(i, 1)},
                           {"creator_id", r.value(i, 2)},
                           {"members_count", std::stoll(r.value(i, 3, "0"))},
                           {"last_seq", last},
                           {"read_seq", read_seq},
                           {"unread", std::stoll(r.value(i, 7, "0"))},
                           {"created_at", r.value(i, 6)}});
        }
        json doc = {{"items", std::move(items)}, {"next_cursor", nullptr}};
        if (r.rows.size() > static_cast<size_t>(limit)) {
          doc["next_cursor"] = std::to_string(std::stoll(offset) + limit);
        }
        respond(json_response(200, doc.dump()));
      });
      if (!queued) respond(unavailable("the database queue is full"));
    });
  };
  after_journal_sync(self, respond, read);
}

/// A room's messages, newest first, from PostgreSQL: those before
/// `before_seq` (or the newest), `limit` at a time (1..200, 50).
void history(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
             respond_fn respond) {
  auto ref = room_of(rq, respond);
  if (!ref) return;
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  int64_t before = INT64_MAX;
  auto from = rq.query_param("before_seq");
  if (!from && pg_page->cursor) from = pg_page->cursor;
  if (from) {
    bool digits = !from->empty() && from->size() <= 18 &&
                  std::all_of(from->begin(), from->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoll(*from) < 1) {
      respond(problem(400, "invalid-query", "Bad Request", "before_seq must be a positive integer"));
      return;
    }
    before = std::stoll(*from);
  }
  auto limit = pg_page->limit;
  auto id = ref->id;
  actors::ask(self, *ref, caf::make_message(room::member_cmd{rq.user_id, rq.role}),
              [self, ctx, id, before, limit, respond](actors::entity_reply& r) {
                if (!r.ok()) {
                  respond(entity_response(r, 200));
                  return;
                }
                with_pool(self, *ctx, respond, [id, before, limit, respond](std::shared_ptr<pg::pool> pool) {
                  bool queued = pool->submit([id, before, limit, respond](pg::connection& c) {
                    std::vector<room::message> ms;
                    std::string error;
                    if (!room::read_messages(c, id, true, before, 0, 0, limit + 1, ms, error)) {
                      gm::log::get("room")->warn("reading a room's history failed: {}", error);
                      respond(unavailable("the database is unavailable, retry shortly"));
                      return;
                    }
                    std::string items = "[";
                    size_t n = std::min(ms.size(), static_cast<size_t>(limit));
                    for (size_t i = 0; i < n; ++i) {
                      if (i) items += ",";
                      items += room::message_json(id, ms[i]);
                    }
                    items += "]";
                    std::string next = "null";
                    std::string next_seq = "null";
                    if (ms.size() > static_cast<size_t>(limit)) {
                      next_seq = std::to_string(ms[n - 1].seq);
                      next = "\"" + next_seq + "\"";
                    }
                    respond(json_response(200, "{\"items\":" + items + ",\"next_cursor\":" + next +
                                                 ",\"next_before_seq\":" + next_seq + "}"));
                  });
                  if (!queued) respond(unavailable("the database queue is full"));
                });
              });
}

} // namespace

void add_room_routes(route_table& table, api_context_ptr ctx, size_t max_text) {
  table.add(api_route(
    "POST", "/api/v1/rooms", "Create a chat room (the creator is its first member)", "rooms",
    {{201, "room"}, {422, "member_ids names users that do not exist"}},
    {true, {},
     make_schema({string_field("name", true, 1, 100),
                  string_list_field("member_ids", false, max_invited, 36, "uuid")})},
    [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
      create(self, ctx, rq, std::move(respond));
    }));
  table.add(api_route("GET", "/api/v1/rooms",
                      "The caller's rooms with their unread counts (?limit=, ?cursor=)", "rooms",
                      {{200, "{items: [room], next_cursor}"}}, {true, {}, nullptr},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        list_mine(self, ctx, rq, std::move(respond));
                      }));
  table.add(api_route("GET", "/api/v1/rooms/{id}", "A room (members and admins)", "rooms",
                      {{200, "room"}, {404, "no such room"}}, {true, {}, nullptr},
                      ask_room<room::get_cmd>(200, [](const request& rq) {
                        return room::get_cmd{rq.user_id, rq.role};
                      })));
  table.add(api_route("POST", "/api/v1/rooms/{id}/join", "Join a room by its id", "rooms",
                      {{200, "room"}, {404, "no such room"}, {409, "the room is full"}},
                      {true, {}, nullptr},
                      ask_room<room::join_cmd>(200, [](const request& rq) {
                        return room::join_cmd{rq.user_id};
                      })));
  // The body's bound is in bytes (4 per character at most); the room
  // counts characters.
  table.add(api_route(
    "POST", "/api/v1/rooms/{id}/messages",
    "Send a message (members): answered once it is stored, with its seq", "rooms",
    {{201, "message"}, {404, "no such room, or not a member"}, {422, "text out of bounds"}},
    {true, {}, make_schema({string_field("text", true, 1, 4 * max_text)})},
    ask_room<room::post_cmd>(201, [](const request& rq) {
      return room::post_cmd{rq.user_id, (*rq.json)["text"].get<std::string>()};
    })));
  table.add(api_route("GET", "/api/v1/rooms/{id}/messages",
                      "A room's messages, newest first (?before_seq=, ?limit=; members)", "rooms",
                      {{200, "{items: [message], next_cursor, next_before_seq}"},
                       {404, "no such room"}},
                      {true, {}, nullptr},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        history(self, ctx, rq, std::move(respond));
                      }));
  table.add(api_route("POST", "/api/v1/rooms/{id}/read",
                      "Mark the room read up to seq (markers never move back)", "rooms",
                      {{200, "{room_id, read_seq, last_seq, unread}"}, {404, "no such room"},
                       {422, "seq past the room's last message"}},
                      {true, {}, make_schema({integer_field("seq", true, 0, INT64_MAX)})},
                      ask_room<room::read_cmd>(200, [](const request& rq) {
                        return room::read_cmd{rq.user_id, (*rq.json)["seq"].get<int64_t>()};
                      })));
}

} // namespace gm::gateway
