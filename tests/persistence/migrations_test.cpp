// Migration planning (no database needed; the apply step is tested against
// PostgreSQL in the persistence tests).
#include <doctest/doctest.h>

#include "persistence/migrations.hpp"

using namespace gm::pg;

TEST_CASE("only migrations not yet applied are planned, in version order") {
  std::vector<migration> known = {{2, "b", "SELECT 2"}, {1, "a", "SELECT 1"}, {3, "c", "SELECT 3"}};
  auto todo = plan(known, {{1, checksum("SELECT 1")}});
  REQUIRE(todo.size() == 2);
  CHECK(todo[0].version == 2);
  CHECK(todo[1].version == 3);
  CHECK(plan(known, {{1, checksum("SELECT 1")}, {2, checksum("SELECT 2")},
                     {3, checksum("SELECT 3")}}).empty());
}

TEST_CASE("an applied migration that was edited afterwards stops the plan") {
  std::vector<migration> known = {{1, "a", "SELECT 1 -- edited"}};
  CHECK_THROWS_WITH(plan(known, {{1, checksum("SELECT 1")}}),
                    doctest::Contains("changed after it was applied"));
}

TEST_CASE("a database ahead of this binary stops the plan") {
  CHECK_THROWS_WITH(plan({{1, "a", "x"}}, {{1, checksum("x")}, {9, "ff"}}),
                    doctest::Contains("does not know"));
}

TEST_CASE("the built-in migrations are numbered from 1 without gaps") {
  auto& all = builtin_migrations();
  REQUIRE_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].version == static_cast<int>(i + 1));
    CHECK_FALSE(all[i].sql.empty());
  }
}
