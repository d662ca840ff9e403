// SPDX-License-Identifier: BSL-1.0
// RFC 6265 cookies without I/O: parsing the Cookie request header (§4.2, §5.4) and building the
// Set-Cookie values of the session cookie (§4.1), including the __Host- / __Secure- prefix rules.
#pragma once

#include <websession/clock.hpp>
#include <websession/cookie_options.hpp>
#include <websession/detail/cookie_syntax.hpp>
#include <websession/error.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace websession::http {

/// Default limit on one Cookie header: browsers keep about 4 KB per cookie and a few cookies per
/// host, so 8 KB holds every honest header while bounding the work a request can cause.
inline constexpr std::size_t default_max_cookie_header = 8192;

/// Why a cookie pair was rejected.
enum class cookie_defect : std::uint8_t {
  none,              ///< a valid pair
  missing_equals,    ///< no '=' (e.g. `; flag;`)
  empty_name,        ///< `=value`
  bad_name,          ///< not an RFC 7230 token (whitespace, separators, CTLs, non-ASCII)
  bad_value,         ///< a byte outside cookie-octet: CTL, space, '"', ',', ';', '\\', non-ASCII
  unbalanced_quote,  ///< a value that opens a quote without closing it, or closes one never opened
};

/// One `name=value` pair of a Cookie header. The views point into the parsed header string and
/// are valid as long as it is.
struct cookie_pair {
  /// The name (cookie names are case-sensitive).
  std::string_view name;
  /// For valid pairs, the value with surrounding double quotes removed. For invalid pairs, the
  /// raw text after the first '=' (empty if there is none), for diagnostics only: never trust it.
  std::string_view value;
  cookie_defect defect = cookie_defect::none;

  bool valid() const noexcept { return defect == cookie_defect::none; }
};

namespace detail {

// The shared character classes and attribute rules (websession/detail/cookie_syntax.hpp).
using websession::detail::all_of;
using websession::detail::cookie_octets;
using websession::detail::starts_with_icase;
using websession::detail::token_chars;
using websession::detail::valid_cookie_domain;
using websession::detail::valid_cookie_path;

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Classifies one non-empty, trimmed segment between semicolons.
inline cookie_pair parse_cookie_pair(std::string_view seg) noexcept {
  const std::size_t eq = seg.find('=');
  if (eq == std::string_view::npos) return {seg, {}, cookie_defect::missing_equals};
  const std::string_view name = seg.substr(0, eq);
  std::string_view value = seg.substr(eq + 1);
  if (name.empty()) return {name, value, cookie_defect::empty_name};
  // Strict on purpose: a conforming user agent never puts whitespace around '=', so `a = 1`
  // did not come from one.
  if (!all_of(name, token_chars)) return {name, value, cookie_defect::bad_name};
  const bool opens = !value.empty() && value.front() == '"';
  const bool closes = value.size() >= (opens ? 2u : 1u) && value.back() == '"';
  if (opens != closes) return {name, value, cookie_defect::unbalanced_quote};
  const std::string_view inner = opens ? value.substr(1, value.size() - 2) : value;
  if (!all_of(inner, cookie_octets)) return {name, value, cookie_defect::bad_value};
  return {name, inner, cookie_defect::none};
}

// Calls f(cookie_pair) for each non-empty segment, in order, until f returns true.
template <class F>
void for_each_cookie(std::string_view header, F&& f) {
  std::size_t pos = 0;
  for (;;) {
    const std::size_t semi = header.find(';', pos);
    const std::size_t end = semi == std::string_view::npos ? header.size() : semi;
    // Empty segments (`a=1;`, `a=1;;b=2`) are not pairs at all: skipped, not reported.
    const std::string_view seg = trim_ows(header.substr(pos, end - pos));
    if (!seg.empty() && f(parse_cookie_pair(seg))) return;
    if (semi == std::string_view::npos) return;
    pos = semi + 1;
  }
}

// Browsers cap Max-Age and Expires at 400 days (RFC 6265bis §5.5); capping here too keeps
// `now + max_age` far from overflow.
inline constexpr std::chrono::seconds max_cookie_age = std::chrono::hours(24 * 400);

// Checks the options and writes `name=value; Path; Domain` to `out`. Returns whether Secure must be
// written. Throws std::invalid_argument naming the rule that `o` or `value` breaks.
inline bool start_set_cookie(const cookie_options& o, std::string_view value, std::string& out) {
  // The same rules as options::validate(), so options that validate never fail here.
  o.validate();
  if (!all_of(value, cookie_octets))
    throw std::invalid_argument("websession cookie: the value must consist of cookie-octets");
  // Browsers reject SameSite=None without Secure, so None implies it.
  const bool secure = o.effective_secure();

  out.reserve(o.name.size() + value.size() + o.path.size() + o.domain.size() + 120);
  out.append(o.name).append("=").append(value);
  if (!o.path.empty()) out.append("; Path=").append(o.path);
  if (!o.domain.empty()) out.append("; Domain=").append(o.domain);
  return secure;
}

inline void finish_set_cookie(const cookie_options& o, bool secure, std::string& out) {
  if (secure) out += "; Secure";
  if (o.http_only) out += "; HttpOnly";
  switch (o.same_site) {
    case websession::same_site::strict: out += "; SameSite=Strict"; break;
    case websession::same_site::lax: out += "; SameSite=Lax"; break;
    case websession::same_site::none: out += "; SameSite=None"; break;
  }
}

}  // namespace detail

