// Implements the libpq connection wrapper and the thread-owned pool.
#include "persistence/pg.hpp"

#include <algorithm>
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
  PGresult* res = nullptr;
  if (p.empty()) {
    res = PQexec(conn_, sql.c_str());
  } else {
    const auto& name = prepared_name(sql, p.size());
    if (!name.empty()) {
      res = PQexecPrepared(conn_, name.c_str(), static_cast<int>(p.size()), values.data(),
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
    take_error(res, r);
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

void connection::take_error(PGresult* res, result& r) {
  if (res != nullptr) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    r.sqlstate = state != nullptr ? state : "";
    r.error = PQresultErrorMessage(res);
  }
  if (r.error.empty() && conn_ != nullptr) {
    r.error = PQerrorMessage(conn_);
  }
  while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' ')) {
    r.error.pop_back();
  }
  if (r.error.empty()) {
    r.error = "query failed";
  }
}

const std::string& connection::prepared_name(const std::string& sql, size_t nparams) {
  static const std::string none;
  constexpr size_t max_prepared = 256;
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  if (prepared_.size() >= max_prepared) return none;
  auto name = "gm_" + std::to_string(prepared_.size());
  PGresult* prep = PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(nparams), nullptr);
  bool ok = prep != nullptr && PQresultStatus(prep) == PGRES_COMMAND_OK;
  PQclear(prep);
  if (!ok) return none;
  return prepared_.emplace(sql, std::move(name)).first->second;
}

result connection::transaction(const std::vector<statement>& stmts, size_t* failed) {
  result r;
  size_t failed_at = stmts.size();
  struct report {
    size_t* out;
    const size_t& at;
    ~report() {
      if (out != nullptr) *out = at;
    }
  } reported{failed, failed_at};
  if (!ensure_connected(r.error)) return r;
  // Statements are prepared first (once per connection, outside the
  // pipeline). One that cannot be (the bound is reached, or the server
  // refuses it) goes unprepared inside the transaction, like the others:
  // the server then reports its error in its place. COPYs are not
  // prepared.
  std::vector<const std::string*> names;
  names.reserve(stmts.size());
  for (auto& st : stmts) {
    if (st.copy_data != nullptr) {
      names.push_back(nullptr);
      continue;
    }
    auto& name = prepared_name(*st.sql, st.p->size());
    names.push_back(name.empty() ? nullptr : &name);
  }
  // Pipelines of the statements between COPYs; BEGIN goes with the first,
  // COMMIT with the last.
  auto outcome = step::ok;
  size_t from = 0;
  bool begun = false;
  while (outcome == step::ok) {
    size_t to = from;
    while (to < stmts.size() && stmts[to].copy_data == nullptr) ++to;
    bool last = to == stmts.size();
    if (!begun || to > from || last) {
      outcome = pipeline(stmts, names, from, to, !begun, last, r, failed_at);
      begun = true;
    }
    if (last || outcome != step::ok) break;
    outcome = copy_in(stmts[to], r);
    if (outcome != step::ok) failed_at = to;
    from = to + 1;
  }
  if (outcome == step::broken) {
    reset();  // the outcome is unknown to us
  } else if (outcome == step::failed) {
    // A failed statement left the transaction block aborted: end it.
    auto rb = PQexec(conn_, "ROLLBACK");
    bool ok = rb != nullptr && PQresultStatus(rb) == PGRES_COMMAND_OK;
    PQclear(rb);
    if (!ok) reset();
  }
  return r;
}

connection::step connection::pipeline(const std::vector<statement>& stmts,
                                      const std::vector<const std::string*>& names, size_t from,
                                      size_t to, bool begin, bool commit, result& r,
                                      size_t& failed_at) {
  if (PQenterPipelineMode(conn_) != 1) {
    take_error(nullptr, r);
    return step::broken;
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  auto send_plain = [this](const char* sql) {
    return PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  };
  bool sent = !begin || send_plain("BEGIN");
  for (size_t i = from; sent && i < to; ++i) {
    values.clear();
    lengths.clear();
    for (auto& v : *stmts[i].p) {
      values.push_back(v ? v->data() : nullptr);
      lengths.push_back(v ? static_cast<int>(v->size()) : 0);
    }
    const int* formats = stmts[i].binary ? stmts[i].binary->data() : nullptr;
    const int* sizes = formats ? lengths.data() : nullptr;
    auto n = static_cast<int>(values.size());
    sent = (names[i] != nullptr
              ? PQsendQueryPrepared(conn_, names[i]->c_str(), n, values.data(), sizes, formats, 0)
              : PQsendQueryParams(conn_, stmts[i].sql->c_str(), n, nullptr, values.data(), sizes,
                                  formats, 0)) == 1;
  }
  sent = sent && (!commit || send_plain("COMMIT")) && PQpipelineSync(conn_) == 1;
  if (!sent) {
    take_error(nullptr, r);
    return step::broken;  // part of the pipeline may have gone out: start over
  }
  // One result per statement (each followed by a NULL), then the sync.
  size_t first = begin ? 1 : 0;  // results before the statements'
  size_t expected = (to - from) + first + (commit ? 1 : 0);
  size_t seen = 0;
  bool synced = false;
  while (!synced) {
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) {
      if (PQstatus(conn_) != CONNECTION_OK) break;
      continue;  // the end of one statement's results
    }
    auto status = PQresultStatus(res);
    if (status == PGRES_PIPELINE_SYNC) {
      synced = true;
    } else {
      ++seen;
      // Results come in order: BEGIN, the statements, COMMIT.
      size_t at = seen > first && seen - first - 1 < to - from ? from + seen - first - 1
                                                                : stmts.size();
      if (status == PGRES_COMMAND_OK && at < stmts.size() && stmts[at].affected != nullptr) {
        *stmts[at].affected = std::atoll(PQcmdTuples(res));
      }
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && r.error.empty()) {
        take_error(res, r);  // the first error; what follows it was skipped
        // Results come in order: BEGIN, the statements, COMMIT.
        failed_at = seen > first && seen - first - 1 < to - from ? from + seen - first - 1
                                                                  : stmts.size();
      }
    }
    PQclear(res);
  }
  if (!synced || seen != expected) {
    if (r.error.empty()) take_error(nullptr, r);
    return step::broken;
  }
  PQexitPipelineMode(conn_);
  return r.ok() ? step::ok : step::failed;
}

connection::step connection::copy_in(const statement& st, result& r) {
  PGresult* res = PQexec(conn_, st.sql->c_str());
  if (res == nullptr || PQresultStatus(res) != PGRES_COPY_IN) {
    take_error(res, r);
    PQclear(res);
    return PQstatus(conn_) == CONNECTION_OK ? step::failed : step::broken;
  }
  PQclear(res);
  auto& data = *st.copy_data;
  bool sent = true;
  // In pieces: PQputCopyData takes an int length.
  constexpr size_t piece = 1 << 20;
  for (size_t at = 0; sent && at < data.size(); at += piece) {
    auto n = std::min(piece, data.size() - at);
    sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
  }
  if (!sent || PQputCopyEnd(conn_, nullptr) != 1) {
    take_error(nullptr, r);
    return step::broken;
  }
  auto outcome = step::ok;
  while ((res = PQgetResult(conn_)) != nullptr) {
    if (PQresultStatus(res) != PGRES_COMMAND_OK && r.ok()) {
      take_error(res, r);
      outcome = step::failed;
    } else if (st.affected != nullptr) {
      *st.affected = std::atoll(PQcmdTuples(res));
    }
    PQclear(res);
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (r.ok()) take_error(nullptr, r);
    return step::broken;
  }
  return outcome;
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
