// Implements account storage: SQL as named constants, one transaction per
// operation that writes more than one row.
#include "gateway/accounts.hpp"

#include <nlohmann/json.hpp>

#include "gateway/crypto.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway::accounts {
namespace {

constexpr const char* user_columns =
  "id::text, phone, email, full_name, role, bio, location,"
  " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), password_hash";

constexpr const char* insert_user_sql =
  "INSERT INTO users (id, phone, email, full_name, role, password_hash)"
  " VALUES ($1::uuid, $2, $3, $4, $5, $6)";

constexpr const char* insert_wallet_sql =
  "INSERT INTO wallets (id, user_id) VALUES ($1::uuid, $2::uuid)";

constexpr const char* insert_refresh_sql =
  "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)"
  " VALUES ($1, $2::uuid, $3::uuid, now() + make_interval(secs => $4::bigint))";

constexpr const char* lock_refresh_sql =
  "SELECT family_id::text, user_id::text, expires_at <= now(), used_at IS NOT NULL,"
  " revoked_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE";

constexpr const char* mark_used_sql =
  "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1";

constexpr const char* revoke_family_sql =
  "UPDATE refresh_tokens SET revoked_at = now()"
  " WHERE family_id = $1::uuid AND revoked_at IS NULL";

constexpr const char* revoke_by_token_sql =
  "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id ="
  " (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";

std::string select_user(const std::string& where) {
  return std::string{"SELECT "} + user_columns + " FROM users WHERE " + where;
}

user row_to_user(const pg::result& r, size_t row) {
  user u;
  u.id = r.value(row, 0);
  u.phone = r.value(row, 1);
  if (r.rows[row][2]) u.email = *r.rows[row][2];
  u.full_name = r.value(row, 3);
  u.role = r.value(row, 4);
  u.bio = r.value(row, 5);
  if (r.rows[row][6]) u.location = *r.rows[row][6];
  u.created_at = r.value(row, 7);
  u.password_hash = r.value(row, 8);
  return u;
}

user_result one_user(const pg::result& r) {
  user_result out;
  if (!r.ok()) {
    out.code = r.sqlstate == "22P02" ? errc::not_found : errc::unavailable;  // bad uuid text
    out.error = r.error;
  } else if (r.rows.empty()) {
    out.code = errc::not_found;
  } else {
    out.value = row_to_user(r, 0);
  }
  return out;
}

/// Runs `body` inside BEGIN/COMMIT; rolls back if it returns false.
template <class F>
bool in_transaction(pg::connection& c, std::string& error, F body) {
  auto begin = c.exec("BEGIN");
  if (!begin.ok()) {
    error = begin.error;
    return false;
  }
  if (!body()) {
    c.exec("ROLLBACK");
    return false;
  }
  auto commit = c.exec("COMMIT");
  if (!commit.ok()) {
    error = commit.error;
    return false;
  }
  return true;
}

} // namespace

nlohmann::json to_private_json(const user& u) {
  return {{"id", u.id},
          {"phone", u.phone},
          {"email", u.email ? nlohmann::json(*u.email) : nlohmann::json(nullptr)},
          {"full_name", u.full_name},
          {"role", u.role},
          {"bio", u.bio},
          {"location", u.location ? nlohmann::json(*u.location) : nlohmann::json(nullptr)},
          {"created_at", u.created_at}};
}

user_result create_user(pg::connection& c, const new_user& nu) {
  user_result out;
  auto id = crypto::uuid_v4();
  std::string error;
  bool ok = in_transaction(c, error, [&] {
    auto ins = c.exec(insert_user_sql, {id, nu.phone, nu.email, nu.full_name, nu.role,
                                        nu.password_hash});
    if (!ins.ok()) {
      if (ins.sqlstate == "23505") {
        out.code = ins.error.find("users_email_key") != std::string::npos
                     ? errc::duplicate_email
                     : errc::duplicate_phone;
      } else {
        error = ins.error;
      }
      return false;
    }
    auto w = c.exec(insert_wallet_sql, {crypto::uuid_v4(), id});
    if (!w.ok()) {
      error = w.error;
      return false;
    }
    auto sel = c.exec(select_user("id = $1::uuid"), {id});
    if (!sel.ok() || sel.rows.empty()) {
      error = sel.error;
      return false;
    }
    out.value = row_to_user(sel, 0);
    out.value.password_hash.clear();
    return true;
  });
  if (!ok && out.code == errc::ok) {
    out.code = errc::unavailable;
    out.error = error;
  }
  return out;
}

