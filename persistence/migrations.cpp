// Implements migration planning and the locked apply step.
#include "persistence/migrations.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "persistence/pg.hpp"

namespace gm::pg {
namespace {

// Any constant works; all nodes must use the same one.
constexpr const char* migration_lock_key = "7316204412093";

constexpr const char* create_table_sql =
  "CREATE TABLE IF NOT EXISTS schema_migrations ("
  " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
  " applied_at timestamptz NOT NULL DEFAULT now())";

constexpr const char* select_applied_sql =
  "SELECT version, checksum FROM schema_migrations ORDER BY version";

constexpr const char* insert_applied_sql =
  "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";

} // namespace

std::string checksum(const std::string& sql) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : sql) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<migration> plan(const std::vector<migration>& known,
                            const std::vector<applied_migration>& applied) {
  std::vector<migration> out;
  for (auto& a : applied) {
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const migration& m) { return m.version == a.version; });
    if (it == known.end()) {
      throw std::runtime_error("database has migration " + std::to_string(a.version) +
                               " that this binary does not know (is a newer version running?)");
    }
    if (checksum(it->sql) != a.checksum) {
      throw std::runtime_error("migration " + std::to_string(a.version) + " (" + it->name +
                               ") was changed after it was applied");
    }
  }
  for (auto& m : known) {
    bool done = std::any_of(applied.begin(), applied.end(),
                            [&](const applied_migration& a) { return a.version == m.version; });
    if (!done) {
      out.push_back(m);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const migration& a, const migration& b) { return a.version < b.version; });
  return out;
}

migrate_outcome migrate(connection& conn, const std::vector<migration>& known) {
  migrate_outcome out;
  auto step = [&](const std::string& sql, const params& p = {}) {
    auto r = conn.exec(sql, p);
    if (!r.ok()) {
      throw std::runtime_error(r.error);
    }
    return r;
  };
  try {
    step("BEGIN");
    step("SELECT pg_advisory_xact_lock($1::bigint)", {std::string{migration_lock_key}});
    step(create_table_sql);
    auto rows = step(select_applied_sql);
    std::vector<applied_migration> applied;
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      applied.push_back({std::stoi(rows.value(i, 0)), rows.value(i, 1)});
    }
    auto todo = plan(known, applied);
    for (auto& m : todo) {
      step(m.sql);
      step(insert_applied_sql, {std::to_string(m.version), m.name, checksum(m.sql)});
    }
    step("COMMIT");
    out.ok = true;
    out.applied_now = static_cast<int>(todo.size());
    for (auto& m : known) {
      out.schema_version = std::max(out.schema_version, m.version);
    }
  } catch (const std::exception& e) {
    out.error = e.what();
    conn.exec("ROLLBACK");
  }
  return out;
}

} // namespace gm::pg
