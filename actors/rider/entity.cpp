// Implements the rider entity: activation (its row, or a fresh offline
// rider for a user with the rider role), going online and offline,
// location pings, and keeping its region's dispatcher told.
#include "actors/rider/rider.hpp"
#include "actors/rider/rules.hpp"
#include "actors/rider/store.hpp"

#include <cmath>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/dispatch/dispatcher.hpp"
#include "actors/dispatch/geo.hpp"
#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::rider {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

namespace {

struct state {
  actors::entity_core core;  // core.id: the rider's user id
  profile p;
  const environment* env = nullptr;
  static inline const char* name = "gm.rider";
};

using rider_actor = caf::stateful_actor<state>;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

double rounded(double x, double step) {
  return std::round(x / step) * step;
}

json location_json(const state& st) {
  auto& p = st.p;
  json j = {{"lat", p.lat}, {"lng", p.lng}};
  if (!std::isnan(p.heading)) j["heading"] = p.heading;
  if (!std::isnan(p.speed)) j["speed"] = p.speed;
  if (p.located_at_ms != 0) j["located_at"] = rfc3339_of_ms(p.located_at_ms);
  return j;
}

/// The rider as API.md shows it; its location only if `with_location`.
json rider_json(const state& st, bool with_location) {
  auto& p = st.p;
  json j = {{"id", st.core.id},
            {"status", p.status},
            {"rating", rounded(p.rating, 0.01)},
            {"level", p.level},
            {"xp", p.xp},
            {"completed_tasks", p.completed_tasks},
            {"version", st.core.version}};
  if (with_location && p.located) {
    j["lat"] = p.lat;
    j["lng"] = p.lng;
    if (!std::isnan(p.heading)) j["heading"] = p.heading;
    if (!std::isnan(p.speed)) j["speed"] = p.speed;
    if (p.located_at_ms != 0) j["located_at"] = rfc3339_of_ms(p.located_at_ms);
  }
  if (with_location && !p.task_id.empty()) j["task_id"] = p.task_id;
  return j;
}

std::string empty_state(rider_actor*) {
  return "{}";
}

std::string state_json(rider_actor* self) {
  auto j = rider_json(self->state, true);
  j["region"] = self->state.p.region;
  return dump(j);
}

bool sees_location(const state& st, const std::string& user, const std::string& role) {
  return user == st.core.id || role == "admin" || role == "dispatcher";
}

void lost(rider_actor* self) {
  if (std::strcmp(self->state.core.status, "failed") == 0) return;
  actors::fail_entity(self, type, &empty_state);
}

/// Keeps the dispatchers told: in its region while available with a
/// location, in none otherwise.
void tell_dispatch(rider_actor* self) {
  auto& st = self->state;
  auto& p = st.p;
  std::string region = p.status == "available" && p.located ? dispatch::region_of(p.lat, p.lng) : "";
  if (!p.region.empty() && p.region != region) {
    actors::tell(self->system(), {dispatch::type, p.region},
                 caf::make_message(dispatch::remove_cmd{st.core.id}));
  }
  if (!region.empty()) {
    actors::tell(self->system(), {dispatch::type, region},
                 caf::make_message(dispatch::place_cmd{st.core.id, p.lat, p.lng, p.rating, p.level}));
  }
  p.region = region;
}

void publish_location(rider_actor* self) {
  auto& st = self->state;
  auto data = location_json(st);
  data["rider_id"] = st.core.id;
  data["status"] = st.p.status;
  auto doc = dump(data);
  topics::publish(self->system(), st.env->events.get(), "rider:" + st.core.id, "rider.location",
                  st.core.version, doc);
  if (!st.p.task_id.empty()) {
    topics::publish(self->system(), st.env->events.get(), "task:" + st.p.task_id,
                    "rider.location", st.core.version, std::move(doc));
  }
}

/// Writes the rider's row (durable: answered after commit; buffered: at
/// once) and answers `rp` with `reply` (its JSON).
void commit(rider_actor* self, bool durable, caf::response_promise rp, std::string reply) {
  auto& st = self->state;
  actors::persist(self, st.core, {rider_row(st.core.id, st.p, st.core.version)}, durable,
                  [self, rp, reply](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(fail(errc::outcome_unknown,
                                      "the change may not have been stored; send it again"));
                      lost(self);
                      return;
                    }
                    rp.deliver(success(reply, self->state.core.version));
                  });
}

using result = caf::result<caf::message>;

result refuse(errc code, std::string why) {
  return caf::make_message(fail(code, std::move(why)));
}

