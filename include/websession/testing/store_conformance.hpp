// SPDX-License-Identifier: BSL-1.0
// The session_store conformance suite: the tests every store shipped with websession passes,
// for a store someone else writes (PostgreSQL, DynamoDB, memcached...). Boost.Test based.
//
//   #include <websession/testing/store_conformance.hpp>
//
//   struct my_store_traits {
//     using store_type = my_store;
//     // A store that holds no keys of the kit's prefix, on `ex`; a store that keeps its own
//     // expiry times reads them from `clock` (see ttl below).
//     static my_store make_store(boost::asio::any_io_executor ex, websession::manual_clock clock);
//     // Optional, each with its default:
//     static constexpr auto ttl = websession::testing::ttl_support::manual_clock;
//     static void close_store(my_store&);  // ends background work (a connection's run loop)
//     static constexpr int threads = 4;     // threads of the concurrency cases
//   };
//   WEBSESSION_STORE_CONFORMANCE_TESTS(my_store_conformance, my_store_traits)
//
// ttl_support tells the kit how to make a stored value outlive its TTL:
// - manual_clock: the store reads time from the clock make_store received (advance() it);
// - real_time:    the store (a server) keeps its own time; the kit writes TTLs of 400 ms and
//                 sleeps three times that (each TTL case sleeps 1.2 s);
// - none:         the store does not expire values (the TTL cases are skipped).
//
// Every case gets a fresh store from make_store on a fresh io_context, and keys and user
// indexes under a prefix of its own ("wsc:{<random>.<n>}:", one hash tag, so a Redis Cluster
// keeps them in one slot): a shared server never shows one case's keys to another.
// The macro registers one Boost.Test suite of cases; store_conformance<Traits>'s static
// functions are the cases themselves, and store_fixture<Traits> is there for extra tests of
// your own. The contract the cases check is the table in websession/concepts.hpp.
#pragma once

#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/error.hpp>
#include <websession/manager.hpp>
#include <websession/testing/archetypes.hpp>
#include <websession/testing/run.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace websession::testing {

/// How a store's values come to outlive their TTL in the kit (see the file comment).
enum class ttl_support { manual_clock, real_time, none };

namespace detail {

template <class Traits>
constexpr ttl_support ttl_of() {
  if constexpr (requires { Traits::ttl; }) return Traits::ttl;
  else return ttl_support::manual_clock;
}

template <class Traits>
constexpr int threads_of() {
  if constexpr (requires { Traits::threads; }) return Traits::threads;
  else return 4;
}

inline std::string unique_tag() {
  static const std::uint64_t run = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  static std::atomic<std::uint64_t> n{0};
  return std::to_string(run) + "." + std::to_string(++n);
}

template <class R>
boost::system::error_code code_of(const R& r) {
  return r.has_value() ? boost::system::error_code{} : r.error();
}

}  // namespace detail

/// A fresh store on an io_context of its own, a manual clock, unique key names, and runners.
template <class Traits>
class store_fixture {
 public:
  using store_type = typename Traits::store_type;
  static_assert(session_store<store_type>, "Traits::store_type must model websession::session_store");

  static constexpr ttl_support ttl = detail::ttl_of<Traits>();

  store_fixture()
      : prefix_("wsc:{" + detail::unique_tag() + "}:"),
        store(Traits::make_store(ioc.get_executor(), clock)) {}

  store_fixture(const store_fixture&) = delete;
  store_fixture& operator=(const store_fixture&) = delete;

  ~store_fixture() {
    if constexpr (requires(store_type& s) { Traits::close_store(s); }) {
      Traits::close_store(store);
      // Let the store's background work see the end and finish.
      ioc.restart();
      ioc.run_for(std::chrono::seconds(2));
    }
  }

  /// A key of this fixture ("wsc:{tag}:" + name).
  std::string key(std::string_view name) const { return prefix_ + "k:" + std::string(name); }
  /// A user index name of this fixture, in the same hash slot as its keys.
  std::string user(std::string_view name) const { return prefix_ + "u:" + std::string(name); }
  /// The prefix of this fixture's keys, for a manager's options::key_prefix.
  const std::string& prefix() const noexcept { return prefix_; }

  /// Runs `op` to completion on this thread (see run_to_completion) and returns its value.
  /// Fails the test after `limit`.
  template <class T>
  T run(awaitable<T> op, std::chrono::seconds limit = std::chrono::seconds(30)) {
    return run_to_completion(ioc, std::move(op), limit);
  }

