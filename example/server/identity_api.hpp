// SPDX-License-Identifier: BSL-1.0
// The identity endpoints of the example server, for any session manager type: login (with
// passwords from --users, or the demo login), "where you're logged in" (GET /sessions), revoke
// one session, log out the others, re-authentication and the sensitive action that needs it.
// session_api routes to them; they run inside its with_session like every endpoint.
//
// Issue 27 gives the manager what a part of this needs (a stable handle per session, device,
// coarse address, auth time and method, remember-me, step-up). Until it lands, each place that
// waits for it is marked TODO(issue 27): the listing reports those fields as null (never made
// up), /reauth checks the password and then answers 501, /sensitive answers 501.
#pragma once

#include "api_support.hpp"
#include "audit_log.hpp"
#include "json_response.hpp"
#include "passwords.hpp"

#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <openssl/crypto.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace example {

/// What the identity endpoints are configured with.
struct identity_options {
  /// Checks /login and /reauth passwords; null: the demo login (any user name, no password).
  /// Must outlive the API.
  password_checker* passwords = nullptr;
  /// How recent an authentication POST /sensitive needs (--recent-auth).
  std::chrono::seconds recent_auth = std::chrono::minutes(10);
};

/// The identity endpoints over `Manager` (a websession::basic_session_manager). Each takes the
/// request and its session (loaded by with_session) and answers JSON; errors are
/// {"error": text}. Every state-changing endpoint but /login needs X-CSRF-Token (else 403) and
/// a logged-in session (else 401 "not logged in").
///
/// | method | path             | body                         | answer                            |
/// |--------|------------------|------------------------------|-----------------------------------|
/// | POST   | /login           | {"user", "password",         | {"user", "csrf"}; rotates the id. |
/// |        |                  |  "remember"}                 | 401 "wrong user name or password" |
/// | GET    | /sessions        |                              | {"user", "sessions": [...]}, most |
/// |        |                  |                              | recently used first               |
/// | POST   | /sessions/revoke | {"handle"}                   | {"revoked": 1}; 404 "no such      |
/// |        |                  |                              | session" (unknown or another      |
/// |        |                  |                              | user's); 400 for this session     |
/// | POST   | /logout-others   |                              | {"revoked": n}: all but this one  |
/// | POST   | /reauth          | {"password"}                 | 401 "wrong password"; then 501    |
/// |        |                  |                              | until issue 27                    |
/// | POST   | /sensitive       |                              | 501 until issue 27; then 401      |
/// |        |                  |                              | "reauth_required" unless recent   |
///
/// A session in the listing: {"handle", "current", "created", "last_seen", "device", "address",
/// "auth_time", "method", "remembered"}; times in RFC 3339 UTC; null where the manager does not
/// record the field yet.
///
/// Bodies: Content-Type application/json only (else 415), a JSON object (else 400). "user": 1
/// to 128 bytes without control characters; "password": a string of 1 to 1024 bytes, required
/// with --users (ignored by the demo login); "remember": true or false if present. Else 400.
/// With --users, more than 64 password checks under way at once get 503 with Retry-After.
///
/// Thread safety: as session_api (the manager, the audit log and the checker lock what they
/// share; the options are read only).
template <class Manager>
class identity_api {
 public:
  using session = websession::session;

  /// `mgr`, `audit` and `opts.passwords` must outlive the API.
  identity_api(Manager& mgr, audit_log& audit, identity_options opts)
      : mgr_(mgr), audit_(audit), opts_(opts) {}

  /// Whether passwords are checked (--users) rather than the demo login.
  bool checks_passwords() const noexcept { return opts_.passwords != nullptr; }

  /// POST /login: checks the password (with --users), binds the user and rotates the id. Errors:
  /// 415/400 for the body, 401 for a wrong password or an unknown user (alike), 503 when too many
  /// checks are under way or the store fails, 409 if the session changed meanwhile.
  boost::asio::awaitable<response> login(const request& req, session& s) {
    boost::json::value body;
    if (auto refused = api::read_json_object(req, s, body)) co_return std::move(*refused);
    boost::json::object& obj = body.as_object();
    // Wiped however the handler ends: the parse tree holds a copy of the password.
    const wipe_on_exit wipe_body{obj};
    const boost::json::string* name = string_field(obj, "user");
    const boost::json::value* password = obj.if_contains("password");
    if (!name || (checks_passwords() && (!password || !password->is_string())))
      co_return api::refuse(req, s, bhttp::status::bad_request,
                            checks_passwords() ? "expected {\"user\": \"...\", \"password\": \"...\"}"
                                               : "expected {\"user\": \"...\"}");
    const std::string user(name->data(), name->size());
    if (const std::string_view p = user_name_problem(user); !p.empty())
      co_return api::refuse(req, s, bhttp::status::bad_request, "user " + std::string(p));
    if (password && !password->is_string())
      co_return api::refuse(req, s, bhttp::status::bad_request, "password must be a string");
    if (const boost::json::value* r = obj.if_contains("remember"); r && !r->is_bool())
      co_return api::refuse(req, s, bhttp::status::bad_request, "remember must be true or false");
    // TODO(issue 27): a remembered session (options::remember_*_timeout); today "remember" is
    // validated and every session keeps the usual timeouts.

    if (checks_passwords()) {
      std::optional<response> refused = co_await check_password(
          req, s, user, *password, "login_failed", "wrong user name or password");
      if (refused) co_return std::move(*refused);
    }
    mgr_.bind_user(s, user);
    // Session fixation: whoever knew the id before the login must not share the logged-in one.
    // TODO(issue 27): mgr_.mark_authenticated(s, method) (the rotation's auth time and method).
    auto [ec] = co_await mgr_.async_rotate(s, tuple);
    if (ec) co_return api::failed(req, s, ec);
    boost::json::object extra;
    extra["method"] = checks_passwords() ? "password" : "demo";
    audit_.write("login", s.storage_key(), user, std::move(extra));
    boost::json::object out;
    out["user"] = user;
    out["csrf"] = websession::csrf_token(s);
    co_return json_response(req, bhttp::status::ok, out);
  }

