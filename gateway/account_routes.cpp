// The Auth and Users routes: each handler is decode (done by the gateway from
// the route's schema) → work on the pool or KDF threads → respond.
#include <chrono>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/router.hpp"
#include "actors/user/user.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/accounts.hpp"
#include "gateway/api_context.hpp"
#include "gateway/blocking_pool.hpp"
#include "gateway/crypto.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/password.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/pg.hpp"
#include "persistence/service.hpp"

namespace gm::gateway {
namespace {

using nlohmann::json;

const std::vector<std::string> registrable_roles = {"rider", "hustler", "client", "dispatcher"};

std::optional<std::string> opt_string(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

response json_ok(int status, const json& doc) {
  return json_response(status, doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

response invalid_credentials() {
  // The same answer for an unknown account and a wrong password.
  return problem(401, "invalid-credentials", "Unauthorized", "invalid credentials");
}

response db_failure(const std::string& error) {
  gm::log::get("accounts")->warn("database error: {}", error);
  return unavailable("the database is unavailable, retry shortly");
}

/// Queues `job` on `pool`, or answers 503 if its queue is full.
void submit_or_503(const std::shared_ptr<pg::pool>& pool, const respond_fn& respond,
                   pg::pool::job job) {
  if (!pool->submit(std::move(job))) {
    respond(unavailable("the database queue is full"));
  }
}

std::string access_token(const api_context& ctx, const accounts::user& u) {
  jwt::claims c;
  c.sub = u.id;
  c.role = u.role;
  c.iat = unix_seconds();
  c.exp = c.iat + ctx.access_ttl_s;
  c.jti = crypto::base64url_encode(crypto::random_bytes(12));
  return ctx.tokens.sign(c);
}

json token_pair(const api_context& ctx, const accounts::user& u, const std::string& refresh) {
  return {{"access_token", access_token(ctx, u)},
          {"refresh_token", refresh},
          {"token_type", "Bearer"},
          {"expires_in", ctx.access_ttl_s}};
}

/// Issues a refresh token for `u` and answers `status` {user, tokens}.
void answer_with_tokens(pg::connection& conn, const api_context& ctx, const accounts::user& u,
                        int status, const respond_fn& respond) {
  auto refresh = accounts::issue_refresh(conn, u.id, {}, ctx.refresh_ttl_s);
  if (refresh.code != accounts::errc::ok) {
    respond(db_failure(refresh.error));
    return;
  }
  auto doc = token_pair(ctx, u, refresh.token);
  doc["user"] = accounts::to_private_json(u);
  respond(json_ok(status, doc));
}

void register_user(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                   respond_fn respond) {
  const auto& b = *rq.json;
  accounts::new_user nu;
  nu.phone = b["phone"].get<std::string>();
  nu.email = opt_string(b, "email");
  nu.full_name = b["full_name"].get<std::string>();
  nu.role = b["role"].get<std::string>();
  auto pw = b["password"].get<std::string>();
  with_pool(self, *ctx, respond, [ctx, nu, pw, respond](std::shared_ptr<pg::pool> pool) mutable {
    auto queued = ctx->kdf->submit([ctx, nu, pw, respond, pool]() mutable {
      nu.password_hash = password::hash(pw);
      submit_or_503(pool, respond, [ctx, nu, respond](pg::connection& conn) {
        auto r = accounts::create_user(conn, nu);
        switch (r.code) {
          case accounts::errc::ok:
            answer_with_tokens(conn, *ctx, r.value, 201, respond);
            return;
          case accounts::errc::duplicate_phone:
            respond(problem(409, "duplicate", "Conflict", "phone is already registered"));
            return;
          case accounts::errc::duplicate_email:
            respond(problem(409, "duplicate", "Conflict", "email is already registered"));
            return;
          default:
            respond(db_failure(r.error));
        }
      });
    });
    if (!queued) respond(unavailable("too many sign-ups and logins at once"));
  });
}

void login(caf::event_based_actor* self, api_context_ptr ctx, request& rq, respond_fn respond) {
  const auto& b = *rq.json;
  auto phone = opt_string(b, "phone");
  auto email = opt_string(b, "email");
  if (!phone && !email) {
    auto r = problem(422, "invalid-body", "Unprocessable Entity", "phone or email is required");
    respond(std::move(r));
    return;
  }
  auto login = phone ? *phone : *email;
  auto pw = b["password"].get<std::string>();
  with_pool(self, *ctx, respond, [ctx, login, pw, respond](std::shared_ptr<pg::pool> pool) {
    submit_or_503(pool, respond, [ctx, login, pw, respond, pool](pg::connection& conn) {
      auto found = accounts::find_for_login(conn, login);
      if (found.code == accounts::errc::unavailable) {
        respond(db_failure(found.error));
        return;
      }
      auto queued = ctx->kdf->submit([ctx, found, pw, respond, pool] {
        bool known = found.code == accounts::errc::ok;
        bool match = password::verify(pw, known ? found.value.password_hash : ctx->dummy_hash);
        if (!known || !match) {
          respond(invalid_credentials());
          return;
        }
        auto user = found.value;
        user.password_hash.clear();
        submit_or_503(pool, respond, [ctx, user, respond](pg::connection& c) {
          answer_with_tokens(c, *ctx, user, 200, respond);
        });
      });
      if (!queued) respond(unavailable("too many sign-ups and logins at once"));
    });
  });
}

void refresh(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
             respond_fn respond) {
  auto token = (*rq.json)["refresh_token"].get<std::string>();
  with_pool(self, *ctx, respond, [ctx, token, respond](std::shared_ptr<pg::pool> pool) {
    submit_or_503(pool, respond, [ctx, token, respond](pg::connection& conn) {
      auto r = accounts::rotate_refresh(conn, token, ctx->refresh_ttl_s);
      switch (r.code) {
        case accounts::errc::ok:
          respond(json_ok(200, token_pair(*ctx, r.owner, r.token)));
          return;
        case accounts::errc::token_reused:
          gm::log::get("accounts")->warn("refresh token reused: its family is revoked");
          respond(problem(401, "invalid-token", "Unauthorized",
                          "refresh token already used; all its sessions are revoked"));
          return;
        case accounts::errc::invalid_token:
          respond(problem(401, "invalid-token", "Unauthorized", "invalid refresh token"));
          return;
        default:
          respond(db_failure(r.error));
      }
    });
  });
}

void logout(caf::event_based_actor* self, api_context_ptr ctx, request& rq, respond_fn respond) {
  auto token = (*rq.json)["refresh_token"].get<std::string>();
  with_pool(self, *ctx, respond, [token, respond](std::shared_ptr<pg::pool> pool) {
    submit_or_503(pool, respond, [token, respond](pg::connection& conn) {
      if (accounts::revoke_refresh(conn, token) != accounts::errc::ok) {
        respond(db_failure("revoking a refresh token failed"));
        return;
      }
      response r;
      r.status = 204;
      respond(std::move(r));
    });
  });
}

/// Answers with the profile of user `id` (held by its entity), or 404.
void answer_user(caf::event_based_actor* self, const std::string& id,
                 bool private_view, respond_fn respond) {
  ask_entity(self, {user::type, id}, caf::make_message(user::get_cmd{private_view}), 200,
             std::move(respond));
}

void update_me(caf::event_based_actor* self, api_context_ptr, request& rq,
               respond_fn respond) {
  const auto& b = *rq.json;
  auto name = opt_string(b, "full_name");
  auto bio = opt_string(b, "bio");
  auto location = opt_string(b, "location");
  ask_entity(self, {user::type, rq.user_id},
             caf::make_message(user::update_cmd{name.value_or(""), bio.value_or(""),
                                                location.value_or(""), name.has_value(),
                                                bio.has_value(), location.has_value()}),
             200, std::move(respond));
}

} // namespace

response unavailable(const std::string& detail) {
  auto r = problem(503, "unavailable", "Service Unavailable", detail);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

response outcome_unknown(const std::string& detail) {
  auto r = problem(503, "outcome-unknown", "Service Unavailable", detail);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

void with_pool(caf::event_based_actor* self, const api_context& ctx, respond_fn respond,
               std::function<void(std::shared_ptr<pg::pool>)> next) {
  std::shared_ptr<pg::pool> known;
  {
    std::lock_guard<std::mutex> guard{ctx.pool_mtx};
    known = ctx.pool;
  }
  if (known && !known->stopped()) {
    next(std::move(known));
    return;
  }
  auto persist = persistence::find(self->system());
  if (!persist) {
    respond(unavailable("persistence is restarting"));
    return;
  }
  self->request(persist, ctx.request_timeout, persistence::pool_atom::value)
    .then(
      [next, &ctx](const std::shared_ptr<pg::pool>& pool) {
        {
          std::lock_guard<std::mutex> guard{ctx.pool_mtx};
          ctx.pool = pool;
        }
        next(pool);
      },
          [respond](const caf::error&) { respond(unavailable("persistence did not answer")); });
}

void add_account_routes(route_table& table, api_context_ptr ctx) {
  auto bind = [ctx](void (*fn)(caf::event_based_actor*, api_context_ptr, request&, respond_fn)) {
    return [ctx, fn](caf::event_based_actor* self, request& rq, respond_fn respond) {
      fn(self, ctx, rq, std::move(respond));
    };
  };
  field_rule role = string_field("role", true, 1, 32);
  role.one_of = registrable_roles;
  table.add(api_route(
    "POST", "/api/v1/auth/register", "Register a user (and their wallet)", "auth",
    {{201, "{user, access_token, refresh_token}"}, {409, "phone or email already registered"}},
    {false, {},
     make_schema({string_field("phone", true, 1, 16, "e164"), string_field("email", false, 3, 254, "email"),
             string_field("full_name", true, 1, 120), string_field("password", true, 8, 128), role})},
    bind(register_user)));
  table.add(api_route(
    "POST", "/api/v1/auth/login", "Log in with phone or email and password", "auth",
    {{200, "{user, access_token, refresh_token}"}, {401, "invalid credentials"}},
    {false, {},
     make_schema({string_field("phone", false, 1, 16, "e164"), string_field("email", false, 3, 254, "email"),
             string_field("password", true, 1, 128)})},
    bind(login)));
  table.add(api_route("POST", "/api/v1/auth/refresh",
                      "Exchange a refresh token for new tokens (rotation)", "auth",
                      {{200, "{access_token, refresh_token}"},
                       {401, "unknown, expired, revoked or reused refresh token"}},
                      {false, {}, make_schema({string_field("refresh_token", true, 1, 256)})},
                      bind(refresh)));
  table.add(api_route("POST", "/api/v1/auth/logout", "Revoke a refresh token and its family",
                      "auth", {{204, "revoked"}}, {false, {}, make_schema({string_field("refresh_token", true, 1, 256)})},
                      bind(logout)));
  table.add(api_route("GET", "/api/v1/users/me", "The caller's own profile", "users",
                      {{200, "user"}}, {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        answer_user(self, rq.user_id, true, std::move(respond));
                      }));
  table.add(api_route("PUT", "/api/v1/users/me", "Update the caller's profile", "users",
                      {{200, "user"}},
                      {true, {},
                       make_schema({string_field("full_name", false, 1, 120), string_field("bio", false, 0, 1000),
                               string_field("location", false, 0, 120)})},
                      bind(update_me)));
  table.add(api_route("GET", "/api/v1/users/{id}", "A user's public profile", "users",
                      {{200, "public profile"}, {404, "no such user"}}, {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        answer_user(self, rq.path_params.at("id"), false,
                                    std::move(respond));
                      }));
}

} // namespace gm::gateway
