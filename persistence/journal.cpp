// Implements the write-behind journal: an actor that takes rows to be
// written, and one writer thread (a pool of one connection) that commits
// one batch at a time, in order. The rows waiting for a batch sit in a
// `feed` the two share, so that the writer can start the next batch itself
// the moment one commits; the actor hears of each commit afterwards and
// answers the durable writes in it.
//
//   write ──▶ pending batch ──(interval, batch_max, or eager)──▶ in flight
//
// A batch starts when none is in flight and either flush_interval has
// passed since the last one started (a quiet journal writes at once), or
// batch_max rows wait, or a durable write waits in it (mode `durable`, the
// default: group commit), or the journal is eager.
//                 ▲                                                 │
//                 └──────── retry with backoff on failure ◀─────────┤
//                                      commit: answer durable writes ◀┘
#include "persistence/journal.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "common/ids.hpp"
#include "common/inspect_feed.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"
#include "persistence/pg.hpp"

namespace gm::journal {
/// What the writer tells the journal of a written batch beside its error.
struct batch_report {
  std::vector<std::pair<std::string, std::string>> refused;  // owner, PostgreSQL's error
  int64_t parked = 0;  // refused rows parked in journal_refused
  bool isolated = false;  // the batch failed once and was written in parts
  int64_t stale = 0;   // versioned rows PostgreSQL already held newer
  std::string stale_tables;
};
} // namespace gm::journal

// Local only: the writer hands the journal the batch it started.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<gm::journal::batch>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::journal::batch_report)

namespace gm::journal {

std::optional<std::string> value::text() const {
  switch (kind_) {
    case kind::null:
      return std::nullopt;
    case kind::integer:
      return std::to_string(int_);
    case kind::uuid:
      return uuid_.str();
    case kind::text:
      break;
  }
  return text_;
}

std::string array_literal(const std::vector<const value*>& values) {
  std::string out;
  size_t reserve = 2;
  for (auto* v : values) {
    reserve += v->which() == value::kind::text ? v->text_value().size() + 3 : 39;
  }
  out.reserve(reserve);
  out += '{';
  bool first = true;
  for (auto* v : values) {
    if (!first) out += ',';
    first = false;
    if (v->is_null()) {
      out += "NULL";
      continue;
    }
    out += '"';
    if (v->which() != value::kind::text) {
      out += *v->text();  // digits, a minus, hex and dashes: nothing to escape
      out += '"';
      continue;
    }
    // Whole runs between the characters that need a backslash: most values
    // have none and are appended in one go. (A plain loop: find_first_of
    // with a set calls a search of the set per character, and showed in
    // profiles.)
    const std::string& text = v->text_value();
    size_t from = 0;
    for (size_t at = 0; at < text.size(); ++at) {
      char c = text[at];
      if (c != '"' && c != '\\') continue;
      out.append(text, from, at - from);
      out += '\\';
      out += c;
      from = at + 1;
    }
    out.append(text, from, std::string::npos);
    out += '"';
  }
  out += '}';
  return out;
}

namespace {

/// Writes into a buffer sized beforehand (binary_size gives each value's
/// size exactly), without a length check per append.
struct cursor {
  char* p;

  void be32(uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
    p += 4;
  }
  void be64(uint64_t v) {
    be32(static_cast<uint32_t>(v >> 32));
    be32(static_cast<uint32_t>(v));
  }
  void bytes(const char* data, size_t n) {
    std::memcpy(p, data, n);
    p += n;
  }
};

/// Writes the 16 bytes of a canonical uuid (8-4-4-4-12 hex digits).
bool put_uuid(cursor& out, const std::string& s) {
  packed_uuid u;
  if (!packed_uuid::try_parse(s, u)) return false;
  out.bytes(reinterpret_cast<const char*>(u.bytes), sizeof u.bytes);
  return true;
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// Parses a UTC timestamp as the node writes them, YYYY-MM-DDTHH:MM:SS
/// with 0 to 6 fractional digits and a Z, into microseconds since
/// 2000-01-01 (PostgreSQL's epoch). Anything else is left to PostgreSQL.
bool parse_utc_micros(const std::string& s, int64_t& out) {
  if (s.size() < 20 || s.size() > 27 || s.back() != 'Z' || s[4] != '-' || s[7] != '-' ||
      s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return false;
  }
  auto num = [&s](size_t at, size_t len, int64_t& v) {
    v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, sec;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, sec)) {
    return false;
  }
  static constexpr int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || (mo == 2 && d == 29 && !leap) ||
      h > 23 || mi > 59 || sec > 59) {
    return false;
  }
  int64_t micros = 0;
  if (s.size() > 20) {
    size_t digits = s.size() - 21;  // between '.' and 'Z'
    if (s[19] != '.' || digits == 0 || !num(20, digits, micros)) return false;
    for (size_t i = digits; i < 6; ++i) micros *= 10;
  }
  int64_t days = days_from_civil(y, mo, d) - 10957;  // 2000-01-01
  out = ((days * 24 + h) * 60 + mi) * 60 * 1000000 + sec * 1000000 + micros;
  return true;
}

/// Parses all of `s` as a decimal integer within [lo, hi].
bool parse_int(const std::string& s, int64_t lo, int64_t hi, int64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size() && v >= lo && v <= hi;
}

} // namespace

