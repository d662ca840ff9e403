// SPDX-License-Identifier: BSL-1.0
// Parsing of WEBSESSION_* environment values: durations, sizes, booleans, each failure an
// exception naming the variable, because a misconfigured server should refuse to start.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession {

/// How options read the environment; tests pass their own.
using env_lookup = std::function<const char*(const char* name)>;

namespace detail {

inline const char* default_env(const char* name) { return std::getenv(name); }

// The longest duration option: 400 days, the cap browsers put on a cookie's lifetime
// (RFC 6265bis), so no session outlives its cookie by configuration. It keeps `now + d` on the
// nanosecond time_point of system_clock (which overflows about 292 years after 1970) far from
// overflow, with room for sums of several such durations.
inline constexpr std::chrono::milliseconds max_option_duration = std::chrono::hours(24 * 400);

[[noreturn]] inline void bad_env(std::string_view name, std::string_view value,
                                 std::string_view expected) {
  throw std::invalid_argument(std::string(name) + "=\"" + std::string(value) +
                              "\" is invalid: expected " + std::string(expected));
}

inline std::optional<std::string_view> env_value(const env_lookup& env, const char* name) {
  const char* v = env ? env(name) : nullptr;
  if (!v) return std::nullopt;
  return std::string_view(v);
}

inline std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

/// "1500ms", "30s", "15m", "8h", "2d", or a bare number of seconds. nullopt if malformed or if
/// the value overflows int64 milliseconds (never wraps).
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  auto n = parse_u64(s.substr(0, digits));
  if (!n) return std::nullopt;
  std::string_view unit = s.substr(digits);
  std::uint64_t ms_per = 0;
  if (unit == "ms") ms_per = 1;
  else if (unit.empty() || unit == "s") ms_per = 1000;
  else if (unit == "m") ms_per = 60'000;
  else if (unit == "h") ms_per = 3'600'000;
  else if (unit == "d") ms_per = 86'400'000;
  else return std::nullopt;
  if (*n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / ms_per)
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*n * ms_per));
}

/// "4096", "64k", "16M", "1G" (binary multiples).
inline std::optional<std::uint64_t> parse_size(std::string_view s) {
  std::uint64_t mul = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mul = 1ull << 10; break;
      case 'm': case 'M': mul = 1ull << 20; break;
      case 'g': case 'G': mul = 1ull << 30; break;
      default: break;
    }
    if (mul != 1) s.remove_suffix(1);
  }
  auto n = parse_u64(s);
  if (!n || *n > std::numeric_limits<std::uint64_t>::max() / mul) return std::nullopt;
  return *n * mul;
}

inline std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  return std::nullopt;
}

// Reads a duration of at most max_option_duration (400d): larger values, and values that would
// overflow (in parsing or in `out`'s representation), are refused, never wrapped.
template <class Rep, class Period>
void env_duration(const env_lookup& env, const char* name, std::chrono::duration<Rep, Period>& out) {
  using target = std::chrono::duration<Rep, Period>;
  if (auto v = env_value(env, name)) {
    auto d = parse_duration(*v);
    if (!d) bad_env(name, *v, "a duration such as 1500ms, 30s, 15m, 8h, 2d");
    // Checked in floating point first, so a `target` too narrow for the value cannot wrap.
    if (*d > max_option_duration ||
        std::chrono::duration<double, Period>(*d).count() >
            static_cast<double>(std::numeric_limits<Rep>::max()))
      bad_env(name, *v, "a duration of at most 400d (9600h)");
    out = std::chrono::duration_cast<target>(*d);
  }
}

template <class Int>
void env_size(const env_lookup& env, const char* name, Int& out) {
  if (auto v = env_value(env, name)) {
    auto n = parse_size(*v);
    if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<Int>::max()))
      bad_env(name, *v, "a non-negative integer, optionally with a k, M or G suffix");
    out = static_cast<Int>(*n);
  }
}

inline void env_bool(const env_lookup& env, const char* name, bool& out) {
  if (auto v = env_value(env, name)) {
    auto b = parse_bool(*v);
    if (!b) bad_env(name, *v, "one of true, false, 1, 0, yes, no, on, off");
    out = *b;
  }
}

inline void env_string(const env_lookup& env, const char* name, std::string& out) {
  if (auto v = env_value(env, name)) out = std::string(*v);
}

}  // namespace detail
}  // namespace websession
