// The journal's building blocks without a server: array literals, the
// statement per table, and coalescing.
#include <doctest/doctest.h>

#include "persistence/journal.hpp"

using namespace gm::journal;

namespace {

const table_spec& versioned() {
  static const table_spec t{"things", {{"id", "uuid"}, {"n", "bigint"}, {"version", "bigint"},
                                       {"created_at", "timestamptz"}},
                            {0}, 2, write_mode::upsert_versioned};
  return t;
}

const table_spec& appended() {
  static const table_spec t{"events", {{"id", "uuid"}, {"what", "text"}}, {0}, 0,
                            write_mode::insert_once};
  return t;
}

row thing(const std::string& id, int64_t version) {
  return {&versioned(), version,
          {id, std::to_string(version * 10), std::to_string(version), std::string{"now"}}};
}

} // namespace

TEST_CASE("array literals quote every element, escape quotes and backslashes, keep NULLs") {
  value a{"plain"}, b{"say \"hi\" \\ bye"}, c{}, d{""};
  auto n = value::integer(-42);
  auto u = value::uuid(gm::packed_uuid::parse("00010203-0405-0607-0809-0A0B0C0D0E0F"));
  CHECK(array_literal({&a, &b, &c, &d}) == R"({"plain","say \"hi\" \\ bye",NULL,""})");
  CHECK(array_literal({&n, &u}) == R"({"-42","00010203-0405-0607-0809-0a0b0c0d0e0f"})");
  CHECK(array_literal({}) == "{}");
}

TEST_CASE("binary arrays: PostgreSQL's layout for uuid, bigint, integer and text; other types not") {
  using opt = value;
  opt id{"00010203-0405-0607-0809-0A0B0C0D0E0F"}, none{}, minus_two{"-2"}, seven{"7"}, hi{"hi"};
  auto bytes = [](std::initializer_list<int> xs) {
    std::string s;
    for (int x : xs) s += static_cast<char>(x);
    return s;
  };
  // ndim 1, has-NULL flag, element OID, length, lower bound 1; then per
  // element its length (-1 for NULL) and bytes, big-endian.
  auto u = binary_array("uuid", {&id, &none});
  REQUIRE(u);
  CHECK(*u == bytes({0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x0b, 0x86, 0, 0, 0, 2, 0, 0, 0, 1,
                     0, 0, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                     0xff, 0xff, 0xff, 0xff}));
  auto b = binary_array("bigint", {&minus_two});
  REQUIRE(b);
  CHECK(*b == bytes({0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 8,
                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}));
  auto i = binary_array("integer", {&seven});
  REQUIRE(i);
  CHECK(i->substr(i->size() - 8) == bytes({0, 0, 0, 4, 0, 0, 0, 7}));
  auto t = binary_array("text", {&hi});
  REQUIRE(t);
  CHECK(t->substr(8, 4) == bytes({0, 0, 0, 25}));
  CHECK(t->substr(t->size() - 6) == bytes({0, 0, 0, 2, 'h', 'i'}));
  // timestamptz: microseconds since 2000-01-01 UTC, from the node's format.
  auto micros = [&](const char* text) -> std::optional<int64_t> {
    opt v{text};
    auto a = binary_array("timestamptz", {&v});
    if (!a) return std::nullopt;
    CHECK(a->substr(8, 4) == bytes({0, 0, 0x04, 0xa0}));  // OID 1184
    uint64_t x = 0;
    for (size_t k = a->size() - 8; k < a->size(); ++k) x = x << 8 | static_cast<unsigned char>((*a)[k]);
    return static_cast<int64_t>(x);
  };
  CHECK(micros("2000-01-01T00:00:00Z") == 0);
  CHECK(micros("2000-01-01T00:00:01.5Z") == 1500000);
  CHECK(micros("1999-12-31T23:59:59.999999Z") == -1);
  CHECK(micros("2024-02-29T12:00:00.000Z") == (8825LL * 86400 + 12 * 3600) * 1000000);
  CHECK(micros("2026-11-22T07:11:02.123Z") == 848646662123000LL);
  CHECK_FALSE(micros("2026-02-29T00:00:00Z"));     // not a leap year
  CHECK_FALSE(micros("2026-11-22 07:11:02+00"));   // PostgreSQL's own output: a literal
  CHECK_FALSE(micros("2026-11-22T07:11:02.Z"));
  CHECK_FALSE(micros("2026-11-22T07:11:02.1234567Z"));
  CHECK_FALSE(micros("2026-13-01T00:00:00Z"));
  // Not binary: other types, and values that are not of the type (the
  // literal goes instead and PostgreSQL reports them).
  CHECK_FALSE(binary_array("numeric", {&hi}));
  CHECK_FALSE(binary_array("timestamptz", {&hi}));
  opt bad_uuid{"00010203-0405-0607-0809-0A0B0C0D0E0G"}, short_uuid{"0001"}, big{"9223372036854775808"},
    word{"12a"}, wide{"2147483648"};
  CHECK_FALSE(binary_array("uuid", {&bad_uuid}));
  CHECK_FALSE(binary_array("uuid", {&short_uuid}));
  CHECK_FALSE(binary_array("bigint", {&big}));
  CHECK_FALSE(binary_array("bigint", {&word}));
  CHECK_FALSE(binary_array("integer", {&wide}));
}

