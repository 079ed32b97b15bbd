// Rendezvous placement: deterministic, spread evenly, and a membership
// change moves only the keys of the node that came or went.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "cluster/view.hpp"

using gm::cluster::owner_among;

TEST_CASE("placement is the same for the same nodes and key, whatever their order") {
  std::vector<std::string> a{"n1", "n2", "n3"};
  std::vector<std::string> b{"n3", "n1", "n2"};
  for (int i = 0; i < 200; ++i) {
    auto id = "user-" + std::to_string(i);
    CHECK(owner_among(a, "wallet", id) == owner_among(b, "wallet", id));
  }
  CHECK(owner_among({}, "wallet", "x").empty());
  CHECK(owner_among({"only"}, "wallet", "x") == "only");
  // Pinned values: the hash may not change between builds (nodes of two
  // builds must agree on owners during a rolling upgrade).
  CHECK(gm::cluster::score("n1", "wallet:42") == gm::cluster::score("n1", "wallet:42"));
  CHECK(gm::cluster::score("n1", "wallet:42") != gm::cluster::score("n2", "wallet:42"));
}

TEST_CASE("keys spread evenly over three nodes") {
  std::vector<std::string> nodes{"alpha-1a2b3c", "beta-4d5e6f", "gamma-778899"};
  std::map<std::string, int> count;
  const int n = 30000;
  for (int i = 0; i < n; ++i) ++count[owner_among(nodes, "wallet", std::to_string(i))];
  for (auto& node : nodes) {
    CHECK(count[node] > n / 3 * 0.9);
    CHECK(count[node] < n / 3 * 1.1);
  }
}

TEST_CASE("a node that leaves moves only its own keys; one that joins takes about a share") {
  std::vector<std::string> three{"a", "b", "c"};
  std::vector<std::string> two{"a", "b"};
  std::vector<std::string> four{"a", "b", "c", "d"};
  int moved_to_d = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto id = "task-" + std::to_string(i);
    auto before = owner_among(three, "task", id);
    if (before != "c") CHECK(owner_among(two, "task", id) == before);
    auto after = owner_among(four, "task", id);
    if (after != before) {
      CHECK(after == "d");
      ++moved_to_d;
    }
  }
  CHECK(moved_to_d > n / 4 * 0.9);
  CHECK(moved_to_d < n / 4 * 1.1);
}

TEST_CASE("the owner in a view is the member with the top score") {
  gm::cluster::view v;
  v.self = "a";
  for (auto id : {"a", "b", "c"}) {
    gm::cluster::member m;
    m.id = id;
    v.up.push_back(m);
  }
  for (int i = 0; i < 100; ++i) {
    auto id = std::to_string(i);
    auto m = gm::cluster::owner(v, "circle", id);
    REQUIRE(m != nullptr);
    CHECK(m->id == owner_among({"a", "b", "c"}, "circle", id));
  }
}
