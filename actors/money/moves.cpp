// Implements the money mechanism's vocabulary: plans, derived ids, the
// tables and rows of a move, the read of pending moves, and the sweep.
#include "actors/money/moves.hpp"

#include <memory>

#include <caf/all.hpp>

#include "actors/entity.hpp"
#include "actors/entity_core.hpp"
#include "actors/router.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/pg.hpp"

namespace gm::money {

using journal::value;
using journal::values_of;

const std::vector<plan>& plans() {
  // One line per move type. The kind that owns the source drives the saga.
  static const std::vector<plan> all{
    // type, source (kind, account, entry), destination (kind, account, entry), refund, status
    {"transfer", "wallet", "available", "transfer_out", "wallet", "available", "transfer_in",
     "transfer_in", 201},
    {"contribution", "wallet", "available", "contribution", "circle", "pot", "contribution",
     "reversal", 200},
    {"payout", "circle", "pot", "payout", "wallet", "available", "payout", "reversal", 200},
    // Escrow (gig contracts): a wallet's escrow is its second account. A
    // lock and a refund stay within one wallet (one write, saga.hpp's
    // move_within); a release goes to the hustler's wallet.
    {"escrow_lock", "wallet", "available", "escrow_lock", "wallet", "escrow", "escrow_lock",
     "reversal", 200},
    {"escrow_release", "wallet", "escrow", "escrow_release", "wallet", "available",
     "escrow_release", "reversal", 200},
    {"escrow_refund", "wallet", "escrow", "escrow_refund", "wallet", "available", "escrow_refund",
     "reversal", 200},
    // Delivery tasks: the fee waits in the creator's escrow (an escrow_lock)
    // and goes to the rider who delivered it as an `earning`.
    {"task_earning", "wallet", "escrow", "escrow_release", "wallet", "available", "earning",
     "reversal", 200},
  };
  return all;
}

const plan* plan_of(const std::string& type) {
  for (auto& p : plans()) {
    if (type == p.type) return &p;
  }
  return nullptr;
}

std::string derived_id(const std::string& name) {
  // Two FNV-1a hashes with different offsets: 128 bits, shaped as a
  // version 8 (custom) uuid. The names are the server's own (ids and
  // numbers), so a non-cryptographic hash is enough to keep them apart.
  auto fnv = [&name](uint64_t h) {
    for (unsigned char c : name) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    return h;
  };
  uint64_t a = fnv(14695981039346656037ULL);
  uint64_t b = fnv(0x9e3779b97f4a7c15ULL ^ a);
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(a >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(b >> (56 - 8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x80);  // version 8
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 0xf];
  }
  return out;
}

void announce(caf::actor_system_config& cfg) {
  cfg.add_message_type<credit_cmd>("gm_m_credit")
    .add_message_type<start_cmd>("gm_m_start")
    .add_message_type<resume_cmd>("gm_m_resume");
}

// ---- tables and rows --------------------------------------------------------

const journal::table_spec& ledger_table() {
  static const journal::table_spec t{
    "ledger_entries",
    {{"id", "uuid"}, {"transfer_id", "uuid"}, {"account", "text"}, {"wallet_id", "uuid"},
     {"type", "text"}, {"amount", "bigint"}, {"delta", "bigint"}, {"balance_after", "bigint"},
     {"wallet_version", "bigint"}, {"reference", "text"}, {"counterparty", "uuid"},
     {"created_at", "timestamptz"}},
    {0}, 0, journal::write_mode::insert_once};
  return t;
}

const journal::table_spec& transfers_table() {
  static const journal::table_spec t{
    "transfers",
    {{"id", "uuid"}, {"from_user", "uuid"}, {"to_user", "uuid"}, {"amount", "bigint"},
     {"note", "text"}, {"state", "text"}, {"version", "bigint"}, {"created_at", "timestamptz"},
     {"updated_at", "timestamptz"}, {"idempotency_key", "text"}, {"move_type", "text"},
     {"key_user", "uuid"}},
    {0}, 6, journal::write_mode::upsert_versioned};
  return t;
}

const journal::table_spec& transfer_steps_table() {
  static const journal::table_spec t{
    "transfers",
    {{"id", "uuid"}, {"state", "text"}, {"version", "bigint"}, {"updated_at", "timestamptz"}},
    {0}, 2, journal::write_mode::update_versioned};
  return t;
}

namespace {

value text(const std::string& s) {
  return s.empty() ? value{} : value{s};
}

value num(int64_t v) {
  return value::integer(v);
}

} // namespace

value id_value(const std::string& s) {
  packed_uuid u;
  if (packed_uuid::try_parse(s, u)) return value::uuid(u);
  return text(s);
}

journal::row entry_row(const leg& l, const entry& e) {
  return {&ledger_table(), 0,
          values_of(id_value(e.id), id_value(e.move_id), l.account, l.wallet, e.type,
                    num(e.amount), num(e.delta), num(e.balance_after), num(e.owner_version),
                    text(e.reference), id_value(e.counterparty), e.created_at),
          true};
}

journal::row reserve_row(const std::string& id, const plan& p, const std::string& from,
                         const std::string& to, int64_t amount, const std::string& note,
                         const std::string& created_at, const std::string& key,
                         const std::string& key_user, const char* state, int64_t version) {
  return {&transfers_table(), version,
          values_of(id_value(id), id_value(from), id_value(to), num(amount), text(note),
                    std::string{state}, num(version), created_at, now_rfc3339(),
                    text(key), std::string{p.type},
                    key_user.empty() || key_user == from ? value{} : id_value(key_user)),
          true};
}

journal::row step_row(const std::string& id, const char* state_name, int64_t version) {
  return {&transfer_steps_table(), version,
          values_of(id_value(id), std::string{state_name}, num(version), now_rfc3339())};
}

// ---- recovery ---------------------------------------------------------------

namespace {

/// The move types whose source is of `kind`, as a PostgreSQL array literal.
std::string types_from(const std::string& kind) {
  std::string out = "{";
  for (auto& p : plans()) {
    if (kind != p.from_kind) continue;
    if (out.size() > 1) out += ',';
    out += p.type;
  }
  return out + "}";
}

} // namespace

bool load_pending(pg::connection& c, const std::string& kind, const std::string& id,
                  std::vector<pending>& out, std::string& error) {
  auto t = c.exec(
    "SELECT t.id, t.move_type, t.to_user, t.amount, coalesce(t.note, ''), t.state, "
    "t.created_at, coalesce(t.idempotency_key, ''), "
    "coalesce(t.key_user, t.from_user)::text, coalesce(k.request_hash, ''), "
    "coalesce(k.response, '') "
    "FROM transfers t LEFT JOIN idempotency_keys k "
    "ON k.user_id = coalesce(t.key_user, t.from_user) AND k.key = t.idempotency_key "
    "WHERE t.from_user = $1 AND t.state IN ('reserved', 'credited', 'refused') "
    "AND t.move_type = ANY($2::text[])",
    {id, types_from(kind)});
  if (!t.ok()) {
    error = t.error;
    return false;
  }
  for (size_t i = 0; i < t.rows.size(); ++i) {
    pending p;
    p.id = t.value(i, 0);
    p.type = t.value(i, 1);
    p.to_id = t.value(i, 2);
    p.amount = std::stoll(t.value(i, 3, "0"));
    p.note = t.value(i, 4);
    p.state = t.value(i, 5);
    p.created_at = t.value(i, 6);
    p.key = t.value(i, 7);
    p.key_user = t.value(i, 8);
    p.key_hash = t.value(i, 9);
    p.reply_body = t.value(i, 10);
    if (p.key_hash.empty()) p.key.clear();  // its row is gone: nothing to answer
    out.push_back(std::move(p));
  }
  return true;
}

namespace {

using sweep_atom = caf::atom_constant<caf::atom("m_sweep")>;

caf::behavior sweep_impl(caf::event_based_actor* self, std::string kind,
                         std::chrono::milliseconds interval) {
  self->send(self, sweep_atom::value);
  auto next = [self, interval] { self->delayed_send(self, interval, sweep_atom::value); };
  return {
    [](actors::run_atom, const actors::continuation& fn) { (*fn)(); },
    [self, kind, next](sweep_atom) {
      auto retry = [kind, next](const std::string& why) {
        gm::log::get("money")->debug("{} move recovery waits: {}", kind, why);
        next();
      };
      auto types = types_from(kind);
      actors::on_pool(
        self,
        [self, kind, types, next, retry](pg::connection& c) -> std::function<void()> {
          // Bounded per sweep; the next sweep takes the rest.
          auto r = c.exec("SELECT DISTINCT from_user FROM transfers "
                          "WHERE state IN ('reserved', 'credited', 'refused') "
                          "AND move_type = ANY($1::text[]) "
                          "AND updated_at < now() - interval '1 second' LIMIT 1000",
                          {types});
          return [self, kind, r, next, retry] {
            if (!r.ok()) {
              retry(r.error);
              return;
            }
            if (r.rows.empty()) {
              next();
              return;
            }
            auto left = std::make_shared<size_t>(r.rows.size());
            gm::log::get("money")->info("sweep: moves pending at {} {} entities", r.rows.size(),
                                        kind);
            for (size_t i = 0; i < r.rows.size(); ++i) {
              actors::ask(self, {kind, r.value(i, 0)}, caf::make_message(resume_cmd{}),
                          std::chrono::seconds{30}, [left, next](actors::entity_reply&) {
                            if (--*left == 0) next();
                          });
            }
          };
        },
        retry);
    },
  };
}

} // namespace

void start_sweep(caf::local_actor* shard, const std::string& kind,
                 std::chrono::milliseconds interval) {
  shard->spawn<caf::linked>(sweep_impl, kind, interval);
}

} // namespace gm::money
