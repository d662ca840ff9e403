// SPDX-License-Identifier: BSL-1.0
// The JSON API of the example server, written once for any session manager type (memory, Redis,
// or Redis with the memory fallback): routing, the session endpoints and /healthz. The session
// handling itself is the library's Beast glue (websession::http::with_session); this file only
// says how its errors look in JSON.
#pragma once

#include "api_support.hpp"
#include "audit_log.hpp"
#include "config.hpp"
#include "identity_api.hpp"
#include "json_response.hpp"
#include "web_page.hpp"

#include <websession/csrf.hpp>
#include <websession/error.hpp>
#include <websession/http/beast.hpp>
#include <websession/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace example {

/// The API over `Manager`, a websession::basic_session_manager (any policies). Endpoints:
///
/// | method | path                | answer                                                   |
/// |--------|---------------------|----------------------------------------------------------|
/// | GET    | /visits             | {"views": n}, n incremented atomically (async_update)    |
/// | GET    | /me                 | {"user"} or 401                                          |
/// | GET    | /csrf               | {"csrf"}: a fresh token for this session                 |
/// | POST   | /logout             | {"logged_out": true}; needs X-CSRF-Token (else 403)      |
/// | POST   | /logout-everywhere  | {"destroyed": n}; needs X-CSRF-Token; ends all of a user |
/// | GET    | /healthz            | store ping, degraded flag, Redis topology, manager       |
/// |        |                     | counters; 200 or 503. Only {"status"} for a client that  |
/// |        |                     | healthz_details does not allow them (see config.hpp).    |
/// |        |                     | The store is pinged at most once per second, whatever    |
/// |        |                     | the number of requests and threads (see store_health)    |
/// | GET    | /, /app.js, /app.css| the web page (web_page.hpp): no session is loaded        |
///
/// and the identity endpoints (identity_api.hpp): POST /login, GET /sessions,
/// POST /sessions/revoke, POST /logout-others, POST /reauth, POST /sensitive.
///
/// Unknown paths are 404, known paths with another method 405 (with Allow). A bad cookie of any
/// kind gets a fresh session (the Beast glue), never an error. Store failures are 503 (with
/// Retry-After), a session changed or ended by a concurrent request 409
/// (websession::http::session_error_status), as {"error": session_error_text}. A handler that
/// refuses a request, or whose session operation failed, stores nothing and sends no cookie
/// (session::skip_save): after a failed rotation, storing the session would bind the user to the
/// old, unrotated id.
template <class Manager>
class session_api {
 public:
  /// `mgr` and `audit` must outlive the API. `store_name` is reported by /healthz, to the
  /// clients `details` allows.
  session_api(Manager& mgr, audit_log& audit, std::string store_name,
              healthz_details details = healthz_details::loopback, identity_options identity = {})
      : mgr_(mgr), audit_(audit), store_name_(std::move(store_name)), details_(details),
        identity_(mgr, audit, identity) {}

  /// The answer to `req` from a client at `client`. Throws only what an allocation or the
  /// CSPRNG throws.
  boost::asio::awaitable<response> handle(const request& req,
                                          const boost::asio::ip::address& client) {
    const std::string_view path = path_of(req);
    if (path == "/healthz") {
      if (req.method() != bhttp::verb::get) co_return api::method_not_allowed(req, "GET");
      co_return co_await healthz(req, shows_healthz_details(details_, client));
    }
    if (const web_asset* a = find_web_asset(path)) {
      if (req.method() != bhttp::verb::get) co_return api::method_not_allowed(req, "GET");
      co_return web_asset_response(req, *a);
    }
    const route* r = find_route(path);
    if (!r) co_return json_error(req, bhttp::status::not_found, "no such endpoint");
    if (req.method() != r->method)
      co_return api::method_not_allowed(req, bhttp::to_string(r->method));
    const handler_type h = r->handler;
    co_return co_await websession::http::with_session(
        mgr_, req, [this, h](const request& rq, session& s) { return (this->*h)(rq, s); },
        &api::session_error_response, glue_);
  }

 private:
  using session = websession::session;
  using handler_type = boost::asio::awaitable<response> (session_api::*)(const request&, session&);
  struct route {
    std::string_view path;
    bhttp::verb method;
    handler_type handler;
  };

  static constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  static const route* find_route(std::string_view path) noexcept {
    static const route routes[] = {
        {"/visits", bhttp::verb::get, &session_api::visits},
        {"/login", bhttp::verb::post, &session_api::login},
        {"/me", bhttp::verb::get, &session_api::me},
        {"/csrf", bhttp::verb::get, &session_api::csrf},
        {"/logout", bhttp::verb::post, &session_api::logout},
        {"/logout-everywhere", bhttp::verb::post, &session_api::logout_everywhere},
        {"/sessions", bhttp::verb::get, &session_api::sessions},
        {"/sessions/revoke", bhttp::verb::post, &session_api::revoke},
        {"/logout-others", bhttp::verb::post, &session_api::logout_others},
        {"/reauth", bhttp::verb::post, &session_api::reauth},
        {"/sensitive", bhttp::verb::post, &session_api::sensitive},
    };
    for (const route& r : routes)
      if (r.path == path) return &r;
    return nullptr;
  }

