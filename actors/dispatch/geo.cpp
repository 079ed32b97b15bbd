// Implements the dispatch geometry with S2.
#include "actors/dispatch/geo.hpp"

#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>

namespace gm::dispatch {

std::string region_of(double lat, double lng) {
  return S2CellId(S2LatLng::FromDegrees(lat, lng)).parent(region_level).ToToken();
}

std::vector<std::string> regions_near(double lat, double lng, double radius_m) {
  auto point = S2LatLng::FromDegrees(lat, lng).ToPoint();
  auto own = S2CellId(point).parent(region_level);
  std::vector<std::string> out{own.ToToken()};
  std::vector<S2CellId> around;
  own.AppendAllNeighbors(region_level, &around);
  auto radius = S1ChordAngle(S2Earth::ToAngle(util::units::Meters(radius_m)));
  for (auto& c : around) {
    if (S2Cell(c).GetDistance(point) <= radius) out.push_back(c.ToToken());
  }
  return out;
}

double distance_m(double lat1, double lng1, double lat2, double lng2) {
  return S2Earth::ToMeters(S2LatLng::FromDegrees(lat1, lng1).GetDistance(
    S2LatLng::FromDegrees(lat2, lng2)));
}

} // namespace gm::dispatch