namespace {

/// A column type the node sends in PostgreSQL's binary format.
struct binary_type {
  uint32_t oid = 0;  // 0: none
  int width = 0;     // bytes per value; 0: variable (text); -8: 8 bytes, from text
};

binary_type binary_type_of(const std::string& type) {
  // Type OIDs and widths, from PostgreSQL's pg_type.
  if (type == "uuid") return {2950, 16};
  if (type == "bigint") return {20, 8};
  if (type == "integer") return {23, 4};
  if (type == "text") return {25, 0};
  if (type == "timestamptz") return {1184, -8};
  return {};
}

/// The number of characters of `v` in decimal.
size_t decimal_size(int64_t v) {
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  size_t n = v < 0 ? 2 : 1;
  while (u >= 10) {
    u /= 10;
    ++n;
  }
  return n;
}

/// Writes `n` into an integer column of `width` bytes (8: bigint, 4:
/// integer). Returns false for another width, or a value the column cannot
/// hold.
bool put_integer(cursor& out, int width, int64_t n) {
  if (width == 8) {
    out.be32(8);
    out.be64(static_cast<uint64_t>(n));
    return true;
  }
  if (width != 4 || n < INT32_MIN || n > INT32_MAX) return false;
  out.be32(4);
  out.be32(static_cast<uint32_t>(static_cast<int32_t>(n)));
  return true;
}

/// Writes one text value of a column of type `t`.
bool put_text(cursor& out, binary_type t, const std::string& s) {
  int64_t n = 0;
  switch (t.width) {
    case 16:
      out.be32(16);
      return put_uuid(out, s);
    case 8:
    case 4:
      return parse_int(s, INT64_MIN, INT64_MAX, n) && put_integer(out, t.width, n);
    case -8:
      if (!parse_utc_micros(s, n)) return false;
      out.be32(8);
      out.be64(static_cast<uint64_t>(n));
      return true;
    default:
      // Text goes as its bytes; PostgreSQL checks the encoding. A NUL
      // cannot be stored in text: the literal path reports it.
      if (s.find('\0') != std::string::npos || s.size() > 0x7fffffff) return false;
      out.be32(static_cast<uint32_t>(s.size()));
      out.bytes(s.data(), s.size());
      return true;
  }
}

/// Writes one value as PostgreSQL's binary format frames it in arrays and
/// in binary COPY alike: its length (-1 for NULL), then its bytes;
/// binary_size(t, v) bytes. Returns false for a value that is not of the
/// type (the caller falls back to text).
bool put_binary(cursor& out, binary_type t, const value& v) {
  switch (v.which()) {
    case value::kind::null:
      out.be32(0xffffffffu);  // -1: NULL
      return true;
    case value::kind::text:
      return put_text(out, t, v.text_value());
    case value::kind::integer: {
      int64_t n = v.integer_value();
      if (t.width != 0) return put_integer(out, t.width, n);
      auto size = decimal_size(n);
      out.be32(static_cast<uint32_t>(size));
      std::to_chars(out.p, out.p + size, n);
      out.p += size;
      return true;
    }
    case value::kind::uuid:
      if (t.width == 16) {
        out.be32(16);
        out.bytes(reinterpret_cast<const char*>(v.uuid_value().bytes), 16);
        return true;
      }
      if (t.width != 0) return false;
      out.be32(36);
      out.bytes(v.uuid_value().str().data(), 36);
      return true;
  }
  return false;
}

size_t binary_size(binary_type t, const value& v) {
  switch (v.which()) {
    case value::kind::null:
      return 4;
    case value::kind::text:
      return 4 + (t.width != 0 ? std::abs(t.width) : v.text_value().size());
    case value::kind::integer:
      return 4 + (t.width != 0 ? std::abs(t.width) : decimal_size(v.integer_value()));
    case value::kind::uuid:
      return 4 + (t.width != 0 ? std::abs(t.width) : 36);
  }
  return 4;
}

} // namespace

std::optional<std::string> binary_array(const std::string& type,
                                        const std::vector<const value*>& values) {
  auto t = binary_type_of(type);
  if (t.oid == 0) return std::nullopt;
  bool nulls = false;
  size_t size = 20;
  for (auto* v : values) {
    nulls = nulls || v->is_null();
    size += binary_size(t, *v);
  }
  std::string out(values.empty() ? 12 : size, '\0');
  cursor w{out.data()};
  if (values.empty()) {
    w.be32(0);  // no dimensions
    w.be32(0);
    w.be32(t.oid);
    return out;
  }
  w.be32(1);  // dimensions
  w.be32(nulls ? 1 : 0);
  w.be32(t.oid);
  w.be32(static_cast<uint32_t>(values.size()));
  w.be32(1);  // lower bound
  for (auto* v : values) {
    if (!put_binary(w, t, *v)) return std::nullopt;
  }
  return out;
}

std::optional<std::string> copy_binary(const table_spec& t, const std::vector<const row*>& rows) {
  std::vector<binary_type> types;
  types.reserve(t.columns.size());
  for (auto& c : t.columns) {
    types.push_back(binary_type_of(c.type));
    if (types.back().oid == 0) return std::nullopt;
  }
  size_t size = 21;
  for (auto* r : rows) {
    if (r->values.size() != types.size()) return std::nullopt;
    size += 2;
    for (size_t c = 0; c < types.size(); ++c) size += binary_size(types[c], r->values[c]);
  }
  std::string out(size, '\0');
  cursor w{out.data()};
  // The signature, then flags and header extension length (both 0).
  w.bytes("PGCOPY\n\377\r\n\0", 11);
  w.be32(0);
  w.be32(0);
  auto fields = static_cast<uint16_t>(types.size());
  for (auto* r : rows) {
    *w.p++ = static_cast<char>(fields >> 8);
    *w.p++ = static_cast<char>(fields & 0xff);
    for (size_t c = 0; c < types.size(); ++c) {
      if (!put_binary(w, types[c], r->values[c])) return std::nullopt;
    }
  }
  *w.p++ = '\xff';  // the trailer: a field count of -1
  *w.p++ = '\xff';
  return out;
}

std::string copy_sql(const table_spec& t) {
  std::string sql = "COPY " + t.name + " (";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += t.columns[i].name;
  }
  return sql + ") FROM STDIN (FORMAT binary)";
}

