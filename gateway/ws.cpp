// The gateway's side of WebSockets (API.md "WebSocket"): the token decides
// before the upgrade; then one actor per socket serves the ops (ping,
// subscribe, unsubscribe, send, location), asks each topic's entity rules
// who may see it, and forwards the topic hub's events in sequence order.
#include "gateway/ws.hpp"

#include <strings.h>

#include <cmath>
#include <deque>
#include <sstream>
#include <optional>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/entity_core.hpp"
#include "actors/kinds.hpp"
#include "actors/rider/rider.hpp"
#include "actors/room/room.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"
#include "gateway/api_context.hpp"
#include "gateway/validation.hpp"

namespace gm::gateway {
namespace {

using nlohmann::json;

using text_atom = caf::atom_constant<caf::atom("ws_text")>;
using closed_atom = caf::atom_constant<caf::atom("ws_closed")>;
using expired_atom = caf::atom_constant<caf::atom("ws_expire")>;

constexpr uint16_t close_policy = 1008;
// Frames that may wait behind an op still being answered (see ws_state).
constexpr size_t max_waiting_frames = 10000;
constexpr size_t max_waiting_bytes = 1 << 20;
// Resume from a store of history (chat): at most this many missed events,
// read this many at a time. Live events that arrive meanwhile wait, up to
// max_held per topic.
constexpr int64_t max_replay = 10000;
constexpr int64_t replay_page = 1000;
constexpr size_t max_held = 20000;
constexpr uint16_t close_try_later = 1013;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// One subscribed topic.
struct subscription {
  int64_t last = -1;  // the last seq sent
  /// Catching up from history: live events wait in `held` until it is done.
  bool replaying = false;
  std::vector<std::pair<int64_t, topics::frame_ptr>> held;
};

struct ws_state {
  ws_identity who;
  ws_peer peer;
  api_context_ptr ctx;
  std::unordered_map<std::string, subscription> topics;
  // Ops are answered in the order they arrive: while one waits for another
  // actor (a subscribe asks the wallet and the hub), later frames wait
  // here, so a subscribe then an unsubscribe of the same topic leaves it
  // unsubscribed. Bounded: past it the socket is closed (1008).
  std::deque<std::string> waiting;
  size_t waiting_bytes = 0;
  bool op_pending = false;
  bool draining = false;
  metrics::gauge* subscriptions = nullptr;
  metrics::counter* events_out = nullptr;
  static inline const char* name = "gm.ws";

