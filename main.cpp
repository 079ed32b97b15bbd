// gigmesh: one node. Loads the configuration, starts the root supervisor
// (persistence, journal, topic hub, entity shards, gateway) and stops it in
// reverse on SIGTERM/SIGINT.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/membership.hpp"
#include "cluster/node_info.hpp"
#include "ctl/ctl.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "actors/scheduler.hpp"
#include "actors/topics.hpp"
#include "actors/kinds.hpp"
#include "gateway/service.hpp"
#include "gateway/inspector.hpp"
#include "gateway/topic_hub.hpp"
#include "persistence/journal.hpp"
#include "persistence/service.hpp"
#include "supervisors/shard.hpp"
#include "supervisors/supervisor.hpp"

#ifdef GIGMESH_JEMALLOC_CONF
// jemalloc reads this at start (MALLOC_CONF in the environment still
// applies after it). Messages are allocated on one thread and freed on
// another, so a thread's cache of one size fills with blocks that came
// from elsewhere and is flushed back to the arenas (a lock and a walk per
// flush), and the periodic cache GC gives back what it will soon refill.
// Caches 8 times deeper per size (at most 2,000 blocks) and a GC every 4
// MiB allocated instead of every 64 KiB cut the node's instructions per
// transfer by 3% (docs/bench.md). Every thread may keep more memory
// cached: a few MiB for the node's handful of threads.
extern "C" {
const char* malloc_conf =
  "tcache_gc_incr_bytes:4194304,lg_tcache_nslots_mul:3,tcache_nslots_small_max:2000";
}
#endif