TEST_CASE("typed values go into the binary formats as their text would; into no other type") {
  auto id = gm::packed_uuid::parse("00010203-0405-0607-0809-0a0b0c0d0e0f");
  value typed_id = value::uuid(id), text_id{"00010203-0405-0607-0809-0A0B0C0D0E0F"};
  value minus_two = value::integer(-2), minus_two_text{"-2"};
  value min = value::integer(INT64_MIN), min_text{"-9223372036854775808"};
  value none{};
  CHECK(binary_array("uuid", {&typed_id, &none}) == binary_array("uuid", {&text_id, &none}));
  CHECK(binary_array("bigint", {&minus_two, &min}) ==
        binary_array("bigint", {&minus_two_text, &min_text}));
  CHECK(binary_array("integer", {&minus_two}) == binary_array("integer", {&minus_two_text}));
  // In a text column, their text form.
  value lower_text_id{"00010203-0405-0607-0809-0a0b0c0d0e0f"}, zero = value::integer(0),
                                                               zero_text{"0"};
  CHECK(binary_array("text", {&typed_id, &min, &zero}) ==
        binary_array("text", {&lower_text_id, &min_text, &zero_text}));
  CHECK(typed_id.text() == std::optional<std::string>{"00010203-0405-0607-0809-0a0b0c0d0e0f"});
  CHECK(min.text() == std::optional<std::string>{"-9223372036854775808"});
  CHECK_FALSE(none.text());
  // Not of the type: the literal goes, and PostgreSQL refuses it.
  value wide = value::integer(int64_t{INT32_MAX} + 1);
  CHECK_FALSE(binary_array("integer", {&wide}));
  CHECK_FALSE(binary_array("uuid", {&zero}));
  CHECK_FALSE(binary_array("timestamptz", {&zero}));
  CHECK_FALSE(binary_array("bigint", {&typed_id}));
  // And in a COPY, the same bytes as the row written as text.
  static const table_spec t{"mixed", {{"id", "uuid"}, {"n", "bigint"}, {"label", "text"}}, {0}, 0,
                            write_mode::insert_once};
  row typed{&t, 0, {value::uuid(id), value::integer(-2), value::integer(123456789)}, true};
  row texts{&t, 0, {std::string{"00010203-0405-0607-0809-0a0b0c0d0e0f"}, std::string{"-2"},
                    std::string{"123456789"}}, true};
  auto a = copy_binary(t, {&typed, &texts});
  REQUIRE(a);
  auto b = copy_binary(t, {&texts, &texts});
  CHECK(*a == *b);
}

