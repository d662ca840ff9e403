// SPDX-License-Identifier: BSL-1.0
// redis_store and fallback_store against a real redis-server: what Redis holds (sealed values,
// hashed keys), cancellation of a manager load, script reloading, large binary values, SCAN
// counting, and the fallback to the in-process store during an outage and back.
#include "../support/redis.hpp"
#include "server_fixture.hpp"
#include "topology_fixture.hpp"

#include <websession/defaults.hpp>
#include <websession/store/fallback.hpp>
#include <websession/store/redis.hpp>
#include <websession/testing/store_conformance.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

using namespace websession;
using namespace redis_test;
using boost::system::error_code;

namespace {

using websession::test::connect;
using websession::test::redis_manager;
using websession::test::tuple_token;

// One command on a raw connection, for looking at what Redis holds.
asio::awaitable<redis::reply> raw(redis::connection& c, const std::vector<std::string>& args) {
  redis::request req;
  std::vector<std::string_view> rest(args.begin() + 1, args.end());
  req.push(args[0], rest);
  auto [ec, replies] = co_await c.async_exec(req, tuple_token);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  co_return replies.at(0);
}

options test_opts() { return websession::test::test_opts("rt:"); }

using fallback_to_memory = fallback_store<redis_store, memory_store>;
using fallback_manager = basic_session_manager<json_serializer, aes_gcm_cipher, fallback_to_memory,
                                               std::chrono::system_clock>;

// Redis first, memory while Redis is down, probed every 50 ms.
fallback_to_memory make_fallback(asio::io_context& ioc, std::shared_ptr<redis::connection> conn) {
  memory_store_options mo;
  return fallback_to_memory(redis_store(std::move(conn)), memory_store(ioc.get_executor(), mo),
                            std::chrono::milliseconds(50));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_store_suite)

BOOST_AUTO_TEST_CASE(redis_holds_sealed_values_under_hashed_keys) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    auto peek = connect(ioc, server.port());
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(conn),
                      test_opts());
    auto [e1, s] = co_await mgr.async_create(tuple_token);
    BOOST_TEST_REQUIRE(!e1, e1.message());
    s.set("secret", "plaintext-marker-12345");
    auto [e2] = co_await mgr.async_save(s, tuple_token);
    BOOST_TEST_REQUIRE(!e2, e2.message());

    const std::vector<std::string> cmd1{"GET", s.storage_key()};


    redis::reply value = co_await raw(*peek, cmd1);
    BOOST_TEST_REQUIRE(value.is_string());
    BOOST_TEST(value.str.find("plaintext-marker") == std::string::npos);
    BOOST_TEST(value.str.find(s.id()) == std::string::npos);
    const std::vector<std::string> cmd2{"SCAN", "0", "MATCH", "*", "COUNT", "1000"};

    redis::reply keys = co_await raw(*peek, cmd2);
    BOOST_TEST_REQUIRE(keys.elements.size() == 2u);
    for (auto& k : keys.elements[1].elements) BOOST_TEST(k.str.find(s.id()) == std::string::npos);
    // The TTL is the idle timeout.
    const std::vector<std::string> cmd3{"PTTL", s.storage_key()};

    redis::reply ttl = co_await raw(*peek, cmd3);
    BOOST_TEST(ttl.integer > 0);
    BOOST_TEST(ttl.integer <= mgr.get_options().idle_timeout.count());

    auto [e3, l] = co_await mgr.async_load(s.id(), tuple_token);
    BOOST_TEST_REQUIRE(!e3);
    BOOST_TEST(l.get_as<std::string>("secret").value_or("") == "plaintext-marker-12345");
    conn->cancel();
    peek->cancel();
  });
}

