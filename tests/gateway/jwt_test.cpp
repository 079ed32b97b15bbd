// JWT signing and verification: the RFC 7515 test vectors, and every way a
// token must be refused.
#include <doctest/doctest.h>

#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "gateway/crypto.hpp"
#include "gateway/jwt.hpp"
#include "tests/gateway/rfc7515_vectors.hpp"

using namespace gm::gateway;

namespace {

BIGNUM* bn(const char* b64) {
  auto raw = crypto::base64url_decode(b64);
  REQUIRE(raw.has_value());
  return BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()),
                   static_cast<int>(raw->size()), nullptr);
}

/// Returns {private PEM, public PEM} of the RFC 7515 A.2 RSA key.
std::pair<std::string, std::string> a2_key_pems() {
  BIGNUM* parts[] = {bn(rfc7515::a2_n),  bn(rfc7515::a2_e),  bn(rfc7515::a2_d),
                     bn(rfc7515::a2_p),  bn(rfc7515::a2_q),  bn(rfc7515::a2_dp),
                     bn(rfc7515::a2_dq), bn(rfc7515::a2_qi)};
  const char* names[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                         OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                         OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                         OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  for (int i = 0; i < 8; ++i) {
    REQUIRE(OSSL_PARAM_BLD_push_BN(bld, names[i], parts[i]) == 1);
  }
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  REQUIRE(EVP_PKEY_fromdata_init(ctx) == 1);
  REQUIRE(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) == 1);
  auto pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv) {
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio, key);
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out{data, static_cast<size_t>(len)};
    BIO_free(bio);
    return out;
  };
  auto out = std::make_pair(pem(true), pem(false));
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  for (auto* p : parts) BN_free(p);
  return out;
}

std::string b64(const std::string& s) {
  return crypto::base64url_encode(s);
}

const std::string secret(32, 'k');

jwt::claims fresh_claims(int64_t now) {
  jwt::claims c;
  c.sub = "user-1";
  c.role = "rider";
  c.iat = now;
  c.exp = now + 900;
  c.jti = "j1";
  return c;
}

} // namespace

TEST_CASE("HS256 reproduces the signature of RFC 7515 appendix A.1") {
  auto key = crypto::base64url_decode(rfc7515::a1_key_k);
  REQUIRE(key.has_value());
  auto codec = jwt::codec::hs256(*key);
  std::string input = std::string{rfc7515::a1_header} + "." + rfc7515::a1_payload;
  CHECK(codec.signature(input) == rfc7515::a1_signature);
  CHECK(codec.check_signature(input, rfc7515::a1_signature));
  CHECK_FALSE(codec.check_signature(input + "x", rfc7515::a1_signature));
}

TEST_CASE("RS256 reproduces the signature of RFC 7515 appendix A.2") {
  auto [priv, pub] = a2_key_pems();
  auto codec = jwt::codec::rs256(priv, pub);
  std::string input = std::string{rfc7515::a2_header} + "." + rfc7515::a2_payload;
  // RSASSA-PKCS1-v1_5 is deterministic: the same key and input give the RFC's bytes.
  CHECK(codec.signature(input) == rfc7515::a2_signature);
  auto verify_only = jwt::codec::rs256("", pub);
  CHECK(verify_only.check_signature(input, rfc7515::a2_signature));
  CHECK_FALSE(verify_only.check_signature(input, rfc7515::a1_signature));
}

TEST_CASE("a token signed here verifies and carries its claims") {
  auto codec = jwt::codec::hs256(secret);
  auto token = codec.sign(fresh_claims(1000));
  auto c = codec.verify(token, 1001);
  REQUIRE(c.has_value());
  CHECK(c->sub == "user-1");
  CHECK(c->role == "rider");
  CHECK(c->exp == 1900);
}

