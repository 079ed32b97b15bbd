// Password hashing: scrypt with OWASP's parameters, salted, verified in
// constant time.
#include <doctest/doctest.h>

#include "gateway/password.hpp"

using namespace gm::gateway;

TEST_CASE("a hash verifies its password and no other") {
  auto h = password::hash("correct horse battery staple");
  CHECK(h.rfind("$scrypt$ln=15,r=8,p=3$", 0) == 0);
  CHECK(password::verify("correct horse battery staple", h));
  CHECK_FALSE(password::verify("correct horse battery stapl", h));
  CHECK_FALSE(password::verify("", h));
}

TEST_CASE("the same password hashes differently each time (per-user salt)") {
  CHECK(password::hash("same password") != password::hash("same password"));
}

TEST_CASE("malformed or hostile stored hashes never match") {
  for (std::string stored : {"", "plain", "$scrypt$ln=15,r=8,p=3$$", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA",
                             "$scrypt$ln=15,r=8,p=3$!!!!$AAAA", "$pbkdf2$x"}) {
    CHECK_FALSE(password::verify("x", stored));
  }
}
