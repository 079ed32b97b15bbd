// Implements scrypt password hashing.
#include "gateway/password.hpp"

#include <cstdio>
#include <stdexcept>

#include <openssl/evp.h>

#include "gateway/crypto.hpp"

namespace gm::gateway::password {
namespace {

constexpr size_t salt_len = 16;
constexpr size_t key_len = 32;

bool derive(const std::string& password, const std::string& salt, const params& pr,
            std::string& out) {
  out.assign(key_len, '\0');
  uint64_t n = uint64_t{1} << pr.log2_n;
  // Memory needed is 128 * r * N (plus p * 128 * r); allow it explicitly.
  uint64_t maxmem = 128ULL * pr.r * (n + pr.p + 2) + (1 << 20);
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), n,
                        static_cast<uint64_t>(pr.r), static_cast<uint64_t>(pr.p), maxmem,
                        reinterpret_cast<unsigned char*>(out.data()), key_len) == 1;
}

} // namespace

std::string hash(const std::string& password, const params& pr) {
  auto salt = crypto::random_bytes(salt_len);
  std::string key;
  if (!derive(password, salt, pr, key)) {
    throw std::runtime_error("scrypt failed");
  }
  char head[64];
  std::snprintf(head, sizeof(head), "$scrypt$ln=%d,r=%d,p=%d$", pr.log2_n, pr.r, pr.p);
  return head + crypto::base64url_encode(salt) + "$" + crypto::base64url_encode(key);
}

bool verify(const std::string& password, const std::string& stored) {
  params pr;
  char salt_b64[64] = {0};
  char key_b64[128] = {0};
  if (std::sscanf(stored.c_str(), "$scrypt$ln=%d,r=%d,p=%d$%63[A-Za-z0-9_-]$%127[A-Za-z0-9_-]",
                  &pr.log2_n, &pr.r, &pr.p, salt_b64, key_b64) != 5) {
    return false;
  }
  if (pr.log2_n < 10 || pr.log2_n > 20 || pr.r < 1 || pr.r > 32 || pr.p < 1 || pr.p > 16) {
    return false;
  }
  auto salt = crypto::base64url_decode(salt_b64);
  auto expected = crypto::base64url_decode(key_b64);
  std::string key;
  if (!salt || !expected || !derive(password, *salt, pr, key)) {
    return false;
  }
  return crypto::constant_time_equal(key, *expected);
}

} // namespace gm::gateway::password
