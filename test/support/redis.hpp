// SPDX-License-Identifier: BSL-1.0
// The prelude of the Redis test files: the manager over redis_store they share, options with a
// key prefix of the file's own, and a running connection to a test server.
#pragma once

#include "run.hpp"

#include <websession/websession.hpp>
#include <websession/redis/connection.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
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

/// A connection to the loopback server on `port`, already running (async_run): `timeout` for
/// requests and for connecting, quick reconnects (10 to 100 ms), and fail_fast_when_down if
/// asked. The caller cancels it at the end.
inline std::shared_ptr<redis::connection> connect(
    boost::asio::any_io_executor ex, std::uint16_t port,
    std::chrono::milliseconds timeout = std::chrono::seconds(2), bool fail_fast_when_down = false) {
  redis::config cfg;
  cfg.port = port;
  cfg.request_timeout = timeout;
  cfg.connect_timeout = timeout;
  cfg.reconnect_min = std::chrono::milliseconds(10);
  cfg.reconnect_max = std::chrono::milliseconds(100);
  cfg.fail_fast_when_down = fail_fast_when_down;
  auto c = std::make_shared<redis::connection>(std::move(ex), cfg);
  c->async_run(boost::asio::detached);
  return c;
}

inline std::shared_ptr<redis::connection> connect(
    boost::asio::io_context& ioc, std::uint16_t port,
    std::chrono::milliseconds timeout = std::chrono::seconds(2), bool fail_fast_when_down = false) {
  return connect(ioc.get_executor(), port, timeout, fail_fast_when_down);
}

}  // namespace websession::test
