// SPDX-License-Identifier: BSL-1.0
// Unpadded base64url (RFC 4648 §5) and CSPRNG bytes: how session ids and storage keys are spelled.
#pragma once

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession::detail {

inline constexpr char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Value of each byte as a base64url digit; 0xFF marks every byte outside the alphabet (padding,
// '+', '/', whitespace, bytes >= 0x80), so validation costs one OR per group of four.
inline constexpr std::array<std::uint8_t, 256> base64url_values = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0xFF);
  for (std::uint8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(base64url_alphabet[i])] = i;
  return t;
}();

/// Number of characters base64url_encode produces for `n` bytes (no padding).
constexpr std::size_t base64url_encoded_size(std::size_t n) noexcept {
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/// Number of bytes `n` characters decode to. Meaningful only when n % 4 != 1 (such lengths are
/// never valid).
constexpr std::size_t base64url_decoded_size(std::size_t n) noexcept {
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

/// Writes the unpadded base64url encoding of `n` bytes at `data` to `out`, which must have room
/// for base64url_encoded_size(n) characters. Cannot fail.
inline void base64url_encode_to(const void* data, std::size_t n, char* out) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const char* a = base64url_alphabet;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16 | std::uint32_t{p[i + 1]} << 8 | p[i + 2];
    out[0] = a[v >> 18];
    out[1] = a[(v >> 12) & 63];
    out[2] = a[(v >> 6) & 63];
    out[3] = a[v & 63];
    out += 4;
  }
  if (n - i == 1) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16;
    out[0] = a[v >> 18];
    out[1] = a[(v >> 12) & 63];
  } else if (n - i == 2) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16 | std::uint32_t{p[i + 1]} << 8;
    out[0] = a[v >> 18];
    out[1] = a[(v >> 12) & 63];
    out[2] = a[(v >> 6) & 63];
  }
}

/// Appends the unpadded base64url encoding (RFC 4648 §5) of `n` bytes at `data` to `out`.
/// `data` must not point into `out` (appending may reallocate it). Throws only std::bad_alloc
/// (or std::length_error) from growing `out`.
inline void base64url_encode(const void* data, std::size_t n, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + base64url_encoded_size(n));
  base64url_encode_to(data, n, out.data() + old);
}

/// Strictly decodes `in` to `out`, which must have room for base64url_decoded_size(in.size())
/// bytes. Returns false if `in` is not a canonical unpadded base64url string: a character outside
/// the alphabet (including '='), a length with length % 4 == 1, or nonzero unused low bits in the
/// last character (which would give one byte string several spellings). On false, `out` may
/// hold some decoded bytes.
inline bool base64url_decode_to(std::string_view in, unsigned char* out) noexcept {
  const std::size_t n = in.size();
  if (n % 4 == 1) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const auto& t = base64url_values;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const std::uint32_t a = t[s[i]], b = t[s[i + 1]], c = t[s[i + 2]], d = t[s[i + 3]];
    if ((a | b | c | d) & 0x80) return false;
    const std::uint32_t v = a << 18 | b << 12 | c << 6 | d;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
    out[2] = static_cast<unsigned char>(v);
    out += 3;
  }
  if (n - i == 2) {
    const std::uint32_t a = t[s[i]], b = t[s[i + 1]];
    if ((a | b) & 0x80 || (b & 0x0F) != 0) return false;
    out[0] = static_cast<unsigned char>(a << 2 | b >> 4);
  } else if (n - i == 3) {
    const std::uint32_t a = t[s[i]], b = t[s[i + 1]], c = t[s[i + 2]];
    if ((a | b | c) & 0x80 || (c & 0x03) != 0) return false;
    const std::uint32_t v = a << 18 | b << 12 | c << 6;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
  }
  return true;
}

/// Appends the bytes that the unpadded base64url string `in` encodes to `out`. Strict: returns
/// false for any character outside the base64url alphabet (so '=', '+', '/', whitespace and
/// non-ASCII bytes are rejected), for in.size() % 4 == 1, and for nonzero unused bits in the last
/// character (only the canonical spelling is accepted). On false, `out` may have been partially
/// appended to: callers that need all-or-nothing must truncate it back to its old size.
/// `in` must not view into `out`. Throws only std::bad_alloc (or std::length_error) from growing
/// `out`.
inline bool base64url_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  const std::size_t old = out.size();
  out.resize(old + base64url_decoded_size(in.size()));
  return base64url_decode_to(in, reinterpret_cast<unsigned char*>(out.data() + old));
}

/// Fills `n` bytes at `p` from OpenSSL's CSPRNG (RAND_bytes). Returns false if the generator
/// fails (for example, it could not be seeded); the buffer content is then unspecified.
inline bool random_fill(void* p, std::size_t n) noexcept {
  auto* b = static_cast<unsigned char*>(p);
  // RAND_bytes takes an int length.
  constexpr std::size_t chunk = std::size_t{1} << 30;
  while (n > 0) {
    const std::size_t step = std::min(n, chunk);
    if (RAND_bytes(b, static_cast<int>(step)) != 1) return false;
    b += step;
    n -= step;
  }
  return true;
}

/// `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws std::runtime_error if the generator
/// fails; never returns predictable bytes.
inline std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  if (!random_fill(s.data(), n)) throw std::runtime_error("websession: RAND_bytes failed");
  return s;
}

}  // namespace websession::detail
