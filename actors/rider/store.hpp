// The rider's store: its table (written through the journal) and what an
// activating rider reads.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace gm::journal {
struct table_spec;
struct row;
}

namespace gm::pg {
class connection;
}

namespace gm::rider {

/// What a rider entity holds.
struct profile {
  std::string status = "offline";  // offline | available | busy
  bool located = false;
  double lat = 0;
  double lng = 0;
  double heading = NAN;  // NaN: unknown
  double speed = NAN;
  int64_t located_at_ms = 0;
  std::string region;  // its dispatcher's region while available
  double rating = 0;   // the average of its reviews (0: none yet)
  int64_t xp = 0;
  int32_t level = 1;
  int64_t completed_tasks = 0;
  std::string task_id;  // the task it carries (busy)
  std::string offer_task;  // the task whose offer it holds (available)
  int64_t offer_until_ms = 0;
};

const journal::table_spec& riders_table();

/// The rider's row at `version`.
journal::row rider_row(const std::string& id, const profile& p, int64_t version);

struct loaded {
  bool found = false;  // a user with the rider role
  std::string error;
  profile p;
  int64_t version = 0;
};

/// Reads rider `id` (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& id);

} // namespace gm::rider
