// The delivery task's store: its table (written through the journal), its
// JSON as API.md shows it, what an activating task reads, and the list the
// gateway reads for GET /tasks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/task/rules.hpp"

namespace gm::journal {
struct table_spec;
struct row;
}

namespace gm::pg {
class connection;
}

namespace gm::task {

const journal::table_spec& tasks_table();

/// The task's row at `version`.
journal::row task_row(const task& t, int64_t version);

/// The task as API.md shows it (a JSON object).
std::string render(const task& t, int64_t version);

struct loaded {
  bool found = false;  // a row exists (any status)
  std::string error;
  task t;
  int64_t version = 0;
};

/// Reads task `id` (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& id);

/// Which tasks a list shows: all (`everyone`: dispatchers, admins), or
/// those `user` created or rode; with `status` if not empty; newest first
/// from `offset`, at most `limit`.
struct list_query {
  bool everyone = false;
  std::string user;
  std::string status;
  int64_t offset = 0;
  int64_t limit = 50;
};

/// Reads the tasks of `q` as JSON objects (render) into `out` (on a pool
/// thread). Returns false and sets `error` if the database failed.
bool list(pg::connection& c, const list_query& q, std::vector<std::string>& out,
          std::string& error);

} // namespace gm::task
