// The Gigs, proposals, contracts routes of API.md. Gigs and proposals are
// read models in PostgreSQL, written and read here with SQL (see
// docs/departures.md: nothing about them needs one actor's serial order,
// and their reads are searches and lists); a gig closes when the contract
// entity it gets on acceptance writes so. Contracts are entities
// (actors/contract/): every route on one contract is one command to it;
// "my contracts" is a read of PostgreSQL.
#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/contract/contract.hpp"
#include "actors/router.hpp"
#include "actors/user/user.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway {

namespace {

using nlohmann::json;

std::string ts(const std::string& col) {
  return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

/// The columns gig_json reads, in its order.
const std::string& gig_columns() {
  static const std::string cols =
    "g.id, g.client_id, g.title, g.description, g.category, g.budget_min, g.budget_max, " +
    ts("g.deadline") + ", g.status, g.contract_id, g.proposal_id, " + ts("g.created_at") + ", " +
    ts("g.updated_at") + ", (SELECT count(*) FROM proposals p WHERE p.gig_id = g.id)";
  return cols;
}

json opt_text(const pg::result& r, size_t i, size_t col) {
  return r.rows[i][col] ? json(*r.rows[i][col]) : json(nullptr);
}

json gig_json(const pg::result& r, size_t i) {
  json j = {{"id", r.value(i, 0)},
            {"client_id", r.value(i, 1)},
            {"title", r.value(i, 2)},
            {"description", r.value(i, 3)},
            {"category", r.value(i, 4)},
            {"budget_min", std::stoll(r.value(i, 5, "0"))},
            {"budget_max", std::stoll(r.value(i, 6, "0"))},
            {"deadline", opt_text(r, i, 7)},
            {"status", r.value(i, 8)},
            {"created_at", r.value(i, 11)},
            {"updated_at", r.value(i, 12)},
            {"proposals_count", std::stoll(r.value(i, 13, "0"))}};
  if (r.rows[i][9]) j["contract_id"] = *r.rows[i][9];
  if (r.rows[i][10]) j["accepted_proposal_id"] = *r.rows[i][10];
  return j;
}

/// The columns proposal_json reads (p: proposals, g: its gig).
const std::string& proposal_columns() {
  static const std::string cols =
    "p.id, p.gig_id, p.hustler_id, p.cover_letter, p.proposed_price, p.delivery_days, " +
    ts("p.created_at") +
    ", CASE WHEN g.proposal_id = p.id THEN 'accepted' WHEN g.status = 'closed' THEN 'rejected' "
    "ELSE 'pending' END";
  return cols;
}

json proposal_json(const pg::result& r, size_t i) {
  return {{"id", r.value(i, 0)},
          {"gig_id", r.value(i, 1)},
          {"hustler_id", r.value(i, 2)},
          {"cover_letter", r.value(i, 3)},
          {"proposed_price", std::stoll(r.value(i, 4, "0"))},
          {"delivery_days", std::stoll(r.value(i, 5, "0"))},
          {"created_at", r.value(i, 6)},
          {"status", r.value(i, 7)}};
}

/// The columns contract_row_json reads (c: contracts); as the entity shows
/// a contract (actors/contract/entity.cpp).
const std::string& contract_columns() {
  static const std::string cols =
    "c.id, c.gig_id, c.proposal_id, c.client_id, c.hustler_id, c.title, c.agreed_price, "
    "c.delivery_days, c.status, c.version, " + ts("c.created_at") +
    ", c.client_reviewed, c.hustler_reviewed, c.delivery_note, " + ts("c.delivered_at") +
    ", c.dispute_reason, c.disputed_by, c.resolution, " + ts("c.completed_at") + ", " +
    ts("c.auto_release_at") + ", c.settling";
  return cols;
}

json contract_row_json(const pg::result& r, size_t i) {
  json j = {{"id", r.value(i, 0)},
            {"gig_id", r.value(i, 1)},
            {"proposal_id", r.value(i, 2)},
            {"client_id", r.value(i, 3)},
            {"hustler_id", r.value(i, 4)},
            {"title", r.value(i, 5)},
            {"agreed_price", std::stoll(r.value(i, 6, "0"))},
            {"delivery_days", std::stoll(r.value(i, 7, "0"))},
            {"status", r.value(i, 8)},
            {"version", std::stoll(r.value(i, 9, "0"))},
            {"created_at", r.value(i, 10)},
            {"client_reviewed", r.value(i, 11) == "t"},
            {"hustler_reviewed", r.value(i, 12) == "t"}};
  const std::pair<const char*, size_t> optional[] = {
    {"delivery_note", 13}, {"delivered_at", 14}, {"dispute_reason", 15}, {"disputed_by", 16},
    {"resolution", 17},    {"completed_at", 18}, {"auto_release_at", 19}};
  for (auto& [name, col] : optional) {
    if (r.rows[i][col] && !r.rows[i][col]->empty()) j[name] = *r.rows[i][col];
  }
  auto settling = r.value(i, 20);
  if (!settling.empty() && settling != "lock") j["escrow_settling"] = settling;
  return j;
}

/// Runs `work` on a pool connection; answers 503 if the database queue is
/// full.
void on_db(caf::event_based_actor* self, const api_context_ptr& ctx, respond_fn respond,
           std::function<void(pg::connection&)> work) {
  with_pool(self, *ctx, respond, [respond, work](std::shared_ptr<pg::pool> pool) {
    if (!pool->submit([work](pg::connection& c) { work(c); })) {
      respond(unavailable("the database queue is full"));
    }
  });
}

response db_down(const char* what, const pg::result& r) {
  gm::log::get("gig")->warn("{} failed: {}", what, r.error);
  return unavailable("the database is unavailable, retry shortly");
}

/// The gig the path names, or nullopt after answering 404.
std::optional<std::string> gig_id_of(const request& rq, const respond_fn& respond) {
  auto id = rq.path_params.at("id");
  if (!is_uuid(id)) {
    respond(problem(404, "not-found", "Not Found", "no such gig"));
    return std::nullopt;
  }
  return lower_uuid(id);
}

std::optional<std::string> opt_param(const json& b, const char* name) {
  auto it = b.find(name);
  if (it == b.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  return std::to_string(it->get<int64_t>());
}

response list_response(json items, std::optional<std::string> next) {
  json doc = {{"items", std::move(items)}, {"next_cursor", nullptr}};
  if (next) doc["next_cursor"] = *next;
  return json_response(200, doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

// ---- gigs -------------------------------------------------------------------------

void create_gig(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                respond_fn respond) {
  const auto& b = *rq.json;
  auto lo = b["budget_min"].get<int64_t>();
  auto hi = b["budget_max"].get<int64_t>();
  if (lo > hi) {
    respond(problem(422, "validation", "Unprocessable Entity",
                    "budget_min must be at most budget_max"));
    return;
  }
  pg::params p{new_uuid(), rq.user_id, b["title"].get<std::string>(),
               b["description"].get<std::string>(), b["category"].get<std::string>(),
               std::to_string(lo), std::to_string(hi), opt_param(b, "deadline")};
  on_db(self, ctx, respond, [p, respond](pg::connection& c) {
    auto r = c.exec("WITH g AS (INSERT INTO gigs (id, client_id, title, description, category, "
                    "budget_min, budget_max, deadline, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now()) RETURNING *) "
                    "SELECT " + gig_columns() + " FROM g",
                    p);
    if (!r.ok() || r.rows.empty()) {
      respond(db_down("creating a gig", r));
      return;
    }
    respond(json_response(201, gig_json(r, 0).dump()));
  });
}

/// Gigs, newest first, or best match first with ?q= (PostgreSQL's full-text
/// search: stemmed English, the title weighted above the description).
/// The cursor: without q, the id order's position (gigs.seq) of the last
/// gig listed; with q, the number of gigs listed so far.
void list_gigs(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
               respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto status = rq.query_param("status");
  if (status && *status != "open" && *status != "closed") {
    respond(problem(400, "invalid-query", "Bad Request", "status must be open or closed"));
    return;
  }
  auto category = rq.query_param("category");
  auto q = rq.query_param("q");
  if ((q && q->size() > 200) || (category && category->size() > 50)) {
    respond(problem(400, "invalid-query", "Bad Request", "q or category is too long"));
    return;
  }
  if (q && q->find_first_not_of(" \t") == std::string::npos) q.reset();
  auto limit = pg_page->limit;
  auto cursor = pg_page->cursor;
  pg::params p{category, status, std::to_string(limit + 1)};
  std::string sql;
  if (q) {
    p.push_back(*q);
    p.push_back(cursor.value_or("0"));
    sql = "SELECT " + gig_columns() +
          ", g.seq FROM gigs g, websearch_to_tsquery('english', $4) query "
          "WHERE g.search @@ query AND ($1::text IS NULL OR g.category = $1) "
          "AND ($2::text IS NULL OR g.status = $2) "
          "ORDER BY ts_rank(g.search, query) DESC, g.seq DESC LIMIT $3 OFFSET $5";
  } else {
    p.push_back(cursor);
    sql = "SELECT " + gig_columns() +
          ", g.seq FROM gigs g WHERE ($1::text IS NULL OR g.category = $1) "
          "AND ($2::text IS NULL OR g.status = $2) AND ($4::bigint IS NULL OR g.seq < $4) "
          "ORDER BY g.seq DESC LIMIT $3";
  }
  bool ranked = q.has_value();
  on_db(self, ctx, respond, [sql, p, limit, ranked, cursor, respond](pg::connection& c) {
    auto r = c.exec(sql, p);
    if (!r.ok()) {
      if (r.sqlstate.rfind("22", 0) == 0 || r.sqlstate.rfind("42", 0) == 0) {
        respond(problem(400, "invalid-query", "Bad Request", "q is not a search this API reads"));
      } else {
        respond(db_down("listing gigs", r));
      }
      return;
    }
    json items = json::array();
    size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
    for (size_t i = 0; i < n; ++i) items.push_back(gig_json(r, i));
    std::optional<std::string> next;
    if (r.rows.size() > static_cast<size_t>(limit)) {
      next = ranked ? std::to_string(std::stoll(cursor.value_or("0")) + limit) : r.value(n - 1, 14);
    }
    respond(list_response(std::move(items), next));
  });
}

void get_gig(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
             respond_fn respond) {
  auto id = gig_id_of(rq, respond);
  if (!id) return;
  on_db(self, ctx, respond, [id = *id, respond](pg::connection& c) {
    auto r = c.exec("SELECT " + gig_columns() + " FROM gigs g WHERE g.id = $1", {id});
    if (!r.ok()) {
      respond(db_down("reading a gig", r));
    } else if (r.rows.empty()) {
      respond(problem(404, "not-found", "Not Found", "no such gig"));
    } else {
      respond(json_response(200, gig_json(r, 0).dump()));
    }
  });
}

/// The owner's change to an open gig: PUT (`doc`: the fields given) or
/// DELETE (`doc` null). 403 for others, 409 once closed.
void change_gig(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                respond_fn respond, bool remove) {
  auto id = gig_id_of(rq, respond);
  if (!id) return;
  json b = remove ? json::object() : *rq.json;
  pg::params p{*id,
               rq.user_id,
               opt_param(b, "title"),
               opt_param(b, "description"),
               opt_param(b, "category"),
               opt_param(b, "budget_min"),
               opt_param(b, "budget_max"),
               opt_param(b, "deadline")};
  on_db(self, ctx, respond, [p, remove, respond](pg::connection& c) {
    // The row is locked while it is checked and changed, so that a second
    // change, or the contract closing the gig, waits for this one.
    if (!c.exec("BEGIN").ok()) {
      respond(unavailable("the database is unavailable, retry shortly"));
      return;
    }
    auto rollback = [&c] { c.exec("ROLLBACK"); };
    auto g = c.exec("SELECT client_id, status, budget_min, budget_max FROM gigs "
                    "WHERE id = $1 FOR UPDATE",
                    {p[0]});
    if (!g.ok()) {
      rollback();
      respond(db_down("changing a gig", g));
      return;
    }
    if (g.rows.empty()) {
      rollback();
      respond(problem(404, "not-found", "Not Found", "no such gig"));
      return;
    }
    if (g.value(0, 0) != *p[1]) {
      rollback();
      respond(problem(403, "forbidden", "Forbidden", "only the gig's owner changes it"));
      return;
    }
    if (g.value(0, 1) != "open") {
      rollback();
      respond(problem(409, "conflict", "Conflict", "the gig is closed: a proposal was accepted"));
      return;
    }
    if (remove) {
      auto d = c.exec("DELETE FROM gigs WHERE id = $1", {p[0]});
      auto done = d.ok() ? c.exec("COMMIT") : d;
      if (!done.ok()) {
        rollback();
        respond(db_down("deleting a gig", done));
        return;
      }
      response r;
      r.status = 204;
      respond(std::move(r));
      return;
    }
    auto lo = p[5] ? std::stoll(*p[5]) : std::stoll(g.value(0, 2, "0"));
    auto hi = p[6] ? std::stoll(*p[6]) : std::stoll(g.value(0, 3, "0"));
    if (lo > hi) {
      rollback();
      respond(problem(422, "validation", "Unprocessable Entity",
                      "budget_min must be at most budget_max"));
      return;
    }
    auto u = c.exec(
      "WITH g AS (UPDATE gigs SET title = coalesce($3, title), "
      "description = coalesce($4, description), category = coalesce($5, category), "
      "budget_min = coalesce($6::bigint, budget_min), budget_max = coalesce($7::bigint, budget_max), "
      "deadline = coalesce($8::timestamptz, deadline), updated_at = now() "
      "WHERE id = $1 AND client_id = $2 RETURNING *) SELECT " + gig_columns() + " FROM g",
      p);
    auto done = u.ok() ? c.exec("COMMIT") : u;
    if (!done.ok() || u.rows.empty()) {
      rollback();
      respond(db_down("changing a gig", done));
      return;
    }
    respond(json_response(200, gig_json(u, 0).dump()));
  });
}

// ---- proposals ------------------------------------------------------------------

void propose(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
             respond_fn respond) {
  auto id = gig_id_of(rq, respond);
  if (!id) return;
  const auto& b = *rq.json;
  pg::params p{new_uuid(), *id, rq.user_id, b["cover_letter"].get<std::string>(),
               std::to_string(b["proposed_price"].get<int64_t>()),
               std::to_string(b["delivery_days"].get<int64_t>())};
  auto* sys = &self->system();
  on_db(self, ctx, respond, [p, respond, sys](pg::connection& c) {
    // Only while the gig is open: the gig row is read FOR SHARE, so that
    // the contract closing it waits for this insert (and the other way).
    if (!c.exec("BEGIN").ok()) {
      respond(unavailable("the database is unavailable, retry shortly"));
      return;
    }
    auto g = c.exec("SELECT client_id, status, title FROM gigs WHERE id = $1 FOR SHARE", {p[1]});
    auto fail = [&c, &respond](response r) {
      c.exec("ROLLBACK");
      respond(std::move(r));
    };
    if (!g.ok()) return fail(db_down("proposing", g));
    if (g.rows.empty()) return fail(problem(404, "not-found", "Not Found", "no such gig"));
    if (g.value(0, 1) != "open") {
      return fail(problem(409, "conflict", "Conflict", "the gig is closed"));
    }
    if (g.value(0, 0) == *p[2]) {
      return fail(problem(422, "validation", "Unprocessable Entity",
                          "you cannot propose on your own gig"));
    }
    auto r = c.exec("WITH p AS (INSERT INTO proposals (id, gig_id, hustler_id, cover_letter, "
                    "proposed_price, delivery_days, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, now()) "
                    "ON CONFLICT (gig_id, hustler_id) DO NOTHING RETURNING *) "
                    "SELECT " + proposal_columns() + " FROM p JOIN gigs g ON g.id = p.gig_id",
                    p);
    if (!r.ok()) return fail(db_down("proposing", r));
    if (r.rows.empty()) {
      return fail(problem(409, "conflict", "Conflict", "you have already proposed on this gig"));
    }
    auto done = c.exec("COMMIT");
    if (!done.ok()) return fail(db_down("proposing", done));
    auto doc = proposal_json(r, 0);
    respond(json_response(201, doc.dump()));
    // The gig's owner hears of it (through its user entity, which holds
    // the user's topic).
    json note = {{"type", "proposal.received"},
                 {"gig_id", *p[1]},
                 {"gig_title", g.value(0, 2)},
                 {"proposal_id", *p[0]},
                 {"hustler_id", *p[2]},
                 {"proposed_price", doc["proposed_price"]}};
    actors::tell(*sys, {user::type, g.value(0, 0)}, caf::make_message(user::notify_cmd{note.dump()}));
  });
}

/// The gig's proposals, oldest first (its owner and admins). The cursor is
/// the number listed so far.
void list_proposals(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                    respond_fn respond) {
  auto id = gig_id_of(rq, respond);
  if (!id) return;
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto limit = pg_page->limit;
  auto offset = pg_page->cursor.value_or("0");
  auto uid = rq.user_id;
  bool admin = rq.role == "admin";
  on_db(self, ctx, respond, [id = *id, uid, admin, limit, offset, respond](pg::connection& c) {
    auto g = c.exec("SELECT client_id FROM gigs WHERE id = $1", {id});
    if (!g.ok()) return respond(db_down("listing proposals", g));
    if (g.rows.empty()) return respond(problem(404, "not-found", "Not Found", "no such gig"));
    if (g.value(0, 0) != uid && !admin) {
      return respond(
        problem(403, "forbidden", "Forbidden", "only the gig's owner sees its proposals"));
    }
    auto r = c.exec("SELECT " + proposal_columns() +
                      " FROM proposals p JOIN gigs g ON g.id = p.gig_id WHERE p.gig_id = $1 "
                      "ORDER BY p.created_at, p.id LIMIT $2 OFFSET $3",
                    {id, std::to_string(limit + 1), offset});
    if (!r.ok()) return respond(db_down("listing proposals", r));
    json items = json::array();
    size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
    for (size_t i = 0; i < n; ++i) items.push_back(proposal_json(r, i));
    std::optional<std::string> next;
    if (r.rows.size() > static_cast<size_t>(limit)) next = std::to_string(std::stoll(offset) + limit);
    respond(list_response(std::move(items), next));
  });
}

/// Accept: one command to the gig's contract entity, which reads the gig
/// and the proposal, locks the escrow and opens (or refuses).
void accept(caf::event_based_actor* self, api_context_ptr, request& rq, respond_fn respond) {
  auto key = idempotency_key(rq, respond);
  if (!key) return;
  auto id = gig_id_of(rq, respond);
  if (!id) return;
  auto pid = rq.path_params.at("pid");
  if (!is_uuid(pid)) {
    respond(problem(404, "not-found", "Not Found", "no such proposal"));
    return;
  }
  contract::open_cmd cmd{rq.user_id, *id, lower_uuid(pid), *key, request_hash_if_keyed(rq, *key)};
  ask_entity(self, {contract::type, contract::id_of_gig(*id)}, caf::make_message(std::move(cmd)),
             201, std::move(respond));
}

// ---- contracts -----------------------------------------------------------------

/// The contract the path names, or nullopt after answering 404.
std::optional<actors::entity_ref> contract_of(const request& rq, const respond_fn& respond) {
  auto id = rq.path_params.at("id");
  if (!is_uuid(id)) {
    respond(problem(404, "not-found", "Not Found", "no such contract"));
    return std::nullopt;
  }
  return actors::entity_ref{contract::type, lower_uuid(id)};
}

/// A step of the contract (`what`); `keyed`: it moves money and takes an
/// Idempotency-Key.
actor_handler contract_step(const char* what, bool keyed) {
  return [what, keyed](caf::event_based_actor* self, request& rq, respond_fn respond) {
    std::string key;
    if (keyed) {
      auto k = idempotency_key(rq, respond);
      if (!k) return;
      key = *k;
    }
    auto ref = contract_of(rq, respond);
    if (!ref) return;
    contract::act_cmd cmd;
    cmd.user = rq.user_id;
    cmd.role = rq.role;
    cmd.what = what;
    if (rq.json) {
      auto& b = *rq.json;
      cmd.text = b.value("note", b.value("reason", std::string{}));
      cmd.release_to = b.value("release_to", std::string{});
    }
    cmd.key = key;
    cmd.hash = request_hash_if_keyed(rq, key);
    ask_entity(self, *ref, caf::make_message(std::move(cmd)), 200, std::move(respond));
  };
}

void list_contracts(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                    respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto status = rq.query_param("status");
  static const std::vector<std::string> statuses{"active", "delivered", "disputed", "completed",
                                                 "refunded"};
  if (status && std::find(statuses.begin(), statuses.end(), *status) == statuses.end()) {
    respond(problem(400, "invalid-query", "Bad Request",
                    "status must be active, delivered, disputed, completed or refunded"));
    return;
  }
  auto limit = pg_page->limit;
  auto offset = pg_page->cursor.value_or("0");
  pg::params p{rq.user_id, status, std::to_string(limit + 1), offset};
  on_db(self, ctx, respond, [p, limit, offset, respond](pg::connection& c) {
    auto r = c.exec("SELECT " + contract_columns() +
                      " FROM contracts c WHERE (c.client_id = $1 OR c.hustler_id = $1) "
                      "AND c.status NOT IN ('opening', 'void') "
                      "AND ($2::text IS NULL OR c.status = $2) "
                      "ORDER BY c.created_at DESC, c.id LIMIT $3 OFFSET $4",
                    p);
    if (!r.ok()) return respond(db_down("listing contracts", r));
    json items = json::array();
    size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
    for (size_t i = 0; i < n; ++i) items.push_back(contract_row_json(r, i));
    std::optional<std::string> next;
    if (r.rows.size() > static_cast<size_t>(limit)) next = std::to_string(std::stoll(offset) + limit);
    respond(list_response(std::move(items), next));
  });
}

std::vector<field_rule> gig_fields(bool required) {
  return {string_field("title", required, 1, 200),
          string_field("description", required, 1, 5000),
          string_field("category", required, 1, 50),
          integer_field("budget_min", required, 1, INT64_MAX),
          integer_field("budget_max", required, 1, INT64_MAX),
          string_field("deadline", false, 20, 40, "date-time")};
}

} // namespace

void add_gig_routes(route_table& table, api_context_ptr ctx) {
  auto with_ctx = [ctx](void (*fn)(caf::event_based_actor*, api_context_ptr, request&,
                                   respond_fn)) {
    return [ctx, fn](caf::event_based_actor* self, request& rq, respond_fn respond) {
      fn(self, ctx, rq, std::move(respond));
    };
  };
  table.add(api_route("POST", "/api/v1/gigs", "Post a gig (clients)", "gigs",
                      {{201, "gig"}, {403, "not a client"}, {422, "budget_min above budget_max"}},
                      {true, {"client"}, make_schema(gig_fields(true))}, with_ctx(&create_gig)));
  table.add(api_route("GET", "/api/v1/gigs",
                      "Gigs (?category=, ?status=open|closed, ?q= full-text search ranked best "
                      "first; ?limit=, ?cursor=)",
                      "gigs", {{200, "{items: [gig], next_cursor}"}}, {true, {}, nullptr},
                      with_ctx(&list_gigs)));
  table.add(api_route("GET", "/api/v1/gigs/{id}", "A gig", "gigs",
                      {{200, "gig"}, {404, "no such gig"}}, {true, {}, nullptr},
                      with_ctx(&get_gig)));
  table.add(api_route("PUT", "/api/v1/gigs/{id}", "Change a gig (its owner, while open)", "gigs",
                      {{200, "gig"}, {403, "not the owner"}, {404, "no such gig"}, {409, "closed"}},
                      {true, {}, make_schema(gig_fields(false))},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        change_gig(self, ctx, rq, std::move(respond), false);
                      }));
  table.add(api_route("DELETE", "/api/v1/gigs/{id}", "Delete a gig (its owner, while open)",
                      "gigs",
                      {{204, "deleted"}, {403, "not the owner"}, {404, "no such gig"}, {409, "closed"}},
                      {true, {}, nullptr},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        change_gig(self, ctx, rq, std::move(respond), true);
                      }));
  table.add(api_route(
    "POST", "/api/v1/gigs/{id}/proposals", "Propose on an open gig (hustlers, once per gig)",
    "gigs",
    {{201, "proposal"}, {403, "not a hustler"}, {404, "no such gig"}, {409, "closed, or proposed already"}},
    {true,
     {"hustler"},
     make_schema({string_field("cover_letter", true, 1, 5000),
                  integer_field("proposed_price", true, 1, INT64_MAX),
                  integer_field("delivery_days", true, 1, 365)})},
    with_ctx(&propose)));
  table.add(api_route("GET", "/api/v1/gigs/{id}/proposals",
                      "A gig's proposals (its owner; ?limit=, ?cursor=)", "gigs",
                      {{200, "{items: [proposal], next_cursor}"}, {403, "not the owner"},
                       {404, "no such gig"}},
                      {true, {}, nullptr}, with_ctx(&list_proposals)));
  table.add(api_route(
    "POST", "/api/v1/gigs/{id}/accept/{pid}",
    "Accept a proposal (the gig's owner; Idempotency-Key): locks proposed_price from the "
    "client's wallet into escrow and opens the contract",
    "gigs",
    {{201, "contract"}, {403, "not the owner"}, {404, "no such gig or proposal"},
     {409, "insufficient funds, or the gig has a contract"}},
    {true, {}, nullptr}, with_ctx(&accept)));
  table.add(api_route("GET", "/api/v1/contracts",
                      "The caller's contracts (?status=, ?limit=, ?cursor=)", "contracts",
                      {{200, "{items: [contract], next_cursor}"}}, {true, {}, nullptr},
                      with_ctx(&list_contracts)));
  table.add(api_route("GET", "/api/v1/contracts/{id}", "A contract (its parties and admins)",
                      "contracts", {{200, "contract"}, {404, "no such contract"}},
                      {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        auto ref = contract_of(rq, respond);
                        if (!ref) return;
                        ask_entity(self, *ref,
                                   caf::make_message(contract::get_cmd{rq.user_id, rq.role}), 200,
                                   std::move(respond));
                      }));
  table.add(api_route("POST", "/api/v1/contracts/{id}/deliver", "Deliver the work (the hustler)",
                      "contracts",
                      {{200, "contract"}, {403, "not the hustler"}, {404, "no such contract"},
                       {409, "not active"}},
                      {true, {}, make_schema({string_field("note", false, 0, 2000)})},
                      contract_step("deliver", false)));
  table.add(api_route(
    "POST", "/api/v1/contracts/{id}/approve",
    "Approve the delivery (the client; Idempotency-Key): the escrow is released to the hustler",
    "contracts",
    {{200, "contract"}, {403, "not the client"}, {404, "no such contract"}, {409, "not delivered"}},
    {true, {}, nullptr}, contract_step("approve", true)));
  table.add(api_route("POST", "/api/v1/contracts/{id}/dispute",
                      "Dispute the contract (either party): the escrow is frozen", "contracts",
                      {{200, "contract"}, {403, "not a party"}, {404, "no such contract"},
                       {409, "not active or delivered"}},
                      {true, {}, make_schema({string_field("reason", true, 1, 2000)})},
                      contract_step("dispute", false)));
  table.add(api_route(
    "POST", "/api/v1/contracts/{id}/resolve",
    "Resolve a dispute (admins; Idempotency-Key): release the escrow to the hustler or refund "
    "the client",
    "contracts",
    {{200, "contract"}, {403, "not an admin"}, {404, "no such contract"}, {409, "not disputed"}},
    {true,
     {"admin"},
     make_schema({one_of(string_field("release_to", true, 1, 16), {"hustler", "client"})})},
    contract_step("resolve", true)));
  table.add(api_route(
    "POST", "/api/v1/contracts/{id}/review",
    "Review the other party (either party, once, after completion)", "contracts",
    {{201, "review"}, {403, "not a party"}, {404, "no such contract"},
     {409, "not ended, or reviewed already"}},
    {true, {}, make_schema({integer_field("rating", true, 1, 5), string_field("text", false, 0, 2000)})},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      auto ref = contract_of(rq, respond);
      if (!ref) return;
      auto& b = *rq.json;
      contract::review_cmd cmd;
      cmd.user = rq.user_id;
      cmd.role = rq.role;
      cmd.rating = static_cast<int32_t>(b["rating"].get<int64_t>());
      cmd.has_text = b.contains("text");
      if (cmd.has_text) cmd.text = b["text"].get<std::string>();
      ask_entity(self, *ref, caf::make_message(std::move(cmd)), 201, std::move(respond));
    }));
}

} // namespace gm::gateway
