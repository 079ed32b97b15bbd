// Implements the rider's plain rules.
#include "actors/rider/rules.hpp"

#include <algorithm>
#include <cmath>

namespace gm::rider {

bool valid_position(double lat, double lng) {
  return std::isfinite(lat) && std::isfinite(lng) && lat >= -90 && lat <= 90 && lng >= -180 &&
         lng <= 180;
}

int64_t xp_for_task(bool on_time) {
  return xp_per_task + (on_time ? xp_on_time_bonus : 0);
}

int64_t xp_for_level(int32_t level) {
  return 50LL * level * (level - 1);
}

int32_t level_for_xp(int64_t xp) {
  int32_t level = 1;
  while (level < 100 && xp >= xp_for_level(level + 1)) ++level;
  return level;
}

void rank(std::vector<candidate>& cs) {
  std::sort(cs.begin(), cs.end(), [](const candidate& a, const candidate& b) {
    auto da = static_cast<int64_t>(a.meters / same_distance_m);
    auto db = static_cast<int64_t>(b.meters / same_distance_m);
    if (da != db) return da < db;
    if (a.rating != b.rating) return a.rating > b.rating;
    if (a.level != b.level) return a.level > b.level;
    if (a.meters != b.meters) return a.meters < b.meters;
    return a.id < b.id;
  });
}

} // namespace gm::rider
