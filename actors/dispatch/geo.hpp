// Where dispatch happens, in S2 cells (Google's S2 geometry, Debian's
// libs2-dev), behind a light header: S2's own headers stay in geo.cpp and
// dispatcher.cpp. A region is an S2 cell of level 10 (edges of about 7 to
// 10 km); one dispatcher actor keeps the available riders of one region.
#pragma once

#include <string>
#include <vector>

namespace gm::dispatch {

/// The S2 level of a region.
inline constexpr int region_level = 10;

/// Returns the token of the region that holds (lat, lng), in degrees.
std::string region_of(double lat, double lng);

/// Returns the regions a search of `radius_m` metres around (lat, lng) must
/// ask: the point's own region first, then those of its neighbours (the
/// eight around it) that come within `radius_m` of the point, so a rider
/// just across a region's border is found.
std::vector<std::string> regions_near(double lat, double lng, double radius_m);

/// Returns the distance in metres between two points on the Earth.
double distance_m(double lat1, double lng1, double lat2, double lng2);

} // namespace gm::dispatch
