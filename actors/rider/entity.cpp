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
#include "actors/task/commands.hpp"
#include "actors/user/commands.hpp"
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
  if (with_location && !p.offer_task.empty()) {
    j["offer"] = {{"task_id", p.offer_task}, {"expires_at", rfc3339_of_ms(p.offer_until_ms)}};
  }
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
  // A rider holding an offer is no candidate for other tasks meanwhile.
  std::string region = p.status == "available" && p.located && p.offer_task.empty()
                         ? dispatch::region_of(p.lat, p.lng)
                         : "";
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
                    "rider.location", topics::clock_seq(), std::move(doc));
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

// ---- delivery tasks (actors/task/entity.cpp has the other side) ----

using offer_due_atom = caf::atom_constant<caf::atom("ri_offer")>;

/// Writes the rider (durable), then answers `rp` ok.
void save(rider_actor* self, caf::response_promise rp) {
  auto& st = self->state;
  ++st.core.version;
  tell_dispatch(self);
  commit(self, true, rp, dump(rider_json(st, true)));
}

void forget_offer(rider_actor* self) {
  self->state.p.offer_task.clear();
  self->state.p.offer_until_ms = 0;
}

result on_hold(rider_actor* self, hold_cmd& c) {
  auto& st = self->state;
  auto& p = st.p;
  auto now = now_unix_ms();
  if (p.status != "available") return refuse(errc::conflict, "the rider is " + p.status);
  if (!p.offer_task.empty() && p.offer_task != c.task && p.offer_until_ms > now) {
    return refuse(errc::conflict, "the rider holds another offer");
  }
  if (c.until_ms <= now) return refuse(errc::conflict, "the offer has run out");
  if (!actors::journal_accepting(*st.env->gate)) {
    return refuse(errc::unavailable, "the journal is full; retry shortly");
  }
  p.offer_task = c.task;
  p.offer_until_ms = c.until_ms;
  self->delayed_send(self, std::chrono::milliseconds{c.until_ms - now}, offer_due_atom::value,
                     c.task, c.until_ms);
  auto rp = self->make_response_promise();
  save(self, rp);
  return rp;
}

void on_offer_due(rider_actor* self, const std::string& task, int64_t until) {
  auto& p = self->state.p;
  if (p.offer_task != task || p.offer_until_ms != until) return;
  forget_offer(self);
  ++self->state.core.version;
  tell_dispatch(self);
  // Buffered: a rider that activates takes a run-out offer for none.
  actors::persist(self, self->state.core,
                  {rider_row(self->state.core.id, p, self->state.core.version)}, false,
                  [self](bool ok) {
                    if (!ok) lost(self);
                  });
}

result on_claim(rider_actor* self, claim_cmd& c) {
  auto& st = self->state;
  auto& p = st.p;
  if (p.task_id == c.task) return caf::make_message(success(dump(rider_json(st, true)), st.core.version));
  if (p.status == "busy") return refuse(errc::conflict, "the rider is busy with another task");
  if (p.status != "available") return refuse(errc::conflict, "the rider is " + p.status);
  // The task is the authority on whom it offered itself to: a rider that
  // lost its hold (a crash between the task's write and its own) may still
  // take it, unless it holds another task's offer meanwhile.
  bool holds_other =
    !p.offer_task.empty() && p.offer_task != c.task && p.offer_until_ms > now_unix_ms();
  if (holds_other) return refuse(errc::conflict, "the rider holds another task's offer");
  if (!actors::journal_accepting(*st.env->gate)) {
    return refuse(errc::unavailable, "the journal is full; retry shortly");
  }
  forget_offer(self);
  p.status = "busy";
  p.task_id = c.task;
  auto rp = self->make_response_promise();
  save(self, rp);
  return rp;
}

/// Forgets task `task` (held or carried); answers `rp` if given.
void release(rider_actor* self, const std::string& task, std::optional<caf::response_promise> rp) {
  auto& st = self->state;
  auto& p = st.p;
  bool changed = false;
  if (p.offer_task == task) {
    forget_offer(self);
    changed = true;
  }
  if (p.task_id == task) {
    p.task_id.clear();
    if (p.status == "busy") p.status = "available";
    changed = true;
  }
  if (!changed) {
    if (rp) rp->deliver(success(dump(rider_json(st, true)), st.core.version));
    return;
  }
  save(self, rp ? *rp : self->make_response_promise());
}

