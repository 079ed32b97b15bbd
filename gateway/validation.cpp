// Implements strict body validation.
#include "gateway/validation.hpp"

#include <sstream>

#include "common/ids.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace gm::gateway {
namespace {

using nlohmann::json;

const char* type_name(json_type t) {
  switch (t) {
    case json_type::string: return "string";
    case json_type::integer: return "integer";
    case json_type::boolean: return "boolean";
    case json_type::string_list: return "array of strings";
    case json_type::number: return "number";
    case json_type::position: return "object {lat, lng}";
  }
  return "value";
}

response invalid(int status, const std::string& detail, json errors) {
  auto r = problem(status, status == 400 ? "malformed-body" : "invalid-body",
                   status == 400 ? "Bad Request" : "Unprocessable Entity", detail);
  auto doc = json::parse(r.body);
  doc["errors"] = std::move(errors);
  r.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

json error_item(const std::string& field, const std::string& message) {
  return {{"field", field}, {"message", message}};
}

bool has_type(const json& v, json_type t) {
  switch (t) {
    case json_type::string: return v.is_string();
    // Integers only: 1.0, 1e3 and "1" are not integers; numbers beyond int64
    // parse as unsigned or float and are caught by the range check.
    case json_type::integer: return v.is_number_integer();
    case json_type::boolean: return v.is_boolean();
    case json_type::number: return v.is_number();
    case json_type::position: return v.is_object();
    case json_type::string_list:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); });
  }
  return false;
}

} // namespace

std::shared_ptr<const body_schema> make_schema(std::vector<field_rule> fields) {
  auto s = std::make_shared<body_schema>();
  s->fields = std::move(fields);
  return s;
}

field_rule string_field(std::string name, bool required, size_t min_len, size_t max_len,
                        std::string format) {
  field_rule f;
  f.name = std::move(name);
  f.required = required;
  f.min_length = min_len;
  f.max_length = max_len;
  f.format = std::move(format);
  return f;
}

field_rule string_list_field(std::string name, bool required, size_t max_items,
                             size_t item_max_len, std::string item_format) {
  field_rule f = string_field(std::move(name), required, 1, item_max_len, std::move(item_format));
  f.type = json_type::string_list;
  f.max_items = max_items;
  return f;
}

field_rule position_field(std::string name, bool required) {
  field_rule f;
  f.name = std::move(name);
  f.required = required;
  f.type = json_type::position;
  return f;
}

field_rule number_field(std::string name, bool required, double min, double max) {
  field_rule f;
  f.name = std::move(name);
  f.required = required;
  f.type = json_type::number;
  f.min_number = min;
  f.max_number = max;
  return f;
}

field_rule one_of(field_rule f, std::vector<std::string> values) {
  f.one_of = std::move(values);
  return f;
}

field_rule integer_field(std::string name, bool required, int64_t min, int64_t max) {
  field_rule f;
  f.name = std::move(name);
  f.type = json_type::integer;
  f.required = required;
  f.min = min;
  f.max = max;
  return f;
}

bool is_e164(const std::string& s) {
  if (s.size() < 9 || s.size() > 16 || s[0] != '+' || s[1] == '0') {
    return false;
  }
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_email(const std::string& s) {
  auto at = s.find('@');
  if (at == std::string::npos || at == 0 || s.find('@', at + 1) != std::string::npos) {
    return false;
  }
  auto dot = s.find('.', at + 2);
  if (dot == std::string::npos || dot + 1 >= s.size()) {
    return false;
  }
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == ' ' || static_cast<unsigned char>(c) < 0x21; });
}

namespace {

/// Builds the document as json::parse does (nlohmann's own DOM builder does
/// the work) and notes the first member name repeated within one object.
/// A SAX handler rather than a parse callback: the callback parser copies
/// every key and value into a json for the callback (a transfer body's
/// validation took 11.4k instructions with it, 9.7k without; docs/bench.md).
class dom_with_names {
public:
  dom_with_names(json& out, std::string& repeated) : dom_(out, false), repeated_(repeated) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& s) { return dom_.number_float(v, s); }
  bool string(std::string& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    names_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(std::string& k) {
    if (!names_.back().insert(k) && repeated_.empty()) repeated_ = k;
    return dom_.key(k);
  }
  bool end_object() {
    names_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& e) {
    failed_ = true;
    return dom_.parse_error(pos, token, e);
  }
  bool failed() const { return failed_ || dom_.is_errored(); }

private:
  /// The member names of one open object: a short list, searched in turn,
  /// until it grows long (a body may hold tens of thousands of names).
  struct names {
    std::vector<std::string> few;
    std::unordered_set<std::string> many;
    bool insert(const std::string& k) {
      if (!many.empty()) return many.insert(k).second;
      if (std::find(few.begin(), few.end(), k) != few.end()) return false;
      if (few.size() < 16) {
        few.push_back(k);
      } else {
        many.insert(few.begin(), few.end());
        many.insert(k);
        few.clear();
      }
      return true;
    }
  };

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<names> names_;  // per open object
  std::string& repeated_;
  bool failed_ = false;
};

} // namespace

