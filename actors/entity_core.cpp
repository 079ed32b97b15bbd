// Implements the entity helpers shared by every kind.
#include "actors/entity_core.hpp"

#include <chrono>
#include <cstring>

#include <caf/all.hpp>

#include "actors/router.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "persistence/pg.hpp"
#include "persistence/service.hpp"

namespace gm::actors {

void finish_if_idle(caf::event_based_actor* self, entity_core& core) {
  if (core.passivate_asked && core.busy == 0) {
    core.status = "passivating";
    self->quit();
  }
}

void note_failed(caf::event_based_actor* self, const std::string& type, const std::string& id) {
  static auto& failures = metrics::global().get_counter(
    "gigmesh_entity_failures_total", "entities failed because the journal refused their rows");
  failures.inc();
  gm::log::get("entity")->error("{}:{} failed: the journal refused or lost its rows; it "
                                "answers 503 until it reloads from PostgreSQL",
                                type, id);
  // Shown as failed for a while (the console, the admin API), then
  // passivated: its next message activates it from what PostgreSQL holds.
  constexpr std::chrono::seconds failed_hold{5};
  auto shard = shard_of(self->system(), type);
  if (shard) self->delayed_send(shard, failed_hold, gone_atom::value, id);
}

void ask_to_passivate(caf::event_based_actor* self, const std::string& type,
                      const std::string& id) {
  auto shard = shard_of(self->system(), type);
  if (shard) self->send(shard, gone_atom::value, id);
}

void announce_loaded(caf::event_based_actor* self, const std::string& type,
                     const std::string& id) {
  auto shard = shard_of(self->system(), type);
  if (shard) self->send(shard, loaded_atom::value, id);
}

void announce_deleted(caf::event_based_actor* self, const std::string& type,
                      const std::string& id) {
  auto shard = shard_of(self->system(), type);
  if (shard) self->send(shard, deleted_atom::value, id);
}

bool note_command(caf::event_based_actor* self, const char* type, entity_core& core) {
  if (core.refuse_commands) return true;
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  auto step = static_cast<uint16_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(now).count() >> 8);
  if (static_cast<uint16_t>(step - core.touched) >= 4) {
    core.touched = step;
    if (auto shard = shard_of(self->system(), type)) {
      self->send(shard, touch_atom::value, core.id);
    }
  }
  return false;
}

caf::error refused_command() {
  return caf::make_error(caf::sec::request_receiver_down);
}

void on_passivate(caf::event_based_actor* self, entity_core& core) {
  // Commands the shard delivered were queued before its request to
  // passivate; a serving entity sees only routers' commands after it.
  // (While loading, the shard's commands wait behind this request.)
  if (!core.passivate_asked && std::strcmp(core.status, "active") == 0) {
    core.refuse_commands = true;
  }
  core.passivate_asked = true;
  finish_if_idle(self, core);
}

void note_handled(caf::event_based_actor* self, entity_core& core) {
  ++core.handled;
  if (!core.mailbox_depth) {
    // Bounds in messages: an entity that keeps up sees 0 or 1; a deep
    // mailbox is one that falls behind (observer's message_queue_len).
    core.mailbox_depth = &metrics::global().get_histogram(
      "gigmesh_entity_mailbox_depth",
      "messages waiting in an entity's mailbox when it serves a command, by kind",
      {{"type", core.type}}, {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096});
  }
  core.mailbox_depth->observe(static_cast<double>(self->mailbox().size()));
}

entity_info describe(caf::event_based_actor* self, const entity_core& core, std::string state) {
  entity_info i;
  i.id = core.id;
  i.status = core.status;
  i.version = core.version;
  i.mailbox = static_cast<int64_t>(self->mailbox().size());
  i.messages = static_cast<int64_t>(core.handled);
  i.state = std::move(state);
  return i;
}

bool journal_accepting(const journal::gate& g) {
  return g.accepting();
}