std::string write_sql(const table_spec& t, bool fresh) {
  if (t.mode == write_mode::update_versioned) {
    std::string cols, arrays, sets, match;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      auto& c = t.columns[i];
      cols += (i > 0 ? ", " : "") + c.name;
      arrays += (i > 0 ? ", " : "") + ("$" + std::to_string(i + 1) + "::" + c.type + "[]");
      if (std::find(t.key.begin(), t.key.end(), i) != t.key.end()) {
        match += " AND " + t.name + "." + c.name + " = u." + c.name;
      } else {
        sets += (sets.empty() ? "" : ", ") + c.name + " = u." + c.name;
      }
    }
    auto& v = t.columns[t.version_column].name;
    return "UPDATE " + t.name + " SET " + sets + " FROM unnest(" + arrays + ") AS u(" + cols +
           ") WHERE " + t.name + "." + v + " < u." + v + match;
  }
  std::string cols;
  std::string arrays;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i > 0) {
      cols += ", ";
      arrays += ", ";
    }
    cols += t.columns[i].name;
    arrays += "$" + std::to_string(i + 1) + "::" + t.columns[i].type + "[]";
  }
  std::string sql = "INSERT INTO " + t.name + " (" + cols + ") SELECT * FROM unnest(" + arrays + ")";
  if (fresh) return sql;
  sql += " ON CONFLICT (";
  for (size_t i = 0; i < t.key.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += t.columns[t.key[i]].name;
  }
  sql += ")";
  if (t.mode == write_mode::insert_once) {
    return sql + " DO NOTHING";
  }
  sql += " DO UPDATE SET ";
  bool first = true;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (std::find(t.key.begin(), t.key.end(), i) != t.key.end()) continue;
    if (t.columns[i].name == "created_at") continue;  // set once, by the first image
    if (!first) sql += ", ";
    first = false;
    sql += t.columns[i].name + " = excluded." + t.columns[i].name;
  }
  auto& v = t.columns[t.version_column].name;
  sql += " WHERE " + t.name + "." + v + " < excluded." + v;
  return sql;
}

namespace {

/// Appends a key column's value to a coalescing key, so that two images of
/// one row give the same key however their values came (a uuid as 16
/// bytes or as text in either case, a number as 8 bytes or as digits), and
/// two different rows never do (fixed widths, text with its length).
void append_key(std::string& k, const std::string& type, const value& v) {
  auto put_bytes = [&k](char tag, const void* p, size_t n) {
    k += tag;
    k.append(static_cast<const char*>(p), n);
  };
  switch (v.which()) {
    case value::kind::null:
      k += 'n';
      return;
    case value::kind::uuid:
      put_bytes('u', v.uuid_value().bytes, 16);
      return;
    case value::kind::integer: {
      int64_t n = v.integer_value();
      put_bytes('i', &n, sizeof n);
      return;
    }
    case value::kind::text:
      break;
  }
  const std::string& s = v.text_value();
  auto width = binary_type_of(type).width;  // 16: uuid; 8 and 4: integers
  packed_uuid u;
  int64_t n = 0;
  if (width == 16 && packed_uuid::try_parse(s, u)) {
    put_bytes('u', u.bytes, 16);
  } else if ((width == 8 || width == 4) && parse_int(s, INT64_MIN, INT64_MAX, n)) {
    put_bytes('i', &n, sizeof n);
  } else {
    auto size = static_cast<uint32_t>(s.size());
    put_bytes('t', &size, sizeof size);
    k += s;
  }
}

} // namespace

std::string row_key(const row& r) {
  std::string k = r.table->name;
  // Two specs of one table (a full image and a partial one) are two
  // statements: their rows must not replace each other.
  auto spec = reinterpret_cast<uintptr_t>(r.table);
  k.append(reinterpret_cast<const char*>(&spec), sizeof spec);
  k += '\x1f';
  for (auto i : r.table->key) {
    if (i < r.values.size()) {
      append_key(k, r.table->columns[i].type, r.values[i]);
    } else {
      k += 'n';
    }
  }
  return k;
}

void batch::add(row r) {
  if (r.table->mode == write_mode::insert_once) {
    // Nothing to coalesce: ON CONFLICT DO NOTHING keeps the first of any
    // duplicates, within a statement too. (Fresh rows have none; if one
    // did, the plain INSERT fails the first attempt and the retry checks.)
    size_t g = 0;
    while (g < groups_.size() && groups_[g].table != r.table) ++g;
    if (g == groups_.size()) groups_.push_back({r.table, {}});
    groups_[g].rows.push_back(std::move(r));
    ++size_;
    return;
  }
  auto key = row_key(r);
  auto it = index_.find(key);
  if (it != index_.end()) {
    auto& existing = groups_[it->second.first].rows[it->second.second];
    if (r.version >= existing.version) {
      // Fresh if and only if the row's first image is in this batch.
      bool fresh = existing.fresh;
      existing = std::move(r);
      existing.fresh = fresh;
    }
    return;
  }
  size_t g = 0;
  while (g < groups_.size() && groups_[g].table != r.table) ++g;
  if (g == groups_.size()) groups_.push_back({r.table, {}});
  index_.emplace(std::move(key), std::make_pair(g, groups_[g].rows.size()));
  groups_[g].rows.push_back(std::move(r));
  ++size_;
}


