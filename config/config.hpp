// The node's configuration: one schema with defaults, loaded from a file, then
// GIGMESH_* environment variables, then command-line flags (later wins), and
// validated before anything starts.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace gm::config {

/// Thrown for any bad configuration; what() is one line naming the key.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class run_mode { dev, production };

struct redis_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string password;
};

struct settings {
  run_mode mode = run_mode::dev;
  std::string log_level = "info";
  std::string log_format;  // "json" | "text"; empty: json in production, text in dev
  std::string node_id;     // empty: generated at start

  std::string http_host = "0.0.0.0";
  uint16_t http_port = 8080;  // 0: pick an ephemeral port (tests)
  std::string port_file;      // if set, the bound HTTP port is written here
  int http_threads = 2;
  int64_t http_body_limit = 1 << 20;
  int64_t http_header_limit = 16 << 10;
  int64_t http_read_timeout_ms = 30000;
  int http_max_pipeline = 16;
  int64_t http_drain_timeout_ms = 10000;
  int64_t request_timeout_ms = 5000;
  int gateway_workers = 4;
  int64_t ws_send_queue = 4096;      // frames queued per WebSocket before it is closed
  int64_t ws_idle_timeout_ms = 60000;  // silent WebSocket: pinged at half, closed at all of it
  int64_t ws_message_max = 64 << 10;  // bytes per incoming WebSocket message

  std::string pg_url = "postgresql://postgres@127.0.0.1:5432/gigmesh";
  int pg_pool_size = 4;
  int64_t pg_connect_timeout_ms = 2000;
  int64_t health_interval_ms = 1000;

  std::string redis_url = "redis://127.0.0.1:6379/0";
  redis_endpoint redis;  // parsed from redis_url

  std::string jwt_algorithm = "HS256";  // HS256 | RS256
  std::string jwt_secret;  // secret: never logged
  std::string jwt_secret_file;
  std::string jwt_private_key_file;  // RS256: PEM private key (signing)
  std::string jwt_public_key_file;   // RS256: PEM public key (verifying)
  int64_t access_token_ttl_s = 900;
  int64_t refresh_token_ttl_s = 30 * 24 * 3600;
  std::string admin_phone;     // the admin account created at start if missing
  std::string admin_password;  // secret: never logged
  int64_t rate_limit_ip_per_min = 100;
  int64_t rate_limit_user_per_min = 1000;
  int kdf_threads = 1;
  size_t kdf_queue_limit = 256;

  int caf_threads = 2;
  int supervisor_intensity = 3;
  int64_t supervisor_period_ms = 5000;
  int64_t shutdown_timeout_ms = 15000;

  int64_t journal_flush_interval_ms = 10;
  int64_t journal_batch_max = 1000;
  int64_t journal_max_pending_rows = 100000;
  std::string journal_group_commit = "durable";  // durable | interval | eager
  int64_t entity_idle_timeout_ms = 120000;
  int entity_restart_intensity = 3;
  int64_t entity_restart_period_ms = 5000;
  std::string currency = "KES";
  // Money: the most one wallet may hold, how long a saga's sender waits for
  // the receiver's step before it asks again, and how often the recovery
  // sweep looks for sagas left pending.
  int64_t max_balance = INT64_MAX;
  int64_t saga_step_timeout_ms = 10000;
  int64_t saga_sweep_interval_ms = 10000;
  // Savings circles: the length of a "day" for due dates (tests shrink it).
  int64_t circle_day_ms = 86400000;
  int64_t contract_auto_release_ms = 14LL * 86400000;
  // Chat rooms: the longest message, in characters (Unicode code points).
  int64_t chat_max_text = 4000;
  // Dispatch: how long an offer waits for its rider, how many offers a
  // task makes before it is unassigned, how far riders are looked for.
  int64_t dispatch_offer_timeout_ms = 30000;
  int64_t dispatch_max_offers = 5;
  int64_t dispatch_radius_m = 5000;
  // Cluster: the middleman's listener (cluster_port 0 and no seeds: the
  // node runs alone), seeds to contact first, heartbeats and failure
  // detection, and how long a moved entity waits for its previous owner.
  std::string cluster_host = "127.0.0.1";
  int64_t cluster_port = 0;
  std::string seeds;  // host:port,host:port
  int64_t cluster_heartbeat_ms = 500;
  int64_t cluster_down_after_ms = 3000;
  int64_t cluster_handoff_ms = 1500;
};

/// Returns the settings built from defaults, the config file (from `--config`
/// or GIGMESH_CONFIG), `env` (GIGMESH_* names) and `args` (argv without the
/// program name). Throws config_error on any unknown key or bad value.
settings load(const std::vector<std::string>& args,
              const std::map<std::string, std::string>& env);

/// Returns the environment of this process as a map, for `load`.
std::map<std::string, std::string> process_env();

/// Returns a one-line description of `s` for the start-up log; secrets masked.
std::string describe(const settings& s);

/// Returns the help text listing every key, its default and its variable.
std::string help_text();

} // namespace gm::config