result on_release(rider_actor* self, release_cmd& c) {
  auto rp = self->make_response_promise();
  release(self, c.task, rp);
  return rp;
}

/// The rider delivered `task`: XP, one more completed task, available.
void finish(rider_actor* self, const std::string& task, bool on_time,
            std::optional<caf::response_promise> rp) {
  auto& st = self->state;
  auto& p = st.p;
  if (p.task_id != task) {  // applied already (or never carried it)
    if (rp) rp->deliver(success(dump(rider_json(st, true)), st.core.version));
    return;
  }
  p.xp += xp_for_task(on_time);
  p.level = level_for_xp(p.xp);
  ++p.completed_tasks;
  p.task_id.clear();
  if (p.status == "busy") p.status = "available";
  ++st.core.version;
  tell_dispatch(self);  // its new level ranks it from now on
  auto reply = dump(rider_json(st, true));
  actors::persist(self, st.core, {rider_row(st.core.id, p, st.core.version)}, true,
                  [self, rp, reply](bool ok) mutable {
                    if (!ok) {
                      if (rp) rp->deliver(fail(errc::outcome_unknown, "not stored"));
                      lost(self);
                      return;
                    }
                    if (rp) rp->deliver(success(reply, self->state.core.version));
                    // The public profile shows the level and completed tasks.
                    actors::tell(self->system(), {"user", self->state.core.id},
                                 caf::make_message(user::rated_cmd{}));
                  });
}

result on_finish(rider_actor* self, finish_cmd& c) {
  auto rp = self->make_response_promise();
  finish(self, c.task, c.on_time, rp);
  return rp;
}

/// Activation: asks the task the rider holds or carries how it stands, and
/// mends what a lost tell left (rider.hpp).
void check_task(rider_actor* self, const std::string& task) {
  if (task.empty()) return;
  actors::ask(self, {"task", task}, caf::make_message(task::whose_cmd{}), std::chrono::seconds{10},
              [self, task](entity_reply& r) {
                auto& p = self->state.p;
                auto me = self->state.core.id;
                if (!r.ok() && r.error() != errc::not_found) return;  // ask again next time
                std::string status, rider, offered;
                bool on_time = false;
                if (r.ok()) {
                  auto j = json::parse(r.body, nullptr, false);
                  if (j.is_object()) {
                    status = j.value("status", "");
                    rider = j.value("rider_id", "");
                    offered = j.value("offered_to", "");
                    on_time = j.value("on_time", false);
                  }
                }
                if (p.task_id == task) {
                  if (rider == me && status == "completed") {
                    finish(self, task, on_time, std::nullopt);
                  } else if (!(rider == me && (status == "assigned" || status == "picked_up")) &&
                             !(offered == me && status == "offered")) {
                    release(self, task, std::nullopt);
                  }
                } else if (p.offer_task == task && !(offered == me && status == "offered")) {
                  release(self, task, std::nullopt);
                }
              });
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
                              .on(&on_get)
                              .on(&on_hold)
                              .on(&on_claim)
                              .on(&on_release)
                              .on(&on_finish);
  return table;
}

caf::result<caf::message> dispatch_cmd(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<rider_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<offer_due_atom, std::string, int64_t>()) {
    on_offer_due(self, c.get_as<std::string>(1), c.get_as<int64_t>(2));
    return caf::delegated<caf::message>{};
  }
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
  if (!st.p.offer_task.empty() && st.p.offer_until_ms <= now_unix_ms()) forget_offer(self);
  st.core.status = "active";
  self->set_default_handler(dispatch_cmd);
  self->become(caf::behavior{[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }});
  actors::announce_loaded(self, type, st.core.id);
  if (!st.p.offer_task.empty()) {
    auto wait = std::max<int64_t>(0, st.p.offer_until_ms - now_unix_ms());
    self->delayed_send(self, std::chrono::milliseconds{wait}, offer_due_atom::value,
                       st.p.offer_task, st.p.offer_until_ms);
  }
  check_task(self, st.p.task_id);
  check_task(self, st.p.offer_task);
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
      .add_message_type<get_cmd>("gm_ri_get")
      .add_message_type<hold_cmd>("gm_ri_hold")
      .add_message_type<claim_cmd>("gm_ri_claim")
      .add_message_type<release_cmd>("gm_ri_release")
      .add_message_type<finish_cmd>("gm_ri_finish");
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
