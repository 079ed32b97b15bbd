// The inspection console's files (console/ in the repository), embedded in
// the node at build time (gateway/embed_console.cmake) and served under
// /console by gateway/service_routes.cpp.
#pragma once

#include <string>
#include <vector>

namespace gm::gateway {

struct console_asset {
  const char* name;          // index.html, console.js, console.css
  const char* content_type;
  const char* body;
};

const std::vector<console_asset>& console_assets();

} // namespace gm::gateway