namespace {

using tick_atom = caf::atom_constant<caf::atom("j_tick")>;
using done_atom = caf::atom_constant<caf::atom("j_done")>;
using retry_atom = caf::atom_constant<caf::atom("j_retry")>;
using sync_check_atom = caf::atom_constant<caf::atom("j_synchk")>;

/// How one attempt to write a batch ended.
struct outcome {
  std::string error;     // empty on success
  std::string sqlstate;  // of a server-side error
  /// Rows of versioned statements that PostgreSQL did not apply because it
  /// held a newer (or the same) version: counted on a first attempt only,
  /// where that never happens unless two writers disagree.
  int64_t stale = 0;
  std::string stale_tables;
  bool ok() const noexcept { return error.empty(); }
  /// PostgreSQL refused a row for what it holds (SQLSTATE class 22, a data
  /// exception, or 23, a constraint): the same rows fail every time.
  bool refusal() const noexcept {
    return sqlstate.size() == 5 && (sqlstate.compare(0, 2, "22") == 0 ||
                                    sqlstate.compare(0, 2, "23") == 0);
  }
};

/// The SQLSTATE gm_fence() raises (migration 0013).
constexpr const char* fenced_state = "GM001";

/// Writes `b` in one transaction; last, if `o` names a fence, checks in
/// the same transaction that this node still is a member (gm_fence(), which
/// holds its `nodes` row FOR SHARE until the commit, so the cluster cannot
/// declare it down in between).
outcome write_batch(pg::connection& conn, const batch& b, const options& o) {
  // One statement per table, or two: fresh rows (on a first attempt) go
  // in a binary COPY (or, if a value has no binary form, a plain INSERT),
  // the others in the table's checking statement.
  struct part {
    const table_spec* table;
    bool fresh;
    std::vector<const row*> rows;
  };
  std::vector<part> parts;
  for (auto& g : b.groups()) {
    bool may_be_fresh = !b.retried() && g.table->mode != write_mode::update_versioned;
    part checked{g.table, false, {}};
    part fresh{g.table, true, {}};
    for (auto& r : g.rows) (may_be_fresh && r.fresh ? fresh : checked).rows.push_back(&r);
    for (auto* x : {&fresh, &checked}) {
      if (!x->rows.empty()) parts.push_back(std::move(*x));
    }
  }
  std::vector<std::string> sqls(parts.size());
  std::vector<pg::params> params(parts.size());
  std::vector<std::vector<int>> binary(parts.size());
  std::vector<std::string> copies(parts.size());
  std::vector<pg::connection::statement> stmts;
  stmts.reserve(parts.size() + 1);
  static const std::string fence_sql = "SELECT gm_fence($1, $2)";
  pg::params fence_params;
  if (!o.fence_node.empty()) {
    auto inc = o.fence_incarnation ? o.fence_incarnation->load() : 0;
    if (inc == 0) {
      outcome out;
      out.error = "this node has not joined the cluster yet";
      return out;
    }
    fence_params = {o.fence_node, std::to_string(inc)};
  }
  std::vector<int64_t> affected(parts.size(), -1);
  std::vector<const value*> col;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto& t = *parts[i].table;
    if (parts[i].fresh) {
      if (auto data = copy_binary(t, parts[i].rows)) {
        copies[i] = std::move(*data);
        sqls[i] = copy_sql(t);
        stmts.push_back({&sqls[i], &params[i], nullptr, &copies[i], &affected[i]});
        continue;
      }
    }
    auto& p = params[i];
    p.reserve(t.columns.size());
    col.reserve(parts[i].rows.size());
    for (size_t c = 0; c < t.columns.size(); ++c) {
      col.clear();
      for (auto* row : parts[i].rows) col.push_back(&row->values[c]);
      // Binary where the type allows (no parsing in PostgreSQL), else text.
      if (auto arr = binary_array(t.columns[c].type, col)) {
        p.emplace_back(std::move(*arr));
        binary[i].push_back(1);
      } else {
        p.emplace_back(array_literal(col));
        binary[i].push_back(0);
      }
    }
    sqls[i] = write_sql(t, parts[i].fresh);
    stmts.push_back({&sqls[i], &p, &binary[i], nullptr, &affected[i]});
  }
  // The fence goes last, in the same round trip as COMMIT: it holds the
  // node's row FOR SHARE only from there to the commit, never while a
  // COPY waits for this client (a stalled node must not hold the row the
  // others need to declare it down).
  if (!fence_params.empty()) stmts.push_back({&fence_sql, &fence_params, nullptr, nullptr, nullptr});
  // BEGIN, the statements and COMMIT in one round trip. A failed commit
  // leaves the outcome unknown: versioned writes, and the checking
  // statements a retry uses for every row, make a retry safe.
  size_t failed = 0;
  auto r = conn.transaction(stmts, &failed);
  outcome out;
  if (!r.ok()) {
    if (r.sqlstate == fenced_state) {
      out.error = r.error;
      out.sqlstate = r.sqlstate;
      return out;
    }
    out.error = failed < parts.size() ? parts[failed].table->name + ": " + r.error : r.error;
    out.sqlstate = r.sqlstate;
    return out;
  }
  // A versioned row that did not apply on a first attempt was older than
  // PostgreSQL's: two writers of one row disagree (the shard prevents two
  // live copies of an entity). Loud, never silent.
  for (size_t i = 0; i < parts.size() && !b.retried(); ++i) {
    if (parts[i].table->mode == write_mode::insert_once || affected[i] < 0) continue;
    auto n = static_cast<int64_t>(parts[i].rows.size());
    if (affected[i] < n) {
      out.stale += n - affected[i];
      if (!out.stale_tables.empty()) out.stale_tables += ", ";
      out.stale_tables += parts[i].table->name;
    }
  }
  return out;
}

/// Rows of `b` whose owner is in `owners` (in order; a retried batch, so
/// every row is written with its checks).
batch select_rows(const batch& b, const std::vector<const std::string*>& owners) {
  batch out;
  for (auto& g : b.groups()) {
    for (auto& r : g.rows) {
      const std::string* o = r.owner.get();
      bool in = std::any_of(owners.begin(), owners.end(), [&](const std::string* x) {
        return x == o || (x != nullptr && o != nullptr && *x == *o);
      });
      if (in) out.add(r);
    }
  }
  out.mark_retried();
  return out;
}