// A manager load waiting on Redis ends when its caller cancels it, through both of the manager's
// paths (a coroutine awaiting it directly; a callback, run through co_spawn), and the
// connection stays usable: the abandoned reply is skipped, the next load gets its own.
BOOST_AUTO_TEST_CASE(cancelling_a_manager_load_reaches_the_connection) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    using namespace std::chrono_literals;
    // Far beyond the server's sleep: only the cancellation can end a load early.
    auto conn = connect(ioc, server.port(), 10s);
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(conn),
                      test_opts());
    auto [e1, s] = co_await mgr.async_create(tuple_token);
    BOOST_TEST_REQUIRE(!e1, e1.message());
    s.set("n", 7);
    auto [e2] = co_await mgr.async_save(s, tuple_token);
    BOOST_TEST_REQUIRE(!e2, e2.message());

    // Every load below is written behind this and waits for it.
    redis::request sleepy;
    sleepy.push("DEBUG", "SLEEP", "1.5");
    std::optional<error_code> slept;
    conn->async_exec(sleepy, [&](error_code ec, std::vector<redis::reply>) { slept = ec; });
    const auto start = std::chrono::steady_clock::now();

    {  // A timer racing the load: the coroutine's terminal cancellation.
      using namespace asio::experimental::awaitable_operators;
      asio::steady_timer timer(ioc, 100ms);
      auto winner = co_await (mgr.async_load(s.id(), asio::use_awaitable) ||
                              timer.async_wait(asio::use_awaitable));
      BOOST_TEST(winner.index() == 1u);
    }
    {  // A callback with a cancellation slot.
      asio::cancellation_signal sig;
      std::optional<error_code> got;
      mgr.async_load(s.id(), asio::bind_cancellation_slot(
                                 sig.slot(), [&](error_code ec, session) { got = ec; }));
      co_await sleep_for(50ms);
      BOOST_TEST(!got.has_value());
      sig.emit(asio::cancellation_type::terminal);
      BOOST_TEST(co_await wait_until([&] { return got.has_value(); }, 500ms));
      BOOST_TEST_REQUIRE(got.has_value());
      BOOST_TEST(*got == asio::error::operation_aborted, got->message());
    }
    BOOST_TEST((std::chrono::steady_clock::now() - start < 1s));
    BOOST_TEST(!slept.has_value());  // both ended while the server still slept

    auto [e3, l] = co_await mgr.async_load(s.id(), tuple_token);
    BOOST_TEST_REQUIRE(!e3, e3.message());
    BOOST_TEST(l.get_as<int>("n").value_or(0) == 7);
    // (Answered by the same read as the load, the sleep's handler is posted and may run later.)
    BOOST_TEST(co_await wait_until([&] { return slept.has_value(); }, 1s));
    BOOST_TEST_REQUIRE(slept.has_value());
    BOOST_TEST(!*slept);
    BOOST_TEST(conn->connect_count() == 1u);
    conn->cancel();
  });
}

// The updates of one session take turns in the manager: while one waits on Redis, the next
// waits for it (in arrival order) instead of racing it to a conflict; a waiting update that is
// cancelled leaves the line without calling its function, and the line goes on without it.
BOOST_AUTO_TEST_CASE(updates_of_one_session_take_turns_and_a_waiting_one_can_be_cancelled) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    using namespace std::chrono_literals;
    auto conn = connect(ioc, server.port(), 10s);
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(conn),
                      test_opts());
    auto [e1, s] = co_await mgr.async_create(tuple_token);
    BOOST_TEST_REQUIRE(!e1, e1.message());
    s.set("log", "");
    auto [e2] = co_await mgr.async_save(s, tuple_token);
    BOOST_TEST_REQUIRE(!e2, e2.message());

    // The first update's load is written behind this, so it holds the session's turn ~1 s.
    redis::request sleepy;
    sleepy.push("DEBUG", "SLEEP", "1");
    conn->async_exec(sleepy, [](error_code, std::vector<redis::reply>) {});
    const auto append = [](char c) {
      return [c](session& x) { x.set("log", x.get_as<std::string>("log").value_or("?") + c); };
    };
    std::vector<std::optional<error_code>> got(4);
    const auto done = [&](std::size_t i) {
      return [&got, i](error_code ec, session) { got[i] = ec; };
    };
    mgr.async_update(s.id(), append('a'), done(0));
    // Cancelled before its coroutine has started (co_spawn hands the cancellation on to the
    // first operation it waits for: its turn).
    asio::cancellation_signal early;
    mgr.async_update(s.id(), append('p'), asio::bind_cancellation_slot(early.slot(), done(3)));
    early.emit(asio::cancellation_type::terminal);
    asio::cancellation_signal sig;
    mgr.async_update(s.id(), append('b'), asio::bind_cancellation_slot(sig.slot(), done(1)));
    mgr.async_update(s.id(), append('c'), done(2));
    co_await sleep_for(50ms);
    sig.emit(asio::cancellation_type::terminal);  // 'b' is waiting for its turn now
    {  // Through the coroutine path, cancelled by a timer racing it.
      using namespace asio::experimental::awaitable_operators;
      asio::steady_timer timer(ioc, 100ms);
      auto winner = co_await (mgr.async_update(s.id(), append('d'), asio::use_awaitable) ||
                              timer.async_wait(asio::use_awaitable));
      BOOST_TEST(winner.index() == 1u);
    }
    BOOST_TEST_REQUIRE(got[3].has_value());
    BOOST_TEST(*got[3] == asio::error::operation_aborted, got[3]->message());
    BOOST_TEST(co_await wait_until([&] { return got[1].has_value(); }, 500ms));
    BOOST_TEST_REQUIRE(got[1].has_value());
    BOOST_TEST(*got[1] == asio::error::operation_aborted, got[1]->message());
    BOOST_TEST(!got[0].has_value());  // still behind the sleep

    BOOST_TEST(co_await wait_until([&] { return got[0] && got[2]; }, 5s));
    BOOST_TEST_REQUIRE((got[0] && got[2]));
    BOOST_TEST(!*got[0], got[0]->message());
    BOOST_TEST(!*got[2], got[2]->message());
    auto [e3, l] = co_await mgr.async_load(s.id(), tuple_token);
    BOOST_TEST_REQUIRE(!e3, e3.message());
    BOOST_TEST(l.get_as<std::string>("log").value_or("") == "ac");
    BOOST_TEST(mgr.stats().conflicts == 0u);
    // The line is empty again: a new update does not wait for anyone.
    auto [e4, u] = co_await mgr.async_update(s.id(), append('e'), tuple_token);
    BOOST_TEST_REQUIRE(!e4, e4.message());
    BOOST_TEST(u.get_as<std::string>("log").value_or("") == "ace");
    conn->cancel();
  });
}

