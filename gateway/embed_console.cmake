# Writes OUT: a C++ file defining gm::gateway::console_assets() from the
# console's files in DIR (console/*.html, *.js, *.css), served by the node
# as they are in the repository (no build step of their own).
file(GLOB files "${DIR}/*.html" "${DIR}/*.js" "${DIR}/*.css")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  get_filename_component(ext "${f}" EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  else()
    set(type "text/css; charset=utf-8")
  endif()
  file(READ "${f}" text)
  string(FIND "${text}" ")gm_asset\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "console file ${f} contains the raw string's end marker")
  endif()
  string(APPEND body "    {\"${name}\", \"${type}\", R\"gm_asset(${text})gm_asset\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from console/*; do not edit.
#include \"gateway/console_assets.hpp\"
namespace gm::gateway {
const std::vector<console_asset>& console_assets() {
  static const std::vector<console_asset> all = {
${body}  };
  return all;
}
} // namespace gm::gateway
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