TEST_CASE("a row's images coalesce however their key values came; different keys never do") {
  static const table_spec t{"pairs", {{"owner", "uuid"}, {"n", "bigint"}, {"name", "text"},
                                      {"version", "bigint"}},
                            {0, 1, 2}, 3, write_mode::upsert_versioned};
  auto id = gm::packed_uuid::parse("00010203-0405-0607-0809-0a0b0c0d0e0f");
  auto image = [&](value owner, value n, std::string name, int64_t version) {
    return row{&t, version, {std::move(owner), std::move(n), std::move(name),
                             value::integer(version)}};
  };
  CHECK(row_key(image(value::uuid(id), value::integer(7), "x", 1)) ==
        row_key(image(std::string{"00010203-0405-0607-0809-0A0B0C0D0E0F"}, std::string{"7"}, "x",
                      2)));
  // Text keys carry their length: "a" + "bc" is not "ab" + "c".
  static const table_spec two{"two", {{"a", "text"}, {"b", "text"}}, {0, 1}, 0,
                              write_mode::upsert_versioned};
  CHECK(row_key({&two, 1, {std::string{"a"}, std::string{"bc"}}}) !=
        row_key({&two, 1, {std::string{"ab"}, std::string{"c"}}}));
  CHECK(row_key({&two, 1, {std::nullopt, std::string{"n"}}}) !=
        row_key({&two, 1, {std::string{"n"}, std::nullopt}}));
  batch b;
  b.add(image(value::uuid(id), value::integer(7), "x", 1));
  b.add(image(std::string{"00010203-0405-0607-0809-0a0b0c0d0e0f"}, std::string{"7"}, "x", 2));
  b.add(image(value::uuid(id), value::integer(8), "x", 1));
  CHECK(b.size() == 2);
  CHECK(b.groups()[0].rows[0].version == 2);
}

TEST_CASE("a versioned table is written with an upsert that never goes back in version") {
  auto sql = write_sql(versioned());
  CHECK(sql == "INSERT INTO things (id, n, version, created_at) SELECT * FROM "
               "unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[]) "
               "ON CONFLICT (id) DO UPDATE SET n = excluded.n, version = excluded.version "
               "WHERE things.version < excluded.version");
}

TEST_CASE("an append-only table is written with insert-or-nothing") {
  CHECK(write_sql(appended()) == "INSERT INTO events (id, what) SELECT * FROM "
                                 "unnest($1::uuid[], $2::text[]) ON CONFLICT (id) DO NOTHING");
}

TEST_CASE("a partial image updates an existing row only when it is newer") {
  static const table_spec t{"people", {{"id", "uuid"}, {"name", "text"}, {"version", "bigint"}},
                            {0}, 2, write_mode::update_versioned};
  CHECK(write_sql(t) == "UPDATE people SET name = u.name, version = u.version FROM "
                        "unnest($1::uuid[], $2::text[], $3::bigint[]) AS u(id, name, version) "
                        "WHERE people.version < u.version AND people.id = u.id");
}

TEST_CASE("a batch keeps the newest image of a row and ignores older ones") {
  batch b;
  b.add(thing("a", 1));
  b.add(thing("a", 3));
  b.add(thing("a", 2));  // arrives late: older than what the batch holds
  b.add(thing("b", 1));
  REQUIRE(b.size() == 2);
  REQUIRE(b.groups().size() == 1);
  CHECK(b.groups()[0].rows[0].version == 3);
  CHECK(b.groups()[0].rows[1].values[0].text() == std::optional<std::string>{"b"});
}

