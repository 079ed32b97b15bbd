// Implements the user entity: load the profile, answer reads from memory,
// write profile changes through the journal (durable).
#include "actors/user/user.hpp"

#include <optional>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/entity_core.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::user {
namespace {

using nlohmann::json;
using actors::errc;
using actors::fail;
using actors::success;
using opt = std::optional<std::string>;

/// Profile changes: a partial image of the users row (registration writes
/// the rest, and only it).
const journal::table_spec& profile_table() {
  static const journal::table_spec t{
    "users",
    {{"id", "uuid"}, {"full_name", "text"}, {"bio", "text"}, {"location", "text"},
     {"version", "bigint"}, {"updated_at", "timestamptz"}},
    {0}, 4, journal::write_mode::update_versioned};
  return t;
}

struct profile {
  std::string phone;
  opt email;
  std::string full_name;
  std::string role;
  std::string bio;
  opt location;
  std::string created_at;
  // Reviews of this user (gig contracts): a read of the reviews table, at
  // activation and after each new review (rated_cmd).
  int64_t rating_sum = 0;
  int64_t rating_count = 0;
  // A rider's level and completed tasks (actors/rider/), read with the
  // ratings: the rider tells its user when they change.
  int32_t level = 1;
  int64_t completed_tasks = 0;
};

struct state {
  actors::entity_core core;  // core.id: the user id
  profile p;
  std::shared_ptr<journal::gate> gate;
  std::shared_ptr<topics::store> events;
  // The two views as JSON, rendered on first read after a change: reads
  // are what this entity is for.
  std::string private_body;
  std::string public_body;
  static inline const char* name = "gm.user";
};

using user_actor = caf::stateful_actor<state>;

json private_json(const state& st) {
  return {{"id", st.core.id},
          {"phone", st.p.phone},
          {"email", st.p.email ? json(*st.p.email) : json(nullptr)},
          {"full_name", st.p.full_name},
          {"role", st.p.role},
          {"bio", st.p.bio},
          {"location", st.p.location ? json(*st.p.location) : json(nullptr)},
          {"created_at", st.p.created_at}};
}

json public_json(const state& st) {
  json j = {{"id", st.core.id}, {"full_name", st.p.full_name}, {"role", st.p.role},
            {"bio", st.p.bio}, {"rating_count", st.p.rating_count}};
  if (st.p.rating_count > 0) {
    // The average, to two decimals.
    auto hundredths = (st.p.rating_sum * 200 / st.p.rating_count + 1) / 2;
    j["rating"] = static_cast<double>(hundredths) / 100.0;
  }
  if (st.p.role == "rider") {
    j["level"] = st.p.level;
    j["completed_tasks"] = st.p.completed_tasks;
  }
  return j;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string state_json(user_actor* self) {
  auto j = public_json(self->state);
  j["version"] = self->state.core.version;
  return dump(j);
}

std::string empty_state(user_actor*) {
  return "{}";
}

using result = caf::result<caf::message>;

result on_get(user_actor* self, get_cmd& c) {
  auto& st = self->state;
  auto& body = c.private_view ? st.private_body : st.public_body;
  if (body.empty()) body = dump(c.private_view ? private_json(st) : public_json(st));
  return caf::make_message(success(body, st.core.version));
}

result on_update(user_actor* self, update_cmd& c) {
  auto rp = self->make_response_promise();
  auto& st = self->state;
  if (!st.gate->accepting()) {
    rp.deliver(fail(errc::unavailable, "the journal is full; retry shortly"));
    return caf::delegated<caf::message>{};
  }
  st.private_body.clear();
  st.public_body.clear();
  if (c.has_full_name) st.p.full_name = std::move(c.full_name);
  if (c.has_bio) st.p.bio = std::move(c.bio);
  if (c.has_location) st.p.location = std::move(c.location);
  ++st.core.version;
  std::vector<journal::row> rows{
    {&profile_table(), st.core.version,
     {st.core.id, st.p.full_name, st.p.bio, st.p.location,
      journal::value::integer(st.core.version), now_rfc3339()}}};
  auto body = dump(private_json(st));
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, rp, body, version](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(fail(errc::outcome_unknown,
                                      "the change may not have been stored"));
                      actors::fail_entity(self, type, &state_json);
                      return;
                    }
                    rp.deliver(success(body, version));
                  });
  return caf::delegated<caf::message>{};
}

/// Reads the count and sum of this user's ratings (on a pool thread).
bool read_rating(pg::connection& c, const std::string& id, profile& p, std::string& error) {
  auto r = c.exec("SELECT count(*), coalesce(sum(rating), 0), "
                  "(SELECT level FROM riders WHERE user_id = $1), "
                  "(SELECT completed_tasks FROM riders WHERE user_id = $1) "
                  "FROM reviews WHERE reviewee_id = $1",
                  {id});
  if (!r.ok()) {
    error = r.error;
    return false;
  }
  p.rating_count = std::stoll(r.value(0, 0, "0"));
  p.rating_sum = std::stoll(r.value(0, 1, "0"));
  p.level = static_cast<int32_t>(std::stoll(r.value(0, 2, "1")));
  p.completed_tasks = std::stoll(r.value(0, 3, "0"));
  return true;
}

