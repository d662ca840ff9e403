// SPDX-License-Identifier: BSL-1.0
// Test stacks (policy combinations) and a fixture that runs coroutines against a manager, so
// one manager suite runs unchanged against every store.
#pragma once

#include "support/run.hpp"

#include <websession/testing/archetypes.hpp>
#include <websession/websession.hpp>

#ifdef WEBSESSION_TEST_REDIS
#include "redis/server_fixture.hpp"
#include "redis/topology_fixture.hpp"

#include <websession/store/fallback.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/detached.hpp>
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <optional>

namespace websession::test {

using testing::archetype_cipher;
using testing::archetype_clock;
using testing::archetype_serializer;
using testing::archetype_store;

inline const std::string test_secret(48, 'k');

inline options test_options() {
  options o;
  o.idle_timeout = std::chrono::minutes(30);
  // One idle timeout for the generic expiry tests; anonymous_idle_timeout has tests of its own.
  o.anonymous_idle_timeout = o.idle_timeout;
  o.absolute_timeout = std::chrono::hours(8);
  o.touch_interval = std::chrono::minutes(1);
  o.key_prefix = "test:";
  return o;
}

/// The shipped defaults, with a manual clock shared by the store and the manager.
struct memory_stack {
  static constexpr const char* name = "memory";
  using clock_type = manual_clock;
  using store_type = basic_memory_store<manual_clock>;
  using manager_type = basic_session_manager<json_serializer, aes_gcm_cipher, store_type, manual_clock>;
  static constexpr bool has_ttl = true;

  static store_type make_store(boost::asio::any_io_executor ex, manual_clock clock,
                               memory_store_options o = {}) {
    return store_type(ex, o, clock);
  }
  static aes_gcm_cipher make_cipher() { return aes_gcm_cipher(test_secret); }
};

/// Every policy an archetype (the clock aside: expiry tests need one that moves).
struct archetype_stack {
  static constexpr const char* name = "archetype";
  using clock_type = manual_clock;
  using store_type = archetype_store;
  using manager_type =
      basic_session_manager<archetype_serializer, archetype_cipher, archetype_store, manual_clock>;
  static constexpr bool has_ttl = false;

  static store_type make_store(boost::asio::any_io_executor, manual_clock,
                               memory_store_options = {}) {
    return {};
  }
  static archetype_cipher make_cipher() { return {}; }
};

#ifdef WEBSESSION_TEST_REDIS
/// "test:<n>:", a key prefix no other fixture of this program uses.
inline std::string unique_prefix() {
  static std::atomic<int> fixtures{0};
  return "test:" + std::to_string(++fixtures) + ":";
}

/// The Redis store on one connection to a redis-server shared by the whole test program (each
/// fixture gets its own key prefix, and session keys are random, so tests cannot see each
/// other's data). Redis keeps real-time TTLs; deadlines follow the manual clock because
/// the manager checks them on every load.
struct redis_stack {
  static constexpr const char* name = "redis";
  using clock_type = manual_clock;
  using store_type = redis_store;
  using manager_type = basic_session_manager<json_serializer, aes_gcm_cipher, redis_store, manual_clock>;
  static constexpr bool has_ttl = true;

  static redis_test::redis_server& server() {
    static redis_test::redis_server instance;
    return instance;
  }

  static store_type make_store(boost::asio::any_io_executor ex, manual_clock,
                               memory_store_options = {}) {
    redis::config cfg;
    cfg.port = server().port();
    auto conn = std::make_shared<redis::connection>(ex, cfg);
    conn->async_run(boost::asio::detached);
    return redis_store(conn);
  }
  // Each fixture gets its own key prefix (and so its own user indexes).
  static void prepare(options& o) { o.key_prefix = unique_prefix(); }
  static aes_gcm_cipher make_cipher() { return aes_gcm_cipher(test_secret); }
};

/// The Redis store on a Redis Cluster of 3 masters and 3 replicas shared by the whole test
/// program, through redis::cluster: the same suite, unchanged, on Redis's distributed engine.
struct cluster_stack : redis_stack {
  static constexpr const char* name = "cluster";

  static redis_test::redis_cluster& cluster() {
    static redis_test::redis_cluster instance;
    return instance;
  }

  static std::string url() {
    std::string u = "redis-cluster://";
    for (auto port : cluster().master_ports()) u += "127.0.0.1:" + std::to_string(port) + ",";
    u.pop_back();
    return u;
  }

  static store_type make_store(boost::asio::any_io_executor ex, manual_clock,
                               memory_store_options = {}) {
    auto c = std::make_shared<redis::cluster>(ex, redis::parse_url(url()).value());
    c->async_run(boost::asio::detached);
    return redis_store(c);
  }
};

/// The Redis store on the master of 1 master + 1 replica that 3 sentinels watch (shared by the
/// whole test program), found through the sentinels.
struct sentinel_stack : redis_stack {
  static constexpr const char* name = "sentinel";

  static redis_test::redis_sentinel_group& group() {
    static redis_test::redis_sentinel_group instance;
    return instance;
  }

  static std::string url() {
    std::string u = "redis-sentinel://";
    for (auto port : group().sentinel_ports()) u += "127.0.0.1:" + std::to_string(port) + ",";
    u.pop_back();
    return u + "#" + group().master_name();
  }

  static store_type make_store(boost::asio::any_io_executor ex, manual_clock,
                               memory_store_options = {}) {
    auto conn = std::make_shared<redis::connection>(ex, redis::parse_url(url()).value());
    conn->async_run(boost::asio::detached);
    return redis_store(conn);
  }
};

/// The fallback store over the Redis store of redis_stack (Redis up) and a memory store.
struct fallback_stack : redis_stack {
  static constexpr const char* name = "fallback";
  using store_type = fallback_store<redis_store, basic_memory_store<manual_clock>>;
  using manager_type = basic_session_manager<json_serializer, aes_gcm_cipher, store_type, manual_clock>;

  static store_type make_store(boost::asio::any_io_executor ex, manual_clock clock,
                               memory_store_options o = {}) {
    return store_type(redis_stack::make_store(ex, clock), memory_stack::make_store(ex, clock, o));
  }
};
#endif

template <class Stack>
struct manager_fixture {
  using manager_type = typename Stack::manager_type;
  using store_type = typename Stack::store_type;

  boost::asio::io_context ioc;
  manual_clock clock;
  store_type store;
  std::optional<manager_type> mgr;

  explicit manager_fixture(options o = test_options(), memory_store_options so = {})
      : store(Stack::make_store(ioc.get_executor(), clock, so)) {
    if constexpr (requires { Stack::prepare(o); }) Stack::prepare(o);
    mgr.emplace(ioc.get_executor(), Stack::make_cipher(), store, std::move(o),
                typename manager_type::serializer_type{}, clock);
  }

  ~manager_fixture() {
    mgr.reset();
    // A store with a background connection (Redis) keeps the io_context busy: end it, then
    // let its handlers finish.
    if constexpr (requires { store.client().cancel(); }) {
      store.client().cancel();
      ioc.restart();
      ioc.run_for(std::chrono::seconds(2));
    } else if constexpr (requires { store.primary().client().cancel(); }) {
      store.primary().client().cancel();
      ioc.restart();
      ioc.run_for(std::chrono::seconds(2));
    }
  }

  /// Runs the coroutine `f()` to completion on this thread and returns its value (see run_on).
  template <class F>
  auto run(F&& f) {
    return run_on(ioc, std::forward<F>(f)());
  }
};

}  // namespace websession::test