/// What isolating a refused batch found.
struct isolation {
  std::string error;  // a failure that was not a refusal: retry the batch
  std::vector<std::pair<std::string, std::string>> refused;  // owner, error
  int64_t parked = 0;
  int64_t stale = 0;
};

/// Writes the owners' rows of `b` in halves until the owners whose rows
/// PostgreSQL refuses are found; commits the others' rows. Each part is its
/// own transaction: owners are entities, and no entity's change spans
/// owners (a money saga's steps are separate, ordered writes).
void bisect(pg::connection& conn, const batch& b, std::vector<const std::string*> owners,
            isolation& iso, const options& o) {
  if (owners.empty() || !iso.error.empty()) return;
  auto part = select_rows(b, owners);
  auto out = write_batch(conn, part, o);
  if (out.ok()) return;
  if (!out.refusal()) {
    iso.error = out.error;
    return;
  }
  if (owners.size() == 1) {
    iso.refused.emplace_back(owners[0] ? *owners[0] : std::string{"(no owner)"}, out.error);
    return;
  }
  auto mid = owners.begin() + static_cast<std::ptrdiff_t>(owners.size() / 2);
  bisect(conn, b, {owners.begin(), mid}, iso, o);
  bisect(conn, b, {mid, owners.end()}, iso, o);
}

/// A batch PostgreSQL refused: commit what it takes, park the refused
/// owners' rows in journal_refused (nothing is dropped), and say whose.
isolation isolate(pg::connection& conn, const batch& b, const options& o) {
  isolation iso;
  std::vector<const std::string*> owners;
  for (auto& g : b.groups()) {
    for (auto& r : g.rows) {
      const std::string* o = r.owner.get();
      bool seen = std::any_of(owners.begin(), owners.end(), [&](const std::string* x) {
        return x == o || (x != nullptr && o != nullptr && *x == *o);
      });
      if (!seen) owners.push_back(o);
    }
  }
  bisect(conn, b, owners, iso, o);
  if (!iso.error.empty() || iso.refused.empty()) return iso;
  static const std::string park =
    "INSERT INTO journal_refused (owner, table_name, row_image, error) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])";
  std::vector<const value*> ov, tv, iv, ev;
  std::vector<value> store;
  std::vector<const std::string*> refused;
  for (auto& [o, e] : iso.refused) {
    (void)e;
    refused.push_back(&o);
  }
  for (auto& g : b.groups()) {
    for (auto& r : g.rows) {
      std::string who = r.owner ? *r.owner : std::string{"(no owner)"};
      auto it = std::find_if(iso.refused.begin(), iso.refused.end(),
                             [&](auto& x) { return x.first == who; });
      if (it == iso.refused.end()) continue;
      std::vector<const value*> vals;
      for (auto& v : r.values) vals.push_back(&v);
      store.emplace_back(who);
      store.emplace_back(r.table->name);
      store.emplace_back(array_literal(vals));
      store.emplace_back(it->second);
    }
  }
  for (size_t i = 0; i < store.size(); i += 4) {
    ov.push_back(&store[i]);
    tv.push_back(&store[i + 1]);
    iv.push_back(&store[i + 2]);
    ev.push_back(&store[i + 3]);
  }
  pg::params p{array_literal(ov), array_literal(tv), array_literal(iv), array_literal(ev)};
  std::vector<pg::connection::statement> stmts{{&park, &p}};
  auto r = conn.transaction(stmts);
  if (!r.ok()) {
    iso.error = "parking refused rows: " + r.error;
    return iso;
  }
  iso.parked = static_cast<int64_t>(ov.size());
  return iso;
}

struct metrics_set {
  metrics::gauge& pending;
  metrics::histogram& batch_rows;
  metrics::histogram& flush_seconds;
  metrics::counter& failures;
  metrics::counter& rows;
  metrics::counter& refused;
  metrics::counter& stale;
};

metrics_set& journal_metrics() {
  auto& reg = metrics::global();
  static metrics_set m{
    reg.get_gauge("gigmesh_journal_pending_rows", "rows waiting in the journal or in flight"),
    reg.get_histogram("gigmesh_journal_batch_rows", "rows per journal batch", {},
                      {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000}),
    reg.get_histogram("gigmesh_journal_flush_seconds", "time to write one journal batch"),
    reg.get_counter("gigmesh_journal_flush_failures_total", "journal batches that failed"),
    reg.get_counter("gigmesh_journal_rows_written_total", "rows the journal committed"),
    reg.get_counter("gigmesh_journal_refused_rows_total",
                    "rows PostgreSQL refused for good, parked in journal_refused"),
    reg.get_counter("gigmesh_journal_stale_rows_total",
                    "versioned rows not applied because PostgreSQL held a newer version"),
  };
  return m;
}

using steady = std::chrono::steady_clock;

/// What the journal actor and its writer thread share: the rows waiting for
/// a batch, and when to start one. The writer starts the next
/// batch itself the moment one commits, if it is due: handing the commit
/// back to the actor first cost each batch a trip through the actor's
/// mailbox and CAF's run queue, about 1.3 ms of an 8 ms cycle under load,
/// with the writer idle (docs/architecture.md). The journal's one lock,
/// held only to add a write's rows or to take a batch, never across
/// database work.
struct feed {
  std::mutex m;
  // Batches that reached batch_max rows (a write's rows are never split:
  // they are one entity's change), oldest first, then the one filling up.
  // So after an outage what waits goes out in batches of about batch_max
  // rows, not as one huge transaction.
  std::deque<batch> sealed;
  batch pending;
  uint64_t next_seq = 1;     // the number the oldest waiting batch gets when it starts
  bool waited_for = false;   // a durable write waits in a waiting batch
  bool stopping = false;  // write everything at once
  bool closed = false;    // the actor is gone: start nothing more
  steady::time_point last_start{};