result on_online(rider_actor* self, online_cmd& c) {
  auto& st = self->state;
  if (c.user != st.core.id) return refuse(errc::forbidden, "only the rider may do this");
  if (!valid_position(c.lat, c.lng)) return refuse(errc::invalid, "lat or lng out of range");
  if (!actors::journal_accepting(*st.env->gate)) {
    return refuse(errc::unavailable, "the journal is full; retry shortly");
  }
  auto& p = st.p;
  if (p.status == "offline") p.status = "available";
  p.located = true;
  p.lat = c.lat;
  p.lng = c.lng;
  p.located_at_ms = now_unix_ms();
  ++st.core.version;
  tell_dispatch(self);
  publish_location(self);
  auto rp = self->make_response_promise();
  commit(self, true, rp, dump(rider_json(st, true)));
  return rp;
}

result on_offline(rider_actor* self, offline_cmd& c) {
  auto& st = self->state;
  if (c.user != st.core.id) return refuse(errc::forbidden, "only the rider may do this");
  auto& p = st.p;
  if (p.status == "busy") {
    return refuse(errc::conflict, "a busy rider cannot go offline: finish the task first");
  }
  if (p.status == "offline") return caf::make_message(success(dump(rider_json(st, true)), st.core.version));
  if (!actors::journal_accepting(*st.env->gate)) {
    return refuse(errc::unavailable, "the journal is full; retry shortly");
  }
  p.status = "offline";
  ++st.core.version;
  tell_dispatch(self);
  auto rp = self->make_response_promise();
  commit(self, true, rp, dump(rider_json(st, true)));
  return rp;
}

result on_locate(rider_actor* self, locate_cmd& c) {
  auto& st = self->state;
  if (c.user != st.core.id) return refuse(errc::forbidden, "only the rider may do this");
  if (!valid_position(c.lat, c.lng)) return refuse(errc::invalid, "lat or lng out of range");
  auto& p = st.p;
  if (p.status == "offline") return refuse(errc::conflict, "go online before sending locations");
  if (!actors::journal_accepting(*st.env->gate)) {
    return refuse(errc::unavailable, "the journal is full; retry shortly");
  }
  p.located = true;
  p.lat = c.lat;
  p.lng = c.lng;
  p.heading = c.heading;
  p.speed = c.speed;
  p.located_at_ms = now_unix_ms();
  ++st.core.version;
  tell_dispatch(self);
  publish_location(self);
  auto rp = self->make_response_promise();
  auto reply = location_json(st);
  reply["status"] = p.status;
  commit(self, false, rp, dump(reply));
  return rp;
}

result on_get(rider_actor* self, get_cmd& c) {
  auto& st = self->state;
  return caf::make_message(
    success(dump(rider_json(st, sees_location(st, c.user, c.role))), st.core.version));
}

const actors::command_table<rider_actor>& commands() {
  static const auto table = actors::command_table<rider_actor>{}
                              .on(&on_online)
                              .on(&on_offline)
                              .on(&on_locate)
                              .on(&on_get);
  return table;
}

caf::result<caf::message> dispatch_cmd(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<rider_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<actors::inspect_atom>()) {
    return caf::make_message(actors::describe(self, st.core, state_json(self)));
  }
  if (c.match_elements<actors::passivate_atom>()) {
    actors::on_passivate(self, st.core);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::exists_atom>()) {
    return caf::make_message(success("", st.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "riders do not understand this command"));
}

void on_loaded(rider_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("rider")->warn("rider {} could not load: {}", st.core.id, l.error);
    actors::give_up(self, type, errc::unavailable, "the database is unavailable, retry shortly",
                    "failed", &empty_state);
    return;
  }
  if (!l.found) {
    actors::give_up(self, type, errc::not_found, "no such rider", "missing", &empty_state);
    return;
  }
  st.p = std::move(l.p);
  st.core.version = l.version;
  st.core.status = "active";
  self->set_default_handler(dispatch_cmd);
  self->become(caf::behavior{[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }});
  actors::announce_loaded(self, type, st.core.id);
}

caf::behavior rider_impl(rider_actor* self, std::string id, const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    actors::give_up(self, type, errc::not_found, "no such rider", "missing", &empty_state);
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
  r.topic = "rider";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<online_cmd>("gm_ri_online")
      .add_message_type<offline_cmd>("gm_ri_offline")
      .add_message_type<locate_cmd>("gm_ri_locate")
      .add_message_type<get_cmd>("gm_ri_get");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->gate = ctx.gate;
    env->events = ctx.events;
    actors::entity_kind k;
    k.type = type;
    k.spawn = [env](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(rider_impl, id, env.get());
    };
    return k;
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    if (who.role != "admin" && who.role != "dispatcher" && who.user_id != id) {
      done(403, "a rider's location is for the rider, dispatchers and admins");
      return;
    }
    actors::ask(self, {type, id}, caf::make_message(actors::exists_atom::value),
                std::chrono::seconds{5}, [done](entity_reply& r) {
                  if (r.ok()) {
                    done(0, "");
                  } else if (r.error() == errc::not_found) {
                    done(404, "no such rider");
                  } else {
                    done(503, r.detail);
                  }
                });
  };
  return r;
}

} // namespace gm::rider