  /// Starts every operation of `ops` (callables returning awaitable<T>) at once and runs them on
  /// `threads` threads sharing this io_context; returns their results in order.
  template <class T, class Make>
  std::vector<T> run_concurrently(std::size_t n, Make make, int threads,
                                  std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::vector<std::optional<T>> out(n);
    std::atomic<std::size_t> remaining{n};
    std::atomic<bool> threw{false};
    auto guard = boost::asio::make_work_guard(ioc);
    ioc.restart();
    for (std::size_t i = 0; i < n; ++i) {
      boost::asio::co_spawn(ioc, make(i), [&, i](std::exception_ptr e, T v) {
        if (e) threw = true;
        else out[i].emplace(std::move(v));
        remaining.fetch_sub(1, std::memory_order_acq_rel);
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto work = [&] {
      while (remaining.load(std::memory_order_acquire) != 0 &&
             std::chrono::steady_clock::now() < deadline) {
        ioc.run_for(std::chrono::milliseconds(5));
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    guard.reset();
    BOOST_REQUIRE_MESSAGE(remaining.load() == 0, "concurrent store operations did not complete in time");
    BOOST_REQUIRE_MESSAGE(!threw.load(), "a store operation threw");
    std::vector<T> values;
    for (auto& o : out) values.push_back(std::move(*o));
    return values;
  }

  /// Makes values written with a TTL of `d` expire: advances the clock (manual_clock) or
  /// sleeps (real_time).
  template <class Rep, class Period>
  void pass(std::chrono::duration<Rep, Period> d) {
    if constexpr (ttl == ttl_support::real_time) std::this_thread::sleep_for(d);
    else clock.advance(d);
  }

  boost::asio::io_context ioc;  // first: the store is destroyed before it
  manual_clock clock;

 private:
  std::string prefix_;

 public:
  store_type store;
};

/// The cases. Each is a static function, registered by WEBSESSION_STORE_CONFORMANCE_TESTS.
template <class Traits>
struct store_conformance {
  using fixture = store_fixture<Traits>;
  using error_code = boost::system::error_code;
  using ms = std::chrono::milliseconds;

  static constexpr ttl_support ttl = fixture::ttl;
  // A TTL no case outlives.
  static constexpr ms long_ttl{std::chrono::hours(1)};

  static error_code ec(error e) { return make_error_code(e); }

  // A store's values are bytes, not text: the cipher's output is binary.
  static std::string binary_value() {
    std::string v = "sealed:";
    for (int i = 0; i < 256; ++i) v += static_cast<char>(i);
    v += std::string("\0\r\n\0end", 7);
    return v;
  }

  /// insert stores a new key at version 1; load gives it back byte for byte; ping answers;
  /// a copy of the store sees the same data.
  static void insert_then_load() {
    fixture f;
    const std::string k = f.key("a");
    const std::string value = binary_value();
    auto v = f.run(f.store.insert(k, store_write{value, long_ttl, {}}));
    BOOST_TEST_REQUIRE(v.has_value(), v.error().message());
    BOOST_TEST(*v == 1u);
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value(), r.error().message());
    BOOST_TEST((r->value == value));
    BOOST_TEST(r->version == 1u);

    typename fixture::store_type copy = f.store;
    auto rc = f.run(copy.load(k));
    BOOST_TEST_REQUIRE(rc.has_value());
    BOOST_TEST((rc->value == value));

    BOOST_TEST(f.run(f.store.ping()) == error_code{});
  }

  /// A key that was never stored: not_found from load, replace and rotate (which creates
  /// nothing); false from the erases; nothing listed.
  static void absent_keys() {
    fixture f;
    const std::string k = f.key("never"), k2 = f.key("never2"), u = f.user("nobody");
    BOOST_TEST(detail::code_of(f.run(f.store.load(k))) == ec(error::not_found));
    BOOST_TEST(detail::code_of(f.run(f.store.replace(k, store_write{"x", long_ttl, {}}, 1))) ==
               ec(error::not_found));
    BOOST_TEST(detail::code_of(f.run(f.store.rotate(k, k2, store_write{"x", long_ttl, {}}, 1))) ==
               ec(error::not_found));
    BOOST_TEST(detail::code_of(f.run(f.store.load(k2))) == ec(error::not_found));
    auto e = f.run(f.store.erase(k));
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(!*e);
    auto eb = f.run(f.store.erase_bound(k, u));
    BOOST_TEST_REQUIRE(eb.has_value());
    BOOST_TEST(!*eb);
    auto l = f.run(f.store.list_user(u));
    BOOST_TEST_REQUIRE(l.has_value());
    BOOST_TEST(l->empty());
    auto eu = f.run(f.store.erase_user(u));
    BOOST_TEST_REQUIRE(eu.has_value());
    BOOST_TEST(eu->empty());
  }

  /// A second insert of a key conflicts and leaves the stored value alone.
  static void insert_of_an_existing_key_conflicts() {
    fixture f;
    const std::string k = f.key("a");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k, store_write{"first", long_ttl, {}})).has_value());
    BOOST_TEST(detail::code_of(f.run(f.store.insert(k, store_write{"second", long_ttl, {}}))) ==
               ec(error::conflict));
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "first");
    BOOST_TEST(r->version == 1u);
  }