  /// Under `m`: rows waiting for a batch.
  size_t waiting() const {
    size_t n = pending.size();
    for (auto& b : sealed) n += b.size();
    return n;
  }

  /// Under `m`: the number of the batch the next rows join.
  uint64_t pending_seq() const { return next_seq + sealed.size(); }

  /// Under `m`: takes a write's rows; returns the number of their batch.
  uint64_t add(std::vector<row>& rows, size_t batch_max) {
    if (!pending.empty() && pending.size() + rows.size() > batch_max) {
      sealed.push_back(std::move(pending));
      pending = batch{};
    }
    for (auto& r : rows) pending.add(std::move(r));
    return pending_seq();
  }

  /// Under `m`: are the waiting rows due to start once none is in flight?
  /// See the file's header.
  bool due(const options& o, steady::time_point now) const {
    if (closed) return false;
    if (!sealed.empty()) return true;
    if (pending.empty()) return false;
    return o.eager || (o.durable_at_once && waited_for) || stopping ||
           pending.size() >= o.batch_max || now - last_start >= o.flush_interval;
  }

  /// Under `m`: makes the oldest waiting batch the one in flight; returns
  /// it and its number.
  std::pair<std::shared_ptr<batch>, uint64_t> start(steady::time_point now) {
    last_start = now;
    std::shared_ptr<batch> b;
    if (!sealed.empty()) {
      b = std::make_shared<batch>(std::move(sealed.front()));
      sealed.pop_front();
    } else {
      waited_for = false;
      b = std::make_shared<batch>(std::move(pending));
      pending = batch{};
    }
    return {std::move(b), next_seq++};
  }
};

struct state {
  options opts;
  std::shared_ptr<gate> g;
  std::shared_ptr<pg::pool> writer;
  std::shared_ptr<feed> f = std::make_shared<feed>();
  bool tick_scheduled = false;
  // The batch being written (as this actor knows it: the writer may have
  // committed it and started the next, which a done message will say).
  // Set while the writer works or a retry waits, and cleared only here,
  // once the last commit is heard of: so the writer, which only starts a
  // batch while it works, never starts one this actor would not learn of
  // in order.
  std::shared_ptr<batch> in_flight;
  uint64_t in_flight_seq = 0;
  // Whom to answer when batch number `key` commits, and for whom they wrote.
  struct waiter {
    caf::response_promise rp;
    std::shared_ptr<const std::string> owner;
  };
  std::map<uint64_t, std::vector<waiter>> waiters;
  // Syncs waiting for batch `seq`, in arrival order (so in order of both
  // `seq` and `deadline`), and whether a check for overdue ones is due.
  struct sync_waiter {
    uint64_t seq;
    steady::time_point deadline;
    caf::response_promise rp;
  };
  std::deque<sync_waiter> syncs;
  bool sync_check_scheduled = false;
  std::chrono::milliseconds backoff{0};
  // When the batch in flight first failed (unset while writes succeed).
  std::optional<steady::time_point> failing_since;
  bool stopping = false;
  caf::error stop_reason;
  // Recent flush latencies (ms), for p50/p99.
  std::deque<double> latencies;
  stats s;
  static inline const char* name = "gm.journal";

  ~state() {
    {
      std::lock_guard<std::mutex> lock{f->m};
      f->closed = true;
    }
    // Not on this (CAF worker) thread: stop() joins the writer thread, which
    // may still be finishing a batch if the journal died abnormally. After a
    // graceful stop the writer is idle and this returns at once.
    if (writer) std::thread([w = std::move(writer)] { w->stop(); }).detach();
    // A journal that stops has nothing more to tell a sync: say so, rather
    // than leave an activation waiting for an answer that never comes.
    for (auto& w : syncs) w.rp.deliver(caf::make_error(caf::sec::request_receiver_down));
  }
};

using journal_actor = caf::stateful_actor<state>;

size_t pending_rows(journal_actor* self) {
  auto& f = *self->state.f;
  std::lock_guard<std::mutex> lock{f.m};
  return f.waiting();
}

void publish_gauge(journal_actor* self) {
  auto& st = self->state;
  journal_metrics().pending.set(
    static_cast<int64_t>(pending_rows(self) + (st.in_flight ? st.in_flight->size() : 0)));
}

/// Writes `b` (number `seq`) and, while each commits and the next batch is
/// due, the batches after it: on the writer thread. Tells the journal of
/// each outcome in order: `(done, seq, error, write ms, next started,
/// report)`. A batch PostgreSQL refuses for what a row holds is isolated:
/// the refused owners' rows are parked, the rest commits, and the batch
/// counts as written (report.refused names the owners).
void write_from(caf::actor me, std::shared_ptr<feed> f, options opts, pg::connection& conn,
                std::shared_ptr<batch> b, uint64_t seq) {
  auto log = gm::log::get("journal");
  while (b) {
    auto started = steady::now();
    auto out = write_batch(conn, *b, opts);
    if (out.sqlstate == fenced_state) {
      // Declared down: these rows were never committed (nor acknowledged
      // as durable), and no row may be written under this incarnation.
      log->critical("PostgreSQL fenced a batch of {} rows: {}", b->size(), out.error);
      if (opts.on_fenced) opts.on_fenced(out.error);
    }
    batch_report rep;
    rep.stale = out.stale;
    rep.stale_tables = out.stale_tables;
    if (!out.ok() && out.refusal()) {
      log->warn("PostgreSQL refused a batch of {} rows ({}): finding whose rows", b->size(),
                 out.error);
      auto iso = isolate(conn, *b, opts);
      if (iso.error.empty()) {
        out.error.clear();
        rep.isolated = true;
        rep.refused = std::move(iso.refused);
        rep.parked = iso.parked;
      } else {
        out.error = iso.error;
      }
    }
    auto now = steady::now();
    auto ms = std::chrono::duration<double, std::milli>(now - started).count();
    b.reset();  // the journal holds it until it hears of the commit
    std::shared_ptr<batch> next;
    if (out.ok()) {
      std::lock_guard<std::mutex> lock{f->m};
      if (f->due(opts, now)) next = f->start(now).first;
    }
    caf::anon_send(me, done_atom::value, seq, std::move(out.error), ms, next, std::move(rep));
    b = std::move(next);
    ++seq;
  }
}