  ~ws_state() {
    if (subscriptions) subscriptions->add(-static_cast<int64_t>(topics.size()));
  }
};

using ws_actor = caf::stateful_actor<ws_state>;

void send_json(ws_actor* self, const json& j) {
  self->state.peer.send(std::make_shared<const std::string>(dump(j)));
}

void send_error(ws_actor* self, const json& id, int status, const std::string& detail) {
  json e = {{"op", "error"}, {"status", status}, {"detail", detail}};
  if (!id.is_null()) e["id"] = id;
  send_json(self, e);
}

/// Sends an event's frame unless it is not subscribed or was sent already
/// (a replay and live events may overlap).
void send_event(ws_actor* self, const std::string& topic, int64_t seq, topics::frame_ptr frame) {
  auto& st = self->state;
  auto it = st.topics.find(topic);
  if (it == st.topics.end() || seq <= it->second.last) return;
  it->second.last = seq;
  st.events_out->inc();
  st.peer.send(std::move(frame));
}

/// Decides whether the caller may see `topic`: 0 yes, else the status of
/// the refusal (with `why`). The rules are the entities': a user sees their
/// own `user:` topic and their own wallet; admins see `system:inspect`.
void authorize_topic(ws_actor* self, const std::string& topic,
                     std::function<void(int, std::string)> done) {
  auto& st = self->state;
  auto colon = topic.find(':');
  auto kind = topic.substr(0, colon);
  auto id = colon == std::string::npos ? std::string{} : topic.substr(colon + 1);
  if (colon == std::string::npos || id.empty()) {
    done(400, "a topic is kind:id, e.g. wallet:<id>");
  } else if (kind == "system") {
    done(id == "inspect" && st.who.role == "admin" ? 0 : 403, "system topics are for admins");
  } else if (auto* k = actors::kind_of_topic(kind)) {
    // The kind's own rule (actors/kinds.hpp).
    k->may_see(self, {st.who.user_id, st.who.role}, id, std::move(done));
  } else {
    done(400, "unknown topic kind " + kind);
  }
}

/// The topic's one spelling: an id that is a UUID in lower case, as
/// entities and events name it (REST takes ids in any case too).
std::string canonical_topic(const std::string& topic) {
  auto colon = topic.find(':');
  if (colon == std::string::npos) return topic;
  return topic.substr(0, colon + 1) + lower_uuid(topic.substr(colon + 1));
}

/// The topic `msg` names, in its one spelling; or nullopt after answering
/// 400 (`op` needs a topic that is a string).
std::optional<std::string> topic_of(ws_actor* self, const json& msg, const json& id,
                                    const char* op) {
  if (!msg.contains("topic") || !msg["topic"].is_string()) {
    send_error(self, id, 400, std::string{op} + " needs a topic (string)");
    return std::nullopt;
  }
  return canonical_topic(msg["topic"].get<std::string>());
}

void handle_frame(ws_actor* self, const std::string& text);

/// The op that was pending has been answered: handle what waited for it,
/// in order, until one is pending again.
void op_done(ws_actor* self) {
  auto& st = self->state;
  st.op_pending = false;
  if (st.draining) return;  // the loop below goes on
  st.draining = true;
  while (!st.op_pending && !st.waiting.empty()) {
    auto text = std::move(st.waiting.front());
    st.waiting.pop_front();
    st.waiting_bytes -= text.size();
    handle_frame(self, text);
  }
  st.draining = false;
}

/// A live event of `topic`: sent now, or held while the topic catches up
/// from history (a session whose catch-up falls too far behind is closed).
void on_event(ws_actor* self, const std::string& topic, int64_t seq,
              const topics::frame_ptr& frame) {
  auto& st = self->state;
  auto it = st.topics.find(topic);
  if (it == st.topics.end()) return;
  if (!it->second.replaying) {
    send_event(self, topic, seq, frame);
    return;
  }
  it->second.held.emplace_back(seq, frame);
  if (it->second.held.size() > max_held) {
    send_error(self, nullptr, 503, "too many live events while catching up on " + topic);
    st.peer.close(close_try_later, "too many events while catching up");
    self->quit();
  }
}

/// The catch-up of `topic` is over: sends the events the topic store still
/// held (`missed`) and those that arrived live meanwhile, each once, in
/// order, goes live, and lets the ops that waited go on.
void end_replay(ws_actor* self, const std::string& topic, std::vector<topics::event>& missed) {
  auto& st = self->state;
  auto it = st.topics.find(topic);
  if (it == st.topics.end()) {
    op_done(self);
    return;
  }
  for (auto& e : missed) {
    send_event(self, topic, e.seq,
               std::make_shared<const std::string>(
                 topics::event_frame(topic, e.name, e.seq, e.data)));
  }
  auto held = std::move(it->second.held);
  it->second.held.clear();
  it->second.replaying = false;
  for (auto& [seq, frame] : held) send_event(self, topic, seq, frame);
  op_done(self);
}

/// Forgets `topic` (the session is no longer subscribed to it).
void drop_topic(ws_actor* self, const std::string& topic) {
  auto& st = self->state;
  if (st.topics.erase(topic) == 0) return;
  st.subscriptions->add(-1);
  if (auto hub = find_registered(self->system(), topics::registry_name())) {
    self->send(hub, topics::unsubscribe_atom::value, topic, caf::actor_cast<caf::actor>(self));
  }
}

/// Replays `topic`'s events after `after` up to `upto` from its kind's
/// history, a page at a time; then end_replay(). At most `budget` events.
void replay(ws_actor* self, const actors::kind_registration* kind, const std::string& topic,
            const std::string& entity_id, int64_t after, int64_t upto, int64_t budget,
            std::shared_ptr<std::vector<topics::event>> missed) {
  auto page = std::min(replay_page, budget);
  kind->history(
    self, entity_id, after, upto, page,
    [self, kind, topic, entity_id, upto, budget, missed, page](std::vector<topics::event>& events,
                                                               const std::string& error) {
      if (!error.empty()) {
        send_error(self, nullptr, 503,
                   "the history of " + topic + " could not be read (" + error +
                     "); subscribe again with the same since_seq");
        drop_topic(self, topic);
        op_done(self);
        return;
      }
      int64_t last = -1;
      for (auto& e : events) {
        last = e.seq;
        send_event(self, topic, e.seq,
                   std::make_shared<const std::string>(
                     topics::event_frame(topic, e.name, e.seq, e.data)));
      }
      auto n = static_cast<int64_t>(events.size());
      if (n == page && last < upto && budget - n > 0) {
        replay(self, kind, topic, entity_id, last, upto, budget - n, missed);
        return;
      }
      end_replay(self, topic, *missed);
    });
}

void subscribe(ws_actor* self, const json& msg) {
  json id = msg.contains("id") ? msg["id"] : json(nullptr);
  auto named = topic_of(self, msg, id, "subscribe");
  if (!named) return;
  auto topic = std::move(*named);
  int64_t since = -1;
  if (msg.contains("since_seq")) {
    if (!msg["since_seq"].is_number_integer() || msg["since_seq"].get<int64_t>() < 0) {
      send_error(self, id, 400, "since_seq must be a non-negative integer");
      return;
    }
    since = msg["since_seq"].get<int64_t>();
  }
  self->state.op_pending = true;
  authorize_topic(self, topic, [self, topic, since, id](int status, std::string why) {
    if (status != 0) {
      send_error(self, id, status, why);
      op_done(self);
      return;
    }
    auto hub = find_registered(self->system(), topics::registry_name());
    if (!hub) {
      send_error(self, id, 503, "the topic hub is restarting");
      op_done(self);
      return;
    }
    self->request(hub, self->state.ctx->request_timeout, topics::subscribe_atom::value, topic,
                  caf::actor_cast<caf::actor>(self), since)
      .then(
        [self, topic, id, since](int64_t seq, std::vector<topics::event>& missed) {
          auto& st = self->state;
          auto [it, fresh] = st.topics.emplace(topic, subscription{});
          if (fresh) st.subscriptions->add(1);
          auto& sub = it->second;
          // since_seq is exclusive: what follows it is sent (again, if this
          // session had it already).
          if (since >= 0) sub.last = since;
          // A topic whose events are kept in PostgreSQL (chat) resumes from
          // there when the store's memory does not reach back to since_seq:
          // its seq has no gaps, so the memory covers it only if it starts
          // right after since_seq.
          auto colon = topic.find(':');
          auto* kind = actors::kind_of_topic(topic.substr(0, colon));
          // (A message whose write the journal could not confirm is never
          // published, though it may have committed: the store's events
          // then skip it, and only the history has it.)
          bool contiguous = missed.empty() || missed.back().seq - missed.front().seq + 1 ==
                                                static_cast<int64_t>(missed.size());
          bool covered = missed.empty() ? (seq == since && seq > 0)
                                        : contiguous && missed.front().seq <= since + 1;
          bool from_history = kind && kind->history && since >= 0 && !covered;
          if (from_history && seq - since > max_replay) {
            send_error(self, id, 409,
                       std::to_string(seq - since) + " events were missed, more than " +
                         std::to_string(max_replay) +
                         " a subscribe replays: read the history over REST, then subscribe "
                         "with a later since_seq");
            drop_topic(self, topic);
            op_done(self);
            return;
          }
          json ok = {{"op", "subscribed"}, {"topic", topic}, {"seq", seq}};
          if (!id.is_null()) ok["id"] = id;
          send_json(self, ok);
          if (!from_history) {
            for (auto& e : missed) {
              send_event(self, topic, e.seq,
                         std::make_shared<const std::string>(
                           topics::event_frame(topic, e.name, e.seq, e.data)));
            }
            op_done(self);
            return;
          }
          // Live events from now on wait until the catch-up is done; the
          // history read starts after the subscription, so it holds every
          // event before the first live one.
          sub.replaying = true;
          auto upto = missed.empty() || !contiguous ? INT64_MAX : missed.front().seq - 1;
          auto rest = std::make_shared<std::vector<topics::event>>(std::move(missed));
          // Later ops wait until it is done (end_replay), so that the
          // topic's events go out in order whatever they ask.
          replay(self, kind, topic, topic.substr(colon + 1), since, upto, max_replay, rest);
        },
        [self, id](caf::error&) {
          send_error(self, id, 503, "the topic hub did not answer");
          op_done(self);
        });
  });
}

void unsubscribe(ws_actor* self, const json& msg) {
  json id = msg.contains("id") ? msg["id"] : json(nullptr);
  auto named = topic_of(self, msg, id, "unsubscribe");
  if (!named) return;
  auto topic = std::move(*named);
  drop_topic(self, topic);
  json ok = {{"op", "unsubscribed"}, {"topic", topic}};
  if (!id.is_null()) ok["id"] = id;
  send_json(self, ok);
}

/// A chat message (API.md `send`): the same command as the REST post, to
/// the room entity, which answers once the message is durable; the ack
/// carries its seq. Not an op others wait for: a session may have many
/// messages in flight, acknowledged in the order it sent them (its
/// commands reach the room in order, which numbers and commits them so).
void send_message(ws_actor* self, const json& msg) {
  json id = msg.contains("id") ? msg["id"] : json(nullptr);
  auto named = topic_of(self, msg, id, "send");
  if (!named) return;
  auto& topic = *named;
  auto colon = topic.find(':');
  if (topic.compare(0, colon, "room") != 0 || colon == std::string::npos) {
    send_error(self, id, 400, "send takes a room topic (room:<id>)");
    return;
  }
  if (!msg.contains("text") || !msg["text"].is_string()) {
    send_error(self, id, 400, "send needs a text (string)");
    return;
  }
  auto room_id = topic.substr(colon + 1);
  if (!is_uuid(room_id)) {
    send_error(self, id, 404, "no such room");
    return;
  }
  room::post_cmd cmd{self->state.who.user_id, msg["text"].get<std::string>()};
  actors::ask(self, {room::type, room_id}, caf::make_message(std::move(cmd)),
              [self, id](actors::entity_reply& r) {
                if (r.ok()) {
                  json ack = {{"op", "ack"}, {"seq", r.version}};
                  if (!id.is_null()) ack["id"] = id;
                  send_json(self, ack);
                  return;
                }
                int status = 503;
                switch (r.error()) {
                  case actors::errc::not_found: status = 404; break;
                  case actors::errc::forbidden: status = 403; break;
                  case actors::errc::invalid: status = 422; break;
                  case actors::errc::conflict: status = 409; break;
                  default: break;
                }
                send_error(self, id, status, r.detail);
              });
}

/// A rider's location ping (API.md `location`): the same command as the
/// REST ping, buffered. Answered when refused (`op:error`), and, if the
/// ping carries an `id`, with `{"op":"ack","id":…}` once the rider took it
/// (an addition: a client can pace its pings).
void send_location(ws_actor* self, const json& msg) {
  json id = msg.contains("id") ? msg["id"] : json(nullptr);
  auto& who = self->state.who;
  if (who.role != "rider") {
    send_error(self, id, 403, "only riders send locations");
    return;
  }
  auto number = [&](const char* name, bool required, double lo, double hi, double& out) {
    if (!msg.contains(name)) {
      if (required) send_error(self, id, 400, std::string{"location needs "} + name + " (number)");
      out = NAN;
      return !required;
    }
    if (!msg[name].is_number()) {
      send_error(self, id, 400, std::string{name} + " must be a number");
      return false;
    }
    out = msg[name].get<double>();
    if (!(out >= lo && out <= hi)) {
      std::ostringstream range;
      range << name << " must be between " << lo << " and " << hi;
      send_error(self, id, 422, range.str());
      return false;
    }
    return true;
  };
  rider::locate_cmd cmd;
  cmd.user = who.user_id;
  if (!number("lat", true, -90, 90, cmd.lat) || !number("lng", true, -180, 180, cmd.lng) ||
      !number("heading", false, 0, 360, cmd.heading) ||
      !number("speed", false, 0, 1000, cmd.speed)) {
    return;
  }
  actors::ask(self, {rider::type, who.user_id}, caf::make_message(std::move(cmd)),
              [self, id](actors::entity_reply& r) {
                if (r.ok()) {
                  if (!id.is_null()) send_json(self, json{{"op", "ack"}, {"id", id}});
                  return;
                }
                int status = 503;
                switch (r.error()) {
                  case actors::errc::not_found: status = 404; break;
                  case actors::errc::forbidden: status = 403; break;
                  case actors::errc::invalid: status = 422; break;
                  case actors::errc::conflict: status = 409; break;
                  default: break;
                }
                send_error(self, id, status, r.detail);
              });
}

void handle_op(ws_actor* self, const std::string& text);

void handle_frame(ws_actor* self, const std::string& text) {
  // The ops check every field's type before they read it; this is the net
  // under that, so a frame we failed to foresee gets an error, not a dead
  // socket.
  try {
    handle_op(self, text);
  } catch (const std::exception& e) {
    send_error(self, nullptr, 400, std::string{"the frame could not be read: "} + e.what());
  }
}

void handle_op(ws_actor* self, const std::string& text) {
  std::string repeated;
  auto msg = parse_json(text, repeated);
  if (msg.is_discarded() || !msg.is_object()) {
    send_error(self, nullptr, 400, "each frame must be one JSON object");
    return;
  }
  json id = msg.contains("id") ? msg["id"] : json(nullptr);
  if (!repeated.empty()) {
    send_error(self, id, 400, "the member " + repeated + " appears more than once");
    return;
  }
  auto op = msg.contains("op") && msg["op"].is_string() ? msg["op"].get<std::string>() : "";
  if (op == "ping") {
    json pong = {{"op", "pong"}};
    if (!id.is_null()) pong["id"] = id;
    send_json(self, pong);
  } else if (op == "subscribe") {
    subscribe(self, msg);
  } else if (op == "unsubscribe") {
    unsubscribe(self, msg);
  } else if (op == "send") {
    send_message(self, msg);
  } else if (op == "location") {
    send_location(self, msg);
  } else {
    send_error(self, id, 400, op.empty() ? "op is missing" : "unknown op " + op);
  }
}

caf::behavior ws_impl(ws_actor* self, ws_identity who, ws_peer peer, api_context_ptr ctx) {
  auto& st = self->state;
  st.who = std::move(who);
  st.peer = std::move(peer);
  st.ctx = std::move(ctx);
  auto& reg = metrics::global();
  st.subscriptions = &reg.get_gauge("gigmesh_ws_subscriptions", "topic subscriptions of WebSockets");
  st.events_out = &reg.get_counter("gigmesh_ws_events_sent_total", "events sent to WebSockets");
  auto left = st.who.token_exp - unix_seconds();
  self->delayed_send(self, std::chrono::seconds{std::max<int64_t>(0, left)}, expired_atom::value);
  return {
    [self](text_atom, std::string& text) {
      auto& st = self->state;
      if (st.op_pending) {
        st.waiting_bytes += text.size();
        st.waiting.push_back(std::move(text));
        if (st.waiting.size() > max_waiting_frames || st.waiting_bytes > max_waiting_bytes) {
          st.peer.close(close_policy, "too many ops waiting for an answer");
          self->quit();
        }
        return;
      }
      handle_frame(self, text);
    },
    // const: the hub sends one message to every subscriber; a mutable
    // reference would make CAF copy it for each.
    [self](topics::event_atom, const std::string& topic, int64_t seq,
           const topics::frame_ptr& frame) { on_event(self, topic, seq, frame); },
    [](actors::run_atom, const actors::continuation& fn) { (*fn)(); },
    [self](expired_atom) {
      send_error(self, nullptr, 401, "the access token expired; reconnect with a new one");
      self->state.peer.close(close_policy, "token expired");
      self->quit();
    },
    [self](closed_atom) { self->quit(); },
  };
}

/// The link the server holds: hands frames and the close to the actor.
class actor_link : public ws_link {
public:
  explicit actor_link(caf::actor a) : actor_(std::move(a)) {}
  void on_text(std::string text) override {
    caf::anon_send(actor_, text_atom::value, std::move(text));
  }
  void on_closed() override { caf::anon_send(actor_, closed_atom::value); }

private:
  caf::actor actor_;
};

} // namespace

ws_hooks make_ws_hooks(caf::actor_system& sys, api_context_ptr ctx) {
  ws_hooks h;
  h.authorize = [ctx](const request& rq, ws_identity& who) -> std::optional<response> {
    std::string token;
    auto header = rq.header("Authorization");
    if (header.size() > 7 && strncasecmp(header.c_str(), "Bearer ", 7) == 0) {
      token = header.substr(7);
    } else if (auto q = rq.query_param("token")) {
      token = *q;
    }
    jwt::errc why{};
    auto claims = token.empty() ? std::nullopt : ctx->tokens.verify(token, unix_seconds(), &why);
    if (!claims) {
      auto p = problem(401, "unauthorized", "Unauthorized",
                       token.empty() ? "missing access token"
                                     : std::string{"invalid access token: "} + jwt::to_string(why));
      p.headers.emplace_back("WWW-Authenticate", "Bearer");
      return p;
    }
    who.user_id = claims->sub;
    who.role = claims->role;
    who.token_exp = claims->exp;
    return std::nullopt;
  };
  h.open = [&sys, ctx](const ws_identity& who, ws_peer peer) -> std::shared_ptr<ws_link> {
    auto a = sys.spawn(ws_impl, who, std::move(peer), ctx);
    return std::make_shared<actor_link>(std::move(a));
  };
  return h;
}

} // namespace gm::gateway
