// SPDX-License-Identifier: BSL-1.0
// The character classes and attribute rules of RFC 6265 / RFC 7230 that cookie settings must
// follow. Shared by options validation (websession/options.hpp) and the Set-Cookie writer
// (websession/http/cookie.hpp), so that a configuration that validates is one that can be written.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace websession::detail {

// RFC 7230 tchar: what a cookie name may contain.
inline constexpr std::array<bool, 256> token_chars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
inline constexpr std::array<bool, 256> cookie_octets = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c <= 0x7E; ++c) t[c] = true;
  t['"'] = t[','] = t[';'] = t['\\'] = false;
  return t;
}();

inline bool all_of(std::string_view s, const std::array<bool, 256>& table) noexcept {
  for (char c : s)
    if (!table[static_cast<unsigned char>(c)]) return false;
  return true;
}

// `prefix` must be lower case.
inline bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Path attribute values: CHAR except CTLs and ';' (RFC 6265 av-octet), starting with '/'.
inline bool valid_cookie_path(std::string_view p) noexcept {
  if (p.empty() || p.front() != '/') return false;
  for (char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7E || c == ';') return false;
  }
  return true;
}

// Domain attribute values: a host name in ASCII (IDNs in punycode), nothing else.
inline bool valid_cookie_domain(std::string_view d) noexcept {
  if (d.empty() || d.size() > 253) return false;
  for (char c : d) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace websession::detail
