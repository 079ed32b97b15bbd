// Implements the chat room entity: activation (its row, members and last
// seq), joining, messages (numbered here, answered and published once
// durable), read markers, and its topic's history for resume.
#include "actors/room/room.hpp"
#include "actors/room/rules.hpp"
#include "actors/room/store.hpp"

#include <unordered_set>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::room {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

namespace {

// A member's own message counts as read: posting moves the sender's read
// marker to it. If other members' messages lay between the old marker and
// the new one, the marker is written at once (buffered); if not, counting
// unread messages in PostgreSQL, which leaves out one's own, is right with
// the old marker too, so the room writes it with others later, at most
// this often (and before it passivates): a member who sends a burst costs
// one member row per interval, not one per message.
constexpr auto marker_flush_interval = std::chrono::seconds{1};

using flush_atom = caf::atom_constant<caf::atom("r_flush")>;

struct state {
  actors::entity_core core;  // core.id: the room's id; core.version: member rows' version
  room r;
  const environment* env = nullptr;
  int64_t assigned = 0;  // the last seq handed out; r.last_seq: the last committed
  std::unordered_set<std::string> dirty;  // members whose marker is not yet written
  bool flush_armed = false;
  static inline const char* name = "gm.room";
};

using room_actor = caf::stateful_actor<state>;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool may_read(const room& r, const std::string& user, const std::string& role) {
  return role == "admin" || find_member(r, user) != nullptr;
}

/// The room as `user` sees it: API.md's {id, name, members, created_at},
/// with the caller's read marker and unread count if a member.
json room_json(const state& st, const std::string& user) {
  auto& r = st.r;
  json members = json::array();
  for (auto& m : r.members) members.push_back(m.user_id);
  json j = {{"id", r.id},
            {"name", r.name},
            {"creator_id", r.creator_id},
            {"members", std::move(members)},
            {"members_count", r.members.size()},
            {"last_seq", r.last_seq},
            {"created_at", r.created_at}};
  if (auto* m = find_member(r, user)) {
    j["read_seq"] = m->read_seq;
    j["unread"] = unread(*m, r.last_seq);
  }
  return j;
}

std::string empty_state(room_actor*) {
  return "{}";
}

std::string state_json(room_actor* self) {
  auto& st = self->state;
  return dump(json{{"id", st.r.id},
                   {"name", st.r.name},
                   {"creator_id", st.r.creator_id},
                   {"members_count", st.r.members.size()},
                   {"last_seq", st.r.last_seq},
                   {"messages_in_flight", st.assigned - st.r.last_seq},
                   {"markers_unwritten", st.dirty.size()},
                   {"created_at", st.r.created_at}});
}

/// The journal refused or lost a row: reload from PostgreSQL shortly.
void lost(room_actor* self) {
  if (std::strcmp(self->state.core.status, "failed") == 0) return;
  actors::fail_entity(self, type, &empty_state);
}

/// Writes the read markers the room moved by itself (buffered).
void flush_markers(room_actor* self) {
  auto& st = self->state;
  st.flush_armed = false;
  if (st.dirty.empty() || std::strcmp(st.core.status, "active") != 0) return;
  ++st.core.version;
  std::vector<journal::row> rows;
  for (auto& user : st.dirty) {
    if (auto* m = find_member(st.r, user)) rows.push_back(member_row(st.r.id, *m, st.core.version));
  }
  st.dirty.clear();
  actors::persist(self, st.core, std::move(rows), false, [self](bool ok) {
    if (!ok) lost(self);
  });
}

void mark_dirty(room_actor* self, const std::string& user) {
  auto& st = self->state;
  st.dirty.insert(user);
  if (!st.flush_armed) {
    st.flush_armed = true;
    self->delayed_send(self, marker_flush_interval, flush_atom::value);
  }
}

// ---- commands -----------------------------------------------------------------

using result = caf::result<caf::message>;

result not_found() {
  return caf::make_message(fail(errc::not_found, "no such room"));
}

result on_get(room_actor* self, get_cmd& c) {
  auto& st = self->state;
  if (!may_read(st.r, c.user, c.role)) return not_found();
  return caf::make_message(success(dump(room_json(st, c.user)), st.r.last_seq));
}

result on_member(room_actor* self, member_cmd& c) {
  auto& st = self->state;
  if (!may_read(st.r, c.user, c.role)) return not_found();
  return caf::make_message(success("", st.r.last_seq));
}

result on_join(room_actor* self, join_cmd& c) {
  auto& st = self->state;
  if (find_member(st.r, c.user) != nullptr) {
    return caf::make_message(success(dump(room_json(st, c.user)), st.r.last_seq));
  }
  if (st.r.members.size() >= max_members) {
    return caf::make_message(
      fail(errc::conflict, "the room is full (" + std::to_string(max_members) + " members)"));
  }
  if (!actors::journal_accepting(*st.env->gate)) {
    return caf::make_message(fail(errc::unavailable, "the journal is full; retry shortly"));
  }
  auto& m = add_member(st.r, c.user, now_rfc3339());
  // A newcomer has nothing to catch up on: the room's history is there to
  // read, but it is not "unread".
  m.read_seq = st.r.last_seq;
  ++st.core.version;
  st.dirty.erase(c.user);
  auto rp = self->make_response_promise();
  auto user = c.user;
  actors::persist(self, st.core, {member_row(st.r.id, m, st.core.version)}, true,
                  [self, rp, user](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(fail(errc::outcome_unknown,
                                      "the join may not have been stored; join again"));
                      lost(self);
                      return;
                    }
                    auto& st = self->state;
                    rp.deliver(success(dump(room_json(st, user)), st.r.last_seq));
                  });
  return rp;
}

