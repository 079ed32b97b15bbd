// The user entity: a user's profile held in memory, so that authenticated
// reads (`/users/me`, public profiles) cost no database round trip. Its id is
// the user's id. Registration, login and tokens stay SQL (gateway/accounts):
// they are rare and need the password hash, which this entity never holds.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/meta/type_name.hpp>

#include "actors/entity.hpp"
#include "actors/kinds.hpp"
#include "actors/user/commands.hpp"

namespace gm::journal {
class gate;
}

namespace gm::topics {
class store;
}

namespace gm::user {

inline constexpr const char* type = "user";

/// Returns the user entity kind (for its shard).
actors::entity_kind kind(std::shared_ptr<journal::gate> gate,
                         std::shared_ptr<topics::store> events);

/// Returns the user's line in the list of kinds: its shard, and its topic
/// `user:{id}` (notifications), which only that user may see.
actors::kind_registration registration();

} // namespace gm::user