namespace {

/// Does this node join others (a cluster listener or seeds configured)?
bool clustered(const gm::config::settings& cfg) {
  return cfg.cluster_port != 0 || !cfg.seeds.empty();
}

std::vector<std::string> split_seeds(const std::string& seeds) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < seeds.size()) {
    auto end = seeds.find(',', start);
    if (end == std::string::npos) end = seeds.size();
    if (end > start) out.push_back(seeds.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<gm::sup::child_spec> root_children(const gm::config::settings& cfg,
                                               const gm::cluster::node_info& node) {
  using namespace std::chrono;
  auto stop_within = milliseconds{cfg.shutdown_timeout_ms};
  gm::sup::child_spec persistence;
  persistence.name = "persistence";
  persistence.shutdown_timeout = stop_within;
  persistence.start = [cfg, node](caf::local_actor* sup) {
    return gm::persistence::spawn_service(sup, cfg, node);
  };

  // The node's topics: entities record their events here, the hub
  // (restarted on a crash) manages who watches them.
  auto events = std::make_shared<gm::topics::store>();

  // Membership: this node's row in `nodes` (the journal writes only once it
  // joined, fenced by it), the other nodes, placement (cluster/).
  auto joined_incarnation = std::make_shared<std::atomic<int64_t>>(0);
  gm::sup::child_spec cluster;
  cluster.name = "cluster";
  cluster.shutdown_timeout = stop_within;
  // Not restarted: a new membership would rejoin under the same
  // incarnation while the others may have declared this node down and
  // taken its entities. Its crash stops the node (exit 1).
  cluster.significant = true;
  cluster.start = [cfg, node, joined_incarnation, events](caf::local_actor* sup) {
    gm::cluster::options o;
    o.node_id = node.id;
    o.incarnation = node.incarnation;
    o.http_address = node.address;
    o.pg_url = cfg.pg_url;
    o.connect_timeout = milliseconds{cfg.pg_connect_timeout_ms};
    o.host = cfg.cluster_host;
    o.port = static_cast<uint16_t>(cfg.cluster_port);
    o.clustered = clustered(cfg);
    o.seeds = split_seeds(cfg.seeds);
    o.heartbeat = milliseconds{cfg.cluster_heartbeat_ms};
    o.down_after = milliseconds{cfg.cluster_down_after_ms};
    o.handoff = milliseconds{cfg.cluster_handoff_ms};
    o.joined_incarnation = joined_incarnation;
    o.events = events;
    return gm::cluster::spawn_membership(sup, std::move(o));
  };

  // One gate per node: the journal counts the rows it holds, entities check
  // it before they change anything. It outlives journal restarts.
  auto gate = std::make_shared<gm::journal::gate>(cfg.journal_max_pending_rows);
  gm::sup::child_spec journal;
  journal.name = "journal";
  journal.shutdown_timeout = stop_within;
  // A journal that crashed lost the rows it held: every entity whose rows
  // were lost holds a state ahead of PostgreSQL, and a new journal would
  // commit their later changes on top of the missing ones. So its crash is
  // not restarted but stops the node (the root gives up, exit 1); the next
  // start resumes every saga from PostgreSQL.
  journal.significant = true;
  journal.start = [cfg, gate, node, joined_incarnation](caf::local_actor* sup) {
    gm::journal::options o;
    o.conninfo = cfg.pg_url;
    o.connect_timeout = milliseconds{cfg.pg_connect_timeout_ms};
    o.flush_interval = milliseconds{cfg.journal_flush_interval_ms};
    o.batch_max = static_cast<size_t>(cfg.journal_batch_max);
    o.eager = cfg.journal_group_commit == "eager";
    o.durable_at_once = cfg.journal_group_commit == "durable";
    o.fence_node = node.id;
    o.fence_incarnation = joined_incarnation;
    o.on_fenced = [](const std::string& why) { gm::cluster::exit_fenced(why); };
    return gm::journal::spawn_journal(sup, o, gate);
  };

  gm::sup::child_spec hub;
  hub.name = "topic_hub";
  hub.start = [events](caf::local_actor* sup) {
    return gm::gateway::spawn_topic_hub(sup, events);
  };

  // The node's life on `system:inspect`, for the console.
  gm::sup::child_spec inspector;
  inspector.name = "inspector";
  inspector.start = [events, node](caf::local_actor* sup) {
    return gm::gateway::spawn_inspector(sup, events, node);
  };

  // One shard per entity kind (actors/kinds.cpp), under their own supervisor.
  gm::actors::kind_context kctx;
  kctx.gate = gate;
  kctx.events = events;
  kctx.currency = cfg.currency;
  kctx.max_balance = cfg.max_balance;
  kctx.saga_step_timeout = milliseconds{cfg.saga_step_timeout_ms};
  kctx.saga_sweep_interval = milliseconds{cfg.saga_sweep_interval_ms};
  kctx.circle_day_ms = cfg.circle_day_ms;
  kctx.contract_auto_release_ms = cfg.contract_auto_release_ms;
  kctx.chat_max_text = static_cast<size_t>(cfg.chat_max_text);
  kctx.dispatch_offer_timeout_ms = cfg.dispatch_offer_timeout_ms;
  kctx.dispatch_max_offers = static_cast<int32_t>(cfg.dispatch_max_offers);
  kctx.dispatch_radius_m = static_cast<double>(cfg.dispatch_radius_m);
  gm::shard::options shard_opts;
  shard_opts.node_id = node.id;
  shard_opts.idle_timeout = milliseconds{cfg.entity_idle_timeout_ms};
  shard_opts.intensity = cfg.entity_restart_intensity;
  shard_opts.period = milliseconds{cfg.entity_restart_period_ms};
  std::vector<gm::sup::child_spec> shard_specs;
  for (auto& k : gm::actors::kinds()) {
    gm::sup::child_spec spec;
    spec.name = gm::shard::registry_name(k.type);
    spec.shutdown_timeout = stop_within;
    spec.start = [&k, kctx, shard_opts](caf::local_actor* sup) {
      return gm::shard::spawn_shard(sup, k.make(kctx), shard_opts);
    };
    shard_specs.push_back(std::move(spec));
  }
  gm::sup::options shards_opts;
  shards_opts.name = "shards";
  shards_opts.strat = gm::sup::strategy::one_for_one;
  shards_opts.intensity = cfg.supervisor_intensity;
  shards_opts.period = milliseconds{cfg.supervisor_period_ms};
  auto shards = gm::sup::supervisor_child(shards_opts, std::move(shard_specs));
  shards.shutdown_timeout = stop_within;

  gm::sup::child_spec gateway;
  gateway.name = "gateway";
  gateway.shutdown_timeout = milliseconds{cfg.http_drain_timeout_ms + cfg.shutdown_timeout_ms};
  gateway.start = [cfg, node](caf::local_actor* sup) {
    return gm::gateway::spawn_service(sup, cfg, node);
  };
  // Started in this order, stopped in reverse: the gateway drains first,
  // then the entities stop, then the journal flushes what they wrote.
  return {persistence, cluster, journal, hub, inspector, shards, gateway};
}

int run(const gm::config::settings& cfg) {
  auto log = gm::log::get("node");
  auto node = gm::cluster::make_node_info(cfg.node_id,
                                          cfg.http_host + ":" + std::to_string(cfg.http_port));
  log->info("gigmesh {} starting as node {} ({})", GIGMESH_VERSION, node.id,
            gm::config::describe(cfg));

  auto& reg = gm::metrics::global();
  reg.gauge_fn("gigmesh_process_resident_memory_bytes", "resident set size of the node",
               [] { return static_cast<double>(gm::metrics::resident_memory_bytes()); });
  auto started = static_cast<double>(std::time(nullptr));
  reg.gauge_fn("gigmesh_process_start_time_seconds", "start time of the node, unix seconds",
               [started] { return started; });

  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", static_cast<size_t>(cfg.caf_threads));
  // An idle worker polls its queue 100 times, then (CAF's default) sleeps
  // 50 us at a time up to 500 times before it waits on its condition
  // variable. Under load that is one nanosleep, with its two context
  // switches, per transfer. Without the sleeping phase the worker waits on
  // the condition variable at once, and work handed to it from outside CAF
  // (the HTTP io threads, the journal's writer, timers) wakes it: 3-4 us
  // less node CPU per transfer, about 2.5% more transfers a second
  // (docs/bench.md, 2026-11-23).
  caf_cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  gm::actors::use_lean_scheduler(caf_cfg);  // CAF's policy, our worker loop: see the header
  gm::actors::announce_commands(caf_cfg);    // typed commands, by name (cluster)
  gm::cluster::announce(caf_cfg);            // replies that cross nodes
  if (clustered(cfg)) {
    // Nodes talk through CAF's middleman. Both of its failure detectors are
    // off by default (a hung peer would never be noticed): heartbeats
    // twice per cluster heartbeat, and a connection silent past
    // cluster_down_after_ms is closed (docs/architecture.md, Cluster).
    caf_cfg.load<caf::io::middleman>();
    caf_cfg.set("middleman.heartbeat-interval",
                caf::timespan{std::chrono::milliseconds{std::max<int64_t>(cfg.cluster_heartbeat_ms / 2, 50)}});
    caf_cfg.set("middleman.connection-timeout",
                caf::timespan{std::chrono::milliseconds{cfg.cluster_down_after_ms}});
  }
  caf::actor_system sys{caf_cfg};

  gm::sup::options opts;
  opts.name = "root";
  // one_for_one: the gateway finds persistence through the registry on every
  // request, so a persistence restart needs no gateway restart.
  opts.strat = gm::sup::strategy::one_for_one;
  opts.intensity = cfg.supervisor_intensity;
  opts.period = std::chrono::milliseconds{cfg.supervisor_period_ms};
  auto root = gm::sup::spawn_supervisor(sys, opts, root_children(cfg, node));

  std::atomic<bool> root_down{false};
  std::atomic<bool> graceful{false};
  std::atomic<bool> unclean{false};
  root->attach_functor([&](const caf::error& reason) {
    graceful = !reason || reason == caf::exit_reason::user_shutdown;
    unclean = reason == gm::sup::make_error(gm::sup::errc::stopped_uncleanly);
    root_down = true;
  });

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  bool stopping = false;
  while (!root_down) {
    timespec wait{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      if (stopping) {
        log->warn("second signal: exiting at once");
        return 130;
      }
      stopping = true;
      log->info("received {}: stopping (gateway, shards, journal, persistence)",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
      caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    }
  }
  root = nullptr;
  if (unclean) {
    log->error("stopped, but a service had to be killed past its shutdown_timeout_ms "
               "(see the supervisor's warning): what it held may not be written");
    return 1;
  }
  if (!graceful) {
    log->critical("root supervisor gave up: node exits");
    return 1;
  }
  log->info("stopped cleanly");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  // `gigmesh ctl …`: the console for terminals, a client of a running node.
  if (!args.empty() && args[0] == "ctl") {
    return gm::ctl::run(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  for (auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << gm::config::help_text();
      return 0;
    }
  }
  gm::config::settings cfg;
  try {
    cfg = gm::config::load(args, gm::config::process_env());
  } catch (const gm::config::config_error& e) {
    std::fprintf(stderr, "gigmesh: configuration error: %s\n", e.what());
    return 2;
  }
  bool json = cfg.log_format == "json" ||
              (cfg.log_format.empty() && cfg.mode == gm::config::run_mode::production);
  gm::log::setup(json ? gm::log::format::json : gm::log::format::dev, cfg.log_level);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    gm::log::get("node")->critical("fatal: {}", e.what());
    return 1;
  }
}
