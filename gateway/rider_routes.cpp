// The rider routes of API.md's "Riders and delivery tasks": a rider goes
// online and offline and sends its location (also over the WebSocket
// `location` op, gateway/ws.cpp); anyone signed in reads a rider, its
// location only if it is the rider, a dispatcher or an admin. Each route is
// one command to the rider entity.
#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/dispatch/dispatcher.hpp"
#include "actors/rider/rider.hpp"
#include "actors/router.hpp"
#include "common/ids.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"

namespace gm::gateway {

namespace {

/// The caller as a rider, or nullopt after answering 403 (another role).
bool is_rider(const request& rq, const respond_fn& respond) {
  if (rq.role == "rider") return true;
  respond(problem(403, "forbidden", "Forbidden", "only riders go online and send locations"));
  return false;
}

double optional_number(const nlohmann::json& b, const char* name) {
  return b.contains(name) ? b[name].get<double>() : NAN;
}

std::shared_ptr<const body_schema> position_schema(bool with_motion) {
  std::vector<field_rule> fields{number_field("lat", true, -90, 90),
                                 number_field("lng", true, -180, 180)};
  if (with_motion) {
    fields.push_back(number_field("heading", false, 0, 360));
    fields.push_back(number_field("speed", false, 0, 1000));
  }
  return make_schema(std::move(fields));
}

} // namespace

void add_rider_routes(route_table& table, api_context_ptr) {
  table.add(api_route(
    "POST", "/api/v1/riders/me/online", "Go online at a position (riders)", "riders",
    {{200, "rider"}, {403, "not a rider"}}, {true, {}, position_schema(false)},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      if (!is_rider(rq, respond)) return;
      const auto& b = *rq.json;
      ask_entity(self, {rider::type, rq.user_id},
                 caf::make_message(
                   rider::online_cmd{rq.user_id, b["lat"].get<double>(), b["lng"].get<double>()}),
                 200, std::move(respond));
    }));
  table.add(api_route("POST", "/api/v1/riders/me/offline", "Go offline (riders; not while busy)",
                      "riders", {{200, "rider"}, {403, "not a rider"}, {409, "busy"}},
                      {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        if (!is_rider(rq, respond)) return;
                        ask_entity(self, {rider::type, rq.user_id},
                                   caf::make_message(rider::offline_cmd{rq.user_id}), 200,
                                   std::move(respond));
                      }));
  table.add(api_route(
    "POST", "/api/v1/riders/me/location",
    "A location ping (riders, while online; buffered durability)", "riders",
    {{202, "{lat, lng, heading?, speed?, located_at, status}"}, {403, "not a rider"},
     {409, "offline"}},
    {true, {}, position_schema(true)},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      if (!is_rider(rq, respond)) return;
      const auto& b = *rq.json;
      ask_entity(self, {rider::type, rq.user_id},
                 caf::make_message(rider::locate_cmd{rq.user_id, b["lat"].get<double>(),
                                                     b["lng"].get<double>(),
                                                     optional_number(b, "heading"),
                                                     optional_number(b, "speed")}),
                 202, std::move(respond));
    }));
  // Before /riders/{id}: the first route whose pattern matches wins.
  table.add(api_route(
    "GET", "/api/v1/riders/nearby",
    "The available riders nearest a point, best first as dispatch ranks them (distance, then "
    "rating and level): ?lat=&lng= required, ?radius_m= (1..50,000, 5,000), ?limit= (1..100, "
    "10); dispatchers and admins",
    "riders", {{200, "{items: [{id, distance_m, rating, level}]}"}, {400, "bad query"},
               {403, "not a dispatcher"}},
    {true, {}, nullptr},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      if (rq.role != "dispatcher" && rq.role != "admin") {
        respond(problem(403, "forbidden", "Forbidden", "nearby riders are for dispatchers"));
        return;
      }
      auto number = [&](const char* name, double lo, double hi, std::optional<double> fallback,
                        double& out) {
        auto q = rq.query_param(name);
        if (!q) {
          if (!fallback) {
            respond(problem(400, "invalid-query", "Bad Request", std::string{name} + " is required"));
            return false;
          }
          out = *fallback;
          return true;
        }
        char* end = nullptr;
        out = std::strtod(q->c_str(), &end);
        if (q->empty() || end != q->c_str() + q->size() || !(out >= lo && out <= hi)) {
          std::ostringstream why;
          why << name << " must be a number between " << lo << " and " << hi;
          respond(problem(400, "invalid-query", "Bad Request", why.str()));
          return false;
        }
        return true;
      };
      double lat, lng, radius, limit;
      if (!number("lat", -90, 90, std::nullopt, lat) || !number("lng", -180, 180, std::nullopt, lng) ||
          !number("radius_m", 1, 50000, 5000.0, radius) || !number("limit", 1, 100, 10.0, limit)) {
        return;
      }
      dispatch::find_candidates(
        self, lat, lng, radius, static_cast<int32_t>(limit), {},
        [respond](std::vector<rider::candidate>& cs, const std::string& error) {
          if (!error.empty() && cs.empty()) {
            respond(unavailable("a dispatcher did not answer: " + error));
            return;
          }
          nlohmann::json items = nlohmann::json::array();
          for (auto& c : cs) {
            items.push_back({{"id", c.id},
                             {"distance_m", std::round(c.meters * 10) / 10},
                             {"rating", c.rating},
                             {"level", c.level}});
          }
          respond(json_response(200, nlohmann::json{{"items", std::move(items)}}.dump()));
        });
    }));
  table.add(api_route(
    "GET", "/api/v1/riders/{id}",
    "A rider: status, rating, level, XP, completed tasks; its location for itself, dispatchers "
    "and admins",
    "riders", {{200, "rider"}, {404, "no such rider"}}, {true, {}, nullptr},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      auto id = rq.path_params.at("id");
      if (!is_uuid(id)) {
        respond(problem(404, "not-found", "Not Found", "no such rider"));
        return;
      }
      ask_entity(self, {rider::type, lower_uuid(id)},
                 caf::make_message(rider::get_cmd{rq.user_id, rq.role}), 200, std::move(respond));
    }));
}

} // namespace gm::gateway