bool parse_flat_json(const std::string& text, json& out) {
  // The bodies phones send ({"to_user_id":"…","amount":120}) are flat.
  // nlohmann's lexer and SAX machinery cost a transfer's body 7.9k
  // instructions; this reads one in a fraction of that (docs/bench.md).
  // It gives up on anything it does not know to read exactly as nlohmann
  // does, so every refusal (and every unusual document) is still
  // nlohmann's; a test compares the two on many generated bodies.
  const char* p = text.data();
  const char* end = p + text.size();
  auto skip_ws = [&] {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  };
  auto at = [&](char c) { return p < end && *p == c; };
  // At a '"': a string of printable ASCII without escapes.
  auto plain_string = [&](std::string_view& s) {
    const char* begin = ++p;
    while (p < end && *p != '"') {
      auto c = static_cast<unsigned char>(*p);
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++p;
    }
    if (p == end) return false;
    s = std::string_view(begin, static_cast<size_t>(p - begin));
    ++p;
    return true;
  };
  auto word = [&](std::string_view w) {
    if (static_cast<size_t>(end - p) < w.size() || std::string_view(p, w.size()) != w) return false;
    p += w.size();
    return true;
  };
  skip_ws();
  if (!at('{')) return false;
  ++p;
  skip_ws();
  json doc(json::value_t::object);
  auto& members = doc.get_ref<json::object_t&>();
  std::array<std::string_view, 16> names;
  size_t n = 0;
  if (at('}')) {
    ++p;
  } else {
    for (;;) {
      skip_ws();
      std::string_view name;
      if (!at('"') || !plain_string(name)) return false;
      bool repeat = std::find(names.begin(), names.begin() + n, name) != names.begin() + n;
      if (n == names.size() || repeat) return false;  // a repeat: parse_json names it
      names[n++] = name;
      skip_ws();
      if (!at(':')) return false;
      ++p;
      skip_ws();
      if (p == end) return false;
      json v;
      std::string_view s;
      if (*p == '"') {
        if (!plain_string(s)) return false;
        v = std::string(s);
      } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
        bool negative = *p == '-';
        if (negative) ++p;
        const char* digits = p;
        while (p < end && *p >= '0' && *p <= '9') ++p;
        auto count = static_cast<size_t>(p - digits);
        if (count == 0 || count > 18 || (count > 1 && digits[0] == '0')) return false;
        if (at('.') || at('e') || at('E')) return false;
        uint64_t u = 0;
        for (const char* d = digits; d < p; ++d) u = u * 10 + static_cast<uint64_t>(*d - '0');
        // As nlohmann's lexer types them: a minus makes a signed integer.
        if (negative) {
          v = static_cast<json::number_integer_t>(-static_cast<int64_t>(u));
        } else {
          v = static_cast<json::number_unsigned_t>(u);
        }
      } else if (word("true")) {
        v = true;
      } else if (word("false")) {
        v = false;
      } else if (word("null")) {
        v = nullptr;
      } else {
        return false;
      }
      members.emplace(std::string(name), std::move(v));
      skip_ws();
      if (at(',')) {
        ++p;
        continue;
      }
      if (!at('}')) return false;
      ++p;
      break;
    }
  }
  skip_ws();
  if (p != end) return false;
  out = std::move(doc);
  return true;
}

json parse_json(const std::string& text, std::string& repeated) {
  json flat;
  if (parse_flat_json(text, flat)) return flat;
  // nlohmann rejects invalid UTF-8 in strings as a parse error. It keeps
  // the last of repeated member names; we name the first repeated one so
  // callers refuse it (RFC 8259 leaves their meaning open, so a client and
  // we could read different values).
  json doc;
  dom_with_names sax{doc, repeated};
  bool ok = json::sax_parse(text, &sax, json::input_format_t::json, true);
  if (!ok || sax.failed()) return json(json::value_t::discarded);
  return doc;
}

