// JWT access tokens (RFC 7519) signed with HS256 or RS256 (RFC 7515).
// Verification pins the configured algorithm: a token naming another one
// ("none", or HS256 against an RS256 node) is refused before any signature
// check.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace gm::gateway::jwt {

enum class algorithm { hs256, rs256 };

struct claims {
  std::string sub;   // user id
  std::string role;
  int64_t iat = 0;
  int64_t exp = 0;
  std::string jti;
};

/// Why a token was refused (never shown to clients in detail: all are 401).
enum class errc { malformed, wrong_algorithm, bad_signature, expired, not_yet_valid, missing_claim };

/// Returns a short text for `e`, for logs.
const char* to_string(errc e);

class codec {
public:
  /// HS256 with `secret` (raw bytes).
  static codec hs256(std::string secret);
  /// RS256: `private_pem` may be empty for a verify-only codec.
  /// Throws std::runtime_error if a key cannot be read.
  static codec rs256(const std::string& private_pem, const std::string& public_pem);

  algorithm alg() const noexcept { return alg_; }

  /// Returns the compact serialization of a token carrying `c`.
  std::string sign(const claims& c) const;

  /// Returns the signature part for `signing_input` (header "." payload).
  std::string signature(const std::string& signing_input) const;

  /// Returns the token's claims if it is well formed, uses this codec's
  /// algorithm, carries a valid signature and is valid at `now` (seconds).
  std::optional<claims> verify(const std::string& token, int64_t now, errc* why = nullptr) const;

  /// Returns true if `signature_b64` signs `signing_input` (no claim checks).
  bool check_signature(const std::string& signing_input, const std::string& signature_b64) const;

private:
  struct keys;
  algorithm alg_ = algorithm::hs256;
  std::shared_ptr<const keys> keys_;
};

} // namespace gm::gateway::jwt
