// SPDX-License-Identifier: BSL-1.0
// What the example server's endpoint classes (session_api.hpp, identity_api.hpp) share: the
// JSON answers of a refused request and of a failed session operation, the CSRF check, and
// JSON request bodies.
#pragma once

#include "json_response.hpp"

#include <websession/csrf.hpp>
#include <websession/http/beast.hpp>
#include <websession/session.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace example::api {

/// The value of `f` in `req`, empty if absent.
inline std::string_view header(const request& req, bhttp::field f) noexcept {
  const auto it = req.find(f);
  if (it == req.end()) return {};
  return std::string_view(it->value().data(), it->value().size());
}

/// 405 with Allow: `allow`.
inline response method_not_allowed(const request& req, std::string_view allow) {
  response res = json_error(req, bhttp::status::method_not_allowed, "method not allowed");
  res.set(bhttp::field::allow, allow);
  return res;
}

/// with_session's error-response hook: a session operation failed with `ec`; `st` is 503
/// (store; with Retry-After), 409 (changed or ended meanwhile) or 500.
inline response session_error_response(const request& req, const boost::system::error_code& ec,
                                       bhttp::status st) {
  response res = json_error(req, st, websession::http::session_error_text(ec));
  if (st == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "1");
  return res;
}

/// A handler's own session operation failed: the same answer, and nothing stored. After a
/// failed rotation, storing the session would bind the user to the old, unrotated id.
inline response failed(const request& req, websession::session& s,
                       const boost::system::error_code& ec) {
  s.skip_save();
  return session_error_response(req, ec, websession::http::session_error_status(ec));
}

/// A refused request leaves the session as it was: not even a touch.
inline response refuse(const request& req, websession::session& s, bhttp::status st,
                       std::string_view message) {
  s.skip_save();
  return json_error(req, st, message);
}

/// 401 {"error": "not logged in"}.
inline response not_logged_in(const request& req, websession::session& s) {
  return refuse(req, s, bhttp::status::unauthorized, "not logged in");
}

/// Whether `req` carries a valid X-CSRF-Token for `s`. A fresh session (no or bad cookie) has
/// a secret nobody has seen, so it never verifies.
inline bool csrf_ok(const request& req, const websession::session& s) {
  const auto it = req.find("X-CSRF-Token");
  if (it == req.end() || s.is_new()) return false;
  return websession::verify_csrf(s, std::string_view(it->value().data(), it->value().size()));
}

/// 403 for a missing or invalid X-CSRF-Token.
inline response csrf_failure(const request& req, websession::session& s) {
  return refuse(req, s, bhttp::status::forbidden, "missing or invalid X-CSRF-Token");
}

/// For a state-changing request of a logged-in user: 403 without a valid X-CSRF-Token, else 401
/// if no user is logged in to `s`, else nullopt (go ahead).
inline std::optional<response> check_user_and_csrf(const request& req, websession::session& s) {
  if (!csrf_ok(req, s)) return csrf_failure(req, s);
  if (s.user().empty()) return not_logged_in(req, s);
  return std::nullopt;
}

/// The body of `req` as a JSON object in `body`, or the refusal (nothing stored): 415 for
/// another Content-Type than application/json, which a cross-site HTML form cannot send (login
/// CSRF); 400 for malformed JSON or not an object. Nullopt: go ahead.
inline std::optional<response> read_json_object(const request& req, websession::session& s,
                                                boost::json::value& body) {
  std::string_view type = header(req, bhttp::field::content_type);
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower(type);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (lower != "application/json")
    return refuse(req, s, bhttp::status::unsupported_media_type,
                  "expected Content-Type: application/json");
  boost::system::error_code ec;
  body = boost::json::parse(req.body(), ec);
  if (ec) return refuse(req, s, bhttp::status::bad_request, "malformed JSON: " + ec.message());
  if (!body.is_object()) return refuse(req, s, bhttp::status::bad_request, "expected a JSON object");
  return std::nullopt;
}

}  // namespace example::api
