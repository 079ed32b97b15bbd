// Implements the Idempotency-Key book and its rows.
#include "actors/money/keys.hpp"

#include "common/ids.hpp"

namespace gm::money {

using actors::errc;

const journal::table_spec& idempotency_table() {
  static const journal::table_spec t{
    "idempotency_keys",
    {{"user_id", "uuid"}, {"key", "text"}, {"request_hash", "text"}, {"status", "integer"},
     {"response", "text"}, {"created_at", "timestamptz"}, {"error_code", "integer"},
     {"version", "bigint"}},
    {0, 1}, 7, journal::write_mode::upsert_versioned};
  return t;
}

actors::entity_reply repeat_answer(const key_entry& k, const std::string& hash) {
  if (k.hash != hash) {
    return actors::fail(errc::key_reused, "this Idempotency-Key was used for a different request");
  }
  if (!k.done) {
    return actors::fail(errc::in_progress, "a request with this Idempotency-Key is in progress");
  }
  if (k.code != 0) return actors::fail(static_cast<errc>(k.code), k.body);
  auto r = actors::success(k.body, k.version);
  r.status_hint = k.status;
  return r;
}

std::string key_book::slot(const std::string& user, const std::string& key) {
  std::string s;
  s.reserve(user.size() + key.size() + 1);
  s += user;
  s += '\x1f';
  s += key;
  return s;
}

key_entry* key_book::find(const std::string& user, const std::string& key) {
  auto it = entries_.find(slot(user, key));
  return it == entries_.end() ? nullptr : &it->second;
}

void key_book::begin(const std::string& user, const std::string& key, const std::string& hash) {
  entries_[slot(user, key)].hash = hash;
}

void key_book::release(const std::string& user, const std::string& key) {
  entries_.erase(slot(user, key));
}

void key_book::done(const std::string& user, const std::string& key, const std::string& body,
                    int64_t version, errc code, const std::string& hash, int32_t status) {
  auto s = slot(user, key);
  if (entries_.size() > kept) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.done && it->first != s ? entries_.erase(it) : std::next(it);
    }
  }
  auto& k = entries_[s];
  if (!hash.empty()) k.hash = hash;
  k.done = true;
  k.status = code == errc::ok ? status : 0;
  k.code = static_cast<int32_t>(code);
  k.body = body;
  k.version = version;
}

key_entry& key_book::adopt(const std::string& user, const std::string& key, key_entry e) {
  return entries_[slot(user, key)] = std::move(e);
}

journal::row key_row(const std::string& user, const std::string& key, const std::string& hash,
                     const std::string& body, errc code, int64_t version, int32_t status) {
  bool ok = code == errc::ok;
  packed_uuid u;
  journal::value uid = packed_uuid::try_parse(user, u) ? journal::value::uuid(u)
                                                        : journal::value{user};
  std::vector<journal::value> values;
  values.reserve(8);
  values.push_back(std::move(uid));
  values.emplace_back(key);
  values.emplace_back(hash);
  values.push_back(journal::value::integer(ok ? status : 0));
  values.emplace_back(body);
  values.emplace_back(now_rfc3339());
  values.push_back(journal::value::integer(static_cast<int32_t>(code)));
  values.push_back(journal::value::integer(version));
  return {&idempotency_table(), version, std::move(values), version == 1};
}

stored_key load_key(pg::connection& c, const std::string& user, const std::string& key) {
  stored_key out;
  auto r = c.exec("SELECT request_hash, status, response, error_code FROM idempotency_keys "
                  "WHERE user_id = $1 AND key = $2",
                  {user, key});
  if (!r.ok()) {
    out.error = r.error;
    return out;
  }
  if (r.rows.empty()) return out;
  out.found = true;
  out.entry.hash = r.value(0, 0);
  out.entry.done = true;
  out.entry.status = std::stoi(r.value(0, 1, "201"));
  out.entry.body = r.value(0, 2);
  out.entry.code = std::stoi(r.value(0, 3, "0"));
  return out;
}

} // namespace gm::money
