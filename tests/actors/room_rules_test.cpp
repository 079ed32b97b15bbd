// The chat room's rules (actors/room/rules.hpp), without actors.
#include <doctest/doctest.h>

#include "actors/room/rules.hpp"

using namespace gm::room;

TEST_CASE("utf8_length counts code points and refuses what is not UTF-8") {
  CHECK(utf8_length("") == 0);
  CHECK(utf8_length("habari") == 6);
  CHECK(utf8_length("caf\xc3\xa9") == 4);               // é
  CHECK(utf8_length("\xe2\x82\xac") == 1);              // €
  CHECK(utf8_length("\xf0\x9f\x98\x80") == 1);          // 😀
  CHECK(utf8_length("\xc3") == -1);                     // cut short
  CHECK(utf8_length("\x80") == -1);                     // a continuation first
  CHECK(utf8_length("\xc0\xaf") == -1);                 // overlong '/'
  CHECK(utf8_length("\xe0\x80\xaf") == -1);             // overlong, three bytes
  CHECK(utf8_length("\xed\xa0\x80") == -1);             // a surrogate (U+D800)
  CHECK(utf8_length("\xf4\x90\x80\x80") == -1);         // past U+10FFFF
  CHECK(utf8_length("\xf5\x80\x80\x80") == -1);
}

TEST_CASE("a message is 1..max characters of UTF-8 without U+0000, not only blanks") {
  CHECK(text_problem("hi", 4000).empty());
  CHECK(text_problem(" hi ", 4000).empty());
  CHECK(text_problem("", 4000) == "text must not be empty");
  CHECK(text_problem(" \n\t", 4000) == "text must not be only white space");
  CHECK(text_problem(std::string("a\0b", 3), 4000) ==
        "text must not contain the character U+0000");
  CHECK(text_problem("\xff", 4000) == "text must be valid UTF-8");
  // The bound is in characters, not bytes: four 4-byte characters fit 4.
  std::string four = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80";
  CHECK(text_problem(four, 4).empty());
  CHECK(text_problem(four + "a", 4) == "text must be at most 4 characters");
  CHECK(text_problem(std::string(4000, 'x'), 4000).empty());
  CHECK_FALSE(text_problem(std::string(4001, 'x'), 4000).empty());
}

TEST_CASE("members keep their join order, the creator first") {
  room r;
  add_member(r, "creator", "t0");
  add_member(r, "b", "t1");
  add_member(r, "c", "t2");
  REQUIRE(find_member(r, "creator") != nullptr);
  CHECK(find_member(r, "creator")->joined == 1);
  CHECK(find_member(r, "c")->joined == 3);
  CHECK(find_member(r, "nobody") == nullptr);
  // Loaded out of order, reindex puts them back in join order.
  std::swap(r.members[0], r.members[2]);
  reindex(r);
  CHECK(r.members[0].user_id == "creator");
  CHECK(find_member(r, "b")->joined == 2);
}

TEST_CASE("read markers only move forward, and unread never goes negative") {
  member m;
  m.read_seq = 5;
  CHECK(next_read_seq(m, 7) == 7);
  CHECK(next_read_seq(m, 3) == 5);
  CHECK(unread(m, 9) == 4);
  CHECK(unread(m, 5) == 0);
  CHECK(unread(m, 2) == 0);
}