namespace {

/// Returns true if `s` is an RFC 3339 date and time with a zone
/// (2026-12-31T18:00:00Z, fractions and offsets allowed), within years
/// 1970..9999, with a real day of its month.
bool is_rfc3339(const std::string& s) {
  auto digit = [&s](size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
  auto num = [&s](size_t i, size_t n) { return std::stoi(s.substr(i, n)); };
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    if (!digit(i)) return false;
  }
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
      s[16] != ':') {
    return false;
  }
  int y = num(0, 4), mo = num(5, 2), d = num(8, 2);
  static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] || (mo == 2 && d == 29 && !leap)) {
    return false;
  }
  if (num(11, 2) > 23 || num(14, 2) > 59 || num(17, 2) > 60) return false;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    while (digit(i)) ++i;
    if (i == start || i - start > 9) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    return i + 6 == s.size() && digit(i + 1) && digit(i + 2) && s[i + 3] == ':' && digit(i + 4) &&
           digit(i + 5) && num(i + 1, 2) <= 23 && num(i + 4, 2) <= 59;
  }
  return false;
}

} // namespace

/// The rules of string field `f` that `s` breaks: an error item, or null.
json string_error(const field_rule& f, const std::string& s) {
  if (s.find('\0') != std::string::npos) {
    // Valid JSON, but PostgreSQL text cannot hold it (and C strings end there).
    return error_item(f.name, "must not contain the character U+0000");
  } else if (s.size() < f.min_length) {
    return error_item(f.name, f.min_length == 1 ? std::string{"must not be empty"}
                                                : "must be at least " +
                                                    std::to_string(f.min_length) + " bytes");
  } else if (s.size() > f.max_length) {
    return error_item(f.name, "must be at most " + std::to_string(f.max_length) + " bytes");
  } else if (!f.one_of.empty() &&
             std::find(f.one_of.begin(), f.one_of.end(), s) == f.one_of.end()) {
    std::string allowed;
    for (auto& v : f.one_of) allowed += (allowed.empty() ? "" : ", ") + v;
    return error_item(f.name, "must be one of: " + allowed);
  } else if (f.format == "e164" && !is_e164(s)) {
    return error_item(f.name, "must be an E.164 phone number (+254...)");
  } else if (f.format == "email" && !is_email(s)) {
    return error_item(f.name, "must be an email address");
  } else if (f.format == "uuid" && !is_uuid(s)) {
    return error_item(f.name, "must be a UUID");
  } else if (f.format == "date-time" && !is_rfc3339(s)) {
    return error_item(f.name, "must be an RFC 3339 date and time (2026-12-31T18:00:00Z)");
  }
  return nullptr;
}

