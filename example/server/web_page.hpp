// SPDX-License-Identifier: BSL-1.0
// The example server's web page: log in, see where you're logged in, revoke a session, log out
// the others, re-authenticate for a sensitive action, log out. Plain HTML, CSS and JavaScript
// under example/web/ (no framework, no build step), compiled into the binary by
// example/web/embed.cmake: nothing to install beside the server, no file system path that a
// request can name, and the page always matches the API of the binary that serves it.
#pragma once

#include "json_response.hpp"

#include <web_assets.hpp>  // generated from example/web/ (example/web/embed.cmake)

#include <string_view>

namespace example {

/// One file of the page.
struct web_asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};

/// The file served at `path` (/, /app.js, /app.css), or null.
inline const web_asset* find_web_asset(std::string_view path) noexcept {
  static constexpr web_asset assets[] = {
      {"/", "text/html; charset=utf-8", web_assets::index_html},
      {"/app.js", "text/javascript; charset=utf-8", web_assets::app_js},
      {"/app.css", "text/css; charset=utf-8", web_assets::app_css},
  };
  for (const web_asset& a : assets)
    if (a.path == path) return &a;
  return nullptr;
}

/// `a` as the answer to `req` (a GET). The Content-Security-Policy allows scripts, styles and
/// fetches from this origin only (no inline script: an injected one does not run) and no
/// framing (clickjacking); no-cache makes a browser revalidate, so a new binary's page is used.
inline response web_asset_response(const request& req, const web_asset& a) {
  response res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::server, "websession-example");
  res.set(bhttp::field::content_type, a.content_type);
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
  res.keep_alive(req.keep_alive());
  res.body() = a.body;
  res.prepare_payload();
  return res;
}

}  // namespace example