TEST_CASE("alg none is refused") {
  auto codec = jwt::codec::hs256(secret);
  auto payload = b64(R"({"sub":"admin","role":"admin","exp":99999999999})");
  jwt::errc why{};
  CHECK_FALSE(codec.verify(b64(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".", 1, &why));
  CHECK(why == jwt::errc::wrong_algorithm);
  CHECK_FALSE(codec.verify(b64(R"({"alg":"none"})") + "." + payload + ".x", 1, &why));
}

TEST_CASE("an algorithm switch is refused: an HS256 token against an RS256 node") {
  auto [priv, pub] = a2_key_pems();
  auto rs = jwt::codec::rs256(priv, pub);
  // The classic attack: HMAC with the public key as the secret.
  auto forged = jwt::codec::hs256(pub).sign(fresh_claims(1000));
  jwt::errc why{};
  CHECK_FALSE(rs.verify(forged, 1001, &why));
  CHECK(why == jwt::errc::wrong_algorithm);
  // And the other way round.
  auto hs = jwt::codec::hs256(secret);
  CHECK_FALSE(hs.verify(rs.sign(fresh_claims(1000)), 1001, &why));
  CHECK(why == jwt::errc::wrong_algorithm);
}

TEST_CASE("a tampered payload or signature is refused") {
  auto codec = jwt::codec::hs256(secret);
  auto token = codec.sign(fresh_claims(1000));
  auto d1 = token.find('.');
  auto d2 = token.rfind('.');
  auto tampered = token.substr(0, d1 + 1) +
                  b64(R"({"sub":"user-1","role":"admin","exp":1900})") + token.substr(d2);
  jwt::errc why{};
  CHECK_FALSE(codec.verify(tampered, 1001, &why));
  CHECK(why == jwt::errc::bad_signature);
  auto bad_sig = token.substr(0, d2 + 1) + b64("not the signature");
  CHECK_FALSE(codec.verify(bad_sig, 1001, &why));
  CHECK(why == jwt::errc::bad_signature);
  CHECK_FALSE(jwt::codec::hs256(std::string(32, 'x')).verify(token, 1001, &why));
}

TEST_CASE("expired and not-yet-valid tokens are refused") {
  auto codec = jwt::codec::hs256(secret);
  auto token = codec.sign(fresh_claims(1000));
  jwt::errc why{};
  CHECK_FALSE(codec.verify(token, 1900, &why));
  CHECK(why == jwt::errc::expired);
  std::string input = b64(R"({"alg":"HS256","typ":"JWT"})") + "." +
                      b64(R"({"sub":"u","role":"rider","exp":5000,"nbf":3000})");
  auto future = input + "." + codec.signature(input);
  CHECK_FALSE(codec.verify(future, 2000, &why));
  CHECK(why == jwt::errc::not_yet_valid);
  CHECK(codec.verify(future, 3000).has_value());
}

TEST_CASE("malformed tokens are refused, never thrown on") {
  auto codec = jwt::codec::hs256(secret);
  for (std::string t : std::vector<std::string>{"", ".", "..", "a.b", "a.b.c.d", "!!!.###.$$$", "e30.e30.",
                        b64("[]") + "." + b64("{}") + ".x", std::string(10000, 'a')}) {
    jwt::errc why{};
    CHECK_FALSE(codec.verify(t, 1, &why));
  }
  // Valid signature, claims missing.
  std::string input = b64(R"({"alg":"HS256"})") + "." + b64(R"({"role":"rider","exp":5000})");
  jwt::errc why{};
  CHECK_FALSE(codec.verify(input + "." + codec.signature(input), 1, &why));
  CHECK(why == jwt::errc::missing_claim);
}

TEST_CASE("base64url round-trips and refuses what is not base64url") {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
    CHECK(crypto::base64url_decode(crypto::base64url_encode(s)) == s);
  }
  CHECK(crypto::base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(crypto::base64url_encode("\xfb\xff") == "-_8");
  CHECK_FALSE(crypto::base64url_decode("Zm9v+mFy").has_value());  // '+' is base64, not url
  CHECK_FALSE(crypto::base64url_decode("Z").has_value());
  CHECK_FALSE(crypto::base64url_decode("Zh").has_value());  // non-zero leftover bits
}
