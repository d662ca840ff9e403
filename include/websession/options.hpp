// SPDX-License-Identifier: BSL-1.0
// Runtime options of a session manager, with documented defaults and from_env() so a deployment
// can tune timeouts and cookie settings without recompiling.
#pragma once

#include <websession/cookie_options.hpp>
#include <websession/detail/env.hpp>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession {
namespace detail {

/// Throws std::invalid_argument naming `field` unless 0 < d <= max_option_duration (400 days),
/// or 0 <= d <= max_option_duration when `zero_allowed`. Compares in d's own type, so no
/// value of d can overflow the check. Apply it to every duration field in options::validate().
template <class Rep, class Period>
void check_duration_option(const char* field, std::chrono::duration<Rep, Period> d,
                           bool zero_allowed = false) {
  using dur = std::chrono::duration<Rep, Period>;
  const dur max = std::chrono::duration_cast<dur>(max_option_duration);
  if (d < dur::zero() || (!zero_allowed && d == dur::zero()) || d > max)
    throw std::invalid_argument(std::string("websession options: ") + field + " must be " +
                                (zero_allowed ? "between 0 and" : "positive and at most") +
                                " 400 days");
}

}  // namespace detail

/// Options of basic_session_manager. Every field has a safe default.
///
/// Environment variables read by from_env() (durations: 1500ms, 30s, 15m, 8h, 2d or bare
/// seconds, each at most 400d, options::max_duration; sizes: 4096, 64k, 16M; booleans:
/// true/false/1/0/yes/no/on/off):
///
/// | variable                          | field                 | default        |
/// |-----------------------------------|-----------------------|----------------|
/// | WEBSESSION_IDLE_TIMEOUT           | idle_timeout          | 30m            |
/// | WEBSESSION_ANONYMOUS_IDLE_TIMEOUT | anonymous_idle_timeout| 5m             |
/// | WEBSESSION_MAX_SESSIONS_PER_USER  | max_sessions_per_user | 64             |
/// | WEBSESSION_ABSOLUTE_TIMEOUT       | absolute_timeout      | 8h             |
/// | WEBSESSION_TOUCH_INTERVAL         | touch_interval        | 60s            |
/// | WEBSESSION_KEY_PREFIX             | key_prefix            | websession:    |
/// | WEBSESSION_MAX_VALUE_BYTES        | max_value_bytes       | 1M             |
/// | WEBSESSION_MAX_UPDATE_ATTEMPTS    | max_update_attempts   | 64             |
/// | WEBSESSION_COOKIE_NAME            | cookie.name           | __Host-session |
/// | WEBSESSION_COOKIE_PATH            | cookie.path           | /              |
/// | WEBSESSION_COOKIE_DOMAIN          | cookie.domain         | (empty)        |
/// | WEBSESSION_COOKIE_SECURE          | cookie.secure         | true           |
/// | WEBSESSION_COOKIE_HTTP_ONLY       | cookie.http_only      | true           |
/// | WEBSESSION_COOKIE_SAMESITE        | cookie.same_site      | lax            |
/// | WEBSESSION_COOKIE_PERSISTENT      | cookie.persistent     | true           |
struct options {
  /// A session bound to a user (bind_user) that is not used for this long expires (sliding).
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(30);
  /// The idle timeout of a session without a bound user (a visitor before login): shorter, so
  /// that cookie-less traffic cannot keep a store full for long. Once bind_user and the login
  /// rotation have run, idle_timeout applies.
  std::chrono::milliseconds anonymous_idle_timeout = std::chrono::minutes(5);
  /// At most this many live sessions per user: a login beyond it destroys the user's least
  /// recently used sessions (the observer is told: session_event_kind::evicted), so that no user
  /// can pile up sessions without bound (each costs memory, and revoking them costs time).
  /// 0: no limit.
  std::size_t max_sessions_per_user = 64;
  /// A session expires this long after creation, however active (OWASP: bound the lifetime).
  std::chrono::milliseconds absolute_timeout = std::chrono::hours(8);
  /// Sliding expiry rewrites an unchanged session at most this often, so read-mostly traffic
  /// costs one store round trip per request.
  std::chrono::milliseconds touch_interval = std::chrono::seconds(60);
  /// Prefix of every storage key (lets several applications share one Redis). A user's index
  /// is named `key_prefix + "user:{" tag "}" + hash`, so another application's prefix must not
  /// be this one plus "user:": validate() refuses a prefix that ends with "user:" or with
  /// "user:{" and three characters and "}", whose storage keys would have the shape of such
  /// index names (see docs/security.md, "Several applications on one store").
  std::string key_prefix = "websession:";
  /// Largest serialized session; larger saves fail with error::too_large, larger stored
  /// values are rejected as malformed on load.
  std::size_t max_value_bytes = std::size_t{1} << 20;
  /// How often async_update tries before it gives up with error::conflict.
  unsigned max_update_attempts = 64;
  cookie_options cookie;

