// SPDX-License-Identifier: BSL-1.0
// The manager's API shape: the default stack and session_manager_for, the get_* accessors,
// moving a manager, and the memory store's sweep lifetime (run() returns unless a sweep is
// running; expired entries are reclaimed without one).
#include <websession/websession.hpp>

#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace websession;
using namespace std::chrono_literals;

static_assert(std::is_same_v<session_manager_for<memory_store>, session_manager>);
static_assert(std::is_same_v<session_manager,
                             basic_session_manager<json_serializer, aes_gcm_cipher, memory_store,
                                                   std::chrono::system_clock>>);
static_assert(std::is_same_v<session_manager_for<memory_store, plaintext_cipher>,
                             basic_session_manager<json_serializer, plaintext_cipher, memory_store,
                                                   std::chrono::system_clock>>);
static_assert(std::is_same_v<
              session_manager_for<basic_memory_store<manual_clock>, aes_gcm_cipher,
                                  json_serializer, manual_clock>,
              basic_session_manager<json_serializer, aes_gcm_cipher,
                                    basic_memory_store<manual_clock>, manual_clock>>);
static_assert(std::is_move_constructible_v<session_manager>);
static_assert(std::is_move_assignable_v<session_manager>);
static_assert(!std::is_copy_constructible_v<session_manager>);
static_assert(std::is_nothrow_move_constructible_v<session_manager>);

