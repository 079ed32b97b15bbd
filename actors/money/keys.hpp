// The Idempotency-Key mechanism every money POST uses, whichever entity
// serves it: keys are scoped per user and stored in `idempotency_keys` in
// the same journal batch as the movement they guard. A repeat with the same
// request gets the stored answer, another request under the key 422, a
// repeat while the first is still running 409. The stored answer is the
// final one: a saga writes `in_progress` with its first step and its
// outcome when it ends.
//
// key_book holds the keys one entity saw during its activation (plain data
// and decisions, unit-tested); with_key() and refuse() are the actor glue.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include <caf/response_promise.hpp>

#include "actors/entity.hpp"
#include "actors/entity_core.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::money {

/// The table keys are stored in (persistence/migrations 0003, 0004).
const journal::table_spec& idempotency_table();

/// One key's answer as far as this activation knows it.
struct key_entry {
  std::string hash;  // the digest of the request it was first used with
  bool done = false;
  int32_t status = 0;  // HTTP status of a success (201)
  int32_t code = 0;    // actors::errc of a refusal; then `body` is its detail
  std::string body;
  int64_t version = 0;
};

/// Returns the answer a request with `hash` gets from key `k`.
actors::entity_reply repeat_answer(const key_entry& k, const std::string& hash);

/// The keys one entity saw during its activation, bounded: past `kept`
/// entries, those that are done are forgotten (PostgreSQL holds them, and a
/// repeat looks them up).
class key_book {
public:
  static constexpr size_t kept = 1024;

  /// Returns the entry of `user`'s `key`, or nullptr.
  key_entry* find(const std::string& user, const std::string& key);
  /// Marks the key in use by a request with `hash` (a repeat meanwhile is
  /// answered 409).
  void begin(const std::string& user, const std::string& key, const std::string& hash);
  /// Forgets the key (its request was refused for a reason that says
  /// nothing of it: a repeat is judged again).
  void release(const std::string& user, const std::string& key);
  /// Records the key's final answer: a success `body` at `version`, or a
  /// refusal `code` with `body` as its detail. `hash`, if given, is the
  /// request's digest (for a key this activation did not see arrive);
  /// `status` the success's HTTP status (201 for a transaction, 200 for a
  /// circle's contribution or payout).
  void done(const std::string& user, const std::string& key, const std::string& body,
            int64_t version, actors::errc code = actors::errc::ok,
            const std::string& hash = {}, int32_t status = 201);
  /// Takes an entry read from PostgreSQL; returns it.
  key_entry& adopt(const std::string& user, const std::string& key, key_entry e);
  size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

private:
  static std::string slot(const std::string& user, const std::string& key);
  std::unordered_map<std::string, key_entry> entries_;
};

/// Returns the row of `user`'s `key` with its answer: a 201 and its body,
/// a refusal's `code` and detail, or `in_progress` with the 201's body while
/// a saga runs. Version 1 is the key's first image (fresh: its owner found
/// it neither in its book nor in PostgreSQL); version 2 a saga's outcome.
journal::row key_row(const std::string& user, const std::string& key, const std::string& hash,
                     const std::string& body, actors::errc code = actors::errc::ok,
                     int64_t version = 1, int32_t status = 201);

/// What PostgreSQL holds for a key (run on a pool thread).
struct stored_key {
  std::string error;  // the database failed
  bool found = false;
  key_entry entry;
};
stored_key load_key(pg::connection& c, const std::string& user, const std::string& key);

/// Runs `proceed` unless the key answers the request itself (a repeat gets
/// the stored answer, a key in use 409). A key not in the book is looked up
/// in PostgreSQL first (which holds everything earlier activations wrote:
/// activation waits for the journal). `book(self)` returns the entity's
/// book (it may live in state allocated on demand).
template <class Self>
void with_key(Self* self, key_book& (*book)(Self*), const std::string& user,
              const std::string& key, const std::string& hash, caf::response_promise rp,
              std::function<void()> proceed) {
  if (key.empty()) {
    proceed();
    return;
  }
  if (auto* k = book(self).find(user, key)) {
    rp.deliver(repeat_answer(*k, hash));
    return;
  }
  book(self).begin(user, key, hash);
  ++self->state.core.busy;
  auto finish = [self] {
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  actors::on_pool(
    self,
    [self, book, user, key, hash, rp, proceed,
     finish](pg::connection& c) mutable -> std::function<void()> {
      auto stored = load_key(c, user, key);
      return [self, book, stored, user, key, hash, rp, proceed, finish]() mutable {
        if (!stored.error.empty()) {
          book(self).release(user, key);
          rp.deliver(actors::fail(actors::errc::unavailable,
                                  "the database is unavailable, retry shortly"));
        } else if (stored.found) {
          if (stored.entry.code == static_cast<int32_t>(actors::errc::in_progress)) {
            // A saga a crash interrupted, resumed (or about to be): its
            // answer is not known yet.
            book(self).release(user, key);
            stored.entry.done = false;
            rp.deliver(repeat_answer(stored.entry, hash));
          } else {
            rp.deliver(repeat_answer(book(self).adopt(user, key, std::move(stored.entry)), hash));
          }
        } else {
          proceed();
        }
        finish();
      };
    },
    [self, book, user, key, rp, finish](const std::string& why) mutable {
      book(self).release(user, key);
      rp.deliver(actors::fail(actors::errc::unavailable, why));
      finish();
    });
}

/// Answers a refusal decided by the entity's state (the funds, the
/// receiver's existence or room). The same request may succeed later, so a
/// keyed refusal is bound to its key first (durably, then answered). If the
/// journal is full the key is released instead: a repeat is judged again.
template <class Self>
void refuse(Self* self, key_book& (*book)(Self*), const journal::gate& gate,
            const std::string& user, const std::string& key, actors::errc code,
            std::string detail, caf::response_promise rp) {
  if (key.empty()) {
    rp.deliver(actors::fail(code, std::move(detail)));
    return;
  }
  if (!actors::journal_accepting(gate)) {
    book(self).release(user, key);
    rp.deliver(actors::fail(actors::errc::unavailable, "the journal is full; retry shortly"));
    return;
  }
  auto* k = book(self).find(user, key);
  std::vector<journal::row> rows;
  rows.push_back(key_row(user, key, k != nullptr ? k->hash : std::string{}, detail, code));
  actors::persist(self, self->state.core, std::move(rows), true,
                  [self, book, user, key, code, detail, rp](bool ok) mutable {
                    if (!ok) {
                      book(self).release(user, key);
                      rp.deliver(actors::fail(actors::errc::unavailable,
                                              "the change could not be stored"));
                      return;
                    }
                    book(self).done(user, key, detail, 0, code);
                    rp.deliver(actors::fail(code, detail));
                  });
}

} // namespace gm::money
