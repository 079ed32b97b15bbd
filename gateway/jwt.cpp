// Implements JWT signing and verification with OpenSSL 3.
#include "gateway/jwt.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gateway/crypto.hpp"

namespace gm::gateway::jwt {

struct codec::keys {
  std::string secret;
  EVP_PKEY* priv = nullptr;
  EVP_PKEY* pub = nullptr;
  ~keys() {
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
  }
};

namespace {

EVP_PKEY* read_pem(const std::string& pem, bool is_private) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    return nullptr;
  }
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return key;
}

const char* alg_name(algorithm a) {
  return a == algorithm::hs256 ? "HS256" : "RS256";
}

} // namespace

const char* to_string(errc e) {
  switch (e) {
    case errc::malformed: return "malformed token";
    case errc::wrong_algorithm: return "algorithm not accepted";
    case errc::bad_signature: return "bad signature";
    case errc::expired: return "expired";
    case errc::not_yet_valid: return "not yet valid";
    case errc::missing_claim: return "missing claim";
  }
  return "invalid";
}

codec codec::hs256(std::string secret) {
  codec c;
  c.alg_ = algorithm::hs256;
  auto k = std::make_shared<keys>();
  k->secret = std::move(secret);
  c.keys_ = k;
  return c;
}

codec codec::rs256(const std::string& private_pem, const std::string& public_pem) {
  codec c;
  c.alg_ = algorithm::rs256;
  auto k = std::make_shared<keys>();
  if (!private_pem.empty()) {
    k->priv = read_pem(private_pem, true);
    if (k->priv == nullptr) {
      throw std::runtime_error("cannot read the RS256 private key (PEM)");
    }
  }
  k->pub = read_pem(public_pem, false);
  if (k->pub == nullptr) {
    throw std::runtime_error("cannot read the RS256 public key (PEM)");
  }
  c.keys_ = k;
  return c;
}

std::string codec::signature(const std::string& signing_input) const {
  if (alg_ == algorithm::hs256) {
    return crypto::base64url_encode(crypto::hmac_sha256(keys_->secret, signing_input));
  }
  if (keys_->priv == nullptr) {
    throw std::runtime_error("this RS256 codec has no private key");
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  bool ok = ctx != nullptr &&
            EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, keys_->priv) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len,
                           reinterpret_cast<const unsigned char*>(signing_input.data()),
                           signing_input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(signing_input.data()),
                        signing_input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    throw std::runtime_error("RS256 signing failed");
  }
  return crypto::base64url_encode(sig);
}

bool codec::check_signature(const std::string& signing_input,
                            const std::string& signature_b64) const {
  if (alg_ == algorithm::hs256) {
    return crypto::constant_time_equal(signature(signing_input), signature_b64);
  }
  auto sig = crypto::base64url_decode(signature_b64);
  if (!sig) {
    return false;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, keys_->pub) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()),
                             sig->size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::string codec::sign(const claims& c) const {
  nlohmann::json header = {{"alg", alg_name(alg_)}, {"typ", "JWT"}};
  nlohmann::json payload = {{"sub", c.sub}, {"role", c.role}, {"iat", c.iat},
                            {"exp", c.exp}, {"jti", c.jti},   {"iss", "gigmesh"}};
  auto input = crypto::base64url_encode(header.dump()) + "." +
               crypto::base64url_encode(payload.dump());
  return input + "." + signature(input);
}

std::optional<claims> codec::verify(const std::string& token, int64_t now, errc* why) const {
  auto fail = [&](errc e) -> std::optional<claims> {
    if (why != nullptr) *why = e;
    return std::nullopt;
  };
  if (token.size() > 8192) {
    return fail(errc::malformed);
  }
  auto d1 = token.find('.');
  auto d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string::npos || d2 == std::string::npos ||
      token.find('.', d2 + 1) != std::string::npos) {
    return fail(errc::malformed);
  }
  auto header_raw = crypto::base64url_decode(std::string_view{token}.substr(0, d1));
  auto payload_raw = crypto::base64url_decode(std::string_view{token}.substr(d1 + 1, d2 - d1 - 1));
  if (!header_raw || !payload_raw) {
    return fail(errc::malformed);
  }
  auto header = nlohmann::json::parse(*header_raw, nullptr, false);
  auto payload = nlohmann::json::parse(*payload_raw, nullptr, false);
  if (!header.is_object() || !payload.is_object()) {
    return fail(errc::malformed);
  }
  // The algorithm is pinned: what the token claims must be what we use.
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || *alg != alg_name(alg_)) {
    return fail(errc::wrong_algorithm);
  }
  if (header.contains("crit")) {
    return fail(errc::malformed);  // no critical extensions are understood
  }
  if (!check_signature(token.substr(0, d2), token.substr(d2 + 1))) {
    return fail(errc::bad_signature);
  }
  claims c;
  auto str = [&](const char* k, std::string& out) {
    auto it = payload.find(k);
    if (it == payload.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* k, int64_t& out) {
    auto it = payload.find(k);
    if (it == payload.end() || !it->is_number_integer()) return false;
    out = it->get<int64_t>();
    return true;
  };
  if (!str("sub", c.sub) || !str("role", c.role) || !num("exp", c.exp)) {
    return fail(errc::missing_claim);
  }
  num("iat", c.iat);
  str("jti", c.jti);
  if (now >= c.exp) {
    return fail(errc::expired);
  }
  int64_t nbf = 0;
  if (payload.contains("nbf") && (!num("nbf", nbf) || nbf > now)) {
    return fail(errc::not_yet_valid);
  }
  return c;
}

} // namespace gm::gateway::jwt