  static std::string_view path_of(const request& req) noexcept {
    const auto target = req.target();
    std::string_view t(target.data(), target.size());
    return t.substr(0, t.find('?'));
  }

  static std::int64_t views_of(const session& s) {
    return s.get_as<std::int64_t>("views").value_or(0);
  }

  static response views_response(const request& req, std::int64_t views) {
    boost::json::object body;
    body["views"] = views;
    return json_response(req, bhttp::status::ok, body);
  }

  // The increment goes through the manager's async_update of the session already loaded: the
  // requests of one session in this process take turns (no conflicts, no retries, no second
  // load), and a conflict with another process reloads and reapplies. N concurrent requests
  // with one cookie end at exactly N; the uncontended case costs one load and one save.
  boost::asio::awaitable<response> visits(const request& req, session& s) {
    if (s.is_new()) {  // not stored yet, so nobody else can be updating it
      s.set("views", 1);
      co_return views_response(req, 1);
    }
    const auto increment = [](session& x) { x.set("views", views_of(x) + 1); };
    auto [ec] = co_await mgr_.async_update(s, increment, tuple);
    if (!ec) co_return views_response(req, views_of(s));
    if (websession::http::starts_fresh(ec)) {
      // Ended between the load and the update (a logout elsewhere, expiry): start afresh, as
      // a request without a cookie would.
      s = websession::http::fresh_session(mgr_, req, glue_);
      s.set("views", 1);
      co_return views_response(req, 1);
    }
    co_return api::failed(req, s, ec);
  }

  // The identity endpoints (identity_api.hpp).
  boost::asio::awaitable<response> login(const request& r, session& s) { return identity_.login(r, s); }
  boost::asio::awaitable<response> sessions(const request& r, session& s) {
    return identity_.sessions(r, s);
  }
  boost::asio::awaitable<response> revoke(const request& r, session& s) { return identity_.revoke(r, s); }
  boost::asio::awaitable<response> logout_others(const request& r, session& s) {
    return identity_.logout_others(r, s);
  }
  boost::asio::awaitable<response> reauth(const request& r, session& s) { return identity_.reauth(r, s); }
  boost::asio::awaitable<response> sensitive(const request& r, session& s) {
    return identity_.sensitive(r, s);
  }

  boost::asio::awaitable<response> me(const request& req, session& s) {
    if (s.user().empty()) co_return json_error(req, bhttp::status::unauthorized, "not logged in");
    boost::json::object body;
    body["user"] = s.user();
    co_return json_response(req, bhttp::status::ok, body);
  }

  boost::asio::awaitable<response> csrf(const request& req, session& s) {
    // A token is only worth something if its session is stored (see websession::csrf_token).
    if (s.is_new()) s.mark_dirty();
    boost::json::object body;
    body["csrf"] = websession::csrf_token(s);
    co_return json_response(req, bhttp::status::ok, body);
  }

  boost::asio::awaitable<response> logout(const request& req, session& s) {
    if (!api::csrf_ok(req, s)) co_return api::csrf_failure(req, s);
    const std::string user = s.user();
    const std::string key = s.storage_key();
    auto [ec] = co_await mgr_.async_destroy(s, tuple);
    if (ec) co_return api::failed(req, s, ec);
    audit_.write("logout", key, user);
    boost::json::object body;
    body["logged_out"] = true;
    co_return json_response(req, bhttp::status::ok, body);  // the glue deletes the cookie
  }

  boost::asio::awaitable<response> logout_everywhere(const request& req, session& s) {
    if (auto refused = api::check_user_and_csrf(req, s)) co_return std::move(*refused);
    const std::string user = s.user();
    const std::string key = s.storage_key();
    auto [ec, count] = co_await mgr_.async_destroy_user(user, tuple);
    if (ec) co_return api::failed(req, s, ec);
    // Already erased with the others; this marks it destroyed, so the cookie is deleted.
    auto [destroy_ec] = co_await mgr_.async_destroy(s, tuple);
    if (destroy_ec) co_return api::failed(req, s, destroy_ec);
    boost::json::object extra;
    extra["sessions"] = count;
    audit_.write("logout_everywhere", key, user, std::move(extra));
    boost::json::object body;
    body["destroyed"] = count;
    co_return json_response(req, bhttp::status::ok, body);
  }

  // A fallback store reports whether it is serving from its secondary; other stores never are.
  bool degraded() const {
    if constexpr (requires(Manager& m) { { m.get_store().degraded() } -> std::convertible_to<bool>; })
      return mgr_.get_store().degraded();
    else
      return false;
  }

  // What a Redis store is connected to (redis::client::topology), found through a fallback
  // store too; null for a store without one.
  boost::json::value topology() const {
    if constexpr (requires(Manager& m) { m.get_store().primary().client().topology(); })
      return topology_json(mgr_.get_store().primary().client().topology());
    else if constexpr (requires(Manager& m) { m.get_store().client().topology(); })
      return topology_json(mgr_.get_store().client().topology());
    else
      return nullptr;
  }