  /// The longest value of any duration option (400 days, the browsers' cap on a cookie's
  /// lifetime); validate() and from_env() refuse longer ones.
  static constexpr std::chrono::milliseconds max_duration = detail::max_option_duration;

  /// Throws std::invalid_argument naming the field if the options cannot work together.
  void validate() const {
    detail::check_duration_option("idle_timeout", idle_timeout);
    detail::check_duration_option("absolute_timeout", absolute_timeout);
    detail::check_duration_option("anonymous_idle_timeout", anonymous_idle_timeout);
    detail::check_duration_option("touch_interval", touch_interval, /*zero_allowed=*/true);
    if (touch_interval > idle_timeout || touch_interval > anonymous_idle_timeout)
      throw std::invalid_argument(
          "websession options: touch_interval must be between 0 and both idle timeouts");
    if (max_value_bytes == 0)
      throw std::invalid_argument("websession options: max_value_bytes must be positive");
    if (max_update_attempts == 0)
      throw std::invalid_argument("websession options: max_update_attempts must be positive");
    if (nests_index_names(key_prefix))
      throw std::invalid_argument(
          "websession options: key_prefix must not end with \"user:\" or \"user:{...}\": "
          "another prefix's user index names would look like this prefix's session keys");
    // Stricter than what make_set_cookie needs (it writes Secure itself for SameSite=None),
    // so a deployment states Secure explicitly.
    if (cookie.same_site == same_site::none && !cookie.secure)
      throw std::invalid_argument("websession options: SameSite=None requires cookie.secure");
    cookie.validate();
  }

  /// Whether `prefix` is another prefix P plus "user:" (or plus "user:{" tag "}"): then P's user
  /// index names (P + "user:{" tag "}" + 43 characters) have the shape of the session keys made
  /// with `prefix` (is_storage_key), so that an administrator's async_destroy_key through one
  /// application could delete the other's indexes and make its "log out everywhere" miss
  /// sessions.
  static bool nests_index_names(std::string_view prefix) noexcept {
    constexpr std::string_view user = "user:";
    if (prefix.ends_with(user)) return true;
    // "user:{" + a 3-character tag + "}": the untagged (legacy) session keys of that prefix.
    return prefix.size() >= user.size() + 5 && prefix.back() == '}' &&
           prefix.substr(prefix.size() - user.size() - 5, user.size() + 1) == "user:{";
  }

  /// The defaults overridden by WEBSESSION_* variables (table above), validated. Throws
  /// std::invalid_argument naming the variable when a value cannot be parsed.
  static options from_env(const env_lookup& env = detail::default_env) {
    options o;
    detail::env_duration(env, "WEBSESSION_IDLE_TIMEOUT", o.idle_timeout);
    detail::env_duration(env, "WEBSESSION_ANONYMOUS_IDLE_TIMEOUT", o.anonymous_idle_timeout);
    detail::env_size(env, "WEBSESSION_MAX_SESSIONS_PER_USER", o.max_sessions_per_user);
    detail::env_duration(env, "WEBSESSION_ABSOLUTE_TIMEOUT", o.absolute_timeout);
    detail::env_duration(env, "WEBSESSION_TOUCH_INTERVAL", o.touch_interval);
    detail::env_string(env, "WEBSESSION_KEY_PREFIX", o.key_prefix);
    detail::env_size(env, "WEBSESSION_MAX_VALUE_BYTES", o.max_value_bytes);
    detail::env_size(env, "WEBSESSION_MAX_UPDATE_ATTEMPTS", o.max_update_attempts);
    detail::env_string(env, "WEBSESSION_COOKIE_NAME", o.cookie.name);
    detail::env_string(env, "WEBSESSION_COOKIE_PATH", o.cookie.path);
    detail::env_string(env, "WEBSESSION_COOKIE_DOMAIN", o.cookie.domain);
    detail::env_bool(env, "WEBSESSION_COOKIE_SECURE", o.cookie.secure);
    detail::env_bool(env, "WEBSESSION_COOKIE_HTTP_ONLY", o.cookie.http_only);
    detail::env_bool(env, "WEBSESSION_COOKIE_PERSISTENT", o.cookie.persistent);
    if (auto v = detail::env_value(env, "WEBSESSION_COOKIE_SAMESITE")) {
      if (*v == "strict" || *v == "Strict") o.cookie.same_site = same_site::strict;
      else if (*v == "lax" || *v == "Lax") o.cookie.same_site = same_site::lax;
      else if (*v == "none" || *v == "None") o.cookie.same_site = same_site::none;
      else detail::bad_env("WEBSESSION_COOKIE_SAMESITE", *v, "one of strict, lax, none");
    }
    o.validate();
    return o;
  }
};

}  // namespace websession
