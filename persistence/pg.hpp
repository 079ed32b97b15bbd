// PostgreSQL access for gigmesh: a pool of libpq connections, each owned by a
// thread of the pool, so that no CAF worker or Beast io thread ever waits on
// the database. Work is submitted as jobs; results come back through
// callbacks that run on the pool thread (post them onward, do not block).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/worker_pool.hpp"

struct pg_conn;
struct pg_result;

namespace gm::pg {

using params = std::vector<std::optional<std::string>>;

struct result {
  std::string error;     // empty on success
  std::string sqlstate;  // set for server-side errors
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;

  bool ok() const noexcept { return error.empty(); }
  /// Returns the value at (row, col) or `fallback` if NULL or absent.
  std::string value(size_t row, size_t col, std::string fallback = {}) const;
};

/// One libpq connection. Used only on the thread of the pool that owns it.
class connection {
public:
  connection(std::string conninfo, std::chrono::milliseconds connect_timeout);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Returns the result of `sql` with `$n` parameters (text format); without
  /// parameters `sql` may hold several statements (the last result). Connects
  /// first if there is no healthy connection; a failed connect is an error
  /// result, not an exception.
  result exec(const std::string& sql, const params& p = {});

  /// One statement of a transaction(). `binary`, if given, marks the
  /// parameters sent in PostgreSQL's binary format (one flag each; their
  /// bytes may hold NULs); the others are text. With `copy_data`, `sql` is
  /// a `COPY … FROM STDIN` (no parameters) and these bytes are its data.
  struct statement {
    const std::string* sql;
    const params* p;
    const std::vector<int>* binary = nullptr;
    const std::string* copy_data = nullptr;
    /// If given, set to the rows the statement affected (PQcmdTuples).
    int64_t* affected = nullptr;
  };

  /// Runs `stmts` in one transaction, sent in as few round trips as
  /// libpq allows: BEGIN, the statements and COMMIT go in one pipeline
  /// (libpq's pipeline mode), except that a COPY cannot be pipelined and
  /// takes two round trips of its own between the pipelines before and
  /// after it. Returns the first error, or an empty result on success. On
  /// an error nothing is committed, and the connection is dropped if the
  /// outcome is unknown (the next call reconnects). `failed`, if given, is
  /// set to the index of the statement that failed (stmts.size() if it was
  /// BEGIN, COMMIT or the connection).
  result transaction(const std::vector<statement>& stmts, size_t* failed = nullptr);

  /// Returns true if a connection is established and healthy.
  bool connected() const;

  /// Drops the connection; the next exec reconnects.
  void reset();

private:
  bool ensure_connected(std::string& error);
  /// Returns the name `sql` is prepared under on this connection (preparing
  /// it now if need be), or empty if it cannot be prepared.
  const std::string& prepared_name(const std::string& sql, size_t nparams);
  /// Fills r.error (and sqlstate) from `res` or the connection.
  void take_error(pg_result* res, result& r);
  /// How a part of transaction() ended.
  enum class step { ok, failed, broken };
  /// Sends BEGIN (if `begin`), stmts[from, to) (none a COPY) and COMMIT
  /// (if `commit`) in one pipeline and reads their results.
  step pipeline(const std::vector<statement>& stmts,
                const std::vector<const std::string*>& names, size_t from, size_t to,
                bool begin, bool commit, result& r, size_t& failed_at);
  /// Runs one COPY … FROM STDIN with its data.
  step copy_in(const statement& st, result& r);

  std::string conninfo_;
  std::chrono::milliseconds connect_timeout_;
  pg_conn* conn_ = nullptr;
  // Statements with parameters are prepared once per connection: the server
  // then skips parsing and planning. Bounded; SQL text is always constant.
  std::unordered_map<std::string, std::string> prepared_;
};

using pool_stats = worker_pool_stats;

/// Ownership: jobs may hold references to the pool that runs them (to
/// submit a next step), so the owner must call stop() itself before it drops
/// its reference. stop() joins every pool thread, so no job can then hold the
/// last reference on a pool thread (which would have to join itself).
class pool {
public:
  using job = std::function<void(connection&)>;

  /// `queue_limit` bounds jobs waiting for a connection; beyond it submit()
  /// refuses work instead of growing memory.
  pool(std::string conninfo, int size, std::chrono::milliseconds connect_timeout,
       size_t queue_limit = 10000);
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// Starts the pool's threads. Connections are made lazily, per thread.
  void start();

  /// Refuses new jobs, lets the threads finish what is queued, and joins
  /// them. Safe to call twice.
  void stop();

  /// Returns false if the pool is stopped or its queue is full.
  bool submit(job j);

  /// Runs one statement and hands its result to `done` (on a pool thread).
  /// Returns false if the job was not accepted; `done` is then not called.
  bool query(std::string sql, params p, std::function<void(result)> done);

  pool_stats stats() const { return workers_.stats(); }

  /// Returns true once stop() has begun: submit() will refuse everything.
  bool stopped() const { return workers_.stopped(); }

private:
  std::string conninfo_;
  std::chrono::milliseconds connect_timeout_;
  worker_pool<connection> workers_;
};

} // namespace gm::pg