  template <class Address>
  static std::string address_text(const Address& a) {
    return a.host.find(':') == std::string::npos ? a.host + ":" + std::to_string(a.port)
                                                 : "[" + a.host + "]:" + std::to_string(a.port);
  }

  // Deployment, connection state, and per deployment: the server, the master a sentinel named,
  // or a cluster's nodes, slot coverage and redirection counters.
  template <class Topology>
  static boost::json::value topology_json(const Topology& t) {
    boost::json::object o;
    o["deployment"] = to_string(t.deployment);
    o["connected"] = t.connected;
    if (t.deployment == decltype(t.deployment)::cluster) {
      const auto& c = t.cluster;
      boost::json::array nodes;
      std::size_t masters = 0;
      for (const auto& n : c.nodes) {
        boost::json::object node;
        node["address"] = address_text(n.node);
        node["role"] = n.master ? "master" : "replica";
        if (n.master) {
          ++masters;
          node["slots"] = n.slots;
          node["connected"] = n.connected;
        }
        nodes.push_back(std::move(node));
      }
      o["masters"] = masters;
      o["covered_slots"] = c.covered_slots;
      o["nodes"] = std::move(nodes);
      o["map_refreshes"] = c.refreshes;
      o["moved"] = c.moved;
      o["ask"] = c.ask;
      o["retries"] = c.retries;
    } else {
      o[t.deployment == decltype(t.deployment)::sentinel ? "master" : "server"] =
          address_text(t.server);
      if (!t.master_name.empty()) o["master_name"] = t.master_name;
    }
    if (t.last_error) o["last_error"] = t.last_error_message.empty() ? t.last_error.message()
                                                                      : t.last_error_message;
    return o;
  }

  // The last store ping: its answer, how long it took, when it ended, and how many /healthz has
  // done in all.
  struct ping_result {
    boost::system::error_code ec;
    std::chrono::microseconds latency{};
    std::chrono::steady_clock::time_point at;
    std::uint64_t pings = 0;
  };

  // The store's health as /healthz reports it: a ping at most once per health_ttl, and never two
  // at once. A flood of /healthz (a load balancer per thread, a misbehaving monitor, an
  // attacker) would otherwise send one PING per request to Redis, one per master on a Cluster.
  // A request that finds the last answer fresh, or another request pinging already, reports the
  // last answer. While a fallback store is degraded the answer is never fresh: the next ping to
  // reach the primary is what ends the degradation, so it is not put off.
  boost::asio::awaitable<ping_result> store_health() {
    {
      std::lock_guard lock(health_mutex_);
      const bool fresh = health_ && !degraded() &&
                         std::chrono::steady_clock::now() - health_->at < health_ttl;
      if (health_ && (pinging_ || fresh)) co_return *health_;
      pinging_ = true;
    }
    // However the ping ends (an exception included), the next request may ping again.
    struct done_pinging {
      session_api& api;
      ~done_pinging() {
        std::lock_guard lock(api.health_mutex_);
        api.pinging_ = false;
      }
    } done{*this};
    const auto start = std::chrono::steady_clock::now();
    auto [ec] = co_await mgr_.async_ping(tuple);
    const auto end = std::chrono::steady_clock::now();
    std::lock_guard lock(health_mutex_);
    const std::uint64_t pings = health_ ? health_->pings + 1 : 1;
    health_ = ping_result{ec, std::chrono::duration_cast<std::chrono::microseconds>(end - start),
                          end, pings};
    co_return *health_;
  }

  // With `details` false, only {"status"}: the store's errors, latency and topology (server
  // addresses) and the counters are for operators, not for whoever can reach the port.
  boost::asio::awaitable<response> healthz(const request& req, bool details) {
    const ping_result health = co_await store_health();
    const boost::system::error_code ec = health.ec;
    boost::json::object store;
    store["kind"] = store_name_;
    store["ok"] = !ec;
    store["latency_us"] = health.latency.count();
    store["checked_ms_ago"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - health.at)
                                  .count();
    store["pings"] = health.pings;
    if (ec) store["error"] = ec.message();
    boost::json::object body;
    body["status"] = ec ? "unavailable" : "ok";
    const bhttp::status st = ec ? bhttp::status::service_unavailable : bhttp::status::ok;
    if (!details) co_return json_response(req, st, body);
    body["store"] = std::move(store);
    body["degraded"] = degraded();
    if (auto t = topology(); !t.is_null()) body["topology"] = std::move(t);
    // Every counter by name: session_stats is described (websession/metrics.hpp).
    body["stats"] = boost::json::value_from(mgr_.stats());
    body["audit_write_errors"] = audit_.write_errors();
    co_return json_response(req, st, body);
  }

  static constexpr std::chrono::seconds health_ttl{1};

  Manager& mgr_;
  // The glue's options, the same for with_session and fresh_session (no client binding here).
  const websession::http::glue_options glue_;
  // store_health's last answer, shared by every thread.
  std::mutex health_mutex_;
  std::optional<ping_result> health_;
  bool pinging_ = false;
  audit_log& audit_;
  std::string store_name_;
  healthz_details details_;
  identity_api<Manager> identity_;
};

}  // namespace example
