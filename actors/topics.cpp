// Implements publishing to the topic hub.
#include "actors/topics.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "common/registry.hpp"

namespace gm::topics {

caf::atom_value registry_name() {
  return caf::atom("topics");
}

std::string event_frame(const std::string& topic, const std::string& name, int64_t seq,
                        const std::string& data) {
  using nlohmann::json;
  auto quote = [](const std::string& s) {
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  return "{\"event\":" + quote(name) + ",\"topic\":" + quote(topic) +
         ",\"seq\":" + std::to_string(seq) + ",\"data\":" + data + "}";
}

void publish(caf::actor_system& sys, std::string topic, std::string event, int64_t seq,
             std::string data) {
  auto hub = find_registered(sys, registry_name());
  if (!hub) return;
  caf::anon_send(hub, publish_atom::value, std::move(topic), std::move(event), seq,
                 std::move(data));
}

} // namespace gm::topics
