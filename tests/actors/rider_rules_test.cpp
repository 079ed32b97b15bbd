// The rider's rules (actors/rider/rules.hpp) and the dispatch geometry
// (actors/dispatch/geo.hpp), without actors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "actors/dispatch/geo.hpp"
#include "actors/rider/rules.hpp"

using namespace gm::rider;

TEST_CASE("positions are degrees on the Earth") {
  CHECK(valid_position(-1.2921, 36.8219));
  CHECK(valid_position(90, 180));
  CHECK(valid_position(-90, -180));
  CHECK_FALSE(valid_position(90.0001, 0));
  CHECK_FALSE(valid_position(0, -180.5));
  CHECK_FALSE(valid_position(NAN, 0));
  CHECK_FALSE(valid_position(0, INFINITY));
}

TEST_CASE("XP per task with an on-time bonus, and levels at 50·n·(n−1)") {
  CHECK(xp_for_task(false) == 10);
  CHECK(xp_for_task(true) == 15);
  CHECK(level_for_xp(0) == 1);
  CHECK(level_for_xp(99) == 1);
  CHECK(level_for_xp(100) == 2);
  CHECK(level_for_xp(299) == 2);
  CHECK(level_for_xp(300) == 3);
  CHECK(level_for_xp(1000) == 5);
  CHECK(level_for_xp(INT64_MAX / 2) == 100);
  for (int32_t l = 1; l < 100; ++l) CHECK(level_for_xp(xp_for_level(l)) == l);
}

TEST_CASE("candidates rank by distance first, then rating, then level") {
  std::vector<candidate> cs{{"far", 900, 5.0, 9},
                            {"near-low", 120, 3.0, 1},
                            {"near-high", 150, 4.8, 1},
                            {"near-high-senior", 160, 4.8, 4},
                            {"nearest", 10, 1.0, 1}};
  rank(cs);
  std::vector<std::string> order;
  for (auto& c : cs) order.push_back(c.id);
  CHECK(order == std::vector<std::string>{"nearest", "near-high-senior", "near-high", "near-low",
                                          "far"});
}

TEST_CASE("a search near a region's border asks the neighbour across it") {
  using namespace gm::dispatch;
  // Two points 40 m apart on either side of a region's border: walk east
  // from Nairobi until the region changes.
  double lat = -1.2921, lng = 36.8219;
  auto home = region_of(lat, lng);
  double step = 0.0002;
  while (region_of(lat, lng + step) == home) lng += step;
  auto across = region_of(lat, lng + step);
  CHECK(across != home);
  CHECK(distance_m(lat, lng, lat, lng + step) < 40);
  auto near = regions_near(lat, lng, 500);
  CHECK(near.front() == home);
  CHECK(std::find(near.begin(), near.end(), across) != near.end());
  // A search of 10 m, 100 m inside the border, stays at home.
  CHECK(regions_near(lat, lng - 0.0009, 10).size() == 1);
  CHECK(distance_m(-1.2921, 36.8219, -1.2921, 36.8219) == 0);
  CHECK(std::abs(distance_m(0, 0, 0, 1) - 111195) < 200);
}
