// Password hashing with scrypt (OpenSSL), per-user salt, constant-time
// compare. Slow on purpose: call it on the KDF pool, never on an io thread
// or a CAF worker.
#pragma once

#include <string>

namespace gm::gateway::password {

/// scrypt cost, from OWASP's password storage guidance: N=2^15, r=8, p=3
/// (32 MiB), one of its equivalent settings to N=2^17, r=8, p=1.
struct params {
  int log2_n = 15;
  int r = 8;
  int p = 3;
};

/// Returns "$scrypt$ln=15,r=8,p=3$<salt>$<hash>" (base64url parts).
std::string hash(const std::string& password, const params& pr = {});

/// Returns true if `password` matches `stored` (a string from `hash`).
/// Malformed stored strings never match.
bool verify(const std::string& password, const std::string& stored);

} // namespace gm::gateway::password
