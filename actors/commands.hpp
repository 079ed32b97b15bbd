// Typed commands: one struct per command (with `inspect`, so a command can
// cross nodes once its type is announced), and one table per kind that
// matches a message against its commands and calls the command's function.
// An entity's default handler asks its kind's table first; positional
// tuples documented in comments are gone.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include <caf/message.hpp>
#include <caf/message_view.hpp>
#include <caf/result.hpp>
#include <caf/type_erased_tuple.hpp>

#include "actors/entity.hpp"
#include "actors/entity_core.hpp"

namespace gm::actors {

/// The commands of one kind whose entities are `Self` (a stateful actor).
/// Built once per kind (a static), read by all its entities: it costs an
/// idle entity nothing.
template <class Self>
class command_table {
public:
  using result = caf::result<caf::message>;

  /// Adds command `Cmd`, served by `fn`.
  template <class Cmd>
  command_table& on(result (*fn)(Self*, Cmd&)) {
    entries_.push_back([fn](Self* self, caf::type_erased_tuple& xs, result& out) {
      if (!xs.match_elements<Cmd>()) return false;
      out = fn(self, xs.get_mutable_as<Cmd>(0));
      return true;
    });
    return *this;
  }

  /// Returns the result of the command `xs` holds, or nullopt if it holds
  /// none of this table's commands.
  /// Counts the commands it serves (note_handled), and answers
  /// the shard's `stats_atom` for every kind.
  std::optional<result> dispatch(Self* self, caf::message_view& xs) const {
    result out = caf::delegated<caf::message>{};
    for (auto& e : entries_) {
      if (e(self, xs.content(), out)) {
        note_handled(self, self->state.core);
        return out;
      }
    }
    if (xs.content().match_elements<stats_atom>()) {
      return result{caf::make_message(describe(self, self->state.core, {}))};
    }
    return std::nullopt;
  }

private:
  std::vector<std::function<bool(Self*, caf::type_erased_tuple&, result&)>> entries_;
};

} // namespace gm::actors
