// The Idempotency-Key mechanism's decisions, without actors or a database.
#include <doctest/doctest.h>

#include "actors/money/keys.hpp"

using gm::actors::errc;
using gm::money::key_book;
using gm::money::key_entry;
using gm::money::repeat_answer;

TEST_CASE("a repeat gets the stored answer; another request under the key 422; a running one 409") {
  key_entry k;
  k.hash = "h1";
  // Still running: a repeat must not start a second movement.
  CHECK(repeat_answer(k, "h1").error() == errc::in_progress);
  // Another request under the same key is refused whatever the state.
  CHECK(repeat_answer(k, "h2").error() == errc::key_reused);
  k.done = true;
  k.status = 201;
  k.body = "{\"id\":\"t\"}";
  k.version = 7;
  auto r = repeat_answer(k, "h1");
  CHECK(r.ok());
  CHECK(r.status_hint == 201);
  CHECK(r.body == k.body);
  CHECK(r.version == 7);
  // A refusal bound to its key is answered again, never re-judged.
  k.code = static_cast<int32_t>(errc::insufficient_funds);
  k.body = "insufficient funds";
  CHECK(repeat_answer(k, "h1").error() == errc::insufficient_funds);
  CHECK(repeat_answer(k, "h1").detail == "insufficient funds");
}

TEST_CASE("keys are scoped per user and the book forgets only finished keys past its bound") {
  key_book b;
  b.begin("u1", "k", "h");
  CHECK(b.find("u1", "k") != nullptr);
  CHECK(b.find("u2", "k") == nullptr);  // another user's key of the same name
  CHECK_FALSE(b.find("u1", "k")->done);
  b.done("u1", "k", "body", 3);
  CHECK(b.find("u1", "k")->done);
  CHECK(b.find("u1", "k")->status == 201);
  b.release("u1", "k");
  CHECK(b.find("u1", "k") == nullptr);
  // Past the bound, finished keys go; keys in use stay.
  b.begin("u1", "running", "h");
  for (size_t i = 0; i <= key_book::kept + 1; ++i) {
    b.done("u1", "k" + std::to_string(i), "b", 1);
  }
  CHECK(b.size() <= key_book::kept + 2);
  CHECK(b.find("u1", "running") != nullptr);
  CHECK_FALSE(b.find("u1", "running")->done);
}

TEST_CASE("a key's row is fresh only for its first image") {
  auto first = gm::money::key_row("00000000-0000-4000-8000-000000000001", "k", "h", "{}",
                                  errc::in_progress, 1);
  CHECK(first.fresh);
  CHECK(first.values.size() == 8);
  CHECK(first.values[6].integer_value() == static_cast<int32_t>(errc::in_progress));
  auto outcome = gm::money::key_row("00000000-0000-4000-8000-000000000001", "k", "h", "{}",
                                    errc::ok, 2);
  CHECK_FALSE(outcome.fresh);
  CHECK(outcome.values[3].integer_value() == 201);
}