  /// POST /reauth: checks the logged-in user's password again. Errors: 403 (CSRF), 401 (not
  /// logged in; "wrong password"), 415/400 for the body, 503; 501 once the password is right,
  /// until issue 27.
  boost::asio::awaitable<response> reauth(const request& req, session& s) {
    if (auto refused = api::check_user_and_csrf(req, s)) co_return std::move(*refused);
    boost::json::value body;
    if (auto refused = api::read_json_object(req, s, body)) co_return std::move(*refused);
    boost::json::object& obj = body.as_object();
    const wipe_on_exit wipe_body{obj};
    const boost::json::value* password = obj.if_contains("password");
    if (!password || !password->is_string())
      co_return api::refuse(req, s, bhttp::status::bad_request, "expected {\"password\": \"...\"}");
    if (checks_passwords()) {
      std::optional<response> refused = co_await check_password(
          req, s, s.user(), *password, "reauth_failed", "wrong password");
      if (refused) co_return std::move(*refused);
    }
    // TODO(issue 27): mgr_.mark_authenticated(s, "password"), then 200 {"auth_time"}.
    co_return pending(req, s, "re-authentication needs the manager's mark_authenticated");
  }

  /// POST /sensitive: an action that needs a recent authentication. Errors: 403 (CSRF), 401 (not
  /// logged in); 501 until issue 27.
  boost::asio::awaitable<response> sensitive(const request& req, session& s) {
    if (auto refused = api::check_user_and_csrf(req, s)) co_return std::move(*refused);
    // TODO(issue 27): if (!mgr_.requires_recent_auth(s, opts_.recent_auth)) 401
    // {"error": "reauth_required"} (storing nothing); else do the action, 200 {"done": true}.
    co_return pending(req, s, "the step-up check needs the manager's requires_recent_auth");
  }

