// Implements the activation sweep.
#include "actors/sweep.hpp"

#include <caf/all.hpp>

#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "common/log.hpp"
#include "persistence/pg.hpp"

namespace gm::actors {

namespace {

using sweep_atom = caf::atom_constant<caf::atom("a_sweep")>;

caf::behavior sweep_impl(caf::event_based_actor* self, const char* type,
                         std::chrono::milliseconds every, std::string sql,
                         std::vector<std::string> params) {
  self->send(self, sweep_atom::value);
  auto next = [self, every] { self->delayed_send(self, every, sweep_atom::value); };
  pg::params p(params.begin(), params.end());
  return {
    [](run_atom, const continuation& fn) { (*fn)(); },
    [self, type, sql, p, next](sweep_atom) {
      on_pool(
        self,
        [self, type, sql, p, next](pg::connection& c) -> std::function<void()> {
          auto r = c.exec(sql, p);
          return [self, type, r, next] {
            if (!r.ok()) {
              gm::log::get(type)->debug("{} sweep waits: {}", type, r.error);
            } else {
              for (size_t i = 0; i < r.rows.size(); ++i) {
                ask(self, {type, r.value(i, 0)}, caf::make_message(exists_atom::value),
                    std::chrono::seconds{30}, [](entity_reply&) {});
              }
            }
            next();
          };
        },
        [type, next](const std::string& why) {
          gm::log::get(type)->debug("{} sweep waits: {}", type, why);
          next();
        });
    },
  };
}

} // namespace

void start_activation_sweep(caf::local_actor* shard, const char* type,
                            std::chrono::milliseconds every, std::string sql,
                            std::vector<std::string> params) {
  shard->spawn<caf::linked>(sweep_impl, type, every, std::move(sql), std::move(params));
}

} // namespace gm::actors
