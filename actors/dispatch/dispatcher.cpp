// Implements the dispatcher entity: the available riders of one region in
// an S2PointIndex, nearest-rider queries on it, and the fan-out over the
// regions around a point.
#include "actors/dispatch/dispatcher.hpp"
#include "actors/dispatch/geo.hpp"

#include <memory>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <s2/s2closest_point_query.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>
#include <s2/s2point_index.h>

#include "actors/commands.hpp"
#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "common/log.hpp"
#include "persistence/pg.hpp"

namespace gm::dispatch {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

namespace {

struct placed {
  S2Point point;
  double rating = 0;
  int32_t level = 1;
};

struct state {
  actors::entity_core core;  // core.id: the region's S2 cell token
  S2PointIndex<std::string> index;
  std::unordered_map<std::string, placed> riders;
  static inline const char* name = "gm.dispatcher";
};

using dispatcher_actor = caf::stateful_actor<state>;

std::string state_json(dispatcher_actor* self) {
  auto& st = self->state;
  return json{{"region", st.core.id}, {"level", region_level}, {"available_riders", st.riders.size()}}
    .dump();
}

std::string empty_state(dispatcher_actor*) {
  return "{}";
}

void place(state& st, const std::string& rider, double lat, double lng, double rating,
           int32_t level) {
  auto point = S2LatLng::FromDegrees(lat, lng).ToPoint();
  auto it = st.riders.find(rider);
  if (it != st.riders.end()) {
    st.index.Remove(it->second.point, rider);
    it->second = {point, rating, level};
  } else {
    st.riders.emplace(rider, placed{point, rating, level});
  }
  st.index.Add(point, rider);
}

void forget(state& st, const std::string& rider) {
  auto it = st.riders.find(rider);
  if (it == st.riders.end()) return;
  st.index.Remove(it->second.point, rider);
  st.riders.erase(it);
}

using result = caf::result<caf::message>;

result on_place(dispatcher_actor* self, place_cmd& c) {
  place(self->state, c.rider, c.lat, c.lng, c.rating, c.level);
  return caf::make_message(success("", 0));
}

result on_remove(dispatcher_actor* self, remove_cmd& c) {
  forget(self->state, c.rider);
  return caf::make_message(success("", 0));
}

result on_nearest(dispatcher_actor* self, nearest_cmd& c) {
  auto& st = self->state;
  S2ClosestPointQuery<std::string> q(&st.index);
  auto want = static_cast<int>(std::max<int32_t>(1, c.max)) + static_cast<int>(c.exclude.size());
  q.mutable_options()->set_max_results(want);
  q.mutable_options()->set_max_distance(S2Earth::ToAngle(util::units::Meters(c.radius_m)));
  S2ClosestPointQuery<std::string>::PointTarget target(S2LatLng::FromDegrees(c.lat, c.lng).ToPoint());
  std::string out = "[";
  int n = 0;
  for (auto& r : q.FindClosestPoints(&target)) {
    auto& id = r.data();
    if (std::find(c.exclude.begin(), c.exclude.end(), id) != c.exclude.end()) continue;
    if (n == c.max) break;
    auto& p = st.riders[id];
    if (n++ > 0) out += ",";
    out += json{{"id", id}, {"m", S2Earth::ToMeters(r.distance())}, {"rating", p.rating},
                {"level", p.level}}
             .dump();
  }
  out += "]";
  return caf::make_message(success(out, 0));
}

const actors::command_table<dispatcher_actor>& commands() {
  static const auto table = actors::command_table<dispatcher_actor>{}
                              .on(&on_place)
                              .on(&on_remove)
                              .on(&on_nearest);
  return table;
}

caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<dispatcher_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<actors::inspect_atom>()) {
    return caf::make_message(actors::describe(self, st.core, state_json(self)));
  }
  if (c.match_elements<actors::passivate_atom>()) {
    actors::on_passivate(self, st.core);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::exists_atom>()) return caf::make_message(success("", 0));
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "dispatchers do not understand this command"));
}

struct loaded {
  std::string error;
  struct row {
    std::string id;
    double lat, lng, rating;
    int32_t level;
  };
  std::vector<row> rows;
};

loaded load_rows(pg::connection& c, const std::string& region) {
  loaded l;
  auto r = c.exec("SELECT user_id, lat, lng, rating, level FROM riders "
                  "WHERE region = $1 AND status = 'available' AND lat IS NOT NULL",
                  {region});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  for (size_t i = 0; i < r.rows.size(); ++i) {
    l.rows.push_back({r.value(i, 0), std::stod(r.value(i, 1, "0")), std::stod(r.value(i, 2, "0")),
                      std::stod(r.value(i, 3, "0")), std::stoi(r.value(i, 4, "1"))});
  }
  return l;
}

