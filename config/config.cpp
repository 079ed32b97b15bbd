// Implements loading and validation of gm::config::settings.
#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>

extern char** environ;

namespace gm::config {
namespace {

using setter = std::function<void(settings&, const std::string&, const std::string&)>;

struct key_spec {
  const char* name;
  const char* help;
  setter set;
};

[[noreturn]] void fail(const std::string& key, const std::string& why) {
  throw config_error(key + ": " + why);
}

int64_t parse_int(const std::string& key, const std::string& v, int64_t lo, int64_t hi) {
  int64_t out = 0;
  auto first = v.data();
  auto last = v.data() + v.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (v.empty() || ec != std::errc{} || ptr != last) {
    fail(key, "'" + v + "' is not an integer");
  }
  if (out < lo || out > hi) {
    fail(key, std::to_string(out) + " is out of range [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  }
  return out;
}

template <class T>
setter int_field(T settings::*field, int64_t lo, int64_t hi) {
  return [=](settings& s, const std::string& key, const std::string& v) {
    s.*field = static_cast<T>(parse_int(key, v, lo, hi));
  };
}

setter string_field(std::string settings::*field) {
  return [=](settings& s, const std::string&, const std::string& v) { s.*field = v; };
}

void parse_redis_url(settings& s, const std::string& key, const std::string& v) {
  // redis://[:password@]host[:port][/db]
  const std::string scheme = "redis://";
  if (v.rfind(scheme, 0) != 0) {
    fail(key, "'" + v + "' must start with redis://");
  }
  redis_endpoint ep;
  auto rest = v.substr(scheme.size());
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    auto auth = rest.substr(0, at);
    auto colon = auth.find(':');
    ep.password = colon == std::string::npos ? auth : auth.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty()) {
      ep.db = static_cast<int>(parse_int(key + " (db)", db, 0, 15));
    }
    rest = rest.substr(0, slash);
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) {
    ep.port = static_cast<uint16_t>(parse_int(key + " (port)", rest.substr(colon + 1), 1, 65535));
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) {
    fail(key, "'" + v + "' names no host");
  }
  ep.host = rest;
  s.redis_url = v;
  s.redis = ep;
}

const std::vector<key_spec>& schema() {
  static const std::vector<key_spec> keys = {
    {"mode", "dev | production (production: JSON logs, secrets required)",
     [](settings& s, const std::string& k, const std::string& v) {
       if (v == "dev") s.mode = run_mode::dev;
       else if (v == "production") s.mode = run_mode::production;
       else fail(k, "'" + v + "' is not one of dev, production");
     }},
    {"log_level", "trace | debug | info | warn | error | critical | off",
     [](settings& s, const std::string& k, const std::string& v) {
       static const char* ok[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
       if (std::find(std::begin(ok), std::end(ok), v) == std::end(ok)) {
         fail(k, "'" + v + "' is not a log level");
       }
       s.log_level = v;
     }},
    {"log_format", "json | text (default: json in production, text in dev)",
     [](settings& s, const std::string& k, const std::string& v) {
       if (v != "json" && v != "text") fail(k, "'" + v + "' is not one of json, text");
       s.log_format = v;
     }},
    {"node_id", "this node's id in the cluster (default: generated)", string_field(&settings::node_id)},
    {"http_host", "address the HTTP/WebSocket listener binds", string_field(&settings::http_host)},
    {"http_port", "HTTP/WebSocket port (0: ephemeral)", int_field(&settings::http_port, 0, 65535)},
    {"port_file", "file to write the bound HTTP port into", string_field(&settings::port_file)},
    {"http_threads", "Beast io threads", int_field(&settings::http_threads, 1, 64)},
    {"http_body_limit", "largest request body in bytes (413 above)",
     int_field(&settings::http_body_limit, 1024, int64_t{1} << 30)},
    {"http_header_limit", "largest request header block in bytes (431 above)",
     int_field(&settings::http_header_limit, 1024, 1 << 20)},
    {"http_read_timeout_ms", "deadline to receive a whole request, and keep-alive idle time",
     int_field(&settings::http_read_timeout_ms, 100, 3600000)},
    {"http_max_pipeline", "requests one connection may have outstanding",
     int_field(&settings::http_max_pipeline, 1, 1024)},
    {"http_drain_timeout_ms", "on stop, how long in-flight requests may finish",
     int_field(&settings::http_drain_timeout_ms, 0, 600000)},
    {"request_timeout_ms", "a request the actors have not answered by then gets 503",
     int_field(&settings::request_timeout_ms, 10, 600000)},
    {"gateway_workers", "gateway actors bridging HTTP to CAF",
     int_field(&settings::gateway_workers, 1, 256)},
    {"pg_url", "PostgreSQL connection URL or conninfo string",
     [](settings& s, const std::string& k, const std::string& v) {
       if (v.empty()) fail(k, "must not be empty");
       s.pg_url = v;
     }},
    {"pg_pool_size", "PostgreSQL connections in the pool", int_field(&settings::pg_pool_size, 1, 256)},
    {"pg_connect_timeout_ms", "PostgreSQL connect timeout",
     int_field(&settings::pg_connect_timeout_ms, 100, 600000)},
    {"health_interval_ms", "how often PostgreSQL and Redis are probed",
     int_field(&settings::health_interval_ms, 50, 600000)},
    {"redis_url", "redis://[:password@]host[:port][/db]", parse_redis_url},
    {"jwt_secret", "HS256 secret, at least 32 bytes (secret: use the environment)",
     string_field(&settings::jwt_secret)},
    {"jwt_secret_file", "file holding the HS256 secret", string_field(&settings::jwt_secret_file)},
    {"jwt_algorithm", "HS256 | RS256 (tokens signed otherwise are refused)",
     [](settings& s, const std::string& k, const std::string& v) {
       if (v != "HS256" && v != "RS256") fail(k, "'" + v + "' is not one of HS256, RS256");
       s.jwt_algorithm = v;
     }},
    {"jwt_private_key_file", "RS256: PEM private key file", string_field(&settings::jwt_private_key_file)},
    {"jwt_public_key_file", "RS256: PEM public key file", string_field(&settings::jwt_public_key_file)},
    {"access_token_ttl_s", "access token lifetime", int_field(&settings::access_token_ttl_s, 10, 86400)},
    {"refresh_token_ttl_s", "refresh token lifetime",
     int_field(&settings::refresh_token_ttl_s, 60, 365 * 86400)},
    {"admin_phone", "E.164 phone of the admin account created at start if missing",
     string_field(&settings::admin_phone)},
    {"admin_password", "password of that admin account (secret: use the environment)",
     string_field(&settings::admin_password)},
    {"rate_limit_ip_per_min", "requests per minute per client address on /api",
     int_field(&settings::rate_limit_ip_per_min, 1, 100000000)},
    {"rate_limit_user_per_min", "requests per minute per user on /api",
     int_field(&settings::rate_limit_user_per_min, 1, 100000000)},
    {"kdf_threads", "threads hashing passwords (below normal priority)",
     int_field(&settings::kdf_threads, 1, 64)},
    {"kdf_queue_limit", "password hashes waiting before logins get 503",
     int_field(&settings::kdf_queue_limit, 1, 100000)},
    {"ws_send_queue", "frames queued per WebSocket before a slow client is closed (1008)",
     int_field(&settings::ws_send_queue, 1, 1000000)},
    {"ws_idle_timeout_ms", "a WebSocket that sends nothing is pinged after half of this and "
                           "closed after all of it",
     int_field(&settings::ws_idle_timeout_ms, 200, 3600000)},
    {"ws_message_max", "largest incoming WebSocket message, bytes (larger: close 1009)",
     int_field(&settings::ws_message_max, 128, 64 << 20)},
    {"caf_threads", "CAF scheduler worker threads", int_field(&settings::caf_threads, 1, 256)},
    {"supervisor_intensity", "restarts allowed per period before a supervisor gives up",
     int_field(&settings::supervisor_intensity, 0, 1000)},
    {"supervisor_period_ms", "the period of supervisor_intensity",
     int_field(&settings::supervisor_period_ms, 1, 3600000)},
    {"shutdown_timeout_ms", "how long a child may take to stop before it is killed",
     int_field(&settings::shutdown_timeout_ms, 10, 600000)},
    {"journal_flush_interval_ms", "journal batches start at most this often (a quiet journal writes at once)",
     int_field(&settings::journal_flush_interval_ms, 1, 60000)},
    {"journal_batch_max", "a journal batch starts at once when this many rows wait",
     int_field(&settings::journal_batch_max, 1, 1000000)},
    {"journal_max_pending_rows", "rows the journal holds before durable writes get 503",
     int_field(&settings::journal_max_pending_rows, 100, 100000000)},
    {"journal_group_commit",
     "durable (a batch as soon as none is in flight if a durable write waits) | interval | eager",
     [](settings& s, const std::string& key, const std::string& v) {
       if (v != "durable" && v != "interval" && v != "eager") {
         fail(key, "'" + v + "' must be durable, interval or eager");
       }
       s.journal_group_commit = v;
     }},
    {"entity_idle_timeout_ms", "an entity idle this long is passivated",
     int_field(&settings::entity_idle_timeout_ms, 10, 86400000)},
    {"entity_restart_intensity", "crashes of one entity per period before its shard stops restarting it",
     int_field(&settings::entity_restart_intensity, 0, 1000)},
    {"entity_restart_period_ms", "the period of entity_restart_intensity",
     int_field(&settings::entity_restart_period_ms, 1, 3600000)},
    {"max_balance", "the most one wallet may hold, in minor units (escrow and money in flight included)",
     int_field(&settings::max_balance, 1, INT64_MAX)},
    {"saga_step_timeout_ms", "how long a money saga waits for a step before it asks again",
     int_field(&settings::saga_step_timeout_ms, 1, 3600000)},
    {"saga_sweep_interval_ms", "how often the recovery sweep resumes money sagas left pending",
     int_field(&settings::saga_sweep_interval_ms, 10, 3600000)},
    {"circle_day_ms", "the length of a day for savings circles' due dates (tests shrink it)",
     int_field(&settings::circle_day_ms, 1, 86400000LL * 366)},
    {"contract_auto_release_ms",
     "how long after delivery a gig contract releases its escrow if the client neither approves "
     "nor disputes",
     int_field(&settings::contract_auto_release_ms, 1, 86400000LL * 3660)},
    {"chat_max_text", "the longest chat message, in characters (Unicode code points)",
     int_field(&settings::chat_max_text, 1, 100000)},
    {"dispatch_offer_timeout_ms", "how long a rider has to answer a task's offer before it moves on",
     int_field(&settings::dispatch_offer_timeout_ms, 100, 3600000)},
    {"dispatch_max_offers", "offers of one task before it is unassigned",
     int_field(&settings::dispatch_max_offers, 1, 100)},
    {"dispatch_radius_m", "how far from a task's pickup riders are looked for, in meters",
     int_field(&settings::dispatch_radius_m, 1, 50000)},
    {"cluster_host", "address the cluster (CAF middleman) listener binds",
     string_field(&settings::cluster_host)},
    {"cluster_port", "cluster listener port; 0 with no seeds: the node runs alone",
     int_field(&settings::cluster_port, 0, 65535)},
    {"seeds", "other nodes' cluster addresses to contact first (host:port,...)",
     [](settings& s, const std::string& key, const std::string& v) {
       size_t start = 0;
       while (!v.empty() && start <= v.size()) {
         auto end = v.find(',', start);
         auto one = v.substr(start, end == std::string::npos ? std::string::npos : end - start);
         auto colon = one.rfind(':');
         bool ok = !one.empty() && colon != std::string::npos && colon > 0 &&
                   colon + 1 < one.size() &&
                   std::all_of(one.begin() + static_cast<std::ptrdiff_t>(colon) + 1, one.end(),
                               [](char c) { return c >= '0' && c <= '9'; });
         if (!ok) fail(key, "'" + one + "' is not host:port");
         if (end == std::string::npos) break;
         start = end + 1;
       }
       s.seeds = v;
     }},
    {"cluster_heartbeat_ms", "how often a node proves it is alive (and looks at the others)",
     int_field(&settings::cluster_heartbeat_ms, 50, 60000)},
    {"cluster_down_after_ms", "a node silent this long is declared down by the others",
     int_field(&settings::cluster_down_after_ms, 200, 600000)},
    {"cluster_handoff_ms", "how long an entity moved by a membership change waits for its "
                           "previous owner to stop it",
     int_field(&settings::cluster_handoff_ms, 0, 60000)},
    {"currency", "the currency of wallets (ISO 4217 code)",
     [](settings& s, const std::string& key, const std::string& v) {
       bool ok = v.size() == 3 && std::all_of(v.begin(), v.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
       if (!ok) fail(key, "'" + v + "' must be a three-letter ISO 4217 code");
       s.currency = v;
     }},
  };
  return keys;
}

std::string normalize(std::string key) {
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

const key_spec* find_key(const std::string& key) {
  for (auto& k : schema()) {
    if (key == k.name) {
      return &k;
    }
  }
  return nullptr;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void apply(settings& s, const std::string& key, const std::string& value,
           const std::string& where) {
  auto* spec = find_key(key);
  if (spec == nullptr) {
    throw config_error(where + ": unknown key '" + key + "'");
  }
  spec->set(s, key, value);
}

void load_file(settings& s, const std::string& path) {
  std::ifstream in{path};
  if (!in) {
    throw config_error("config file '" + path + "' cannot be read");
  }
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto t = trim(line);
    if (t.empty() || t[0] == '#') {
      continue;
    }
    auto eq = t.find('=');
    auto where = path + ":" + std::to_string(lineno);
    if (eq == std::string::npos) {
      throw config_error(where + ": expected 'key = value'");
    }
    auto key = trim(t.substr(0, eq));
    auto value = trim(t.substr(eq + 1));
    if (!value.empty() && value.front() == '"') {
      // A quoted value ends at the next quote; only a comment may follow.
      auto close = value.find('"', 1);
      auto rest = close == std::string::npos ? std::string{"x"} : trim(value.substr(close + 1));
      if (!rest.empty() && rest[0] != '#') {
        throw config_error(where + ": unterminated or malformed quoted value");
      }
      value = value.substr(1, close - 1);
    } else if (auto hash = value.find('#'); hash != std::string::npos) {
      value = trim(value.substr(0, hash));  // an unquoted value ends at a comment
    }
    apply(s, normalize(key), value, where);
  }
}

std::string env_name(const std::string& key) {
  std::string out = "GIGMESH_";
  for (char c : key) {
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

void validate(settings& s) {
  if (s.cluster_down_after_ms < 2 * s.cluster_heartbeat_ms) {
    throw config_error("cluster_down_after_ms: must be at least two heartbeats (cluster_heartbeat_ms)");
  }
  if (!s.jwt_secret_file.empty()) {
    std::ifstream in{s.jwt_secret_file};
    if (!in) {
      throw config_error("jwt_secret_file: '" + s.jwt_secret_file + "' cannot be read");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    s.jwt_secret = trim(buf.str());
  }
  if (s.jwt_algorithm == "RS256") {
    if (s.jwt_public_key_file.empty() || s.jwt_private_key_file.empty()) {
      throw config_error("jwt_private_key_file, jwt_public_key_file: both required for RS256");
    }
  } else if (s.mode == run_mode::production) {
    if (s.jwt_secret.empty()) {
      throw config_error("jwt_secret: required in production mode "
                         "(set GIGMESH_JWT_SECRET or jwt_secret_file)");
    }
    if (s.jwt_secret.size() < 32) {
      throw config_error("jwt_secret: must be at least 32 bytes in production mode");
    }
  }
  if (!s.jwt_secret.empty() && s.jwt_secret.size() < 32) {
    throw config_error("jwt_secret: must be at least 32 bytes");
  }
  if (s.admin_phone.empty() != s.admin_password.empty()) {
    throw config_error("admin_phone, admin_password: set both or neither");
  }
  if (!s.admin_password.empty() && s.admin_password.size() < 8) {
    throw config_error("admin_password: must be at least 8 characters");
  }
  if (s.http_host.empty()) {
    throw config_error("http_host: must not be empty");
  }
}

} // namespace

settings load(const std::vector<std::string>& args,
              const std::map<std::string, std::string>& env) {
  // Split the command line first: --config decides which file is read.
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_path;
  if (auto it = env.find("GIGMESH_CONFIG"); it != env.end()) {
    config_path = it->second;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      throw config_error("unexpected argument '" + a + "' (flags are --key=value)");
    }
    auto body = a.substr(2);
    std::string key;
    std::string value;
    auto eq = body.find('=');
    if (eq != std::string::npos) {
      key = normalize(body.substr(0, eq));
      value = body.substr(eq + 1);
    } else {
      key = normalize(body);
      if (i + 1 >= args.size()) {
        throw config_error("--" + body + ": needs a value");
      }
      value = args[++i];
    }
    if (key == "config") {
      config_path = value;
    } else {
      flags.emplace_back(key, value);
    }
  }

  settings s;
  parse_redis_url(s, "redis_url", s.redis_url);
  if (!config_path.empty()) {
    load_file(s, config_path);
  }
  for (auto& k : schema()) {
    if (auto it = env.find(env_name(k.name)); it != env.end()) {
      apply(s, k.name, it->second, env_name(k.name));
    }
  }
  for (auto& [key, value] : flags) {
    apply(s, key, value, "--" + key);
  }
  validate(s);
  return s;
}

std::map<std::string, std::string> process_env() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("GIGMESH_", 0) == 0) {
      out.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
  }
  return out;
}

std::string describe(const settings& s) {
  std::ostringstream out;
  out << "mode=" << (s.mode == run_mode::production ? "production" : "dev")
      << " http=" << s.http_host << ":" << s.http_port << " http_threads=" << s.http_threads
      << " body_limit=" << s.http_body_limit << " pg_pool_size=" << s.pg_pool_size
      << " redis=" << s.redis.host << ":" << s.redis.port << "/" << s.redis.db
      << " caf_threads=" << s.caf_threads
      << " jwt=" << s.jwt_algorithm
      << " jwt_secret=" << (s.jwt_secret.empty() ? "unset" : "set")
      << " admin=" << (s.admin_phone.empty() ? "none" : "configured")
      << " rate_limits=" << s.rate_limit_ip_per_min << "/" << s.rate_limit_user_per_min;
  return out.str();
}

std::string help_text() {
  std::ostringstream out;
  out << "usage: gigmesh [--config=FILE] [--key=value ...]\n\n"
         "Every key can be set in the config file, as GIGMESH_<KEY> in the\n"
         "environment, or as --key=value (later wins: file < env < flag).\n\n";
  for (auto& k : schema()) {
    out << "  --" << k.name << " (" << env_name(k.name) << ")\n      " << k.help << "\n";
  }
  return out.str();
}

} // namespace gm::config
