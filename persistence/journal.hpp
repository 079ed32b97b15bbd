// The write-behind journal: entities hand it the rows their changes produce;
// it coalesces repeated writes of a row, writes one transaction per batch
// (multi-row statements over arrays, one per table), and answers durable
// writes only once their batch has committed (group commit). It keeps every
// row while PostgreSQL is down, retrying with backoff; its bound is a shared
// gate that entities check before they change anything.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "common/ids.hpp"

namespace gm::journal {

/// How a table's rows are written.
enum class write_mode : uint8_t {
  /// INSERT … ON CONFLICT (key) DO UPDATE … WHERE table.version < new.version:
  /// an older image never overwrites a newer one.
  upsert_versioned,
  /// INSERT … ON CONFLICT DO NOTHING: append-only rows (ledger entries).
  insert_once,
  /// UPDATE … WHERE key matches AND table.version < new.version: a partial
  /// image of a row that exists (e.g. a profile change without the columns
  /// only registration writes).
  update_versioned,
};

struct column {
  std::string name;
  std::string type;  // PostgreSQL type, e.g. "uuid", "bigint", "text"
};

/// A table the journal writes. Specs are static objects owned by the entity
/// kinds that use them; rows point at them.
struct table_spec {
  std::string name;
  std::vector<column> columns;
  std::vector<size_t> key;     // indexes into columns
  size_t version_column = 0;   // index into columns (upsert_versioned only)
  write_mode mode = write_mode::upsert_versioned;
};

/// One value of a row image: NULL, text (for any column, read as
/// PostgreSQL reads text), or the typed forms entities hold anyway, an
/// integer (bigint, integer, text columns) or a uuid (uuid, text). A typed
/// value goes into the binary formats as it is: printing numbers and ids
/// in the entity only for the journal to parse them back cost a transfer
/// 4% of the node's instructions (docs/bench.md).
class value {
public:
  enum class kind : uint8_t { null, text, integer, uuid };

  value() noexcept = default;
  value(std::nullopt_t) noexcept {}
  value(std::string s) noexcept : kind_(kind::text), text_(std::move(s)) {}
  value(const char* s) : kind_(kind::text), text_(s) {}
  value(std::optional<std::string> s)
      : kind_(s ? kind::text : kind::null), text_(s ? std::move(*s) : std::string{}) {}

  static value integer(int64_t v) noexcept {
    value x;
    x.kind_ = kind::integer;
    x.int_ = v;
    return x;
  }
  static value uuid(const packed_uuid& u) noexcept {
    value x;
    x.kind_ = kind::uuid;
    x.uuid_ = u;
    return x;
  }

  kind which() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == kind::null; }
  /// Only for kind::text.
  const std::string& text_value() const noexcept { return text_; }
  /// Only for kind::integer.
  int64_t integer_value() const noexcept { return int_; }
  /// Only for kind::uuid.
  const packed_uuid& uuid_value() const noexcept { return uuid_; }
  /// Returns the value's text form (as PostgreSQL would print it), or
  /// nullopt for NULL.
  std::optional<std::string> text() const;

private:
  kind kind_ = kind::null;
  int64_t int_ = 0;
  packed_uuid uuid_;
  std::string text_;
};

/// A row's values, moved in (a braced list would copy each of them: an
/// initializer_list's elements are const).
template <class... V>
std::vector<value> values_of(V&&... v) {
  std::vector<value> out;
  out.reserve(sizeof...(v));
  (out.emplace_back(std::forward<V>(v)), ...);
  return out;
}

/// One row image: values in the order of `table->columns`.
struct row {
  row() = default;
  row(const table_spec* t, int64_t v, std::vector<value> vals, bool is_fresh = false)
      : table(t), version(v), values(std::move(vals)), fresh(is_fresh) {}