result on_notify(user_actor* self, notify_cmd& c) {
  topics::notify(self->system(), self->state.events.get(), self->state.core.id, std::move(c.data));
  return caf::make_message(success("", self->state.core.version));
}

result on_rated(user_actor* self, rated_cmd&) {
  auto rp = self->make_response_promise();
  auto id = self->state.core.id;
  ++self->state.core.busy;
  auto done = [self] {
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  actors::on_pool(
    self,
    [self, id, rp, done](pg::connection& c) mutable -> std::function<void()> {
      profile p;
      std::string error;
      bool ok = read_rating(c, id, p, error);
      return [self, ok, p, error, rp, done]() mutable {
        auto& st = self->state;
        if (ok) {
          st.p.rating_count = p.rating_count;
          st.p.rating_sum = p.rating_sum;
          st.p.level = p.level;
          st.p.completed_tasks = p.completed_tasks;
          st.public_body.clear();
          rp.deliver(success("", st.core.version));
        } else {
          rp.deliver(fail(errc::unavailable, error));
        }
        done();
      };
    },
    [rp, done](const std::string& why) mutable {
      rp.deliver(fail(errc::unavailable, why));
      done();
    });
  return caf::delegated<caf::message>{};
}

const actors::command_table<user_actor>& commands() {
  static const auto table =
    actors::command_table<user_actor>{}.on(&on_get).on(&on_update).on(&on_rated).on(&on_notify);
  return table;
}

/// Serves an active user's commands (the actor's default handler).
result dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<user_actor*>(ptr);
  if (xs.content().match_elements<actors::exists_atom>()) {
    return caf::make_message(success("", self->state.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "users do not understand this command"));
}

caf::behavior active(user_actor* self) {
  return {
    [self](actors::passivate_atom) { actors::on_passivate(self, self->state.core); },
    [self](actors::inspect_atom) {
      return actors::describe(self, self->state.core, state_json(self));
    },
    [](actors::run_atom, const actors::continuation& fn) { (*fn)(); },
  };
}

struct loaded {
  bool found = false;
  std::string error;
  profile p;
  int64_t version = 0;
};

loaded load_row(pg::connection& c, const std::string& id) {
  loaded l;
  auto r = c.exec("SELECT phone, email, full_name, role, bio, location, "
                  "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                  "version FROM users WHERE id = $1",
                  {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty()) return l;
  l.found = true;
  l.p.phone = r.value(0, 0);
  l.p.email = r.rows[0][1];
  l.p.full_name = r.value(0, 2);
  l.p.role = r.value(0, 3);
  l.p.bio = r.value(0, 4);
  l.p.location = r.rows[0][5];
  l.p.created_at = r.value(0, 6);
  l.version = std::stoll(r.value(0, 7, "0"));
  read_rating(c, id, l.p, l.error);
  return l;
}

void on_loaded(user_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("user")->warn("user {} could not load: {}", st.core.id, l.error);
    actors::give_up(self, type, errc::unavailable, "the database is unavailable, retry shortly",
                    "failed", &empty_state);
    return;
  }
  if (!l.found) {
    actors::give_up(self, type, errc::not_found, "no such user", "missing", &empty_state);
    return;
  }
  st.p = std::move(l.p);
  st.core.version = l.version;
  st.core.status = "active";
  self->set_default_handler(dispatch);
  self->become(active(self));
  actors::announce_loaded(self, type, st.core.id);
}

caf::behavior user_impl(user_actor* self, std::string id, std::shared_ptr<journal::gate> gate,
                        std::shared_ptr<topics::store> events) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.gate = std::move(gate);
  st.events = std::move(events);
  if (!is_uuid(st.core.id)) {
    actors::give_up(self, type, errc::not_found, "no such user", "missing", &empty_state);
    return actors::entity_handlers(self, &empty_state);
  }
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_row, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

} // namespace

actors::entity_kind kind(std::shared_ptr<journal::gate> gate,
                         std::shared_ptr<topics::store> events) {
  actors::entity_kind k;
  k.type = type;
  k.spawn = [gate, events](caf::local_actor* shard, const std::string& id) {
    return shard->spawn(user_impl, id, gate, events);
  };
  return k;
}

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "user";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<get_cmd>("gm_u_get")
      .add_message_type<update_cmd>("gm_u_update")
      .add_message_type<rated_cmd>("gm_u_rated")
      .add_message_type<notify_cmd>("gm_u_notify");
  };
  r.make = [](const actors::kind_context& ctx) { return kind(ctx.gate, ctx.events); };
  r.may_see = [](caf::event_based_actor*, const actors::topic_caller& who, const std::string& id,
                 std::function<void(int, std::string)> done) {
    done(id == who.user_id ? 0 : 403, "you may only subscribe to your own user topic");
  };
  return r;
}

} // namespace gm::user