BOOST_AUTO_TEST_CASE(scripts_are_reloaded_after_script_flush) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(conn),
                      test_opts());
    auto [e1, s] = co_await mgr.async_create(tuple_token);
    BOOST_TEST_REQUIRE(!e1);
    for (int i = 0; i < 3; ++i) {
      s.set("i", i);
      auto [e2] = co_await mgr.async_save(s, tuple_token);
      BOOST_TEST_REQUIRE(!e2, e2.message());
      const std::vector<std::string> cmd4{"SCRIPT", "FLUSH"};

      redis::reply r = co_await raw(*conn, cmd4);
      BOOST_TEST(!r.is_error());
    }
    auto [e3, l] = co_await mgr.async_load(s.id(), tuple_token);
    BOOST_TEST(l.get_as<int>("i").value_or(-1) == 2);
    BOOST_TEST(l.metadata().version == 4u);
    conn->cancel();
  });
}

BOOST_AUTO_TEST_CASE(binary_values_of_a_megabyte) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    redis_store store(conn);
    std::string value(1 << 20, '\0');
    for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + i / 251);
    auto ins = co_await store.insert("rt:big", store_write{value, std::chrono::seconds(60), "bob"});
    BOOST_TEST_REQUIRE(ins.has_value());
    auto rec = co_await store.load("rt:big");
    BOOST_TEST_REQUIRE(rec.has_value());
    BOOST_TEST(rec->version == 1u);
    BOOST_TEST((rec->value == value));
    auto rep = co_await store.replace("rt:big", store_write{value.substr(1), std::chrono::seconds(60), "bob"}, 1);
    BOOST_TEST_REQUIRE(rep.has_value());
    BOOST_TEST(*rep == 2u);
    auto stale = co_await store.replace("rt:big", store_write{"x", std::chrono::seconds(60), ""}, 1);
    BOOST_TEST((stale.error() == error::conflict));
    auto users = co_await store.list_user("bob");
    BOOST_TEST_REQUIRE(users.has_value());
    BOOST_TEST(users->size() == 1u);
    conn->cancel();
  });
}

BOOST_AUTO_TEST_CASE(count_scans_session_keys_only) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(conn),
                      test_opts());
    for (int i = 0; i < 1200; ++i) {
      session s = mgr.new_session();
      if (i % 3 == 0) mgr.bind_user(s, "user" + std::to_string(i % 7));
      auto [ec] = co_await mgr.async_save(s, tuple_token);
      BOOST_TEST_REQUIRE(!ec);
    }
    auto n = co_await mgr.get_store().count("rt:");
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(*n == 1200u);
    conn->cancel();
  });
}