namespace {

const std::string secret(48, 'k');

using clocked_store = basic_memory_store<manual_clock>;
using clocked_manager = session_manager_for<clocked_store, aes_gcm_cipher, json_serializer,
                                            manual_clock>;

using websession::test::run_on;

// Creates a session, loads it by its id, changes and saves it, loads it again: the value seen.
template <class Manager>
asio::awaitable<int> round_trip(Manager& m) {
  session s = co_await m.async_create(asio::use_awaitable);
  const std::string id(s.id());
  session loaded = co_await m.async_load(id, asio::use_awaitable);
  loaded.set("n", 41);
  co_await m.async_save(loaded, asio::use_awaitable);
  session again = co_await m.async_load(id, asio::use_awaitable);
  co_return again.template get_as<int>("n").value_or(0) + 1;
}

// Runs `ioc` until it runs out of work, for at most `limit`: whether it ran out.
bool runs_out_of_work(asio::io_context& ioc, std::chrono::seconds limit = 10s) {
  ioc.restart();
  ioc.run_for(limit);
  return ioc.stopped();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(manager_api)

BOOST_AUTO_TEST_CASE(accessors) {
  asio::io_context ioc;
  manual_clock clock;
  options o;
  o.key_prefix = "api:";
  clocked_store store(ioc.get_executor(), {}, clock);
  clocked_manager m(ioc.get_executor(), aes_gcm_cipher(secret), store, o, {}, clock);
  BOOST_TEST((m.get_executor() == ioc.get_executor()));
  BOOST_TEST(m.get_options().key_prefix == "api:");
  BOOST_TEST(m.get_cipher().current_key_id() == 1u);
  BOOST_TEST((m.get_clock().now() == clock.now()));
  // The manager's store is a handle on the same data as `store`.
  BOOST_TEST(run_on(ioc, round_trip(m)) == 42);
  BOOST_TEST(store.size() == 1u);
  BOOST_TEST(m.get_store().size() == 1u);
  const clocked_manager& cm = m;
  BOOST_TEST(cm.get_store().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_moved_manager_keeps_working) {
  asio::io_context ioc;
  session_manager first(ioc.get_executor(), aes_gcm_cipher(secret));
  session kept = run_on(ioc, first.async_create(asio::use_awaitable));
  kept.set("who", "before the move");

  session_manager second(std::move(first));  // `first` is not used again
  BOOST_TEST(second.stats().created == 1u);  // the counters moved along
  // A session loaded before the move is saved through the manager moved to.
  run_on(ioc, second.async_save(kept, asio::use_awaitable));
  session loaded = run_on(ioc, second.async_load(kept.id(), asio::use_awaitable));
  BOOST_TEST(loaded.get_as<std::string>("who").value_or("") == "before the move");
  BOOST_TEST(run_on(ioc, round_trip(second)) == 42);

  // Move assignment: the target's own sessions are gone with its store, the source's remain.
  session_manager third(ioc.get_executor(), aes_gcm_cipher(std::string(48, 'x')));
  BOOST_TEST(run_on(ioc, round_trip(third)) == 42);
  third = std::move(second);
  loaded = run_on(ioc, third.async_load(kept.id(), asio::use_awaitable));
  BOOST_TEST(loaded.get_as<std::string>("who").value_or("") == "before the move");
  BOOST_TEST(third.stats().created == 2u);
  BOOST_TEST(third.get_store().size() == 2u);
  BOOST_TEST(run_on(ioc, round_trip(third)) == 42);
  BOOST_TEST(runs_out_of_work(ioc));
}

BOOST_AUTO_TEST_CASE(managers_in_containers) {
  asio::io_context ioc;
  std::vector<session_manager> managers;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {  // growth moves the managers already in the vector
    managers.emplace_back(ioc.get_executor(), aes_gcm_cipher(std::string(48, char('a' + i))));
    session s = run_on(ioc, managers.back().async_create(asio::use_awaitable));
    ids.emplace_back(s.id());
  }
  for (std::size_t i = 0; i < managers.size(); ++i) {
    BOOST_TEST(run_on(ioc, round_trip(managers[i])) == 42);
    // Each finds its own session, and only its own (separate stores).
    session own = run_on(ioc, managers[i].async_load(ids[i], asio::use_awaitable));
    BOOST_TEST(own.id() == ids[i]);
    BOOST_TEST(managers[i].get_store().size() == 2u);
  }

  std::optional<session_manager> later;
  BOOST_TEST(!later.has_value());
  later.emplace(ioc.get_executor(), aes_gcm_cipher(secret));
  BOOST_TEST(run_on(ioc, round_trip(*later)) == 42);
  std::optional<session_manager> moved = std::move(later);
  later.reset();
  BOOST_TEST(run_on(ioc, round_trip(*moved)) == 42);
  BOOST_TEST(moved->stats().created == 2u);
  BOOST_TEST(runs_out_of_work(ioc));
}

// The memory store starts no timer by itself: once the operations are done, run() returns.
BOOST_AUTO_TEST_CASE(run_returns_without_a_sweep) {
  asio::io_context ioc;
  session_manager m(ioc.get_executor(), aes_gcm_cipher(secret));
  int seen = 0;
  asio::co_spawn(ioc, round_trip(m), [&](std::exception_ptr e, int n) {
    if (!e) seen = n;
  });
  BOOST_TEST(runs_out_of_work(ioc));
  BOOST_TEST(seen == 42);
}

// A started sweep drops expired sessions with no other traffic, keeps run() busy while it runs,
// and lets run() return once stopped or destroyed.
BOOST_AUTO_TEST_CASE(a_started_sweep_reclaims_expired_sessions_until_stopped) {
  asio::io_context ioc;
  manual_clock clock;
  clocked_manager m(ioc.get_executor(), aes_gcm_cipher(secret),
                    clocked_store(ioc.get_executor(), {}, clock), options{}, {}, clock);
  BOOST_TEST(run_on(ioc, round_trip(m)) == 42);
  BOOST_TEST(m.get_store().size() == 1u);

  std::optional<memory_store_sweep> sweeping(m.get_store().start_sweep(1ms));
  BOOST_TEST(sweeping->active());
  // While it runs, the io_context has work: run_for returns by its time limit.
  ioc.restart();
  ioc.run_for(20ms);
  BOOST_TEST(!ioc.stopped());
  BOOST_TEST(m.get_store().size() == 1u);  // nothing has expired yet

  clock.advance(m.get_options().absolute_timeout + 1s);
  // No load, no write: the sweep alone drops it (its timer runs on real time, every 1 ms).
  for (int i = 0; i < 500 && m.get_store().size() != 0; ++i) ioc.run_for(10ms);
  BOOST_TEST(m.get_store().size() == 0u);

  sweeping->stop();
  BOOST_TEST(!sweeping->active());
  BOOST_TEST(runs_out_of_work(ioc));

  // Destroying the handle stops it too; so does replacing it by another sweep.
  sweeping.emplace(m.get_store().start_sweep(1h));
  memory_store_sweep replacement = m.get_store().start_sweep(1h);
  ioc.restart();
  ioc.run_for(20ms);
  BOOST_TEST(!ioc.stopped());
  sweeping.reset();
  ioc.restart();
  ioc.run_for(20ms);
  BOOST_TEST(!ioc.stopped());  // the replacement still runs
  replacement = memory_store_sweep();  // assigning over a handle stops its sweep
  BOOST_TEST(runs_out_of_work(ioc));

  BOOST_CHECK_THROW((void)m.get_store().start_sweep(0ms), std::invalid_argument);
}

// Without a sweep, writes reclaim expired entries as they go: memory stays bounded by the live
// sessions, not by everything ever written.
BOOST_AUTO_TEST_CASE(writes_reclaim_expired_entries_without_a_sweep) {
  asio::io_context ioc;
  manual_clock clock;
  memory_store_options so;
  so.shards = 1;
  clocked_store store(ioc.get_executor(), so, clock);
  const auto insert = [&](const std::string& key, std::chrono::milliseconds ttl) {
    return run_on(ioc, store.insert(key, store_write{"value", ttl, ""})).has_value();
  };
  for (int i = 0; i < 100; ++i) BOOST_TEST_REQUIRE(insert("short" + std::to_string(i), 1s));
  clock.advance(2s);
  std::size_t written = 0;
  while (written < 5000 && store.size() != written) {
    BOOST_TEST_REQUIRE(insert("long" + std::to_string(written), 1h));
    ++written;
  }
  BOOST_TEST(store.size() == written);  // every expired entry dropped
  BOOST_TEST(written < 5000u);
  std::size_t live_bytes = 0;
  for (std::size_t i = 0; i < written; ++i)
    live_bytes += ("long" + std::to_string(i)).size() + 5 + clocked_store::entry_overhead;
  BOOST_TEST(store.bytes() == live_bytes);
  BOOST_TEST(runs_out_of_work(ioc));
}

BOOST_AUTO_TEST_SUITE_END()