/// True if `name` can be a cookie name: a non-empty RFC 7230 token.
inline bool is_cookie_name(std::string_view name) noexcept {
  return !name.empty() && detail::all_of(name, detail::token_chars);
}

/// True if `value` can be sent unquoted as a cookie value: only RFC 6265 cookie-octets (no
/// CTLs, whitespace, '"', ',', ';', '\\' or non-ASCII bytes). The empty value qualifies.
inline bool is_cookie_value(std::string_view value) noexcept {
  return detail::all_of(value, detail::cookie_octets);
}

/// Parses a Cookie request header value: `name=value` pairs separated by ';' and optional
/// spaces or tabs. Every pair is returned, in header order, repeated names included; a value in
/// double quotes is returned without them. A pair that breaks RFC 6265's grammar is returned too,
/// marked with its defect (check valid(); see cookie_defect), so it can be skipped and counted;
/// the pairs around it are unaffected. Empty segments (`a=1;`, `;;`) are ignored.
/// The views point into `header`.
///
/// Errors: error::too_large when header.size() > max_size (nothing is parsed). Throws only
/// std::bad_alloc.
inline boost::system::result<std::vector<cookie_pair>> parse_cookie_header(
    std::string_view header, std::size_t max_size = default_max_cookie_header) {
  if (header.size() > max_size) return make_error_code(error::too_large);
  std::vector<cookie_pair> pairs;
  detail::for_each_cookie(header, [&](const cookie_pair& p) {
    pairs.push_back(p);
    return false;
  });
  return pairs;
}

/// The value of the first valid pair named `name` (case-sensitive) in the Cookie header value
/// `header`, quotes removed; nullopt if there is none, or if header.size() > max_size. Invalid
/// pairs are skipped, so `a=bad"; a=ok` finds "ok". The view points into `header`. No allocation.
inline std::optional<std::string_view> find_cookie(
    std::string_view header, std::string_view name,
    std::size_t max_size = default_max_cookie_header) noexcept {
  if (header.size() > max_size) return std::nullopt;
  std::optional<std::string_view> found;
  detail::for_each_cookie(header, [&](const cookie_pair& p) {
    if (p.valid() && p.name == name) found = p.value;
    return found.has_value();
  });
  return found;
}

/// `t` as an IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT", the only date
/// format Expires should carry. Sub-second parts are dropped. Throws only std::bad_alloc.
inline std::string format_http_date(time_point t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd{day};
  const hh_mm_ss hms{secs - day};
  static constexpr const char* week[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                              week[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                              month[static_cast<unsigned>(ymd.month()) - 1],
                              static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                              static_cast<int>(hms.minutes().count()),
                              static_cast<int>(hms.seconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

/// A Set-Cookie header value for cookie `o.name` holding `value`:
/// `name=value; Path=..; Domain=..; Max-Age=N; Expires=<IMF-fixdate>; Secure; HttpOnly;
/// SameSite=..`. Path and Domain are written when non-empty. Without `max_age`, or when
/// `o.persistent` is false, the cookie is a browser-session cookie (no Max-Age, no Expires);
/// otherwise Max-Age is max_age clamped to [0, 400 days] (browsers cap it there anyway) and
/// Expires is `now` plus that, for clients that predate Max-Age. SameSite=None always writes Secure, which browsers require with it.
///
/// Throws std::invalid_argument if the name is not a token, `value` holds a byte outside
/// cookie-octet (it is never quoted or escaped here), the path does not start with '/' or holds a
/// CTL or ';', the domain is not an ASCII host name, a `__Host-` cookie (prefix matched
/// case-insensitively, as browsers do) lacks Secure, has a path other than "/" or any domain, or
/// a `__Secure-` cookie lacks Secure.
inline std::string make_set_cookie(const cookie_options& o, std::string_view value,
                                   std::optional<std::chrono::seconds> max_age,
                                   time_point now = std::chrono::system_clock::now()) {
  std::string out;
  const bool secure = detail::start_set_cookie(o, value, out);
  if (max_age && o.persistent) {
    const std::chrono::seconds age =
        std::clamp(*max_age, std::chrono::seconds::zero(), detail::max_cookie_age);
    out.append("; Max-Age=").append(std::to_string(age.count()));
    out.append("; Expires=").append(format_http_date(now + age));
  }
  detail::finish_set_cookie(o, secure, out);
  return out;
}

/// A Set-Cookie header value that makes browsers drop cookie `o.name` (logout): an empty value,
/// `Max-Age=0` and `Expires=Thu, 01 Jan 1970 00:00:00 GMT`, with the same Path, Domain and
/// flags as make_set_cookie writes, because a browser only replaces a cookie whose name, path
/// and domain match, and refuses a `__Host-` / `__Secure-` cookie without Secure even when it
/// deletes one. Throws std::invalid_argument in the cases make_set_cookie does.
inline std::string make_delete_cookie(const cookie_options& o) {
  std::string out;
  const bool secure = detail::start_set_cookie(o, {}, out);
  out += "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
  detail::finish_set_cookie(o, secure, out);
  return out;
}

}  // namespace websession::http
