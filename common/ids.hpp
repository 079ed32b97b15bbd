// Identifiers and timestamps that every subsystem mints: random UUIDs for
// new rows, RFC 3339 UTC times for JSON.
#pragma once

#include <cstdint>
#include <string>

namespace gm {

/// Returns a random (version 4) UUID in canonical form. Not for secrets: the
/// generator is a per-thread PRNG seeded from the OS.
std::string new_uuid();

/// Returns a time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix
/// milliseconds, 12 bits of the microsecond within it, 62 random bits. For
/// rows that are only ever appended (ledger entries, transfers): ids minted
/// later sort later, so a B-tree on them grows at its right edge instead of
/// at random leaves. Unguessable as new_uuid() is, but it tells when it was
/// minted (as the rows' created_at does).
std::string new_time_uuid();

/// Returns true if `s` is a UUID in canonical 8-4-4-4-12 hex form.
bool is_uuid(const std::string& s);

/// Returns `s` in lower case if it is a UUID (written with capitals it names
/// the same row, and must name the same entity and topic), else unchanged.
std::string lower_uuid(std::string s);

/// A UUID in 16 bytes, for ids held by many live objects (a string of its
/// text form costs 36 bytes plus a heap block).
struct packed_uuid {
  unsigned char bytes[16] = {};
  /// Returns the canonical text form.
  std::string str() const;
  /// Returns the packed form of `s`, which must satisfy is_uuid().
  static packed_uuid parse(const std::string& s);
  /// Checks and packs in one pass: returns false (and leaves `out`
  /// unspecified) if `s` does not satisfy is_uuid(). For hot paths that
  /// would otherwise call both.
  static bool try_parse(const std::string& s, packed_uuid& out);
};

/// new_time_uuid() in 16 bytes.
packed_uuid new_packed_time_uuid();

/// Returns the current time in whole seconds since the Unix epoch (token
/// times).
int64_t unix_seconds();

/// Returns the current time as RFC 3339 UTC with milliseconds.
std::string now_rfc3339();

/// Returns the time `ms` (Unix milliseconds) as RFC 3339 UTC with
/// milliseconds, like now_rfc3339().
std::string rfc3339_of_ms(int64_t ms);

/// Returns the wall clock in Unix milliseconds.
int64_t now_unix_ms();

/// Returns the wall clock in Unix microseconds.
int64_t now_unix_us();

/// Returns Unix microseconds `us` as RFC 3339 UTC with microseconds
/// (timestamps whose differences are measured: a task's dispatch).
std::string rfc3339_of_us(int64_t us);

} // namespace gm