  const table_spec* table = nullptr;
  int64_t version = 0;
  std::vector<value> values;
  /// The first image of this row ever handed to the journal (its key was
  /// just minted: a new ledger entry, a new transfer), so the table cannot
  /// hold it yet. The journal then writes it without a conflict check (a
  /// binary COPY, or a plain INSERT if a value has no binary form; not ON
  /// CONFLICT, whose speculative insertion costs PostgreSQL about a quarter
  /// more per row) on a batch's first attempt; retries, whose first attempt
  /// may have committed, check. A row wrongly marked fresh costs its batch
  /// one failed attempt, never a wrong write.
  /// Ignored for update_versioned tables.
  bool fresh = false;
  /// Who wrote the row ("kind:id"; null for rows of no entity). If
  /// PostgreSQL refuses a row for good, the journal fails only the writes
  /// of its owner and parks its rows in `journal_refused`.
  std::shared_ptr<const std::string> owner;
};

enum class durability : uint8_t {
  durable,   // the reply waits until the batch holding the rows has committed
  buffered,  // the reply goes out at once; committed within a flush interval
};

/// The journal's bound, shared with the entities: they check it before they
/// change state, so a full journal refuses new work (503) instead of
/// growing. Rows already accepted are never dropped.
class gate {
public:
  explicit gate(int64_t limit) : limit_(limit) {}
  bool accepting() const noexcept { return rows_.load(std::memory_order_relaxed) < limit_; }
  int64_t rows() const noexcept { return rows_.load(std::memory_order_relaxed); }
  int64_t limit() const noexcept { return limit_; }
  void add(int64_t n) noexcept { rows_.fetch_add(n, std::memory_order_relaxed); }

private:
  std::atomic<int64_t> rows_{0};
  int64_t limit_;
};

struct options {
  std::string conninfo;
  std::chrono::milliseconds connect_timeout{2000};
  /// Batches start at most this often while rows keep coming; a journal
  /// that was quiet for this long writes a new row at once.
  std::chrono::milliseconds flush_interval{10};
  /// A batch starts at once when this many rows wait.
  size_t batch_max = 1000;
  /// Start a batch as soon as none is in flight (group commit as PostgreSQL
  /// does it) instead of waiting for the interval or batch_max.
  bool eager = false;
  /// Start a batch as soon as none is in flight if a durable write waits in
  /// it (someone waits for the commit); rows nobody waits for keep the
  /// interval. The default (config `journal_group_commit = durable`).
  bool durable_at_once = false;
  std::chrono::milliseconds retry_min{50};
  std::chrono::milliseconds retry_max{2000};
  /// A sync not answered within this long (PostgreSQL down or slow) is
  /// answered with an error (`caf::sec::request_timeout`).
  std::chrono::milliseconds sync_timeout{30000};
  /// Fencing (docs/architecture.md, Cluster): every batch commits only
  /// while `fence_node`'s row in `nodes` is up with the incarnation in
  /// `fence_incarnation` (0: not joined yet, and batches wait). A batch
  /// PostgreSQL fences (the cluster declared this node down) runs
  /// `on_fenced`, on the writer thread: the node must not write again
  /// under this incarnation. Without a fence_node, batches are not fenced.
  std::string fence_node;
  std::shared_ptr<std::atomic<int64_t>> fence_incarnation;
  std::function<void(const std::string&)> on_fenced;
};

struct stats {
  int64_t pending = 0;    // rows waiting for a batch
  int64_t in_flight = 0;  // rows in the batch being written
  int64_t last_batch_rows = 0;
  double flush_latency_ms_p50 = 0;
  double flush_latency_ms_p99 = 0;
  int64_t batches = 0;
  int64_t rows_written = 0;
  int64_t failures = 0;
  int64_t limit = 0;
  std::string last_error;
  int64_t failing_ms = 0;  // how long the batch in flight has been failing; 0 if it is not
  int64_t refused_rows = 0;      // rows PostgreSQL refused for good, parked
  std::string last_refused;      // "owner: error" of the latest refusal
  int64_t stale_rows = 0;        // versioned rows PostgreSQL already held newer
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stats& x) {
  return f(caf::meta::type_name("gm_journal_stats"), x.pending, x.in_flight,
           x.last_batch_rows, x.flush_latency_ms_p50, x.flush_latency_ms_p99, x.batches,
           x.rows_written, x.failures, x.limit, x.last_error, x.failing_ms, x.refused_rows,
           x.last_refused, x.stale_rows);
}