BOOST_AUTO_TEST_CASE(fallback_to_memory_during_an_outage_and_back) {
  redis_server server;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto conn = connect(ioc, server.port(), std::chrono::milliseconds(300));
        fallback_to_memory store = make_fallback(ioc, conn);
        std::vector<bool> switches;
        store.set_observer([&](bool degraded, const error_code&) { switches.push_back(degraded); });
        fallback_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), store,
                             test_opts());

        auto [e1, a] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e1);
        BOOST_TEST(!store.degraded());

        server.stop();  // SIGKILL: Redis is gone
        auto [e2, b] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e2, e2.message());
        BOOST_TEST(store.degraded());
        BOOST_TEST(store.stats().secondary_inserts == 1u);
        BOOST_TEST(store.secondary().size() == 1u);

        // B lives in memory and works; A lives in Redis: unavailable, never "not found".
        b.set("during", "outage");
        auto [e3] = co_await mgr.async_save(b, tuple_token);
        BOOST_TEST(!e3, e3.message());
        auto [e4, lb] = co_await mgr.async_load(b.id(), tuple_token);
        BOOST_TEST(!e4);
        BOOST_TEST(lb.get_as<std::string>("during").value_or("") == "outage");
        auto [e5, la] = co_await mgr.async_load(a.id(), tuple_token);
        BOOST_TEST((e5 == error::store_unavailable || e5 == error::timeout), e5.message());

        server.start();  // back (empty: the test server keeps nothing on disk)
        bool reconnected = co_await wait_until([&] { return conn->connected(); }, std::chrono::seconds(5));
        BOOST_TEST(reconnected);
        co_await sleep_for(std::chrono::milliseconds(60));  // past the probe interval
        // This create starts a probe in the background and, not waiting for it, goes to memory.
        auto [e6, d] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e6, e6.message());
        BOOST_TEST(store.stats().secondary_inserts == 2u);
        BOOST_TEST(store.stats().probes >= 1u);
        bool recovered = co_await wait_until([&] { return !store.degraded(); }, std::chrono::seconds(5));
        BOOST_TEST_REQUIRE(recovered);
        auto [e8, c] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e8, e8.message());
        BOOST_TEST(!store.degraded());
        BOOST_TEST(store.secondary().size() == 2u);  // C went to Redis
        auto rc = co_await store.primary().load(c.storage_key());
        BOOST_TEST(rc.has_value());
        // B still works from memory after the recovery.
        auto [e7, lb2] = co_await mgr.async_load(b.id(), tuple_token);
        BOOST_TEST(!e7);
        BOOST_TEST(store.stats().recoveries == 1u);
        BOOST_TEST((switches == std::vector<bool>{true, false}));
        conn->cancel();
      },
      std::chrono::seconds(30));
}

// While Redis is down, the fallback takes visitors but no logins: a session bound to a user in
// one process's memory would escape another instance's "log out everywhere". Once Redis is
// back, the login of a visitor whose session lives in memory moves it to Redis.
BOOST_AUTO_TEST_CASE(logins_are_refused_while_degraded_and_move_to_redis_after) {
  redis_server server;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace std::chrono_literals;
        auto conn = connect(ioc, server.port(), 300ms, true);
        fallback_to_memory store = make_fallback(ioc, conn);
        fallback_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), store,
                             test_opts());
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));

        server.stop();
        auto [e1, visitor] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e1, e1.message());
        BOOST_TEST_REQUIRE(store.degraded());
        // A login by rotation, and a new session stored already bound: both refused.
        mgr.bind_user(visitor, "ada");
        auto [e2] = co_await mgr.async_rotate(visitor, tuple_token);
        BOOST_TEST((e2 == error::store_unavailable || e2 == error::timeout), e2.message());
        BOOST_TEST(visitor.user() == "ada");  // the object as the handler left it...
        auto [e3, stored] = co_await mgr.async_load(visitor.id(), tuple_token);
        BOOST_TEST_REQUIRE(!e3, e3.message());
        BOOST_TEST(stored.user().empty());  // ...but nothing bound was stored
        session direct = mgr.new_session();
        mgr.bind_user(direct, "ada");
        auto [e4] = co_await mgr.async_save(direct, tuple_token);
        BOOST_TEST((e4 == error::store_unavailable || e4 == error::timeout), e4.message());
        BOOST_TEST(store.secondary().size() == 1u);  // only the visitor
        BOOST_TEST(store.secondary().user_bindings() == 0u);
        BOOST_TEST(store.stats().bound_refusals >= 1u);

        server.start();
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));
        // The visitor logs in again once Redis answers: the session moves to Redis.
        session again = stored;
        mgr.bind_user(again, "ada");
        auto [e5] = co_await mgr.async_rotate(again, tuple_token);
        BOOST_TEST_REQUIRE(!e5, e5.message());
        BOOST_TEST(store.stats().migrations == 1u);
        BOOST_TEST(store.secondary().size() == 0u);
        auto in_redis = co_await store.primary().load(again.storage_key());
        BOOST_TEST(in_redis.has_value());
        auto [e6, old] = co_await mgr.async_load(visitor.id(), tuple_token);
        BOOST_TEST(e6 == error::not_found);
        // And it is revocable from any instance: it is in Redis's index.
        auto [e7, n] = co_await mgr.async_destroy_user("ada", tuple_token);
        BOOST_TEST(!e7);
        BOOST_TEST(n == 1u);
        conn->cancel();
      },
      std::chrono::seconds(30));
}

