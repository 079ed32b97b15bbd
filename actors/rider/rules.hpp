// The rider's plain rules: where a rider may be, experience and levels, and
// how candidates for a task are ranked. No actor code; unit-tested
// (tests/actors/rider_rules_test.cpp).
//
// A rider's status:
//
//        online                 assigned a task
//   offline ───────▶ available ─────────────────▶ busy
//      ▲   ◀─────────    │  ▲                       │
//      │     offline     │  └───────────────────────┘
//      │                 │     task completed or canceled
//      └─────────────────┘
//   (offline while busy is refused: finish or hand back the task first)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm::rider {

/// Returns true if (lat, lng) are degrees on the Earth (lat -90..90, lng
/// -180..180, finite).
bool valid_position(double lat, double lng);

/// The experience a completed task earns: a base, and a bonus if it was
/// delivered on time.
inline constexpr int64_t xp_per_task = 10;
inline constexpr int64_t xp_on_time_bonus = 5;
int64_t xp_for_task(bool on_time);

/// Returns the level of a rider with `xp`: level n needs 50·n·(n−1) XP
/// (1 at 0, 2 at 100, 3 at 300, 4 at 600, 5 at 1,000, …), at most 100.
int32_t level_for_xp(int64_t xp);

/// Returns the XP level `level` starts at.
int64_t xp_for_level(int32_t level);

/// A rider a task might be offered to.
struct candidate {
  std::string id;
  double meters = 0;  // from the task's pickup
  double rating = 0;  // 0..5 (0: not rated yet)
  int32_t level = 1;
};

/// Distances closer than this count as the same when ranking, so that
/// rating and level decide between riders about as near.
inline constexpr double same_distance_m = 100;

/// Orders candidates best first: distance (in steps of same_distance_m),
/// then rating, then level, then id (a stable, total order).
void rank(std::vector<candidate>& cs);

} // namespace gm::rider