/// A message: numbered now, answered and published once its row committed
/// (the journal commits a room's rows in the order it was handed them, so
/// acknowledgements and events go out in seq order).
result on_post(room_actor* self, post_cmd& c) {
  auto& st = self->state;
  if (find_member(st.r, c.user) == nullptr) return not_found();
  auto why = text_problem(c.text, st.env->max_text);
  if (!why.empty()) return caf::make_message(fail(errc::invalid, why));
  if (!actors::journal_accepting(*st.env->gate)) {
    return caf::make_message(fail(errc::unavailable, "the journal is full; retry shortly"));
  }
  message msg;
  msg.id = new_time_uuid();
  msg.sender_id = c.user;
  msg.text = std::move(c.text);
  msg.seq = ++st.assigned;
  msg.created_at = now_rfc3339();
  auto rp = self->make_response_promise();
  std::vector<journal::row> rows;
  rows.push_back(message_row(st.r.id, msg));
  actors::persist(
    self, st.core, std::move(rows), true, [self, rp, msg](bool ok) mutable {
      auto& st = self->state;
      if (!ok) {
        rp.deliver(fail(errc::outcome_unknown,
                        "the message may not have been stored; look at the room's history "
                        "before sending it again"));
        lost(self);
        return;
      }
      st.r.last_seq = std::max(st.r.last_seq, msg.seq);
      // The sender has read the room up to its own message.
      if (auto* m = find_member(st.r, msg.sender_id); m && m->read_seq < msg.seq) {
        bool others_between = m->read_seq < msg.seq - 1;
        m->read_seq = msg.seq;
        if (others_between) {
          st.dirty.erase(msg.sender_id);
          ++st.core.version;
          actors::persist(self, st.core, {member_row(st.r.id, *m, st.core.version)}, false,
                          [self](bool ok) {
                            if (!ok) lost(self);
                          });
        } else {
          mark_dirty(self, msg.sender_id);
        }
      }
      auto doc = message_json(st.r.id, msg);
      rp.deliver(success(doc, msg.seq));
      topics::publish(self->system(), st.env->events.get(), "room:" + st.r.id,
                      "message.received", msg.seq, std::move(doc));
    });
  return rp;
}

result on_read(room_actor* self, read_cmd& c) {
  auto& st = self->state;
  auto* m = find_member(st.r, c.user);
  if (m == nullptr) return not_found();
  if (c.seq < 0 || c.seq > st.r.last_seq) {
    return caf::make_message(
      fail(errc::invalid, "seq must be between 0 and the room's last message (" +
                            std::to_string(st.r.last_seq) + ")"));
  }
  auto reply = [&st](const member& m) {
    return dump(json{{"room_id", st.r.id},
                     {"read_seq", m.read_seq},
                     {"last_seq", st.r.last_seq},
                     {"unread", unread(m, st.r.last_seq)}});
  };
  auto next = next_read_seq(*m, c.seq);
  if (next == m->read_seq) return caf::make_message(success(reply(*m), st.r.last_seq));
  if (!actors::journal_accepting(*st.env->gate)) {
    return caf::make_message(fail(errc::unavailable, "the journal is full; retry shortly"));
  }
  m->read_seq = next;
  ++st.core.version;
  st.dirty.erase(c.user);
  auto rp = self->make_response_promise();
  auto doc = reply(*m);
  actors::persist(self, st.core, {member_row(st.r.id, *m, st.core.version)}, false,
                  [self, rp, doc](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(fail(errc::unavailable, "the read marker was not stored"));
                      lost(self);
                      return;
                    }
                    rp.deliver(success(doc, self->state.r.last_seq));
                  });
  return rp;
}

