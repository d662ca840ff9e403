// SPDX-License-Identifier: BSL-1.0
// The prelude of the Redis test files: the manager over redis_store they share, and options
// with a key prefix of the file's own.
#pragma once

#include "run.hpp"

#include <websession/websession.hpp>
#include <websession/store/redis.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace websession::test {

/// The shipped serializer and cipher over redis_store, on the system clock.
using redis_manager =
    basic_session_manager<json_serializer, aes_gcm_cipher, redis_store, std::chrono::system_clock>;

/// Default options with keys under `prefix` (each test file has its own).
inline options test_opts(std::string prefix) {
  options o;
  o.key_prefix = std::move(prefix);
  return o;
}

}  // namespace websession::test
