// SPDX-License-Identifier: BSL-1.0
// Redis Cluster hash slots: CRC16 (XMODEM) of a key, or of its hash tag, modulo 16384.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace websession::redis {

/// The number of hash slots of a Redis Cluster.
inline constexpr std::uint16_t slot_count = 16384;

namespace detail {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection, as the Redis
// Cluster specification defines it ("123456789" gives 0x31C3).
inline constexpr std::array<std::uint16_t, 256> crc16_table = [] {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    t[i] = crc;
  }
  return t;
}();

constexpr std::uint16_t crc16(std::string_view data) noexcept {
  std::uint16_t crc = 0;
  for (char c : data) {
    crc = static_cast<std::uint16_t>((crc << 8) ^
                                     crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return crc;
}

}  // namespace detail

/// The part of `key` that is hashed: the text between the first `{` and the first `}` after it
/// when that text is not empty (a hash tag), otherwise the whole key.
constexpr std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

/// The hash slot of `key` (0..16383), as every Redis Cluster node computes it. Keys with the
/// same hash tag (`user:{42}:a`, `user:{42}:b`) share a slot, so one script may touch both.
constexpr std::uint16_t hash_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(detail::crc16(hash_tag(key)) & (slot_count - 1));
}

}  // namespace websession::redis