user_result find_for_login(pg::connection& c, const std::string& login) {
  if (!login.empty() && login[0] == '+') {
    return one_user(c.exec(select_user("phone = $1"), {login}));
  }
  return one_user(c.exec(select_user("lower(email) = lower($1)"), {login}));
}

user_result find_by_id(pg::connection& c, const std::string& id) {
  auto r = one_user(c.exec(select_user("id = $1::uuid"), {id}));
  r.value.password_hash.clear();
  return r;
}

token_result issue_refresh(pg::connection& c, const std::string& user_id,
                           const std::string& family_id, int64_t ttl_seconds) {
  token_result out;
  out.token = crypto::base64url_encode(crypto::random_bytes(32));
  auto family = family_id.empty() ? crypto::uuid_v4() : family_id;
  auto r = c.exec(insert_refresh_sql,
                  {crypto::sha256_hex(out.token), family, user_id, std::to_string(ttl_seconds)});
  if (!r.ok()) {
    out.code = errc::unavailable;
    out.error = r.error;
  }
  return out;
}

token_result rotate_refresh(pg::connection& c, const std::string& token, int64_t ttl_seconds) {
  token_result out;
  auto hash = crypto::sha256_hex(token);
  std::string error;
  bool reused = false;
  bool ok = in_transaction(c, error, [&] {
    auto row = c.exec(lock_refresh_sql, {hash});
    if (!row.ok()) {
      error = row.error;
      return false;
    }
    if (row.rows.empty()) {
      out.code = errc::invalid_token;
      return false;
    }
    auto family = row.value(0, 0);
    auto user_id = row.value(0, 1);
    bool expired = row.value(0, 2) == "t";
    bool used = row.value(0, 3) == "t";
    bool revoked = row.value(0, 4) == "t";
    if (revoked || expired) {
      out.code = errc::invalid_token;
      return false;
    }
    if (used) {
      // Someone presents a token that was already exchanged: one of the two
      // holders is not the user. Revoke the whole family, commit, refuse.
      auto rv = c.exec(revoke_family_sql, {family});
      if (!rv.ok()) {
        error = rv.error;
        return false;
      }
      reused = true;
      return true;
    }
    auto mark = c.exec(mark_used_sql, {hash});
    if (!mark.ok()) {
      error = mark.error;
      return false;
    }
    auto next = issue_refresh(c, user_id, family, ttl_seconds);
    if (next.code != errc::ok) {
      error = next.error;
      return false;
    }
    auto owner = find_by_id(c, user_id);
    if (owner.code != errc::ok) {
      error = owner.error.empty() ? "token owner missing" : owner.error;
      return false;
    }
    out.token = next.token;
    out.owner = owner.value;
    return true;
  });
  if (reused && ok) {
    out.code = errc::token_reused;
    out.token.clear();
  } else if (!ok && out.code == errc::ok) {
    out.code = errc::unavailable;
    out.error = error;
  }
  return out;
}

errc revoke_refresh(pg::connection& c, const std::string& token) {
  auto r = c.exec(revoke_by_token_sql, {crypto::sha256_hex(token)});
  return r.ok() ? errc::ok : errc::unavailable;
}

bool ensure_admin(pg::connection& c, const std::string& phone, const std::string& password_hash,
                  std::string& error) {
  auto existing = c.exec("SELECT 1 FROM users WHERE phone = $1", {phone});
  if (!existing.ok()) {
    error = existing.error;
    return false;
  }
  if (!existing.rows.empty()) {
    return false;
  }
  auto r = create_user(c, {phone, std::nullopt, "Administrator", "admin", password_hash});
  if (r.code == errc::duplicate_phone) {
    return false;  // another node created it at the same moment
  }
  if (r.code != errc::ok) {
    error = r.error;
    return false;
  }
  return true;
}

} // namespace gm::gateway::accounts