void submit_in_flight(journal_actor* self) {
  auto& st = self->state;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  bool queued = st.writer->submit(
    [me, f = st.f, opts = st.opts, b = st.in_flight, seq = st.in_flight_seq](
      pg::connection& conn) { write_from(me, f, opts, conn, b, seq); });
  if (!queued) {
    // Only while the writer stops; the batch stays in flight.
    self->delayed_send(self, st.opts.retry_max, retry_atom::value);
  }
}

/// Starts a batch if none is in flight and the pending rows are due, or
/// makes sure a tick looks again when they will be.
void maybe_flush(journal_actor* self) {
  auto& st = self->state;
  auto& f = *st.f;
  if (st.in_flight) return;
  auto now = steady::now();
  std::unique_lock<std::mutex> lock{f.m};
  if (f.waiting() == 0) return;
  if (!f.due(st.opts, now)) {
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(
      st.opts.flush_interval - (now - f.last_start));
    lock.unlock();
    if (!st.tick_scheduled) {
      st.tick_scheduled = true;
      self->delayed_send(self, wait, tick_atom::value);
    }
    return;
  }
  auto [b, seq] = f.start(now);
  lock.unlock();
  st.in_flight = std::move(b);
  st.in_flight_seq = seq;
  submit_in_flight(self);
}

void on_done(journal_actor* self, uint64_t seq, const std::string& error, double ms,
             std::shared_ptr<batch>& next, const batch_report& rep) {
  auto& st = self->state;
  auto log = gm::log::get("journal");
  auto& m = journal_metrics();
  if (!st.in_flight || seq != st.in_flight_seq) {
    log->error("journal: outcome of batch {} while {} is in flight", seq, st.in_flight_seq);
    return;
  }
  if (!error.empty()) {
    ++st.s.failures;
    m.failures.inc();
    if (st.s.last_error.empty() || st.backoff >= st.opts.retry_max) {
      log->warn("batch of {} rows not written, keeping it and retrying: {}",
                st.in_flight->size(), error);
      inspect::note({"journal.error", {}, {}, 0, error, 0});
    }
    st.s.last_error = error;
    st.in_flight->mark_retried();
    if (!st.failing_since) st.failing_since = steady::now();
    st.backoff = st.backoff.count() == 0 ? st.opts.retry_min
                                         : std::min(st.backoff * 2, st.opts.retry_max);
    self->delayed_send(self, st.backoff, retry_atom::value);
    return;
  }
  if (!st.s.last_error.empty()) {
    log->info("PostgreSQL writes work again: batch of {} rows committed", st.in_flight->size());
    st.s.last_error.clear();
  }
  st.failing_since.reset();
  st.backoff = std::chrono::milliseconds{0};
  auto n = static_cast<int64_t>(st.in_flight->size());
  st.g->add(-n);
  st.s.last_batch_rows = n;
  st.s.rows_written += n;
  ++st.s.batches;
  m.batch_rows.observe(static_cast<double>(n));
  m.flush_seconds.observe(ms / 1000.0);
  m.rows.inc(static_cast<uint64_t>(n));
  st.latencies.push_back(ms);
  if (st.latencies.size() > 512) st.latencies.pop_front();
  if (rep.isolated) {
    // It failed once (a row wrongly marked fresh, or one PostgreSQL refuses).
    ++st.s.failures;
    m.failures.inc();
  }
  if (rep.stale > 0) {
    st.s.stale_rows += rep.stale;
    m.stale.inc(static_cast<uint64_t>(rep.stale));
    log->error("{} versioned rows of {} were not applied: PostgreSQL held a newer version "
               "(two writers of one row?)",
               rep.stale, rep.stale_tables);
  }
  for (auto& [owner, why] : rep.refused) {
    log->error("PostgreSQL refused rows of {} for good (parked in journal_refused): {}", owner,
               why);
    st.s.last_refused = owner + ": " + why;
    inspect::note({"journal.refused", {}, owner, 0, why, 0});
  }
  if (rep.parked > 0) {
    st.s.refused_rows += rep.parked;
    m.refused.inc(static_cast<uint64_t>(rep.parked));
  }
  auto refused = [&rep](const std::shared_ptr<const std::string>& owner) {
    if (rep.refused.empty()) return false;
    std::string who = owner ? *owner : std::string{"(no owner)"};
    return std::any_of(rep.refused.begin(), rep.refused.end(),
                       [&](auto& x) { return x.first == who; });
  };
  auto end = st.waiters.upper_bound(seq);
  for (auto it = st.waiters.begin(); it != end; ++it) {
    for (auto& w : it->second) {
      if (refused(w.owner)) {
        w.rp.deliver(caf::make_error(caf::sec::runtime_error, "PostgreSQL refused the rows"));
      } else {
        w.rp.deliver(ok_atom::value);
      }
    }
  }
  st.waiters.erase(st.waiters.begin(), end);
  while (!st.syncs.empty() && st.syncs.front().seq <= seq) {
    st.syncs.front().rp.deliver(ok_atom::value);
    st.syncs.pop_front();
  }
  st.in_flight = std::move(next);
  if (st.in_flight) st.in_flight_seq = seq + 1;  // the writer started it
  if (st.stopping && !st.in_flight && pending_rows(self) == 0) {
    log->info("flushed everything: stopped");
    self->quit(st.stop_reason);
    return;
  }
  maybe_flush(self);
  publish_gauge(self);
}

