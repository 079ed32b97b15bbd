// Small cryptographic helpers over OpenSSL, shared by tokens and passwords.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gm::gateway::crypto {

/// Returns `data` in base64url without padding (RFC 7515 section 2).
std::string base64url_encode(std::string_view data);

/// Returns the bytes of base64url `text` (padding optional), or nullopt if it
/// is not valid base64url.
std::optional<std::string> base64url_decode(std::string_view text);

/// Returns `n` bytes from OpenSSL's CSPRNG.
std::string random_bytes(size_t n);

/// Returns the SHA-256 digest of `data` as lowercase hex.
std::string sha256_hex(std::string_view data);

/// Returns HMAC-SHA256(key, data) as raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// Returns true if `a` equals `b`, in time independent of where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

/// Returns a random RFC 4122 version 4 UUID in canonical text form.
std::string uuid_v4();

} // namespace gm::gateway::crypto
