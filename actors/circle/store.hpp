// The circle's store: the tables circles write through the journal, and
// what an activating circle reads (its row, its members, the payouts it
// left pending).
#pragma once

#include <string>
#include <vector>

#include "actors/circle/rules.hpp"
#include "actors/money/moves.hpp"

namespace gm::journal {
struct table_spec;
struct row;
}

namespace gm::pg {
class connection;
}

namespace gm::circle {

const journal::table_spec& circles_table();
const journal::table_spec& members_table();

/// The circle's row and its members' rows at `version`.
journal::row circle_row(const circle& c, int64_t version);
journal::row member_row(const circle& c, const member& m, int64_t version);

struct loaded {
  bool found = false;
  std::string error;
  circle c;
  int64_t version = 0;
  std::vector<money::pending> moves;
};

/// Reads circle `id` (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& id);

} // namespace gm::circle