/// `request(journal, t, write_atom::value, std::vector<row>, bool durable)`
/// → ok_atom (durable: after commit; buffered: at once). A durable write
/// whose rows PostgreSQL refused for good (a constraint, a value it cannot
/// store) gets an error instead: only its owner's rows are refused (and
/// parked in `journal_refused`); the rest of the batch commits.
using write_atom = caf::atom_constant<caf::atom("j_write")>;
/// `request(journal, caf::infinite, sync_atom::value)` → ok_atom once every
/// row handed to the journal before it has committed; an error if that
/// takes longer than `options::sync_timeout`, or if the journal stops
/// first. The deadline is the journal's, so that callers need no timeout
/// of their own: CAF 0.17 never cancels a request's timeout, which holds
/// the requester and about 150 bytes in the actor clock until it fires.
using sync_atom = caf::atom_constant<caf::atom("j_sync")>;
/// `request(journal, t, stats_atom::value)` → stats.
using stats_atom = caf::atom_constant<caf::atom("j_stats")>;
using ok_atom = caf::atom_constant<caf::atom("j_ok")>;

/// Returns the registry name the journal runs under.
caf::atom_value registry_name();

/// Returns the running journal, or an invalid handle while it restarts.
caf::actor find(caf::actor_system& sys);

/// Spawns the journal (its database work runs on its own writer thread).
caf::actor spawn_journal(caf::local_actor* parent, options opts, std::shared_ptr<gate> g);

// Building blocks, exposed for unit tests.

/// Returns `values` as a PostgreSQL array literal: every element quoted
/// (in its text form), NULL for NULL.
std::string array_literal(const std::vector<const value*>& values);

/// Returns `values` as a one-dimensional array in PostgreSQL's binary
/// format for the column types uuid, bigint, integer, text and timestamptz
/// (as the node writes them: UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`), or nullopt
/// for another type or a value that is not one of that type (the caller
/// then sends the array literal, and PostgreSQL says what is wrong).
/// Binary arrays spare PostgreSQL parsing every element of every batch.
std::optional<std::string> binary_array(const std::string& type,
                                        const std::vector<const value*>& values);

/// Returns `rows` of `t` as the data of a binary `COPY … FROM STDIN`
/// (PostgreSQL's binary COPY format, values framed as in binary_array), or
/// nullopt if a column's type or a value has no binary form here.
std::optional<std::string> copy_binary(const table_spec& t, const std::vector<const row*>& rows);

/// Returns `COPY t (columns) FROM STDIN (FORMAT binary)`.
std::string copy_sql(const table_spec& t);

/// Returns the statement that writes rows of `t` from one array per column;
/// for `fresh` rows of an upsert_versioned or insert_once table, a plain
/// INSERT (see row::fresh; used for fresh rows that copy_binary cannot frame).
std::string write_sql(const table_spec& t, bool fresh = false);

/// Returns the coalescing key of `r`: its table and key columns.
std::string row_key(const row& r);

/// Rows waiting to be written, coalesced: a later image of a row replaces
/// an earlier one unless its version is older (append-only rows are kept
/// as they come: the database drops duplicates). A row whose first image
/// is in the batch stays fresh when later images replace it. Tables keep
/// the order in which they first appeared (parents before children).
class batch {
public:
  void add(row r);
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// An attempt to write this batch failed and may have committed: from
  /// now on no row of it is fresh.
  void mark_retried() noexcept { retried_ = true; }
  bool retried() const noexcept { return retried_; }
  struct group {
    const table_spec* table;
    std::vector<row> rows;
  };
  const std::vector<group>& groups() const noexcept { return groups_; }

private:
  std::vector<group> groups_;
  // key → (group index, row index)
  std::unordered_map<std::string, std::pair<size_t, size_t>> index_;
  size_t size_ = 0;
  bool retried_ = false;
};

} // namespace gm::journal

// Local only: rows point at static table specs.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<gm::journal::row>)
