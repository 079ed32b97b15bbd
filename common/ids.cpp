// Implements new_uuid, new_time_uuid, is_uuid, lower_uuid and now_rfc3339.
#include "common/ids.hpp"

#include <cctype>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>

namespace gm {

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }()};
  return gen;
}

packed_uuid uuid_of(uint64_t hi, uint64_t lo) {
  packed_uuid u;
  for (int i = 0; i < 8; ++i) {
    u.bytes[i] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    u.bytes[8 + i] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  return u;
}

std::string uuid_text(uint64_t hi, uint64_t lo) {
  return uuid_of(hi, lo).str();
}

constexpr uint64_t variant_mask = 0x3fffffffffffffffULL;
constexpr uint64_t variant_bits = 0x8000000000000000ULL;  // RFC 4122/9562 variant

} // namespace

std::string new_uuid() {
  uint64_t hi = rng()();
  uint64_t lo = rng()();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  return uuid_text(hi, (lo & variant_mask) | variant_bits);
}

std::string new_time_uuid() {
  return new_packed_time_uuid().str();
}

packed_uuid new_packed_time_uuid() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  auto ms = static_cast<uint64_t>(us / 1000);
  auto sub = static_cast<uint64_t>(us % 1000) * 4096 / 1000;  // 12 bits
  uint64_t hi = ((ms & 0xffffffffffffULL) << 16) | 0x7000ULL | sub;  // version 7
  return uuid_of(hi, (rng()() & variant_mask) | variant_bits);
}

namespace {

/// The value of each hex digit, 0xff for every other byte: one lookup per
/// character instead of three range tests (ids are checked and packed on
/// every request and for every journal row; both showed in profiles).
struct hex_table {
  unsigned char v[256];
  constexpr hex_table() : v{} {
    for (int i = 0; i < 256; ++i) v[i] = 0xff;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<unsigned char>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<unsigned char>(10 + i);
      v['A' + i] = static_cast<unsigned char>(10 + i);
    }
  }
};
constexpr hex_table hex_digits;

/// The offsets of the 16 digit pairs in the canonical text form.
constexpr unsigned char pair_at[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                       19, 21, 24, 26, 28, 30, 32, 34};

bool dashes_at_their_places(const std::string& s) {
  return s.size() == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
}

} // namespace

bool is_uuid(const std::string& s) {
  packed_uuid ignored;
  return packed_uuid::try_parse(s, ignored);
}

bool packed_uuid::try_parse(const std::string& s, packed_uuid& out) {
  if (!dashes_at_their_places(s)) return false;
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned bad = 0;
  for (int i = 0; i < 16; ++i) {
    unsigned hi = hex_digits.v[p[pair_at[i]]];
    unsigned lo = hex_digits.v[p[pair_at[i] + 1]];
    bad |= hi | lo;
    out.bytes[i] = static_cast<unsigned char>(hi << 4 | (lo & 0xf));
  }
  return bad < 16;
}

std::string lower_uuid(std::string s) {
  if (is_uuid(s)) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string packed_uuid::str() const {
  static const char* hex = "0123456789abcdef";
  char out[36];
  size_t j = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
    out[j++] = hex[bytes[i] >> 4];
    out[j++] = hex[bytes[i] & 0xf];
  }
  return std::string(out, sizeof out);
}

packed_uuid packed_uuid::parse(const std::string& s) {
  auto nibble = [](char c) -> unsigned {
    if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
    return 0;
  };
  packed_uuid out;
  size_t j = 0;
  for (size_t i = 0; i + 1 < s.size() && j < 16;) {
    if (s[i] == '-') {
      ++i;
      continue;
    }
    out.bytes[j++] = static_cast<unsigned char>(nibble(s[i]) << 4 | nibble(s[i + 1]));
    i += 2;
  }
  return out;
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  // YYYY-MM-DDTHH:MM:SS.mmmZ, digit by digit (snprintf showed in profiles).
  // The part up to the seconds changes once a second: each thread keeps
  // its last one rather than breaking the time down again (gmtime_r showed
  // in profiles too: a transfer stamps three times).
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[20];
  auto put = [](char* buf, size_t at, int value, int digits) {
    for (int i = digits - 1; i >= 0; --i, value /= 10) buf[at + i] = static_cast<char>('0' + value % 10);
  };
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    put(cached, 0, tm.tm_year + 1900, 4);
    cached[4] = '-';
    put(cached, 5, tm.tm_mon + 1, 2);
    cached[7] = '-';
    put(cached, 8, tm.tm_mday, 2);
    cached[10] = 'T';
    put(cached, 11, tm.tm_hour, 2);
    cached[13] = ':';
    put(cached, 14, tm.tm_min, 2);
    cached[16] = ':';
    put(cached, 17, tm.tm_sec, 2);
    cached[19] = '.';
    cached_secs = secs;
  }
  char buf[24];
  std::memcpy(buf, cached, sizeof cached);
  put(buf, 20, static_cast<int>(ms % 1000), 3);
  buf[23] = 'Z';
  return std::string(buf, sizeof buf);
}

std::string rfc3339_of_ms(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((ms % 1000) + 1000) % 1000));
  return buf;
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string rfc3339_of_us(int64_t us) {
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((us % 1000000) + 1000000) % 1000000));
  return buf;
}

} // namespace gm
