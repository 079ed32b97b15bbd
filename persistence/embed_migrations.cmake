# Writes OUT: a C++ file defining gm::pg::builtin_migrations() from the
# NNNN_name.sql files in DIR (run at build time by the persistence target).
file(GLOB files "${DIR}/*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(base "${f}" NAME_WE)
  string(REGEX MATCH "^([0-9]+)_(.+)$" _m "${base}")
  if(NOT _m)
    message(FATAL_ERROR "migration ${f}: name must be NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  file(READ "${f}" sql)
  string(APPEND body "    {${version}, \"${name}\", R\"gm_sql(${sql})gm_sql\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from persistence/migrations/*.sql; do not edit.
#include \"persistence/migrations.hpp\"
namespace gm::pg {
const std::vector<migration>& builtin_migrations() {
  static const std::vector<migration> all = {
${body}  };
  return all;
}
} // namespace gm::pg
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
