// Implements the pieces every entity route shares.
#include "gateway/entity_http.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/router.hpp"
#include "gateway/api_context.hpp"
#include "gateway/crypto.hpp"
#include "persistence/journal.hpp"

namespace gm::gateway {

response entity_response(const actors::entity_reply& r, int ok_status) {
  using actors::errc;
  if (r.ok()) {
    return json_response(r.status_hint != 0 ? r.status_hint : ok_status, r.body);
  }
  switch (r.error()) {
    case errc::not_found: return problem(404, "not-found", "Not Found", r.detail);
    case errc::invalid: return problem(422, "invalid", "Unprocessable Entity", r.detail);
    case errc::insufficient_funds:
      return problem(409, "insufficient-funds", "Conflict", r.detail);
    case errc::conflict: return problem(409, "conflict", "Conflict", r.detail);
    case errc::in_progress: return problem(409, "in-progress", "Conflict", r.detail);
    case errc::key_reused:
      return problem(422, "idempotency-key-reused", "Unprocessable Entity", r.detail);
    case errc::outcome_unknown: return outcome_unknown(r.detail);
    case errc::forbidden: return problem(403, "forbidden", "Forbidden", r.detail);
    case errc::unavailable:
    case errc::ok: break;
  }
  return unavailable(r.detail);
}

std::optional<std::string> idempotency_key(const request& rq, const respond_fn& respond) {
  auto key = rq.header("Idempotency-Key");
  auto given = rq.header_count("Idempotency-Key");
  // Two keys: which one the client meant is anyone's guess.
  if (given > 1) {
    respond(problem(400, "invalid-idempotency-key", "Bad Request",
                    "send one Idempotency-Key header, not several"));
    return std::nullopt;
  }
  bool printable = std::all_of(key.begin(), key.end(),
                               [](char c) { return c > 0x20 && c < 0x7f; });
  // A header sent empty is a malformed key, not "no key": the client meant one.
  if ((given == 1 && key.empty()) || key.size() > 255 || !printable) {
    respond(problem(400, "invalid-idempotency-key", "Bad Request",
                    "Idempotency-Key must be 1 to 255 printable ASCII characters"));
    return std::nullopt;
  }
  return key;
}

std::string request_hash_if_keyed(const request& rq, const std::string& key) {
  if (key.empty()) return {};
  // Routes without a body (a contribution, a payout) hash no body.
  return crypto::sha256_hex(rq.method + " " + rq.path + " " + (rq.json ? rq.json->dump() : ""));
}

std::optional<page> page_of(const request& rq, const respond_fn& respond) {
  page p;
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 18 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (auto l = rq.query_param("limit")) {
    if (!digits(*l) || std::stoll(*l) < 1) {
      respond(problem(400, "invalid-query", "Bad Request", "limit must be a positive integer"));
      return std::nullopt;
    }
    p.limit = std::min<int64_t>(200, std::stoll(*l));
  }
  if (auto c = rq.query_param("cursor")) {
    if (!digits(*c)) {
      respond(problem(400, "invalid-query", "Bad Request", "cursor is not one this API returned"));
      return std::nullopt;
    }
    p.cursor = *c;
  }
  return p;
}

void after_journal_sync(caf::event_based_actor* self, const respond_fn& respond,
                        std::function<void()> read) {
  auto j = journal::find(self->system());
  if (!j) {
    read();
    return;
  }
  self->request(j, caf::infinite, journal::sync_atom::value)
    .then([read](journal::ok_atom) { read(); },
          [respond](caf::error&) { respond(unavailable("the journal is busy; retry shortly")); });
}

void ask_entity(caf::event_based_actor* self, const actors::entity_ref& ref, caf::message cmd,
                int ok_status, respond_fn respond) {
  actors::ask(self, ref, std::move(cmd), [respond, ok_status](actors::entity_reply& r) {
    respond(entity_response(r, ok_status));
  });
}

} // namespace gm::gateway
