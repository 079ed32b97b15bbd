// Versioned SQL migrations, compiled into the binary from
// persistence/migrations/NNNN_name.sql and applied at start, in order, once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm::pg {

class connection;

struct migration {
  int version = 0;
  std::string name;
  std::string sql;
};

struct applied_migration {
  int version = 0;
  std::string checksum;
};

/// Returns the migrations built into this binary, ordered by version.
const std::vector<migration>& builtin_migrations();

/// Returns the checksum recorded for a migration's SQL (FNV-1a 64, hex).
std::string checksum(const std::string& sql);

/// Returns the migrations of `known` that are not in `applied`, in order.
/// Throws std::runtime_error if an applied migration's checksum differs from
/// the built-in one (someone edited a released migration) or if the database
/// holds a version this binary does not know (a newer binary ran).
std::vector<migration> plan(const std::vector<migration>& known,
                            const std::vector<applied_migration>& applied);

struct migrate_outcome {
  bool ok = false;
  int schema_version = 0;
  int applied_now = 0;
  std::string error;
};

/// Applies `known` on `conn` in one transaction holding an advisory lock, so
/// that nodes starting at once apply each migration exactly once. Blocking:
/// call it on a pool thread.
migrate_outcome migrate(connection& conn, const std::vector<migration>& known);

} // namespace gm::pg
