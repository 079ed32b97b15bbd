// Accounts in PostgreSQL: users, their wallet row, refresh token families.
// Every function here blocks on the database: call them on a pool thread
// (pg::pool::submit), never on an io thread or a CAF worker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace gm::pg {
class connection;
}

namespace gm::gateway::accounts {

enum class errc {
  ok,
  duplicate_phone,
  duplicate_email,
  not_found,
  invalid_token,   // unknown, expired or revoked refresh token
  token_reused,    // a rotated token came back: its family is now revoked
  unavailable,     // the database could not be used
};

struct user {
  std::string id;
  std::string phone;
  std::optional<std::string> email;
  std::string full_name;
  std::string role;
  std::string bio;
  std::optional<std::string> location;
  std::string created_at;  // RFC 3339 UTC
  std::string password_hash;  // only filled by find_for_login
};

/// Returns the private view of `u` (the owner's: phone and email included).
nlohmann::json to_private_json(const user& u);

struct new_user {
  std::string phone;
  std::optional<std::string> email;
  std::string full_name;
  std::string role;
  std::string password_hash;
};

struct user_result {
  errc code = errc::ok;
  user value;
  std::string error;  // for logs when code == unavailable
};

/// Creates the user and their wallet (balance 0) in one transaction.
user_result create_user(pg::connection& c, const new_user& u);

/// Returns the user with this phone (if `login` starts with '+') or this
/// email (case-insensitive), password hash included.
user_result find_for_login(pg::connection& c, const std::string& login);

user_result find_by_id(pg::connection& c, const std::string& id);

struct token_result {
  errc code = errc::ok;
  std::string token;  // the new refresh token (plain, shown once)
  user owner;         // for the access token (id, role)
  std::string error;
};

/// Issues a refresh token for `user_id` in `family_id` (a new family if empty).
token_result issue_refresh(pg::connection& c, const std::string& user_id,
                           const std::string& family_id, int64_t ttl_seconds);

/// Rotates `token`: marks it used and issues its successor in the same
/// family. A token already used revokes its whole family (reuse detection).
token_result rotate_refresh(pg::connection& c, const std::string& token, int64_t ttl_seconds);

/// Revokes the family of `token` (logout). Unknown tokens are not an error.
errc revoke_refresh(pg::connection& c, const std::string& token);

/// Creates the admin account with `phone` if no user has that phone yet.
/// Returns true if it was created now.
bool ensure_admin(pg::connection& c, const std::string& phone, const std::string& password_hash,
                  std::string& error);

} // namespace gm::gateway::accounts
