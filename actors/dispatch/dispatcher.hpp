// The dispatcher kind: one entity per region (an S2 cell, geo.hpp), keeping
// the available riders of its region in an S2PointIndex, as DESIGN.md's
// Dispatch section asks. Riders tell their region's dispatcher where they
// are while available, and leave it when they go offline, get busy or move
// to another region. A dispatcher holds nothing durable: when it
// activates it reads the available riders of its region from `riders`.
//
// find_candidates() asks the dispatchers of the regions around a point
// and merges their answers, ranked (rider/rules.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/kinds.hpp"
#include "actors/rider/rules.hpp"

namespace gm::dispatch {

inline constexpr const char* type = "dispatcher";

/// Rider → its region's dispatcher: I am available here (added or moved).
struct place_cmd {
  std::string rider;
  double lat = 0;
  double lng = 0;
  double rating = 0;
  int32_t level = 1;
};
/// Rider → a dispatcher: forget me (offline, busy, or moved away).
struct remove_cmd {
  std::string rider;
};
/// → ok with a JSON body [{"id","m","rating","level"}]: the available
/// riders of this region within `radius_m` of (lat, lng), nearest first, at
/// most `max`, leaving out `exclude`.
struct nearest_cmd {
  double lat = 0;
  double lng = 0;
  double radius_m = 0;
  int32_t max = 0;
  std::vector<std::string> exclude;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, place_cmd& x) {
  return f(caf::meta::type_name("gm_d_place"), x.rider, x.lat, x.lng, x.rating, x.level);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remove_cmd& x) {
  return f(caf::meta::type_name("gm_d_remove"), x.rider);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, nearest_cmd& x) {
  return f(caf::meta::type_name("gm_d_nearest"), x.lat, x.lng, x.radius_m, x.max, x.exclude);
}

/// Returns the dispatcher's line in the list of kinds (no topic).
actors::kind_registration registration();

/// Asks the dispatchers of the regions within `radius_m` of (lat, lng) for
/// their nearest available riders and runs `done` on `self` with all of
/// them, ranked best first (at most `max`), or with `error` set if a
/// dispatcher did not answer.
void find_candidates(caf::event_based_actor* self, double lat, double lng, double radius_m,
                     int32_t max, std::vector<std::string> exclude,
                     std::function<void(std::vector<rider::candidate>&, const std::string& error)>
                       done);

} // namespace gm::dispatch
