// Implements the libpq connection wrapper and the thread-owned pool.
#include "persistence/pg.hpp"

#include <cstdlib>

#include <libpq-fe.h>


namespace gm::pg {

std::string result::value(size_t row, size_t col, std::string fallback) const {
  if (row >= rows.size() || col >= rows[row].size() || !rows[row][col]) {
    return fallback;
  }
  return *rows[row][col];
}

connection::connection(std::string conninfo, std::chrono::milliseconds connect_timeout)
  : conninfo_(std::move(conninfo)), connect_timeout_(connect_timeout) {
  // nop
}

connection::~connection() {
  reset();
}

void connection::reset() {
  prepared_.clear();
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

bool connection::connected() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

bool connection::ensure_connected(std::string& error) {
  if (connected()) {
    return true;
  }
  reset();
  // libpq's connect_timeout is whole seconds, at least 2 in practice.
  auto secs = std::max<int64_t>(2, (connect_timeout_.count() + 999) / 1000);
  auto timeout = std::to_string(secs);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {conninfo_.c_str(), timeout.c_str(), "gigmesh", nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    error = "connect: ";
    error += conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) {
      error.pop_back();
    }
    reset();
    return false;
  }
  // Server notices (e.g. "already exists, skipping") go to the log, not stderr.
  PQsetNoticeProcessor(
    conn_, [](void*, const char* msg) { gm::log::get("pg")->debug("notice: {}", msg); }, nullptr);
  return true;
}

result connection::exec(const std::string& sql, const params& p) {
  result r;
  if (!ensure_connected(r.error)) {
    return r;
  }
  std::vector<const char*> values;
  values.reserve(p.size());
  for (auto& v : p) {
    values.push_back(v ? v->c_str() : nullptr);
  }
  // Without parameters, the simple query protocol: it also runs scripts of
  // several statements (migrations); PQexecParams allows only one.
  constexpr size_t max_prepared = 256;
  PGresult* res = nullptr;
  if (p.empty()) {
    res = PQexec(conn_, sql.c_str());
  } else {
    auto it = prepared_.find(sql);
    if (it == prepared_.end() && prepared_.size() < max_prepared) {
      auto name = "gm_" + std::to_string(prepared_.size());
      PGresult* prep = PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(p.size()),
                                 nullptr);
      if (prep != nullptr && PQresultStatus(prep) == PGRES_COMMAND_OK) {
        it = prepared_.emplace(sql, name).first;
      }
      PQclear(prep);
    }
    if (it != prepared_.end()) {
      res = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(p.size()), values.data(),
                           nullptr, nullptr, 0);
    } else {
      // Not preparable (or the bound is reached): the server reports any
      // error in the statement itself here.
      res = PQexecParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, values.data(),
                         nullptr, nullptr, 0);
    }
  }
  auto status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    auto ncols = PQnfields(res);
    for (int c = 0; c < ncols; ++c) {
      r.columns.emplace_back(PQfname(res, c));
    }
    auto nrows = PQntuples(res);
    r.rows.reserve(static_cast<size_t>(nrows));
    for (int i = 0; i < nrows; ++i) {
      std::vector<std::optional<std::string>> row;
      row.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, i, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string{PQgetvalue(res, i, c),
                                       static_cast<size_t>(PQgetlength(res, i, c))});
        }
      }
      r.rows.push_back(std::move(row));
    }
    const char* affected = PQcmdTuples(res);
    if (affected != nullptr && *affected != '\0') {
      r.affected = std::strtoll(affected, nullptr, 10);
    }
  } else {
    if (res != nullptr) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      r.sqlstate = state != nullptr ? state : "";
      r.error = PQresultErrorMessage(res);
    }
    if (r.error.empty()) {
      r.error = PQerrorMessage(conn_);
    }
    while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' ')) {
      r.error.pop_back();
    }
    if (r.error.empty()) {
      r.error = "query failed";
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      // The server went away: drop the connection so the next job reconnects.
      reset();
    }
  }
  if (res != nullptr) {
    PQclear(res);
  }
  return r;
}

pool::pool(std::string conninfo, int size, std::chrono::milliseconds connect_timeout,
           size_t queue_limit)
  : conninfo_(std::move(conninfo)),
    connect_timeout_(connect_timeout),
    workers_("pg", size, queue_limit, [this] {
      // Each pool thread owns one connection; it connects on its first query.
      return std::make_unique<connection>(conninfo_, connect_timeout_);
    }) {
  // nop
}

pool::~pool() {
  stop();
}

void pool::start() {
  workers_.start();
}

void pool::stop() {
  // Jobs no thread ran (never started) still get an answer: a connection
  // that refuses, so their callbacks see an error rather than silence.
  auto left = workers_.stop();
  if (!left.empty()) {
    connection refused{"host=/nonexistent/gigmesh-pool-stopped", connect_timeout_};
    for (auto& j : left) {
      j(refused);
    }
  }
}

bool pool::submit(job j) {
  return workers_.submit(std::move(j));
}

bool pool::query(std::string sql, params p, std::function<void(result)> done) {
  return submit([sql = std::move(sql), p = std::move(p), done = std::move(done)](connection& c) {
    done(c.exec(sql, p));
  });
}

} // namespace gm::pg
