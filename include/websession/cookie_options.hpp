// SPDX-License-Identifier: BSL-1.0
// How the session cookie is written: its name, scope and attributes, with the validation every
// Set-Cookie of them passes. Apart from options.hpp (which reads the environment) so that the
// cookie code needs nothing but this.
#pragma once

#include <websession/detail/cookie_syntax.hpp>

#include <stdexcept>
#include <string>

namespace websession {

/// The SameSite attribute of the session cookie.
enum class same_site { strict, lax, none };

/// How the session cookie is written (used by the HTTP glue).
struct cookie_options {
  /// The `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain, so a sibling
  /// subdomain cannot plant or overwrite the cookie.
  std::string name = "__Host-session";
  std::string path = "/";
  /// Empty: host-only cookie (required by the `__Host-` prefix).
  std::string domain;
  bool secure = true;
  bool http_only = true;
  websession::same_site same_site = same_site::lax;
  /// true: the cookie carries Max-Age and Expires (up to the absolute deadline, at most 400
  /// days), so it survives a browser restart. false: neither is written, so the browser drops
  /// the cookie when its session ends; the server-side idle and absolute deadlines apply either
  /// way. The deletion cookie always has Max-Age=0.
  bool persistent = true;

  /// Whether the cookie carries the Secure attribute: `secure`, or SameSite=None (which browsers
  /// only accept with Secure).
  bool effective_secure() const noexcept { return secure || same_site == same_site::none; }

  /// The rules every Set-Cookie of these options must follow; make_set_cookie applies exactly
  /// these, so options that pass never fail per request. Throws std::invalid_argument naming the
  /// field if `name` is not a non-empty RFC 7230 token, `path` is neither empty nor a '/'-led
  /// string without CTLs, non-ASCII or ';', `domain` is neither empty nor an ASCII host name of
  /// at most 253 characters, a `__Host-` name (any letter case, as browsers match it) lacks
  /// Secure, Path=/ or has a domain, or a `__Secure-` name (any case) lacks Secure.
  void validate() const {
    if (name.empty() || !detail::all_of(name, detail::token_chars))
      throw std::invalid_argument(
          "websession options: cookie.name must be a non-empty RFC 7230 token (letters, digits "
          "and !#$%&'*+-.^_`|~; no spaces, separators, control or non-ASCII bytes)");
    if (!path.empty() && !detail::valid_cookie_path(path))
      throw std::invalid_argument(
          "websession options: cookie.path must be empty or start with '/' and hold no ';', "
          "control or non-ASCII bytes");
    if (!domain.empty() && !detail::valid_cookie_domain(domain))
      throw std::invalid_argument(
          "websession options: cookie.domain must be empty or an ASCII host name (letters, "
          "digits, '-' and '.'; at most 253 characters; IDNs in punycode)");
    const bool sec = effective_secure();
    if (detail::starts_with_icase(name, "__host-") && (!sec || path != "/" || !domain.empty()))
      throw std::invalid_argument(
          "websession options: a __Host- cookie.name (prefix in any letter case) needs "
          "cookie.secure, cookie.path \"/\" and no cookie.domain");
    if (detail::starts_with_icase(name, "__secure-") && !sec)
      throw std::invalid_argument(
          "websession options: a __Secure- cookie.name (prefix in any letter case) needs "
          "cookie.secure");
  }
};

}  // namespace websession