std::optional<json> validate_body(const request& rq, const body_schema& schema,
                                  response& problem_out) {
  std::string repeated;
  json doc = parse_json(rq.body, repeated);
  if (doc.is_discarded()) {
    problem_out = invalid(400, "the body is not valid JSON (UTF-8)", json::array());
    return std::nullopt;
  }
  if (!repeated.empty()) {
    problem_out = invalid(400, "the member " + repeated + " appears more than once",
                          json::array({error_item(repeated, "appears more than once")}));
    return std::nullopt;
  }
  if (!doc.is_object()) {
    problem_out = invalid(400, "the body must be a JSON object", json::array());
    return std::nullopt;
  }
  json type_errors = json::array();
  json rule_errors = json::array();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    bool known = std::any_of(schema.fields.begin(), schema.fields.end(),
                             [&](const field_rule& f) { return f.name == it.key(); });
    if (!known) {
      rule_errors.push_back(error_item(it.key(), "unknown field"));
    }
  }
  for (auto& f : schema.fields) {
    auto it = doc.find(f.name);
    if (it == doc.end() || it->is_null()) {
      if (f.required) {
        rule_errors.push_back(error_item(f.name, "is required"));
      } else if (it != doc.end()) {
        doc.erase(it);  // null is absent: handlers see only the fields given
      }
      continue;
    }
    if (!has_type(*it, f.type)) {
      // A number too large for int64 is an integer out of range, not a type error.
      // So is an integer too large even for uint64, which the parser can
      // only hold as a double (2^64 and up): integral and at least 2^63.
      bool huge = it->is_number_float() && std::abs(it->get<double>()) >= 9223372036854775808.0 &&
                  std::trunc(it->get<double>()) == it->get<double>();
      if (f.type == json_type::integer && (it->is_number_unsigned() || huge)) {
        rule_errors.push_back(error_item(f.name, "is out of range"));
      } else if (f.type == json_type::integer && it->is_number_float()) {
        type_errors.push_back(error_item(f.name, "must be an integer, not a fraction"));
      } else {
        type_errors.push_back(error_item(f.name, std::string{(f.type == json_type::integer || f.type == json_type::string_list || f.type == json_type::position) ? "must be an " : "must be a "} + type_name(f.type)));
      }
      continue;
    }
    if (f.type == json_type::integer) {
      auto v = it->get<int64_t>();
      if (v < f.min || v > f.max) {
        rule_errors.push_back(error_item(f.name, "must be between " + std::to_string(f.min) +
                                                   " and " + std::to_string(f.max)));
      }
    } else if (f.type == json_type::string) {
      auto e = string_error(f, it->get_ref<const std::string&>());
      if (!e.is_null()) rule_errors.push_back(std::move(e));
    } else if (f.type == json_type::number) {
      auto v = it->get<double>();
      if (!(v >= f.min_number && v <= f.max_number)) {
        std::ostringstream range;
        range << "must be between " << f.min_number << " and " << f.max_number;
        rule_errors.push_back(error_item(f.name, range.str()));
      }
    } else if (f.type == json_type::position) {
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (m.key() != "lat" && m.key() != "lng") {
          rule_errors.push_back(error_item(f.name + "." + m.key(), "unknown field"));
        }
      }
      for (auto [part, bound] : {std::pair<const char*, double>{"lat", 90}, {"lng", 180}}) {
        auto name = f.name + "." + part;
        auto m = it->find(part);
        if (m == it->end() || m->is_null()) {
          rule_errors.push_back(error_item(name, "is required"));
        } else if (!m->is_number()) {
          type_errors.push_back(error_item(name, "must be a number"));
        } else if (!(m->get<double>() >= -bound && m->get<double>() <= bound)) {
          std::ostringstream range;
          range << "must be between " << -bound << " and " << bound;
          rule_errors.push_back(error_item(name, range.str()));
        }
      }
    } else if (f.type == json_type::string_list) {
      if (it->size() > f.max_items) {
        rule_errors.push_back(
          error_item(f.name, "must have at most " + std::to_string(f.max_items) + " items"));
        continue;
      }
      for (size_t k = 0; k < it->size(); ++k) {
        auto e = string_error(f, (*it)[k].get_ref<const std::string&>());
        if (!e.is_null()) {
          e["field"] = f.name + "[" + std::to_string(k) + "]";
          rule_errors.push_back(std::move(e));
          break;
        }
      }
    }
  }
  auto describe = [](const json& errors) {
    std::string out;
    for (auto& e : errors) {
      out += (out.empty() ? "" : "; ") + e["field"].get<std::string>() + " " +
             e["message"].get<std::string>();
    }
    return out;
  };
  if (!type_errors.empty()) {
    problem_out = invalid(400, describe(type_errors), type_errors);
    return std::nullopt;
  }
  if (!rule_errors.empty()) {
    problem_out = invalid(422, describe(rule_errors), rule_errors);
    return std::nullopt;
  }
  return doc;
}

nlohmann::json body_schema::to_openapi() const {
  json props = json::object();
  json required = json::array();
  for (auto& f : fields) {
    json p = {{"type", type_name(f.type)}};
    if (f.type == json_type::string_list) {
      json item = {{"type", "string"}, {"maxLength", f.max_length}};
      if (!f.format.empty()) item["format"] = f.format;
      p = {{"type", "array"}, {"items", item}, {"maxItems", f.max_items}};
    } else if (f.type == json_type::string) {
      p["maxLength"] = f.max_length;
      if (f.min_length > 0) p["minLength"] = f.min_length;
      if (!f.one_of.empty()) p["enum"] = f.one_of;
      if (!f.format.empty()) p["format"] = f.format;
    } else if (f.type == json_type::position) {
      auto num = [](double bound) {
        return json{{"type", "number"}, {"format", "double"}, {"minimum", -bound},
                    {"maximum", bound}};
      };
      p = {{"type", "object"},
           {"additionalProperties", false},
           {"required", {"lat", "lng"}},
           {"properties", {{"lat", num(90)}, {"lng", num(180)}}}};
    } else if (f.type == json_type::number) {
      p["format"] = "double";
      p["minimum"] = f.min_number;
      p["maximum"] = f.max_number;
    } else if (f.type == json_type::integer) {
      p["format"] = "int64";
      if (f.min != INT64_MIN) p["minimum"] = f.min;
      if (f.max != INT64_MAX) p["maximum"] = f.max;
    }
    props[f.name] = p;
    if (f.required) required.push_back(f.name);
  }
  json out = {{"type", "object"}, {"additionalProperties", false}, {"properties", props}};
  if (!required.empty()) out["required"] = required;
  return out;
}

} // namespace gm::gateway