// The per-user operations in bounded steps: a checked erase, MGET loads, a paged index.
BOOST_AUTO_TEST_CASE(per_user_operations_in_bounded_batches) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    redis_store_options so;
    so.erase_batch = 7;  // pages of 7: the 20 sessions below take several
    redis_store store(conn, so);
    const std::string index = "rt:user:{abc}alice", other = "rt:user:{abc}bob";
    std::vector<std::string> keys;
    for (int i = 0; i < 20; ++i) {
      keys.push_back("rt:{abc}" + std::string(40, 'A') + std::to_string(100 + i));
      auto r = co_await store.insert(keys.back(), store_write{"v" + std::to_string(i), std::chrono::minutes(5), index});
      BOOST_TEST_REQUIRE(r.has_value());
    }
    auto listed = co_await store.list_user(index);
    BOOST_TEST_REQUIRE(listed.has_value());
    BOOST_TEST(listed->size() == 20u);
    std::vector<std::string> want = keys;
    std::sort(want.begin(), want.end());
    std::vector<std::string> got = *listed;
    std::sort(got.begin(), got.end());
    BOOST_TEST(got == want, boost::test_tools::per_element());

    std::vector<std::string> ask = keys;
    ask.push_back("rt:{abc}missing");
    auto loaded = co_await store.load_many(ask);
    BOOST_TEST_REQUIRE(loaded.has_value());
    BOOST_TEST_REQUIRE(loaded->size() == 21u);
    for (int i = 0; i < 20; ++i) {
      BOOST_TEST_REQUIRE((*loaded)[i].has_value());
      BOOST_TEST((*loaded)[i]->value == "v" + std::to_string(i));
      BOOST_TEST((*loaded)[i]->version == 1u);
    }
    BOOST_TEST(((*loaded)[20].error() == error::not_found));

    // erase_bound checks the binding in the script that erases.
    auto wrong = co_await store.erase_bound(keys[0], other);
    BOOST_TEST_REQUIRE(wrong.has_value());
    BOOST_TEST(!*wrong);
    BOOST_TEST((co_await store.load(keys[0])).has_value());
    auto right = co_await store.erase_bound(keys[0], index);
    BOOST_TEST_REQUIRE(right.has_value());
    BOOST_TEST(*right);
    BOOST_TEST((co_await store.load(keys[0])).error() == error::not_found);
    auto rest = co_await store.erase_user(index);
    BOOST_TEST_REQUIRE(rest.has_value());
    BOOST_TEST(rest->size() == 19u);
    conn->cancel();
  });
}