TEST_CASE("a batch keeps tables in the order they first appeared") {
  batch b;
  b.add({&appended(), 0, {std::string{"e1"}, std::string{"first"}}});
  b.add(thing("a", 1));
  b.add({&appended(), 0, {std::string{"e2"}, std::string{"second"}}});
  REQUIRE(b.groups().size() == 2);
  CHECK(b.groups()[0].table == &appended());
  CHECK(b.groups()[0].rows.size() == 2);
  CHECK(b.groups()[0].rows[0].values[1].text() == std::optional<std::string>{"first"});
  b.add(thing("a", 5));
  CHECK(b.size() == 3);  // two events, one thing (version 5 replaced version 1)
  CHECK(b.groups()[1].rows[0].version == 5);
}

TEST_CASE("fresh rows are written with a plain insert, never for partial images") {
  CHECK(write_sql(versioned(), true) == "INSERT INTO things (id, n, version, created_at) SELECT * "
                                        "FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], "
                                        "$4::timestamptz[])");
  CHECK(write_sql(appended(), true) == "INSERT INTO events (id, what) SELECT * FROM "
                                       "unnest($1::uuid[], $2::text[])");
  static const table_spec t{"people", {{"id", "uuid"}, {"version", "bigint"}}, {0}, 1,
                            write_mode::update_versioned};
  CHECK(write_sql(t, true) == write_sql(t));
}

TEST_CASE("a row stays fresh only while its first image is in the batch") {
  auto fresh = [](row r) {
    r.fresh = true;
    return r;
  };
  batch b;
  b.add(fresh(thing("a", 1)));
  b.add(thing("a", 3));  // a later image of a row first written in this batch
  b.add(thing("b", 2));  // a row whose first image went in an earlier batch
  b.add(fresh(thing("b", 1)));  // (older: ignored, and cannot make it fresh)
  REQUIRE(b.groups().size() == 1);
  auto& rows = b.groups()[0].rows;
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].version == 3);
  CHECK(rows[0].fresh);
  CHECK(rows[1].version == 2);
  CHECK_FALSE(rows[1].fresh);
  SUBCASE("a batch that failed once keeps its rows, and says so") {
    CHECK_FALSE(b.retried());
    b.mark_retried();
    CHECK(b.retried());
    CHECK(b.size() == 2);
  }
}

TEST_CASE("fresh rows are framed for a binary COPY; a value without a binary form is not") {
  CHECK(copy_sql(appended()) == "COPY events (id, what) FROM STDIN (FORMAT binary)");
  auto bytes = [](std::initializer_list<int> xs) {
    std::string s;
    for (int x : xs) s += static_cast<char>(x);
    return s;
  };
  row e{&appended(), 0, {std::string{"00010203-0405-0607-0809-0a0b0c0d0e0f"}, std::nullopt}, true};
  row f{&appended(), 0, {std::string{"00010203-0405-0607-0809-0a0b0c0d0e10"}, std::string{"hi"}}};
  auto data = copy_binary(appended(), {&e, &f});
  REQUIRE(data);
  // Signature, flags, extension length; per row its field count, then each
  // field's length (-1: NULL) and bytes; then -1.
  CHECK(*data == std::string("PGCOPY\n\377\r\n\0", 11) + bytes({0, 0, 0, 0, 0, 0, 0, 0}) +
                   bytes({0, 2, 0, 0, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                          0xff, 0xff, 0xff, 0xff}) +
                   bytes({0, 2, 0, 0, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16,
                          0, 0, 0, 2, 'h', 'i'}) +
                   bytes({0xff, 0xff}));
  CHECK(copy_binary(appended(), {})->size() == 21);
  row bad{&appended(), 0, {std::string{"not-a-uuid"}, std::string{"x"}}};
  CHECK_FALSE(copy_binary(appended(), {&e, &bad}));
  static const table_spec money{"money", {{"id", "uuid"}, {"amount", "numeric"}}, {0}, 0,
                                write_mode::insert_once};
  row m{&money, 0, {std::string{"00010203-0405-0607-0809-0a0b0c0d0e0f"}, std::string{"1.5"}}};
  CHECK_FALSE(copy_binary(money, {&m}));
}
