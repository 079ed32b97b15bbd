// Strict JSON input, declared once per route: a handler states its body's
// schema and receives a validated object, or the client receives a problem
// document naming the field. 400: not JSON, not an object, a wrong type.
// 422: valid JSON that breaks a rule (missing, unknown, out of range, too
// long, bad format, not one of the allowed values).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gateway/http_types.hpp"

namespace gm::gateway {

enum class json_type { string, integer, boolean, string_list, number, position };

struct field_rule {
  std::string name;
  json_type type = json_type::string;
  bool required = false;
  size_t min_length = 0;          // strings, in bytes
  size_t max_length = 256;        // strings, in bytes
  int64_t min = INT64_MIN;        // integers
  int64_t max = INT64_MAX;        // integers
  std::vector<std::string> one_of;  // strings: allowed values, if any
  std::string format;             // "e164", "email", "uuid", or empty
  size_t max_items = 0;           // string lists: at most this many items
  double min_number = 0;          // numbers
  double max_number = 0;          // numbers
};

struct body_schema {
  std::vector<field_rule> fields;
  /// Returns the schema as an OpenAPI/JSON Schema object.
  nlohmann::json to_openapi() const;
};

/// Returns a schema of `fields`, ready to share between requests.
std::shared_ptr<const body_schema> make_schema(std::vector<field_rule> fields);

/// Returns a rule for a string of `min_len`..`max_len` bytes.
field_rule string_field(std::string name, bool required, size_t min_len, size_t max_len,
                        std::string format = {});

/// Returns a rule for an array of at most `max_items` strings, each checked
/// like a string_field of 1..`item_max_len` bytes in `item_format`.
field_rule string_list_field(std::string name, bool required, size_t max_items,
                             size_t item_max_len, std::string item_format = {});

/// Returns a rule for a JSON number (integer or fraction) in `min`..`max`.
field_rule number_field(std::string name, bool required, double min, double max);

/// Returns a rule for a point on the Earth: an object of exactly two
/// numbers, `lat` (-90..90) and `lng` (-180..180).
field_rule position_field(std::string name, bool required);

/// Returns `f` allowing only `values`.
field_rule one_of(field_rule f, std::vector<std::string> values);

/// Returns a rule for an integer in `min`..`max`.
field_rule integer_field(std::string name, bool required, int64_t min, int64_t max);

/// Parses `text` as JSON: discarded if it is not JSON in UTF-8; `repeated`
/// names the first member name that appears twice in one object (callers
/// refuse that document), else stays empty.
nlohmann::json parse_json(const std::string& text, std::string& repeated);

/// parse_json's fast way, exposed for tests: reads a flat object (at most
/// 16 members with distinct names; names and strings of printable ASCII
/// without escapes; integers of at most 18 digits; true, false, null) into
/// `out` as nlohmann would, and returns true; returns false, leaving `out`
/// alone, for anything else (valid or not), which parse_json then reads
/// the general way.
bool parse_flat_json(const std::string& text, nlohmann::json& out);

/// Parses and checks `rq.body` against `schema`. Returns the object, or sets
/// `problem_out` and returns nullopt.
std::optional<nlohmann::json> validate_body(const request& rq, const body_schema& schema,
                                            response& problem_out);

/// Returns true if `s` is an E.164 phone number (+ then 8 to 15 digits).
bool is_e164(const std::string& s);

/// Returns true if `s` looks like an email address (one '@', a dot after it).
bool is_email(const std::string& s);

} // namespace gm::gateway