/// Makes sure the oldest waiting sync is answered with an error once its
/// deadline passes: one timer for the journal, whatever the number of syncs.
void schedule_sync_check(journal_actor* self) {
  auto& st = self->state;
  if (st.sync_check_scheduled || st.syncs.empty()) return;
  st.sync_check_scheduled = true;
  auto wait = std::chrono::duration_cast<std::chrono::microseconds>(st.syncs.front().deadline -
                                                                    steady::now());
  self->delayed_send(self, std::max(wait, std::chrono::microseconds{0}),
                     sync_check_atom::value);
}

/// Adds `rows` to the pending batch (and their count to the gate); returns
/// the number of the batch they will commit in.
uint64_t take(journal_actor* self, std::vector<row>& rows, bool durable) {
  auto& st = self->state;
  auto& f = *st.f;
  std::lock_guard<std::mutex> lock{f.m};
  auto before = f.waiting();
  auto seq = f.add(rows, st.opts.batch_max);
  if (durable) f.waited_for = true;
  st.g->add(static_cast<int64_t>(f.waiting() - before));
  return seq;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

caf::behavior journal_impl(journal_actor* self, options opts, std::shared_ptr<gate> g) {
  auto& st = self->state;
  st.opts = opts;
  st.g = std::move(g);
  st.s.limit = st.g->limit();
  st.writer = std::make_shared<pg::pool>(opts.conninfo, 1, opts.connect_timeout, 4);
  st.writer->start();
  register_as(self, registry_name());
  auto log = gm::log::get("journal");
  log->info("journal started: flush every {} ms or at {} rows{}, at most {} rows held",
            opts.flush_interval.count(), opts.batch_max,
            opts.eager ? " (eager)" : opts.durable_at_once ? " (durable at once)" : "",
            st.g->limit());
  self->set_exit_handler([self, log](caf::exit_msg& em) {
    auto& st = self->state;
    if (st.stopping) return;
    st.stopping = true;
    st.stop_reason = em.reason;
    size_t pending;
    {
      std::lock_guard<std::mutex> lock{st.f->m};
      st.f->stopping = true;
      pending = st.f->waiting();
    }
    if (!st.in_flight && pending == 0) {
      self->quit(em.reason);
      return;
    }
    log->info("stopping: flushing {} rows",
              pending + (st.in_flight ? st.in_flight->size() : 0));
    maybe_flush(self);
  });
  return {
    [self](write_atom, std::vector<row>& rows, bool durable) -> caf::result<ok_atom> {
      auto& st = self->state;
      auto owner = rows.empty() ? nullptr : rows.front().owner;
      auto seq = take(self, rows, durable);
      caf::result<ok_atom> answer = ok_atom::value;
      if (durable) {
        st.waiters[seq].push_back({self->make_response_promise(), std::move(owner)});
        answer = caf::delegated<ok_atom>{};
      }
      maybe_flush(self);
      publish_gauge(self);
      return answer;
    },
    [self](sync_atom) -> caf::result<ok_atom> {
      auto& st = self->state;
      // The last batch to commit first: the pending one, else the last
      // started (which the writer may have started after the one this
      // actor knows of).
      uint64_t seq = 0;
      {
        std::lock_guard<std::mutex> lock{st.f->m};
        if (!st.f->pending.empty()) {
          seq = st.f->pending_seq();
          st.f->waited_for = true;
        } else if (!st.f->sealed.empty()) {
          seq = st.f->pending_seq() - 1;
        } else if (st.in_flight) {
          seq = st.f->next_seq - 1;
        }
      }
      if (seq == 0) return ok_atom::value;
      st.syncs.push_back({seq, steady::now() + st.opts.sync_timeout,
                          self->make_response_promise()});
      schedule_sync_check(self);
      maybe_flush(self);
      return caf::delegated<ok_atom>{};
    },
    [self](sync_check_atom) {
      auto& st = self->state;
      st.sync_check_scheduled = false;
      auto now = steady::now();
      while (!st.syncs.empty() && st.syncs.front().deadline <= now) {
        st.syncs.front().rp.deliver(caf::make_error(caf::sec::request_timeout));
        st.syncs.pop_front();
      }
      schedule_sync_check(self);
    },
    [self](stats_atom) {
      auto& st = self->state;
      auto s = st.s;
      s.pending = static_cast<int64_t>(pending_rows(self));
      s.in_flight = st.in_flight ? static_cast<int64_t>(st.in_flight->size()) : 0;
      std::vector<double> v(st.latencies.begin(), st.latencies.end());
      s.flush_latency_ms_p50 = percentile(v, 0.50);
      s.flush_latency_ms_p99 = percentile(v, 0.99);
      if (st.failing_since) {
        s.failing_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - *st.failing_since)
            .count();
      }
      return s;
    },
    [self](tick_atom) {
      self->state.tick_scheduled = false;
      maybe_flush(self);
    },
    [self](retry_atom) {
      if (self->state.in_flight) submit_in_flight(self);
    },
    [self](done_atom, uint64_t seq, const std::string& error, double ms,
           std::shared_ptr<batch>& next, const batch_report& rep) {
      on_done(self, seq, error, ms, next, rep);
    },
  };
}

} // namespace

caf::atom_value registry_name() {
  return caf::atom("journal");
}

caf::actor find(caf::actor_system& sys) {
  return find_registered(sys, registry_name());
}

caf::actor spawn_journal(caf::local_actor* parent, options opts, std::shared_ptr<gate> g) {
  // A scheduled actor, not a detached one: it never blocks (the writer
  // thread does the database work), and every write would otherwise cost a
  // thread wake-up.
  return parent->spawn(journal_impl, std::move(opts), std::move(g));
}

} // namespace gm::journal
