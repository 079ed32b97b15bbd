// Implements the gig contract's store.
#include "actors/contract/store.hpp"

#include "actors/contract/contract.hpp"
#include "actors/money/moves.hpp"
#include "common/ids.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::contract {

using journal::value;
using journal::values_of;

namespace {

value text_or_null(const std::string& s) {
  return s.empty() ? value{} : value{s};
}

value bool_text(bool b) {
  return std::string{b ? "true" : "false"};
}

} // namespace

const journal::table_spec& contracts_table() {
  static const journal::table_spec t{
    "contracts",
    {{"id", "uuid"}, {"gig_id", "uuid"}, {"proposal_id", "uuid"}, {"client_id", "uuid"},
     {"hustler_id", "uuid"}, {"title", "text"}, {"agreed_price", "bigint"},
     {"delivery_days", "integer"}, {"status", "text"}, {"settling", "text"},
     {"settle_by", "uuid"}, {"delivery_note", "text"}, {"dispute_reason", "text"},
     {"disputed_by", "uuid"}, {"resolution", "text"}, {"delivered_at", "timestamptz"},
     {"auto_release_at", "timestamptz"}, {"completed_at", "timestamptz"},
     {"client_reviewed", "boolean"}, {"hustler_reviewed", "boolean"}, {"version", "bigint"},
     {"created_at", "timestamptz"}, {"updated_at", "timestamptz"}},
    {0}, 20, journal::write_mode::upsert_versioned};
  return t;
}

const journal::table_spec& gig_close_table() {
  static const journal::table_spec t{
    "gigs",
    {{"id", "uuid"}, {"status", "text"}, {"contract_id", "uuid"}, {"proposal_id", "uuid"},
     {"close_version", "bigint"}, {"updated_at", "timestamptz"}},
    {0}, 4, journal::write_mode::update_versioned};
  return t;
}

const journal::table_spec& reviews_table() {
  static const journal::table_spec t{
    "reviews",
    {{"contract_id", "uuid"}, {"reviewer_id", "uuid"}, {"id", "uuid"}, {"reviewee_id", "uuid"},
     {"rating", "integer"}, {"text", "text"}, {"created_at", "timestamptz"}},
    {0, 1}, 0, journal::write_mode::insert_once};
  return t;
}

journal::row contract_row(const contract& c, int64_t version) {
  return {&contracts_table(), version,
          values_of(money::id_value(c.id), money::id_value(c.gig_id),
                    money::id_value(c.proposal_id), money::id_value(c.client_id),
                    money::id_value(c.hustler_id), c.title, value::integer(c.agreed_price),
                    value::integer(c.delivery_days), c.status, c.settling,
                    money::id_value(c.settle_by), text_or_null(c.delivery_note),
                    text_or_null(c.dispute_reason), money::id_value(c.disputed_by),
                    text_or_null(c.resolution), text_or_null(c.delivered_at),
                    c.auto_release_at_ms == 0 ? value{} : value{rfc3339_of_ms(c.auto_release_at_ms)},
                    text_or_null(c.completed_at), bool_text(c.client_reviewed),
                    bool_text(c.hustler_reviewed), value::integer(version), c.created_at,
                    now_rfc3339())};
}

journal::row gig_close_row(const contract& c) {
  return {&gig_close_table(), 1,
          values_of(money::id_value(c.gig_id), std::string{"closed"}, money::id_value(c.id),
                    money::id_value(c.proposal_id), value::integer(1), now_rfc3339())};
}

journal::row review_row(const contract& c, const std::string& id, const std::string& reviewer,
                        const std::string& reviewee, int32_t rating, const std::string* text,
                        const std::string& created_at) {
  return {&reviews_table(), 0,
          values_of(money::id_value(c.id), money::id_value(reviewer), money::id_value(id),
                    money::id_value(reviewee), value::integer(rating),
                    text ? value{*text} : value{}, created_at)};
}

loaded load_rows(pg::connection& conn, const std::string& id) {
  loaded l;
  auto ts = [](const char* col) {
    return std::string{"coalesce(to_char("} + col +
           " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')";
  };
  auto r = conn.exec(
    "SELECT gig_id, proposal_id, client_id, hustler_id, title, agreed_price, delivery_days, "
    "status, settling, coalesce(settle_by::text, ''), coalesce(delivery_note, ''), "
    "coalesce(dispute_reason, ''), coalesce(disputed_by::text, ''), coalesce(resolution, ''), " +
      ts("delivered_at") +
      ", coalesce((extract(epoch FROM auto_release_at) * 1000)::bigint, 0), " +
      ts("completed_at") + ", client_reviewed, hustler_reviewed, version, " + ts("created_at") +
      " FROM contracts WHERE id = $1",
    {id});
  if (!r.ok()) {
    l.error = r.error;
    return l;
  }
  if (r.rows.empty()) return l;
  l.found = true;
  auto& x = l.c;
  x.id = id;
  x.gig_id = r.value(0, 0);
  x.proposal_id = r.value(0, 1);
  x.client_id = r.value(0, 2);
  x.hustler_id = r.value(0, 3);
  x.title = r.value(0, 4);
  x.agreed_price = std::stoll(r.value(0, 5, "0"));
  x.delivery_days = std::stoi(r.value(0, 6, "0"));
  x.status = r.value(0, 7);
  x.settling = r.value(0, 8);
  x.settle_by = r.value(0, 9);
  x.delivery_note = r.value(0, 10);
  x.dispute_reason = r.value(0, 11);
  x.disputed_by = r.value(0, 12);
  x.resolution = r.value(0, 13);
  x.delivered_at = r.value(0, 14);
  x.auto_release_at_ms = std::stoll(r.value(0, 15, "0"));
  x.completed_at = r.value(0, 16);
  x.client_reviewed = r.value(0, 17) == "t";
  x.hustler_reviewed = r.value(0, 18) == "t";
  l.version = std::stoll(r.value(0, 19, "0"));
  x.created_at = r.value(0, 20);
  return l;
}

} // namespace gm::contract