  /// replace writes only over the version it names and returns a new version; a stale version
  /// (or 0, which no stored value has) conflicts and changes nothing.
  static void replace_checks_the_version() {
    fixture f;
    const std::string k = f.key("a");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k, store_write{"v1", long_ttl, {}})).has_value());
    auto v2 = f.run(f.store.replace(k, store_write{"v2", long_ttl, {}}, 1));
    BOOST_TEST_REQUIRE(v2.has_value(), v2.error().message());
    BOOST_TEST(*v2 != 1u);
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "v2");
    BOOST_TEST(r->version == *v2);

    BOOST_TEST(detail::code_of(f.run(f.store.replace(k, store_write{"stale", long_ttl, {}}, 1))) ==
               ec(error::conflict));
    BOOST_TEST(detail::code_of(f.run(f.store.replace(k, store_write{"zero", long_ttl, {}}, 0))) ==
               ec(error::conflict));
    auto v3 = f.run(f.store.replace(k, store_write{"v3", long_ttl, {}}, *v2));
    BOOST_TEST_REQUIRE(v3.has_value());
    BOOST_TEST(*v3 != *v2);
    BOOST_TEST(*v3 != 1u);
    r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "v3");
    BOOST_TEST(r->version == *v3);
  }

  /// rotate moves the value to the new key in one step: the old key is gone, the new one holds
  /// `w` at the returned version. A wrong version or a taken new key conflicts, and then both
  /// keys are as they were.
  static void rotate_moves_the_value() {
    fixture f;
    const std::string a = f.key("a"), b = f.key("b"), taken = f.key("taken");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(a, store_write{"v1", long_ttl, {}})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.insert(taken, store_write{"t", long_ttl, {}})).has_value());

    BOOST_TEST(detail::code_of(f.run(f.store.rotate(a, b, store_write{"w", long_ttl, {}}, 7))) ==
               ec(error::conflict));
    BOOST_TEST(detail::code_of(f.run(f.store.rotate(a, taken, store_write{"w", long_ttl, {}}, 1))) ==
               ec(error::conflict));
    BOOST_TEST(detail::code_of(f.run(f.store.load(b))) == ec(error::not_found));
    auto held = f.run(f.store.load(a));
    BOOST_TEST_REQUIRE(held.has_value());
    BOOST_TEST(held->value == "v1");
    BOOST_TEST(held->version == 1u);
    auto t = f.run(f.store.load(taken));
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST(t->value == "t");

    auto v = f.run(f.store.rotate(a, b, store_write{"moved", long_ttl, {}}, 1));
    BOOST_TEST_REQUIRE(v.has_value(), v.error().message());
    BOOST_TEST(*v != 1u);
    BOOST_TEST(detail::code_of(f.run(f.store.load(a))) == ec(error::not_found));
    auto r = f.run(f.store.load(b));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "moved");
    BOOST_TEST(r->version == *v);
    // The returned version is the one to name next.
    BOOST_TEST(f.run(f.store.replace(b, store_write{"again", long_ttl, {}}, *v)).has_value());
  }

  /// erase says whether it erased; the key is gone after it.
  static void erase_reports_what_it_erased() {
    fixture f;
    const std::string k = f.key("a"), u = f.user("u");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k, store_write{"v", long_ttl, u})).has_value());
    auto e = f.run(f.store.erase(k));
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(*e);
    BOOST_TEST(detail::code_of(f.run(f.store.load(k))) == ec(error::not_found));
    e = f.run(f.store.erase(k));
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(!*e);
    // A key erased can be inserted again, from version 1.
    auto v = f.run(f.store.insert(k, store_write{"again", long_ttl, {}}));
    BOOST_TEST_REQUIRE(v.has_value());
    BOOST_TEST(*v == 1u);
  }

  /// erase_bound erases a key only if it is bound to that user, now: not an anonymous key, not
  /// another user's, not a key rebound to someone else since it was listed.
  static void erase_bound_checks_the_binding() {
    fixture f;
    const std::string mine = f.key("mine"), anon = f.key("anon"), moved = f.key("moved");
    const std::string u = f.user("u"), v = f.user("v");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(mine, store_write{"m", long_ttl, u})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.insert(anon, store_write{"a", long_ttl, {}})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.insert(moved, store_write{"x", long_ttl, u})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.replace(moved, store_write{"y", long_ttl, v}, 1)).has_value());

    for (const std::string* k : {&anon, &moved}) {
      auto e = f.run(f.store.erase_bound(*k, u));
      BOOST_TEST_REQUIRE(e.has_value());
      BOOST_TEST(!*e, *k);
      BOOST_TEST(f.run(f.store.load(*k)).has_value(), *k);
    }
    auto wrong = f.run(f.store.erase_bound(mine, v));
    BOOST_TEST_REQUIRE(wrong.has_value());
    BOOST_TEST(!*wrong);
    BOOST_TEST(f.run(f.store.load(mine)).has_value());

    auto e = f.run(f.store.erase_bound(mine, u));
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(*e);
    BOOST_TEST(detail::code_of(f.run(f.store.load(mine))) == ec(error::not_found));
    e = f.run(f.store.erase_bound(moved, v));
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(*e);
  }

  /// list_user holds every live key bound to the user (it may hold keys bound elsewhere since);
  /// erase_user erases exactly the keys bound to the user and returns them; other users' and
  /// anonymous keys stay; afterwards the user has nothing listed.
  static void per_user_list_and_erase() {
    fixture f;
    const std::string u = f.user("u"), v = f.user("v");
    const std::string k1 = f.key("1"), k2 = f.key("2"), k3 = f.key("3"), other = f.key("other"),
                      anon = f.key("anon"), rebound = f.key("rebound"), rotated = f.key("rotated");
    for (const std::string* k : {&k1, &k2, &rebound})
      BOOST_TEST_REQUIRE(f.run(f.store.insert(*k, store_write{"x", long_ttl, u})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.insert(other, store_write{"o", long_ttl, v})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.insert(anon, store_write{"a", long_ttl, {}})).has_value());
    // Bound by a replace and by a rotate (the manager's login).
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k3, store_write{"x", long_ttl, {}})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.replace(k3, store_write{"y", long_ttl, u}, 1)).has_value());
    const std::string pre = f.key("pre");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(pre, store_write{"p", long_ttl, {}})).has_value());
    BOOST_TEST_REQUIRE(f.run(f.store.rotate(pre, rotated, store_write{"r", long_ttl, u}, 1)).has_value());
    // Rebound to v: no longer u's.
    BOOST_TEST_REQUIRE(f.run(f.store.replace(rebound, store_write{"y", long_ttl, v}, 1)).has_value());

    auto listed = f.run(f.store.list_user(u));
    BOOST_TEST_REQUIRE(listed.has_value(), listed.error().message());
    const std::set<std::string> lu(listed->begin(), listed->end());
    for (const std::string* k : {&k1, &k2, &k3, &rotated}) BOOST_TEST(lu.count(*k) == 1u, *k);
    for (const std::string* k : {&other, &anon, &pre}) BOOST_TEST(lu.count(*k) == 0u, *k);
    auto listed_v = f.run(f.store.list_user(v));
    BOOST_TEST_REQUIRE(listed_v.has_value());
    const std::set<std::string> lv(listed_v->begin(), listed_v->end());
    BOOST_TEST(lv.count(other) == 1u);
    BOOST_TEST(lv.count(rebound) == 1u);

    auto erased = f.run(f.store.erase_user(u));
    BOOST_TEST_REQUIRE(erased.has_value(), erased.error().message());
    const std::set<std::string> eu(erased->begin(), erased->end());
    const std::set<std::string> expected{k1, k2, k3, rotated};
    BOOST_TEST((eu == expected));
    for (const std::string* k : {&k1, &k2, &k3, &rotated})
      BOOST_TEST(detail::code_of(f.run(f.store.load(*k))) == ec(error::not_found), *k);
    for (const std::string* k : {&other, &anon, &rebound})
      BOOST_TEST(f.run(f.store.load(*k)).has_value(), *k);

    // Listed entries of keys bound elsewhere may stay; the erased keys may not.
    listed = f.run(f.store.list_user(u));
    BOOST_TEST_REQUIRE(listed.has_value());
    for (const std::string& k : *listed) BOOST_TEST(expected.count(k) == 0u, k);
    erased = f.run(f.store.erase_user(u));
    BOOST_TEST_REQUIRE(erased.has_value());
    BOOST_TEST(erased->empty());
  }

  /// A value is gone (not_found, or expired) once its TTL has passed; replace and rotate of it
  /// are not_found and insert may take its key again. A replace or rotate sets a new TTL.
  static void values_expire_after_their_ttl() {
    if constexpr (ttl == ttl_support::none) {
      BOOST_TEST_MESSAGE("the store does not expire values: TTL case skipped");
    } else {
      fixture f;
      // real_time: short enough to wait for, long enough for a busy machine.
      constexpr ms unit = ttl == ttl_support::real_time ? ms(400) : ms(std::chrono::seconds(10));
      const std::string a = f.key("a"), b = f.key("b"), c = f.key("c"), d = f.key("d"),
                        d2 = f.key("d2"), keep = f.key("keep");
      for (const std::string* k : {&a, &b, &c, &d})
        BOOST_TEST_REQUIRE(f.run(f.store.insert(*k, store_write{"v", unit, {}})).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.insert(keep, store_write{"v", long_ttl, {}})).has_value());
      // Before the TTL ends: a replace and a rotate each set a long TTL.
      BOOST_TEST_REQUIRE(f.run(f.store.replace(c, store_write{"w", long_ttl, {}}, 1)).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.rotate(d, d2, store_write{"w", long_ttl, {}}, 1)).has_value());

      f.pass(unit * 3);
      auto gone = [&](const std::string& k) {
        const error_code e = detail::code_of(f.run(f.store.load(k)));
        return e == condition::session_gone;
      };
      BOOST_TEST(gone(a));
      BOOST_TEST(detail::code_of(f.run(f.store.replace(b, store_write{"w", long_ttl, {}}, 1))) ==
                 ec(error::not_found));
      BOOST_TEST(f.run(f.store.load(keep)).has_value());
      BOOST_TEST(f.run(f.store.load(c)).has_value());
      BOOST_TEST(f.run(f.store.load(d2)).has_value());

      auto again = f.run(f.store.insert(a, store_write{"new", long_ttl, {}}));
      BOOST_TEST_REQUIRE(again.has_value(), again.error().message());
      BOOST_TEST(*again == 1u);
      auto r = f.run(f.store.load(a));
      BOOST_TEST_REQUIRE(r.has_value());
      BOOST_TEST(r->value == "new");
    }
  }

  /// An expired bound value is not listed, and rotate of an expired key is not_found.
  static void expired_values_leave_the_user_index() {
    if constexpr (ttl == ttl_support::none) {
      BOOST_TEST_MESSAGE("the store does not expire values: TTL case skipped");
    } else {
      fixture f;
      constexpr ms unit = ttl == ttl_support::real_time ? ms(400) : ms(std::chrono::seconds(10));
      const std::string u = f.user("u");
      const std::string a = f.key("a"), b = f.key("b"), live = f.key("live");
      BOOST_TEST_REQUIRE(f.run(f.store.insert(a, store_write{"v", unit, u})).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.insert(b, store_write{"v", unit, {}})).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.insert(live, store_write{"v", long_ttl, u})).has_value());
      f.pass(unit * 3);
      auto listed = f.run(f.store.list_user(u));
      BOOST_TEST_REQUIRE(listed.has_value());
      BOOST_TEST((*listed == std::vector<std::string>{live}));
      BOOST_TEST(detail::code_of(f.run(f.store.rotate(b, f.key("b2"), store_write{"w", long_ttl, {}}, 1))) ==
                 ec(error::not_found));
      BOOST_TEST(detail::code_of(f.run(f.store.load(f.key("b2")))) == ec(error::not_found));
    }
  }

  /// Many coroutines on several threads insert one key: exactly one wins, the others conflict.
  static void concurrent_inserts_have_one_winner() {
    fixture f;
    const std::string k = f.key("contested");
    constexpr std::size_t n = 16;
    std::vector<std::string> values;
    for (std::size_t i = 0; i < n; ++i) values.push_back("value-" + std::to_string(i));
    auto results = f.template run_concurrently<result<std::uint64_t>>(
        n, [&](std::size_t i) { return f.store.insert(k, store_write{values[i], long_ttl, {}}); },
        detail::threads_of<Traits>());
    std::size_t wins = 0, winner = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (results[i]) {
        ++wins;
        winner = i;
      } else {
        BOOST_TEST(results[i].error() == ec(error::conflict), results[i].error().message());
      }
    }
    BOOST_TEST_REQUIRE(wins == 1u);
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == values[winner]);
  }

  /// Many replaces of one version, and many rotations of one key to distinct new keys: one
  /// winner each, whose write is the one stored; the losers conflict (or, for a rotation that
  /// comes after the winner's, find the old key gone).
  static void concurrent_replaces_and_rotates_have_one_winner() {
    fixture f;
    const std::string k = f.key("contested");
    constexpr std::size_t n = 16;
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k, store_write{"v1", long_ttl, {}})).has_value());
    std::vector<std::string> values, targets;
    for (std::size_t i = 0; i < n; ++i) {
      values.push_back("value-" + std::to_string(i));
      targets.push_back(f.key("to-" + std::to_string(i)));
    }
    auto replaced = f.template run_concurrently<result<std::uint64_t>>(
        n, [&](std::size_t i) { return f.store.replace(k, store_write{values[i], long_ttl, {}}, 1); },
        detail::threads_of<Traits>());
    std::size_t wins = 0, winner = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (replaced[i]) {
        ++wins;
        winner = i;
      } else {
        BOOST_TEST(replaced[i].error() == ec(error::conflict), replaced[i].error().message());
      }
    }
    BOOST_TEST_REQUIRE(wins == 1u);
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == values[winner]);
    BOOST_TEST(r->version == *replaced[winner]);
    const std::uint64_t version = r->version;

    auto rotated = f.template run_concurrently<result<std::uint64_t>>(
        n,
        [&](std::size_t i) {
          return f.store.rotate(k, targets[i], store_write{values[i], long_ttl, {}}, version);
        },
        detail::threads_of<Traits>());
    wins = 0;
    winner = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (rotated[i]) {
        ++wins;
        winner = i;
      } else {
        const error_code e = rotated[i].error();
        BOOST_TEST((e == error::conflict || e == error::not_found), e.message());
      }
    }
    BOOST_TEST_REQUIRE(wins == 1u);
    BOOST_TEST(detail::code_of(f.run(f.store.load(k))) == ec(error::not_found));
    for (std::size_t i = 0; i < n; ++i) {
      auto t = f.run(f.store.load(targets[i]));
      if (i == winner) {
        BOOST_TEST_REQUIRE(t.has_value());
        BOOST_TEST(t->value == values[i]);
      } else {
        BOOST_TEST(detail::code_of(t) == ec(error::not_found), targets[i]);
      }
    }
  }

  /// Operations on distinct keys from several threads at once lose nothing: each key ends at
  /// its last write.
  static void operations_from_several_threads() {
    fixture f;
    constexpr std::size_t n = 32;
    constexpr int rounds = 5;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) keys.push_back(f.key("t" + std::to_string(i)));
    auto ok = f.template run_concurrently<bool>(
        n,
        [&](std::size_t i) -> awaitable<bool> {
          typename fixture::store_type st = f.store;  // a copy per coroutine: a cheap handle
          const std::string& k = keys[i];
          auto v = co_await st.insert(k, store_write{"0", long_ttl, {}});
          if (!v) co_return false;
          std::uint64_t version = *v;
          for (int round = 1; round <= rounds; ++round) {
            const std::string value = std::to_string(round);
            auto nv = co_await st.replace(k, store_write{value, long_ttl, {}}, version);
            if (!nv) co_return false;
            version = *nv;
          }
          auto r = co_await st.load(k);
          co_return r && r->value == std::to_string(rounds) && r->version == version;
        },
        detail::threads_of<Traits>());
    for (std::size_t i = 0; i < n; ++i) BOOST_TEST(ok[i], keys[i]);
  }

  /// Keys and values the manager never makes still work: a value of 1 MiB, an empty value,
  /// keys with bytes such as spaces, '*', '?', quotes and non-ASCII.
  static void unusual_keys_and_values() {
    fixture f;
    const std::string big(1 << 20, '\xa5');
    const std::string k = f.key("big");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(k, store_write{big, long_ttl, {}})).has_value());
    auto r = f.run(f.store.load(k));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST((r->value == big));
    const std::string empty_key = f.key("empty");
    BOOST_TEST_REQUIRE(f.run(f.store.insert(empty_key, store_write{"", long_ttl, {}})).has_value());
    r = f.run(f.store.load(empty_key));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value.empty());
    for (const char* name : {"with space", "glob*?[x]", "quote\"'", "\xc3\xa9t\xc3\xa9", "a:b{c}"}) {
      const std::string odd = f.key(name);
      auto v = f.run(f.store.insert(odd, store_write{name, long_ttl, {}}));
      BOOST_TEST_REQUIRE(v.has_value(), name);
      r = f.run(f.store.load(odd));
      BOOST_TEST_REQUIRE(r.has_value(), name);
      BOOST_TEST(r->value == name);
      // A pattern-like key matches only itself.
      auto e = f.run(f.store.erase(odd));
      BOOST_TEST_REQUIRE(e.has_value());
      BOOST_TEST(*e);
    }
    BOOST_TEST(f.run(f.store.load(k)).has_value());
  }

  /// load_many (when the store has it): one result per key, in order, each as load gives it.
  static void load_many_matches_load() {
    if constexpr (!batch_loading_store<typename fixture::store_type>) {
      BOOST_TEST_MESSAGE("the store has no load_many: case skipped");
    } else {
      fixture f;
      const std::string a = f.key("a"), b = f.key("b"), missing = f.key("missing");
      BOOST_TEST_REQUIRE(f.run(f.store.insert(a, store_write{"va", long_ttl, {}})).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.insert(b, store_write{"vb", long_ttl, {}})).has_value());
      BOOST_TEST_REQUIRE(f.run(f.store.replace(b, store_write{"vb2", long_ttl, {}}, 1)).has_value());
      const std::vector<std::string> keys{b, missing, a, b};
      auto all = f.run(f.store.load_many(keys));
      BOOST_TEST_REQUIRE(all.has_value(), all.error().message());
      BOOST_TEST_REQUIRE(all->size() == keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        auto one = f.run(f.store.load(keys[i]));
        const auto& many = (*all)[i];
        BOOST_TEST(detail::code_of(many) == detail::code_of(one), keys[i]);
        if (many && one) {
          BOOST_TEST(many->value == one->value);
          BOOST_TEST(many->version == one->version);
        }
      }
      auto none = f.run(f.store.load_many(std::vector<std::string>{}));
      BOOST_TEST_REQUIRE(none.has_value());
      BOOST_TEST(none->empty());
    }
  }

  /// A caller may cancel an operation (terminal cancellation) before it starts or while it
  /// runs: it completes with its result, with operation_aborted, or by the operation_aborted
  /// exception Asio's coroutines throw at a cancelled co_await; a cancelled replace happened
  /// entirely or not at all; the store stays usable.
  static void cancelled_operations_leave_the_store_usable() {
    fixture f;
    const std::string k = f.key("a");
    auto v = f.run(f.store.insert(k, store_write{"v0", long_ttl, {}}));
    BOOST_TEST_REQUIRE(v.has_value());
    std::uint64_t version = *v;
    std::string previous = "v0";
    for (int steps = 0; steps < 6; ++steps) {
      BOOST_TEST_CONTEXT("cancelled after " << steps << " handlers") {
        const std::string value = "v" + std::to_string(steps + 1);
        boost::asio::cancellation_signal signal;
        bool done = false;
        std::exception_ptr thrown;
        result<std::uint64_t> out = make_error_code(error::internal);
        boost::asio::co_spawn(
            f.ioc, f.store.replace(k, store_write{value, long_ttl, {}}, version),
            boost::asio::bind_cancellation_slot(
                signal.slot(), [&](std::exception_ptr e, result<std::uint64_t> r) {
                  thrown = e;
                  out = std::move(r);
                  done = true;
                }));
        f.ioc.restart();
        for (int i = 0; i < steps && !done; ++i) f.ioc.run_one();
        signal.emit(boost::asio::cancellation_type::terminal);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!done && std::chrono::steady_clock::now() < deadline) {
          f.ioc.restart();
          f.ioc.run_one_for(std::chrono::milliseconds(100));
        }
        BOOST_TEST_REQUIRE(done, "a cancelled operation never completed");
        if (thrown) {
          try {
            std::rethrow_exception(thrown);
          } catch (const boost::system::system_error& e) {
            BOOST_TEST(e.code() == boost::asio::error::operation_aborted, e.what());
          }
        } else if (!out) {
          BOOST_TEST(out.error() == boost::asio::error::operation_aborted, out.error().message());
        }
        auto r = f.run(f.store.load(k));
        BOOST_TEST_REQUIRE(r.has_value(), r.error().message());
        if (r->version == version) {
          BOOST_TEST(r->value == previous);
        } else {
          BOOST_TEST(r->value == value);
        }
        previous = r->value;
        version = r->version;
      }
    }
    BOOST_TEST(f.run(f.store.replace(k, store_write{"after", long_ttl, {}}, version)).has_value());
  }

  // ---- through basic_session_manager (archetype serializer and cipher, manual clock) ----

  using manager_type =
      basic_session_manager<archetype_serializer, archetype_cipher, typename fixture::store_type,
                            manual_clock>;

  static options manager_options(const fixture& f) {
    options o;
    o.key_prefix = f.prefix();
    return o;
  }

  static constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  /// create, load, save, a stale save (conflict), destroy.
  static void manager_session_lifecycle() {
    fixture f;
    manager_type mgr(f.ioc.get_executor(), archetype_cipher{}, f.store, manager_options(f),
                     archetype_serializer{}, f.clock);
    auto [e1, s] = f.run(mgr.async_create(tuple));
    BOOST_TEST_REQUIRE(!e1, e1.message());
    s.set("n", 1);
    auto [e2] = f.run(mgr.async_save(s, tuple));
    BOOST_TEST_REQUIRE(!e2, e2.message());

    auto [e3, a] = f.run(mgr.async_load(s.id(), tuple));
    BOOST_TEST_REQUIRE(!e3, e3.message());
    auto [e4, b] = f.run(mgr.async_load(s.id(), tuple));
    BOOST_TEST_REQUIRE(!e4);
    BOOST_TEST(a.template get_as<int>("n").value_or(0) == 1);
    a.set("n", 2);
    auto [e5] = f.run(mgr.async_save(a, tuple));
    BOOST_TEST_REQUIRE(!e5, e5.message());
    b.set("n", 3);
    auto [e6] = f.run(mgr.async_save(b, tuple));
    BOOST_TEST(e6 == ec(error::conflict));

    auto [e7, c] = f.run(mgr.async_load(s.id(), tuple));
    BOOST_TEST_REQUIRE(!e7);
    BOOST_TEST(c.template get_as<int>("n").value_or(0) == 2);
    auto [e8] = f.run(mgr.async_destroy(c, tuple));
    BOOST_TEST_REQUIRE(!e8, e8.message());
    auto [e9, gone] = f.run(mgr.async_load(s.id(), tuple));
    BOOST_TEST(e9 == ec(error::not_found));
    auto [ep] = f.run(mgr.async_ping(tuple));
    BOOST_TEST(!ep, ep.message());
  }

  /// A login (bind_user + rotate) kills the old id; the user's sessions are listed and
  /// destroyed together; another user's session stays.
  static void manager_login_and_logout_everywhere() {
    fixture f;
    manager_type mgr(f.ioc.get_executor(), archetype_cipher{}, f.store, manager_options(f),
                     archetype_serializer{}, f.clock);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      auto [e, s] = f.run(mgr.async_create(tuple));
      BOOST_TEST_REQUIRE(!e, e.message());
      const std::string old_id = s.id();
      mgr.bind_user(s, i < 2 ? "alice" : "bob");
      auto [er] = f.run(mgr.async_rotate(s, tuple));
      BOOST_TEST_REQUIRE(!er, er.message());
      BOOST_TEST(s.id() != old_id);
      auto [eo, old] = f.run(mgr.async_load(old_id, tuple));
      BOOST_TEST(eo == ec(error::not_found));
      ids.push_back(s.id());
    }
    auto [el, listed] = f.run(mgr.async_list_user("alice", tuple));
    BOOST_TEST_REQUIRE(!el, el.message());
    BOOST_TEST(listed.size() == 2u);

    auto [ed, count] = f.run(mgr.async_destroy_user("alice", tuple));
    BOOST_TEST_REQUIRE(!ed, ed.message());
    BOOST_TEST(count == 2u);
    for (int i = 0; i < 2; ++i) {
      auto [e, s] = f.run(mgr.async_load(ids[i], tuple));
      BOOST_TEST(e == ec(error::not_found));
    }
    auto [eb, bob] = f.run(mgr.async_load(ids[2], tuple));
    BOOST_TEST_REQUIRE(!eb, eb.message());
    BOOST_TEST(bob.user() == "bob");
  }
};

}  // namespace websession::testing