void persist(caf::event_based_actor* self, entity_core& core, std::vector<journal::row> rows,
             bool durable, std::function<void(bool)> done) {
  auto j = journal::find(self->system());
  if (!j) {
    done(false);
    return;
  }
  if (!core.owner) core.owner = std::make_shared<const std::string>(std::string{core.type} + ":" + core.id);
  for (auto& r : rows) r.owner = core.owner;
  ++core.busy;
  // No timeout of our own: the rows are the journal's now, and it never
  // drops them; the caller's request has its own deadline.
  self->request(j, caf::infinite, journal::write_atom::value, std::move(rows), durable)
    .then(
      [self, &core, done](journal::ok_atom) {
        --core.busy;
        done(true);
        finish_if_idle(self, core);
      },
      [self, &core, done](caf::error&) {
        --core.busy;
        done(false);
        finish_if_idle(self, core);
      });
}


namespace {

/// Submits `job` to `pool`; its continuation comes back as a message.
void submit_job(caf::event_based_actor* self, const std::shared_ptr<pg::pool>& pool,
                const std::function<std::function<void()>(pg::connection&)>& job,
                const std::function<void(const std::string&)>& failed) {
  caf::actor me = caf::actor_cast<caf::actor>(self);
  bool queued = pool->submit([me, job, failed](pg::connection& conn) {
    // Whatever happens on the pool thread, the entity hears of it: a job
    // that threw would otherwise leave it waiting (busy) for ever.
    std::function<void()> next;
    try {
      next = job(conn);
    } catch (const std::exception& e) {
      next = [failed, why = std::string{"database job failed: "} + e.what()] { failed(why); };
    } catch (...) {
      next = [failed] { failed("database job failed"); };
    }
    if (!next) next = [failed] { failed("database job gave no continuation"); };
    caf::anon_send(me, run_atom::value, std::make_shared<std::function<void()>>(std::move(next)));
  });
  if (!queued) failed("the database queue is full");
}

/// Asks persistence for its pool; `await` while activating (nothing else
/// to do, and an awaited request leaves no response table behind in an
/// idle entity), `then` otherwise (other commands go on meanwhile).
void with_pool(caf::event_based_actor* self, bool await,
               std::function<std::function<void()>(pg::connection&)> job,
               std::function<void(const std::string&)> failed) {
  auto persist_svc = persistence::find(self->system());
  if (!persist_svc) {
    failed("persistence is restarting");
    return;
  }
  // No timeout: persistence answers at once, and a request it can no longer
  // answer comes back as an error (CAF bounces what a stopped actor holds).
  // A CAF 0.17 request timeout is never cancelled: it would hold this
  // entity, and about 150 bytes in the actor clock, for its full length.
  auto rh = self->request(persist_svc, caf::infinite, persistence::pool_atom::value);
  auto ok = [self, job, failed](const std::shared_ptr<pg::pool>& pool) {
    submit_job(self, pool, job, failed);
  };
  auto err = [failed](caf::error&) { failed("persistence did not answer"); };
  if (await) {
    rh.await(ok, err);
  } else {
    rh.then(ok, err);
  }
}

} // namespace

void on_pool(caf::event_based_actor* self,
             std::function<std::function<void()>(pg::connection&)> job,
             std::function<void(const std::string&)> failed) {
  with_pool(self, false, std::move(job), std::move(failed));
}

void load_after_sync(caf::event_based_actor* self,
                     std::function<std::function<void()>(pg::connection&)> job,
                     std::function<void(const std::string&)> failed) {
  auto j = journal::find(self->system());
  if (!j) {
    failed("the journal is restarting");
    return;
  }
  // await: there is nothing else to do until then; commands wait in the
  // mailbox. The journal answers with an error if the sync takes longer
  // than its sync_timeout (30 s) or if it stops, so no timeout of our own.
  self->request(j, caf::infinite, journal::sync_atom::value)
    .await([self, job, failed](journal::ok_atom) { with_pool(self, true, job, failed); },
           [failed](caf::error&) { failed("the journal did not answer"); });
}

} // namespace gm::actors
