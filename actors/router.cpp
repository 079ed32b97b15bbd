// Implements the router over the local shards.
#include "actors/router.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "common/registry.hpp"

namespace gm::actors {

caf::actor shard_of(caf::actor_system& sys, const std::string& type) {
  return find_registered(sys, caf::atom_from_string("sh_" + type));
}

namespace {

entity_reply path_failed(const std::string& type, const caf::error& e) {
  return fail(errc::unavailable, e == caf::sec::request_timeout
                                   ? type + " did not answer in time"
                                   : type + " could not answer: " + caf::to_string(e));
}

/// Sends through the shard of `ref.type`, or answers `unavailable` at once
/// if there is none.
template <class Timeout, class OnReply, class OnError>
void send_via_shard(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
                    Timeout timeout, OnReply on_reply, OnError on_error,
                    const reply_fn& unavailable) {
  auto shard = shard_of(self->system(), ref.type);
  if (!shard) {
    auto r = fail(errc::unavailable, ref.type + " entities are not available right now");
    unavailable(r);
    return;
  }
  self->request(shard, timeout, fwd_atom::value, ref.id, std::move(cmd))
    .then(std::move(on_reply), std::move(on_error));
}

void schedule_tick(caf::event_based_actor* self, ask_book& book,
                   std::chrono::steady_clock::duration in) {
  book.tick_pending = true;
  auto wait = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(in),
                       std::chrono::milliseconds{10});
  self->delayed_send(self, wait, ask_tick_atom::value);
}

/// An ask whose wait `timeout` bounds (a CAF timeout, or caf::infinite).
template <class Timeout>
void plain_ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
               Timeout timeout, reply_fn done) {
  send_via_shard(
    self, ref, std::move(cmd), timeout, [done](entity_reply& r) { done(r); },
    [done, type = ref.type](caf::error& e) {
      auto r = path_failed(type, e);
      done(r);
    },
    done);
}

} // namespace

void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         std::chrono::milliseconds timeout, reply_fn done) {
  plain_ask(self, ref, std::move(cmd), timeout, std::move(done));
}

void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         reply_fn done) {
  plain_ask(self, ref, std::move(cmd), caf::infinite, std::move(done));
}

void ask(caf::event_based_actor* self, std::shared_ptr<ask_book>& book, const entity_ref& ref,
         caf::message cmd, std::chrono::milliseconds timeout, reply_fn done) {
  if (!book) book = std::make_shared<ask_book>();
  auto token = ++book->next;
  auto due = std::chrono::steady_clock::now() + timeout;
  book->open.emplace(token, ask_book::open_ask{due, std::move(done), ref.type});
  if (!book->tick_pending) schedule_tick(self, *book, timeout);
  // Runs the open ask's callback once: with the reply, or not at all if
  // the tick failed it first.
  auto finish = [b = book, token](entity_reply& r) {
    auto it = b->open.find(token);
    if (it == b->open.end()) return;  // answered `unavailable` at its deadline
    auto f = std::move(it->second.done);
    b->open.erase(it);
    f(r);
  };
  send_via_shard(
    self, ref, std::move(cmd), caf::infinite, finish,
    [finish, type = ref.type](caf::error& e) {
      auto r = path_failed(type, e);
      finish(r);
    },
    finish);
}

void on_ask_tick(caf::event_based_actor* self, ask_book& book) {
  book.tick_pending = false;
  auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<reply_fn, std::string>> overdue;
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto it = book.open.begin(); it != book.open.end();) {
    if (it->second.due <= now) {
      overdue.emplace_back(std::move(it->second.done), std::move(it->second.type));
      it = book.open.erase(it);
    } else {
      next = std::min(next, it->second.due);
      ++it;
    }
  }
  if (!book.open.empty()) schedule_tick(self, book, next - now);
  for (auto& [done, type] : overdue) {
    auto r = fail(errc::unavailable, type + " did not answer in time");
    done(r);
  }
}

const char* to_string(errc x) {
  switch (x) {
    case errc::ok: return "ok";
    case errc::not_found: return "not_found";
    case errc::invalid: return "invalid";
    case errc::insufficient_funds: return "insufficient_funds";
    case errc::conflict: return "conflict";
    case errc::in_progress: return "in_progress";
    case errc::key_reused: return "key_reused";
    case errc::unavailable: return "unavailable";
  }
  return "unknown";
}

entity_reply fail(errc code, std::string detail) {
  entity_reply r;
  r.code = static_cast<int32_t>(code);
  r.detail = std::move(detail);
  return r;
}

entity_reply success(std::string body, int64_t version) {
  entity_reply r;
  r.body = std::move(body);
  r.version = version;
  return r;
}

} // namespace gm::actors