  /// GET /sessions: the logged-in user's live sessions, most recently used first. Errors: 401
  /// (not logged in), 503 (store).
  boost::asio::awaitable<response> sessions(const request& req, session& s) {
    if (s.user().empty()) co_return api::not_logged_in(req, s);
    auto [ec, list] = co_await mgr_.async_list_user(s.user(), tuple);
    if (ec) co_return api::failed(req, s, ec);
    boost::json::array items;
    // async_list_user gives the least recently used first.
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
      boost::json::object item;
      // TODO(issue 27): the session's stable handle (info.handle). Until then the storage key,
      // which the manager documents as the listing's handle for async_destroy_user_key: not a
      // secret (a hash of the id; the audit log has it too), but it changes at each rotation
      // and the issue wants neither it nor the id to be derivable from a handle.
      item["handle"] = it->storage_key;
      item["current"] = it->storage_key == s.storage_key();
      item["created"] = rfc3339(it->metadata.created);
      item["last_seen"] = rfc3339(it->metadata.last_seen);
      // TODO(issue 27): what the manager will record at creation and authentication.
      item["device"] = nullptr;
      item["address"] = nullptr;
      item["auth_time"] = nullptr;
      item["method"] = nullptr;
      item["remembered"] = nullptr;
      items.push_back(std::move(item));
    }
    boost::json::object out;
    out["user"] = s.user();
    out["sessions"] = std::move(items);
    co_return json_response(req, bhttp::status::ok, out);
  }

  /// POST /sessions/revoke: ends one other session of the logged-in user, at once. Errors: 403
  /// (CSRF), 401 (not logged in), 415/400 for the body (400 too for this session's own handle),
  /// 404 for a handle that is unknown, malformed or another user's, 503 (store).
  boost::asio::awaitable<response> revoke(const request& req, session& s) {
    if (auto refused = api::check_user_and_csrf(req, s)) co_return std::move(*refused);
    boost::json::value body;
    if (auto refused = api::read_json_object(req, s, body)) co_return std::move(*refused);
    const boost::json::string* handle = string_field(body.as_object(), "handle");
    if (!handle || handle->empty() || handle->size() > max_handle_size)
      co_return api::refuse(req, s, bhttp::status::bad_request, "expected {\"handle\": \"...\"}");
    const std::string_view h(handle->data(), handle->size());
    if (h == s.storage_key())
      co_return api::refuse(req, s, bhttp::status::bad_request,
                            "that is this session: use POST /logout");
    // TODO(issue 27): mgr_.async_revoke(user, handle).
    auto [ec, erased] = co_await mgr_.async_destroy_user_key(s.user(), h, tuple);
    // A handle not of the manager's shape is as unknown as one of another user's sessions.
    if (ec == websession::error::invalid_argument || (!ec && !erased))
      co_return api::refuse(req, s, bhttp::status::not_found, "no such session");
    if (ec) co_return api::failed(req, s, ec);
    boost::json::object extra;
    extra["by"] = s.storage_key();
    audit_.write("revoke", h, s.user(), std::move(extra));
    boost::json::object out;
    out["revoked"] = 1;
    co_return json_response(req, bhttp::status::ok, out);
  }

  /// POST /logout-others: ends every session of the logged-in user but this one. Not one
  /// atomic step: a session of the user created during the call may survive it. Errors: 403
  /// (CSRF), 401 (not logged in), 503 (store; those ended before the failure stay ended).
  boost::asio::awaitable<response> logout_others(const request& req, session& s) {
    if (auto refused = api::check_user_and_csrf(req, s)) co_return std::move(*refused);
    // TODO(issue 27): mgr_.async_revoke_others(user, s).
    auto [ec, list] = co_await mgr_.async_list_user(s.user(), tuple);
    if (ec) co_return api::failed(req, s, ec);
    std::size_t revoked = 0;
    for (const auto& info : list) {
      if (info.storage_key == s.storage_key()) continue;
      auto [destroy_ec, erased] =
          co_await mgr_.async_destroy_user_key(s.user(), info.storage_key, tuple);
      if (destroy_ec) co_return api::failed(req, s, destroy_ec);
      if (erased) ++revoked;
    }
    boost::json::object extra;
    extra["sessions"] = revoked;
    audit_.write("logout_others", s.storage_key(), s.user(), std::move(extra));
    boost::json::object out;
    out["revoked"] = revoked;
    co_return json_response(req, bhttp::status::ok, out);
  }

 private:
  static constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  static constexpr std::size_t max_handle_size = 256;

  // Wipes every string of a request body's top level when it goes out of scope.
  class wipe_on_exit {
   public:
    explicit wipe_on_exit(boost::json::object& obj) : obj_(obj) {}
    wipe_on_exit(const wipe_on_exit&) = delete;
    wipe_on_exit& operator=(const wipe_on_exit&) = delete;
    ~wipe_on_exit() {
      for (auto& kv : obj_)
        if (boost::json::string* str = kv.value().if_string())
          OPENSSL_cleanse(str->data(), str->size());
    }

   private:
    boost::json::object& obj_;
  };

  static const boost::json::string* string_field(const boost::json::object& obj,
                                                 std::string_view key) {
    const boost::json::value* v = obj.if_contains(key);
    return v ? v->if_string() : nullptr;
  }

  static response pending(const request& req, session& s, std::string_view what) {
    return api::refuse(req, s, bhttp::status::not_implemented,
                       "not implemented yet (issue 27): " + std::string(what));
  }

  // Checks `password` (a JSON string) for `user`: nullopt if it is theirs, else the answer (400
  // for a malformed password, 503 when too many checks are under way, 401 `wrong`, audited as
  // `failure_event`). The checker copies the password once, for the hashing thread, which
  // wipes it; the body's copy is the caller's (wipe_on_exit).
  boost::asio::awaitable<std::optional<response>> check_password(
      const request& req, session& s, std::string user, const boost::json::value& password,
      std::string_view failure_event, std::string_view wrong) {
    const boost::json::string& pw = password.get_string();
    if (const std::string_view p = password_problem(std::string_view(pw.data(), pw.size()));
        !p.empty())
      co_return api::refuse(req, s, bhttp::status::bad_request, "password " + std::string(p));
    const std::string who = user;
    auto [ec, ok] = co_await opts_.passwords->async_check(
        std::move(user), std::string_view(pw.data(), pw.size()), tuple);
    if (ec) {
      response res = api::refuse(req, s, bhttp::status::service_unavailable,
                                 "too many password checks at once, retry later");
      res.set(bhttp::field::retry_after, "1");
      co_return res;
    }
    if (ok) co_return std::nullopt;
    audit_.write(failure_event, s.storage_key(), who);
    co_return api::refuse(req, s, bhttp::status::unauthorized, wrong);
  }

  Manager& mgr_;
  audit_log& audit_;
  identity_options opts_;
};

}  // namespace example