// A probe of a primary that is slow to answer (without fail_fast_when_down, a Redis that is
// down takes up to the request timeout) holds up no request. Here Redis is back but blocked by
// DEBUG SLEEP: the create that starts the probe, and one made while it runs, go to memory at
// once, before the sleep ends; the probe's answer after the sleep switches back. (A create
// waiting for the probe would return after the sleep, and go to Redis.)
BOOST_AUTO_TEST_CASE(a_probe_of_the_primary_holds_up_no_request) {
  redis_server server;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace std::chrono_literals;
        // A timeout far beyond the sleep (only its end answers the probe), and fail-fast for a
        // quick switch when the server is killed.
        auto conn = connect(ioc, server.port(), 10s, true);
        fallback_to_memory store = make_fallback(ioc, conn);
        fallback_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), store,
                             test_opts());
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));

        server.stop();
        auto [e1, a] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e1, e1.message());
        BOOST_TEST_REQUIRE(store.degraded());
        server.start();
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));

        // Under the health check's 2 s, so the connection stays up through the sleep.
        redis::request sleepy;
        sleepy.push("DEBUG", "SLEEP", "1");
        std::optional<error_code> slept;
        conn->async_exec(sleepy, [&](error_code ec, std::vector<redis::reply>) { slept = ec; });
        co_await sleep_for(60ms);  // past the probe interval

        const auto probes_before = store.stats().probes;
        auto [e2, b] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e2, e2.message());
        BOOST_TEST(!slept.has_value());  // returned while Redis still sleeps
        BOOST_TEST(store.stats().probes == probes_before + 1);
        BOOST_TEST(store.degraded());
        BOOST_TEST(store.secondary().size() == 2u);  // A and B
        // A probe runs: the next create starts none and goes to memory too.
        auto [e3, c] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e3, e3.message());
        BOOST_TEST(store.stats().probes == probes_before + 1);
        BOOST_TEST(store.secondary().size() == 3u);

        BOOST_TEST_REQUIRE(co_await wait_until([&] { return !store.degraded(); }, 10s));
        // The sleep's reply came before the probe's (in order), but its handler is posted and
        // may run after the probe's, which is run inline from the same read.
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return slept.has_value(); }, 5s));
        BOOST_TEST(!*slept, slept->message());
        BOOST_TEST(store.stats().recoveries == 1u);
        BOOST_TEST(store.stats().probes == probes_before + 1);  // the one probe was answered
        auto [e4, d] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e4, e4.message());
        BOOST_TEST(store.secondary().size() == 3u);  // D went to Redis
        auto rd = co_await store.primary().load(d.storage_key());
        BOOST_TEST(rd.has_value());
        conn->cancel();
      },
      std::chrono::seconds(30));
}

BOOST_AUTO_TEST_SUITE_END()

// The conformance kit (websession/testing/store_conformance.hpp) on redis_store and on the
// fallback store while Redis answers, against one redis-server shared by these suites, and on
// redis_store over a Redis Cluster (3 masters, 3 replicas). Each case has keys of its own (in
// one hash slot); Redis keeps real time: the TTL cases sleep.
namespace {

redis_server& kit_server() {
  static redis_server instance;
  return instance;
}

std::shared_ptr<redis::connection> kit_connection(asio::any_io_executor ex) {
  return connect(std::move(ex), kit_server().port());
}

struct redis_store_traits {
  using store_type = redis_store;
  static constexpr auto ttl = websession::testing::ttl_support::real_time;
  static store_type make_store(asio::any_io_executor ex, manual_clock) {
    return redis_store(kit_connection(ex));
  }
  static void close_store(store_type& s) { s.client().cancel(); }
};

redis_cluster& kit_cluster() {
  static redis_cluster instance;
  return instance;
}

struct redis_cluster_traits {
  using store_type = redis_store;
  static constexpr auto ttl = websession::testing::ttl_support::real_time;
  static store_type make_store(asio::any_io_executor ex, manual_clock) {
    std::string url = "redis-cluster://";
    for (auto port : kit_cluster().master_ports()) url += "127.0.0.1:" + std::to_string(port) + ",";
    url.pop_back();
    auto c = std::make_shared<redis::cluster>(ex, redis::parse_url(url).value());
    c->async_run(asio::detached);
    return redis_store(c);
  }
  static void close_store(store_type& s) { s.client().cancel(); }
};

struct fallback_store_traits {
  using store_type = fallback_store<redis_store, basic_memory_store<manual_clock>>;
  static constexpr auto ttl = websession::testing::ttl_support::real_time;
  static store_type make_store(asio::any_io_executor ex, manual_clock clock) {
    return store_type(redis_store(kit_connection(ex)),
                      basic_memory_store<manual_clock>(ex, {}, clock));
  }
  static void close_store(store_type& s) { s.primary().client().cancel(); }
};

}  // namespace

WEBSESSION_STORE_CONFORMANCE_TESTS(redis_store_conformance, redis_store_traits)
WEBSESSION_STORE_CONFORMANCE_TESTS(redis_cluster_conformance, redis_cluster_traits)
WEBSESSION_STORE_CONFORMANCE_TESTS(fallback_over_redis_conformance, fallback_store_traits)