const actors::command_table<room_actor>& commands() {
  static const auto table = actors::command_table<room_actor>{}
                              .on(&on_get)
                              .on(&on_member)
                              .on(&on_join)
                              .on(&on_post)
                              .on(&on_read);
  return table;
}

caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<room_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<flush_atom>()) {
    flush_markers(self);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::inspect_atom>()) {
    return caf::make_message(actors::describe(self, st.core, state_json(self)));
  }
  if (c.match_elements<actors::passivate_atom>()) {
    flush_markers(self);  // before it goes: counted as outstanding work
    actors::on_passivate(self, st.core);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::exists_atom>()) {
    return caf::make_message(success("", st.r.last_seq));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "rooms do not understand this command"));
}

caf::behavior active() {
  return {[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }};
}

void give_up(room_actor* self, errc code, std::string detail, const char* status) {
  actors::give_up(self, type, code, std::move(detail), status, &empty_state);
}

void on_loaded(room_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("room")->warn("room {} could not load: {}", st.core.id, l.error);
    give_up(self, errc::unavailable, "the database is unavailable, retry shortly", "failed");
    return;
  }
  if (!l.found) {
    give_up(self, errc::not_found, "no such room", "missing");
    return;
  }
  st.r = std::move(l.r);
  st.core.version = l.version;
  st.assigned = st.r.last_seq;
  st.core.status = "active";
  // Where the topic stands: its events before now are in PostgreSQL only.
  if (st.env->events) st.env->events->advance("room:" + st.r.id, st.r.last_seq);
  self->set_default_handler(dispatch);
  self->become(active());
  actors::announce_loaded(self, type, st.core.id);
}

caf::behavior room_impl(room_actor* self, std::string id, const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    give_up(self, errc::not_found, "no such room", "missing");
    return actors::entity_handlers(self, &empty_state);
  }
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_rows, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

} // namespace

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "room";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<get_cmd>("gm_r_get")
      .add_message_type<member_cmd>("gm_r_member")
      .add_message_type<join_cmd>("gm_r_join")
      .add_message_type<post_cmd>("gm_r_post")
      .add_message_type<read_cmd>("gm_r_read");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->gate = ctx.gate;
    env->events = ctx.events;
    env->max_text = ctx.chat_max_text;
    actors::entity_kind k;
    k.type = type;
    k.spawn = [env](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(room_impl, id, env.get());
    };
    return k;
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    actors::ask(self, {type, id}, caf::make_message(member_cmd{who.user_id, who.role}),
                std::chrono::seconds{5}, [done](entity_reply& r) {
                  if (r.ok()) {
                    done(0, "");
                  } else if (r.error() == errc::not_found) {
                    done(404, "no such room");
                  } else {
                    done(503, r.detail);
                  }
                });
  };
  r.history = [](caf::event_based_actor* self, const std::string& id, int64_t after, int64_t upto,
                 int64_t limit,
                 std::function<void(std::vector<topics::event>&, const std::string&)> done) {
    actors::on_pool(
      self,
      [id, after, upto, limit, done](pg::connection& c) -> std::function<void()> {
        std::vector<message> ms;
        std::string error;
        read_messages(c, id, false, 0, after, upto, limit, ms, error);
        std::vector<topics::event> events;
        events.reserve(ms.size());
        for (auto& m : ms) events.push_back({"message.received", m.seq, message_json(id, m)});
        return [done, events = std::move(events), error]() mutable { done(events, error); };
      },
      [done](const std::string& why) {
        std::vector<topics::event> none;
        done(none, why);
      });
  };
  return r;
}

} // namespace gm::room