void on_loaded(dispatcher_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("dispatch")->warn("dispatcher {} could not load: {}", st.core.id, l.error);
    actors::give_up(self, type, errc::unavailable, "the database is unavailable, retry shortly",
                    "failed", &empty_state);
    return;
  }
  // What riders told it while it loaded came after the rows it read: the
  // rows go first, the queued commands (skipped until now) after.
  for (auto& r : l.rows) place(st, r.id, r.lat, r.lng, r.rating, r.level);
  st.core.status = "active";
  self->set_default_handler(dispatch);
  self->become(caf::behavior{[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }});
  actors::announce_loaded(self, type, st.core.id);
}

caf::behavior dispatcher_impl(dispatcher_actor* self, std::string id) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_rows, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

} // namespace

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<place_cmd>("gm_d_place")
      .add_message_type<remove_cmd>("gm_d_remove")
      .add_message_type<nearest_cmd>("gm_d_nearest");
  };
  r.make = [](const actors::kind_context&) {
    actors::entity_kind k;
    k.type = type;
    k.spawn = [](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(dispatcher_impl, id);
    };
    return k;
  };
  return r;
}

namespace {

using found_fn = std::function<void(std::vector<rider::candidate>&, const std::string& error)>;

/// Asks the dispatchers of `regions` and runs `done` with their answers
/// added to `into`, ranked and cut to `max`.
void ask_regions(caf::event_based_actor* self, const std::vector<std::string>& regions,
                 const nearest_cmd& q, std::vector<rider::candidate> into, found_fn done) {
  struct gather {
    size_t left = 0;
    std::vector<rider::candidate> all;
    std::string error;
  };
  auto g = std::make_shared<gather>();
  g->left = regions.size();
  g->all = std::move(into);
  auto max = q.max;
  if (regions.empty()) {
    done(g->all, g->error);
    return;
  }
  for (auto& region : regions) {
    actors::ask(self, {type, region}, caf::make_message(q), std::chrono::seconds{5},
                [g, max, done](entity_reply& r) {
                  if (!r.ok()) {
                    g->error = r.detail;
                  } else {
                    auto list = json::parse(r.body, nullptr, false);
                    if (list.is_array()) {
                      for (auto& x : list) {
                        g->all.push_back({x["id"].get<std::string>(), x["m"].get<double>(),
                                          x["rating"].get<double>(), x["level"].get<int32_t>()});
                      }
                    }
                  }
                  if (--g->left > 0) return;
                  rider::rank(g->all);
                  if (g->all.size() > static_cast<size_t>(max)) {
                    g->all.resize(static_cast<size_t>(max));
                  }
                  done(g->all, g->error);
                });
  }
}

} // namespace

void find_candidates(caf::event_based_actor* self, double lat, double lng, double radius_m,
                     int32_t max, std::vector<std::string> exclude, found_fn done) {
  // The point's own region first. If it has `max` riders nearer than some
  // distance d, only neighbours within d of the point can hold better ones
  // (d plus a ranking step: ranking treats distances within
  // rider::same_distance_m alike); usually none does, and the search asks
  // one dispatcher instead of up to nine.
  auto regions = regions_near(lat, lng, radius_m);
  nearest_cmd q{lat, lng, radius_m, max, std::move(exclude)};
  auto own = std::vector<std::string>{regions.front()};
  regions.erase(regions.begin());
  ask_regions(self, own, q,
              {}, [self, lat, lng, radius_m, q, regions, done](std::vector<rider::candidate>& found,
                                                            const std::string& error) mutable {
                if (regions.empty()) {
                  done(found, error);
                  return;
                }
                double reach = radius_m;
                if (found.size() == static_cast<size_t>(q.max)) {
                  double worst = 0;
                  for (auto& c : found) worst = std::max(worst, c.meters);
                  reach = std::min(radius_m, worst + rider::same_distance_m);
                }
                auto near = regions_near(lat, lng, reach);
                std::vector<std::string> more;
                for (auto& r : near) {
                  if (std::find(regions.begin(), regions.end(), r) != regions.end()) more.push_back(r);
                }
                if (!error.empty() && more.empty()) {
                  done(found, error);
                  return;
                }
                ask_regions(self, more, q, std::move(found), done);
              });
}

} // namespace gm::dispatch
