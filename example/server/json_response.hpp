// SPDX-License-Identifier: BSL-1.0
// The message types of the example server and its JSON responses: every answer, errors
// included, is a JSON document with the headers a session-bearing response needs.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace example {

namespace bhttp = boost::beast::http;

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

/// `body` as the JSON answer to a request of HTTP `version`. Cache-Control: no-store because
/// the answers carry per-session state (and Set-Cookie) that no shared cache may keep.
inline response json_response(unsigned version, bool keep_alive, bhttp::status status,
                              const boost::json::value& body) {
  response res{status, version};
  res.set(bhttp::field::server, "websession-example");
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(keep_alive);
  res.body() = boost::json::serialize(body);
  res.body() += '\n';
  res.prepare_payload();
  return res;
}

inline response json_response(const request& req, bhttp::status status,
                              const boost::json::value& body) {
  return json_response(req.version(), req.keep_alive(), status, body);
}

/// {"error": message}.
inline response json_error(unsigned version, bool keep_alive, bhttp::status status,
                           std::string_view message) {
  boost::json::object body;
  body["error"] = message;
  return json_response(version, keep_alive, status, body);
}

inline response json_error(const request& req, bhttp::status status, std::string_view message) {
  return json_error(req.version(), req.keep_alive(), status, message);
}

}  // namespace example