/// Registers the conformance cases for `Traits` as the Boost.Test suite `suite_name` (at
/// namespace scope, in one translation unit of a Boost.Test program).
#define WEBSESSION_STORE_CONFORMANCE_TESTS(suite_name, ...)                                   \
  BOOST_AUTO_TEST_SUITE(suite_name)                                                           \
  WEBSESSION_STORE_CONFORMANCE_CASE(insert_then_load, __VA_ARGS__)                            \
  WEBSESSION_STORE_CONFORMANCE_CASE(absent_keys, __VA_ARGS__)                                 \
  WEBSESSION_STORE_CONFORMANCE_CASE(insert_of_an_existing_key_conflicts, __VA_ARGS__)         \
  WEBSESSION_STORE_CONFORMANCE_CASE(replace_checks_the_version, __VA_ARGS__)                  \
  WEBSESSION_STORE_CONFORMANCE_CASE(rotate_moves_the_value, __VA_ARGS__)                      \
  WEBSESSION_STORE_CONFORMANCE_CASE(erase_reports_what_it_erased, __VA_ARGS__)                \
  WEBSESSION_STORE_CONFORMANCE_CASE(erase_bound_checks_the_binding, __VA_ARGS__)              \
  WEBSESSION_STORE_CONFORMANCE_CASE(per_user_list_and_erase, __VA_ARGS__)                     \
  WEBSESSION_STORE_CONFORMANCE_CASE(values_expire_after_their_ttl, __VA_ARGS__)               \
  WEBSESSION_STORE_CONFORMANCE_CASE(expired_values_leave_the_user_index, __VA_ARGS__)         \
  WEBSESSION_STORE_CONFORMANCE_CASE(concurrent_inserts_have_one_winner, __VA_ARGS__)          \
  WEBSESSION_STORE_CONFORMANCE_CASE(concurrent_replaces_and_rotates_have_one_winner, __VA_ARGS__) \
  WEBSESSION_STORE_CONFORMANCE_CASE(operations_from_several_threads, __VA_ARGS__)             \
  WEBSESSION_STORE_CONFORMANCE_CASE(unusual_keys_and_values, __VA_ARGS__)                     \
  WEBSESSION_STORE_CONFORMANCE_CASE(load_many_matches_load, __VA_ARGS__)                      \
  WEBSESSION_STORE_CONFORMANCE_CASE(cancelled_operations_leave_the_store_usable, __VA_ARGS__) \
  WEBSESSION_STORE_CONFORMANCE_CASE(manager_session_lifecycle, __VA_ARGS__)                   \
  WEBSESSION_STORE_CONFORMANCE_CASE(manager_login_and_logout_everywhere, __VA_ARGS__)         \
  BOOST_AUTO_TEST_SUITE_END()

/// One case of the suite (used by WEBSESSION_STORE_CONFORMANCE_TESTS).
#define WEBSESSION_STORE_CONFORMANCE_CASE(name, ...) \
  BOOST_AUTO_TEST_CASE(name) { ::websession::testing::store_conformance<__VA_ARGS__>::name(); }
