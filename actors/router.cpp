// Implements the router over the local shards.
#include "actors/router.hpp"

#include <caf/all.hpp>

#include "common/registry.hpp"

namespace gm::actors {

caf::actor shard_of(caf::actor_system& sys, const std::string& type) {
  return find_registered(sys, caf::atom_from_string("sh_" + type));
}

void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         std::chrono::milliseconds timeout, reply_fn done) {
  auto shard = shard_of(self->system(), ref.type);
  if (!shard) {
    auto r = fail(errc::unavailable, ref.type + " entities are not available right now");
    done(r);
    return;
  }
  self->request(shard, timeout, fwd_atom::value, ref.id, std::move(cmd))
    .then([done](entity_reply& r) { done(r); },
          [done, type = ref.type](caf::error& e) {
            auto r = fail(errc::unavailable,
                          e == caf::sec::request_timeout
                            ? type + " did not answer in time"
                            : type + " could not answer: " + caf::to_string(e));
            done(r);
          });
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
