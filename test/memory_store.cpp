// SPDX-License-Identifier: BSL-1.0
// Tests of websession/store/memory.hpp: versions, expiry on a manual clock, the sweep timer and
// its lifetime, capacity bounds, the per-user index, shared handles and concurrent use.
#include "support/run.hpp"

#include <websession/store/memory.hpp>
#include <websession/testing/store_conformance.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using websession::error;
using websession::manual_clock;
using websession::memory_store_options;
using websession::memory_store_sweep;
using websession::store_write;
using store_type = websession::basic_memory_store<manual_clock>;
using keys = std::vector<std::string>;

constexpr std::size_t overhead = store_type::entry_overhead;

std::size_t cost(std::string_view key, std::string_view value, std::string_view user = {}) {
  return key.size() + value.size() + user.size() + overhead;
}

using websession::test::code;
using websession::test::ec;
using websession::test::run_on;

memory_store_options no_timer() {
  memory_store_options o;
  return o;
}

// An io_context, a manual clock shared with a store, and a shortcut to run store operations.
struct env {
  explicit env(memory_store_options o = no_timer()) : store(ioc.get_executor(), o, clock) {}

  template <class T>
  T run(asio::awaitable<T> op) {
    return websession::test::run_on(ioc, std::move(op));
  }

  asio::io_context ioc;  // declared first: the store must be destroyed before it
  manual_clock clock;
  store_type store;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_store)

BOOST_AUTO_TEST_CASE(insert_load_replace_erase) {
  env e;
  auto v = e.run(e.store.insert("k1", {"one", 10s, ""}));
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(*v == 1u);

  auto r = e.run(e.store.load("k1"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->value == "one");
  BOOST_TEST(r->version == 1u);

  v = e.run(e.store.replace("k1", {"two", 10s, ""}, 1));
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(*v == 2u);
  v = e.run(e.store.replace("k1", {"three", 10s, ""}, 2));
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(*v == 3u);

  r = e.run(e.store.load("k1"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->value == "three");
  BOOST_TEST(r->version == 3u);
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.bytes() == cost("k1", "three"));

  auto erased = e.run(e.store.erase("k1"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(*erased == true);
  erased = e.run(e.store.erase("k1"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(*erased == false);
  BOOST_TEST(code(e.run(e.store.load("k1"))) == ec(error::not_found));
  BOOST_TEST(e.store.size() == 0u);
  BOOST_TEST(e.store.bytes() == 0u);

  BOOST_TEST(e.run(e.store.ping()) == boost::system::error_code{});
}

BOOST_AUTO_TEST_CASE(conflicts_and_not_found) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("k", {"v1", 10s, ""})).has_value());

  // insert over a live key
  BOOST_TEST(code(e.run(e.store.insert("k", {"other", 10s, ""}))) == ec(error::conflict));
  // stale version
  BOOST_TEST(code(e.run(e.store.replace("k", {"v2", 10s, ""}, 0))) == ec(error::conflict));
  BOOST_TEST(code(e.run(e.store.replace("k", {"v2", 10s, ""}, 2))) == ec(error::conflict));
  BOOST_TEST(code(e.run(e.store.rotate("k", "k2", {"v2", 10s, ""}, 7))) == ec(error::conflict));
  // none of these changed anything
  auto r = e.run(e.store.load("k"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->value == "v1");
  BOOST_TEST(r->version == 1u);
  BOOST_TEST(code(e.run(e.store.load("k2"))) == ec(error::not_found));
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.bytes() == cost("k", "v1"));

  // absent keys
  BOOST_TEST(code(e.run(e.store.load("nope"))) == ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.replace("nope", {"x", 10s, ""}, 1))) == ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.rotate("nope", "n2", {"x", 10s, ""}, 1))) ==
             ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.load("n2"))) == ec(error::not_found));
  BOOST_TEST(e.store.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rotate_moves_the_value_and_bumps_the_version) {
  // One shard forces old and new key into the same map (one lock, a possible rehash); many
  // shards make them differ (two locks).
  for (std::size_t shards : {std::size_t{1}, std::size_t{16}}) {
    auto o = no_timer();
    o.shards = shards;
    env e(o);
    BOOST_TEST_REQUIRE(e.run(e.store.insert("old", {"a", 10s, ""})).has_value());
    BOOST_TEST_REQUIRE(e.run(e.store.replace("old", {"b", 10s, ""}, 1)).has_value());

    auto v = e.run(e.store.rotate("old", "new", {"rotated", 10s, ""}, 2));
    BOOST_TEST_REQUIRE(v.has_value());
    BOOST_TEST(*v == 3u);
    BOOST_TEST(code(e.run(e.store.load("old"))) == ec(error::not_found));
    auto r = e.run(e.store.load("new"));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "rotated");
    BOOST_TEST(r->version == 3u);
    BOOST_TEST(e.store.size() == 1u);
    BOOST_TEST(e.store.bytes() == cost("new", "rotated"));

    // many rotations in one shard exercise rehashing between the two lookups
    std::string key = "new";
    std::uint64_t version = 3;
    for (int i = 0; i < 200; ++i) {
      std::string next = "key" + std::to_string(i);
      auto rv = e.run(e.store.rotate(key, next, {"x", 10s, ""}, version));
      BOOST_TEST_REQUIRE(rv.has_value());
      BOOST_TEST_REQUIRE(*rv == version + 1);
      version = *rv;
      key = next;
    }
    BOOST_TEST(e.store.size() == 1u);
    BOOST_TEST(e.store.bytes() == cost(key, "x"));

    // onto a live key: conflict, both untouched
    BOOST_TEST_REQUIRE(e.run(e.store.insert("taken", {"t", 10s, ""})).has_value());
    BOOST_TEST(code(e.run(e.store.rotate(key, "taken", {"y", 10s, ""}, version))) ==
               ec(error::conflict));
    r = e.run(e.store.load(key));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->version == version);
    r = e.run(e.store.load("taken"));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->value == "t");
    BOOST_TEST(r->version == 1u);

    // onto an expired key: allowed, the expired entry goes
    BOOST_TEST_REQUIRE(e.run(e.store.insert("stale", {"s", 1s, ""})).has_value());
    e.clock.advance(1s);
    v = e.run(e.store.rotate(key, "stale", {"z", 10s, ""}, version));
    BOOST_TEST_REQUIRE(v.has_value());
    BOOST_TEST(*v == version + 1);
    BOOST_TEST(e.store.size() == 2u);
    BOOST_TEST(e.store.bytes() == cost("stale", "z") + cost("taken", "t"));
  }
}

BOOST_AUTO_TEST_CASE(load_expires_exactly_at_the_deadline) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("k", {"v", 10s, ""})).has_value());
  e.clock.advance(10s - 1ns);
  BOOST_TEST(e.run(e.store.load("k")).has_value());
  e.clock.advance(1ns);  // now == expires
  BOOST_TEST(code(e.run(e.store.load("k"))) == ec(error::expired));
  // the expired entry was erased on access
  BOOST_TEST(code(e.run(e.store.load("k"))) == ec(error::not_found));
  BOOST_TEST(e.store.size() == 0u);
  BOOST_TEST(e.store.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(replace_and_rotate_of_expired_entries_are_not_found) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {"v", 10s, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {"v", 10s, ""})).has_value());
  e.clock.advance(10s);
  BOOST_TEST(code(e.run(e.store.replace("a", {"w", 10s, ""}, 1))) == ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.rotate("b", "c", {"w", 10s, ""}, 1))) == ec(error::not_found));
  BOOST_TEST(e.store.size() == 0u);
  BOOST_TEST(e.store.bytes() == 0u);
  BOOST_TEST(code(e.run(e.store.load("c"))) == ec(error::not_found));

  // erase of an expired entry reports nothing live was erased, but drops it
  BOOST_TEST_REQUIRE(e.run(e.store.insert("d", {"v", 1s, ""})).has_value());
  e.clock.advance(1s);
  auto erased = e.run(e.store.erase("d"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(*erased == false);
  BOOST_TEST(e.store.size() == 0u);
}

BOOST_AUTO_TEST_CASE(insert_over_an_expired_entry_and_ttl_refresh) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("k", {"old-value", 1s, ""})).has_value());
  e.clock.advance(1s);
  auto v = e.run(e.store.insert("k", {"new", 10s, ""}));
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(*v == 1u);
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.bytes() == cost("k", "new"));

  // replace sets a fresh TTL from its own now
  e.clock.advance(5s);
  BOOST_TEST_REQUIRE(e.run(e.store.replace("k", {"newer", 10s, ""}, 1)).has_value());
  e.clock.advance(9s);
  BOOST_TEST(e.run(e.store.load("k")).has_value());
  e.clock.advance(1s);
  BOOST_TEST(code(e.run(e.store.load("k"))) == ec(error::expired));

  // huge TTLs saturate instead of overflowing into the past
  BOOST_TEST_REQUIRE(
      e.run(e.store.insert("forever", {"v", std::chrono::milliseconds::max(), ""})).has_value());
  e.clock.advance(std::chrono::hours(24 * 365 * 100));
  BOOST_TEST(e.run(e.store.load("forever")).has_value());
  // and a TTL of zero is due at once
  BOOST_TEST_REQUIRE(e.run(e.store.insert("zero", {"v", 0ms, ""})).has_value());
  BOOST_TEST(code(e.run(e.store.load("zero"))) == ec(error::expired));
}

BOOST_AUTO_TEST_CASE(sweep_removes_expired_and_keeps_live) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("short1", {"v", 1s, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("short2", {"v", 2s, "u"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("long", {"v", 1h, ""})).has_value());
  BOOST_TEST(e.store.sweep() == 0u);
  e.clock.advance(1s);
  BOOST_TEST(e.store.sweep() == 1u);
  BOOST_TEST(e.store.size() == 2u);
  BOOST_TEST(e.store.user_bindings() == 1u);
  e.clock.advance(1s);
  BOOST_TEST(e.store.sweep() == 1u);
  BOOST_TEST(e.store.user_bindings() == 0u);
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.bytes() == cost("long", "v"));
  // swept entries are gone, not merely expired
  BOOST_TEST(code(e.run(e.store.load("short1"))) == ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.load("short2"))) == ec(error::not_found));
  BOOST_TEST(e.run(e.store.load("long")).has_value());
  auto listed = e.run(e.store.list_user("u"));
  BOOST_TEST_REQUIRE(listed.has_value());
  BOOST_TEST(listed->empty());
}

BOOST_AUTO_TEST_CASE(timer_driven_sweep) {
  env e;
  const memory_store_sweep sweeping = e.store.start_sweep(1ms);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("short", {"v", 1s, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("long", {"v", 1h, ""})).has_value());
  e.clock.advance(1s);

  // Bounded: at most about 2 s of real time, normally one 1 ms tick.
  auto wait_for_size = [&](std::size_t n) {
    for (int i = 0; i < 200 && e.store.size() != n; ++i) {
      e.ioc.restart();
      e.ioc.run_for(10ms);
    }
  };
  wait_for_size(1);
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.bytes() == cost("long", "v"));

  // the timer re-arms itself
  BOOST_TEST_REQUIRE(e.run(e.store.insert("short2", {"v", 1s, ""})).has_value());
  BOOST_TEST(e.store.size() == 2u);
  e.clock.advance(1s);
  wait_for_size(1);
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.run(e.store.load("long")).has_value());
}

// Entries bound to a user are never evicted: a store full of them refuses more, bound or
// anonymous.
BOOST_AUTO_TEST_CASE(capacity_by_count) {
  auto o = no_timer();
  o.max_sessions = 2;
  env e(o);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {"v", 1h, "u"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {"v", 1h, "u"})).has_value());
  BOOST_TEST(code(e.run(e.store.insert("c", {"v", 1h, "u"}))) == ec(error::capacity));
  BOOST_TEST(code(e.run(e.store.insert("c", {"v", 1h, ""}))) == ec(error::capacity));
  BOOST_TEST(e.store.size() == 2u);
  BOOST_TEST(e.store.bytes() == cost("a", "v", "u") + cost("b", "v", "u"));
  BOOST_TEST(e.store.evictions() == 0u);
  BOOST_TEST(e.run(e.store.load("a")).has_value());
  BOOST_TEST(e.run(e.store.load("b")).has_value());
  BOOST_TEST(code(e.run(e.store.load("c"))) == ec(error::not_found));
  // replace and rotate do not add an entry, so they still work when full
  BOOST_TEST(e.run(e.store.replace("a", {"w", 1h, "u"}, 1)).has_value());
  BOOST_TEST(e.run(e.store.rotate("b", "b2", {"w", 1h, "u"}, 1)).has_value());

  BOOST_TEST_REQUIRE(e.run(e.store.erase("a")).has_value());
  BOOST_TEST(e.run(e.store.insert("c", {"v", 1h, "u"})).has_value());
  BOOST_TEST(e.store.size() == 2u);
  BOOST_TEST(e.store.evictions() == 0u);
}

BOOST_AUTO_TEST_CASE(capacity_by_bytes) {
  // Bound entries, which are never evicted (see the eviction tests for anonymous ones).
  const std::string ten(10, 'x');
  auto o = no_timer();
  o.max_bytes = 2 * cost("a", ten, "u");
  env e(o);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {ten, 1h, "u"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {ten, 1h, "u"})).has_value());
  BOOST_TEST(e.store.bytes() == o.max_bytes);
  BOOST_TEST(code(e.run(e.store.insert("c", {"", 1h, "u"}))) == ec(error::capacity));
  BOOST_TEST(code(e.run(e.store.insert("c", {"", 1h, ""}))) == ec(error::capacity));

  // a replace that grows the value is checked too, and leaves the entry as it was
  BOOST_TEST(code(e.run(e.store.replace("a", {ten + "y", 1h, "u"}, 1))) == ec(error::capacity));
  auto r = e.run(e.store.load("a"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->value == ten);
  BOOST_TEST(r->version == 1u);
  // so is the user name, and a longer key in a rotate
  BOOST_TEST(code(e.run(e.store.replace("a", {ten, 1h, "uu"}, 1))) == ec(error::capacity));
  BOOST_TEST(code(e.run(e.store.rotate("a", "aa", {ten, 1h, "u"}, 1))) == ec(error::capacity));
  BOOST_TEST(e.run(e.store.load("a")).has_value());
  BOOST_TEST(e.store.evictions() == 0u);

  // shrinking frees room, which a later growth can use up to exactly max_bytes
  BOOST_TEST_REQUIRE(e.run(e.store.replace("a", {"123456789", 1h, "u"}, 1)).has_value());
  BOOST_TEST(e.store.bytes() == o.max_bytes - 1);
  BOOST_TEST_REQUIRE(e.run(e.store.replace("b", {ten + "y", 1h, "u"}, 1)).has_value());
  BOOST_TEST(e.store.bytes() == o.max_bytes);
  BOOST_TEST(e.run(e.store.load("a")).has_value());
  BOOST_TEST(e.run(e.store.load("b")).has_value());

  // a value larger than the whole budget
  BOOST_TEST_REQUIRE(e.run(e.store.erase("a")).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.erase("b")).has_value());
  std::string huge(o.max_bytes, 'h');
  BOOST_TEST(code(e.run(e.store.insert("h", {huge, 1h, ""}))) == ec(error::capacity));
  BOOST_TEST(e.store.size() == 0u);
  BOOST_TEST(e.store.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(expired_entries_are_purged_to_make_room) {
  {
    auto o = no_timer();
    o.max_sessions = 2;
    env e(o);
    BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {"v", 1s, "u"})).has_value());
    BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {"v", 1h, "u"})).has_value());
    BOOST_TEST(code(e.run(e.store.insert("c", {"v", 1h, "u"}))) == ec(error::capacity));
    e.clock.advance(1s);
    BOOST_TEST(e.run(e.store.insert("c", {"v", 1h, "u"})).has_value());
    BOOST_TEST(e.store.size() == 2u);
    // "a" was swept, not left behind as expired
    BOOST_TEST(code(e.run(e.store.load("a"))) == ec(error::not_found));
    BOOST_TEST(e.run(e.store.load("b")).has_value());
  }
  {
    const std::string ten(10, 'x');
    auto o = no_timer();
    o.max_bytes = 2 * cost("a", ten, "u");
    env e(o);
    BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {ten, 1s, "u"})).has_value());
    BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {ten, 1h, "u"})).has_value());
    const std::string bigger = ten + std::string(cost("a", ten, "u"), 'y');
    BOOST_TEST(code(e.run(e.store.replace("b", {bigger, 1h, "u"}, 1))) == ec(error::capacity));
    e.clock.advance(1s);
    auto v = e.run(e.store.replace("b", {bigger, 1h, "u"}, 1));
    BOOST_TEST_REQUIRE(v.has_value());
    BOOST_TEST(*v == 2u);
    BOOST_TEST(e.store.size() == 1u);
    BOOST_TEST(e.store.bytes() == cost("b", bigger, "u"));
    BOOST_TEST(e.store.bytes() == o.max_bytes);
  }
}

BOOST_AUTO_TEST_CASE(user_index) {
  env e;
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a", {"v", 1h, "alice"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {"v", 1h, "alice"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("c", {"v", 1h, "bob"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("d", {"v", 1h, ""})).has_value());
  BOOST_TEST(e.store.bytes() == cost("a", "v", "alice") + cost("b", "v", "alice") +
                                    cost("c", "v", "bob") + cost("d", "v"));

  auto list = [&](std::string_view user) {
    auto r = e.run(e.store.list_user(user));
    BOOST_TEST_REQUIRE(r.has_value());
    return *r;
  };
  BOOST_TEST(list("alice") == (keys{"a", "b"}));
  BOOST_TEST(list("bob") == (keys{"c"}));
  BOOST_TEST(e.store.user_bindings() == 3u);
  BOOST_TEST(list("") == keys{});
  BOOST_TEST(list("carol") == keys{});

  // a replace that changes the user moves the key
  BOOST_TEST_REQUIRE(e.run(e.store.replace("b", {"v", 1h, "bob"}, 1)).has_value());
  BOOST_TEST(list("alice") == (keys{"a"}));
  BOOST_TEST(list("bob") == (keys{"b", "c"}));
  BOOST_TEST(e.store.user_bindings() == 3u);
  // and one that clears it unbinds the key
  BOOST_TEST_REQUIRE(e.run(e.store.replace("c", {"v", 1h, ""}, 1)).has_value());
  BOOST_TEST(list("bob") == (keys{"b"}));
  BOOST_TEST(e.store.user_bindings() == 2u);
  // binding a key that had no user
  BOOST_TEST_REQUIRE(e.run(e.store.replace("d", {"v", 1h, "bob"}, 1)).has_value());
  BOOST_TEST(list("bob") == (keys{"b", "d"}));

  // rotate keeps the binding, under the new key
  BOOST_TEST_REQUIRE(e.run(e.store.rotate("a", "a2", {"v", 1h, "alice"}, 1)).has_value());
  BOOST_TEST(list("alice") == (keys{"a2"}));
  BOOST_TEST(e.store.user_bindings() == 3u);

  // erase_user erases only that user's keys, and reports them
  auto erased = e.run(e.store.erase_user("bob"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(*erased == (keys{"b", "d"}));
  BOOST_TEST(code(e.run(e.store.load("b"))) == ec(error::not_found));
  BOOST_TEST(code(e.run(e.store.load("d"))) == ec(error::not_found));
  BOOST_TEST(e.run(e.store.load("a2")).has_value());
  BOOST_TEST(e.run(e.store.load("c")).has_value());
  BOOST_TEST(list("bob") == keys{});
  BOOST_TEST(e.store.user_bindings() == 1u);
  erased = e.run(e.store.erase_user("bob"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(erased->empty());

  // plain erase unbinds too
  BOOST_TEST_REQUIRE(e.run(e.store.insert("e", {"v", 1h, "alice"})).has_value());
  BOOST_TEST(list("alice") == (keys{"a2", "e"}));
  BOOST_TEST_REQUIRE(e.run(e.store.erase("e")).has_value());
  BOOST_TEST(list("alice") == (keys{"a2"}));
  BOOST_TEST(e.store.user_bindings() == 1u);

  // expiry takes keys out of the index: lazily ...
  BOOST_TEST_REQUIRE(e.run(e.store.insert("f", {"v", 1s, "alice"})).has_value());
  BOOST_TEST(list("alice") == (keys{"a2", "f"}));
  e.clock.advance(1s);
  BOOST_TEST(list("alice") == (keys{"a2"}));
  BOOST_TEST(e.store.user_bindings() == 1u);
  BOOST_TEST(code(e.run(e.store.load("f"))) == ec(error::not_found));  // dropped by list_user
  // ... by sweep ...
  BOOST_TEST_REQUIRE(e.run(e.store.insert("g", {"v", 1s, "alice"})).has_value());
  e.clock.advance(1s);
  BOOST_TEST(e.store.user_bindings() == 2u);
  BOOST_TEST(e.store.sweep() == 1u);
  BOOST_TEST(e.store.user_bindings() == 1u);
  BOOST_TEST(list("alice") == (keys{"a2"}));
  // ... and by load
  BOOST_TEST_REQUIRE(e.run(e.store.insert("i", {"v", 1s, "alice"})).has_value());
  e.clock.advance(1s);
  BOOST_TEST(code(e.run(e.store.load("i"))) == ec(error::expired));
  BOOST_TEST(e.store.user_bindings() == 1u);
  // ... and erase_user does not report expired keys as erased
  BOOST_TEST_REQUIRE(e.run(e.store.insert("h", {"v", 1s, "alice"})).has_value());
  e.clock.advance(1s);
  erased = e.run(e.store.erase_user("alice"));
  BOOST_TEST_REQUIRE(erased.has_value());
  BOOST_TEST(*erased == (keys{"a2"}));
  BOOST_TEST(e.store.size() == 1u);  // "c", which has no user
  BOOST_TEST(e.store.bytes() == cost("c", "v"));
  BOOST_TEST(e.store.user_bindings() == 0u);
}

// The per-user index is a list through the entries: entries leave it from any position (the
// newest, the oldest, the middle), move between users and to and from the anonymous recency
// list. A deterministic random walk over 40 keys and 3 users (and anonymous), checked after
// every step against a plain map of who holds which key.
BOOST_AUTO_TEST_CASE(user_lists_follow_every_change_of_binding) {
  env e;
  const std::array<std::string, 4> users{"", "alice", "bob", "carol"};
  std::map<std::string, std::pair<std::string, std::uint64_t>> model;  // key -> (user, version)
  std::uint64_t seed = 12345;
  auto next = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  int renamed = 0;
  for (int step = 0; step < 3000; ++step) {
    const std::string key = "k" + std::to_string(next(40));
    const std::string& user = users[next(users.size())];
    const auto held = model.find(key);
    const std::uint64_t op = next(4);
    if (held == model.end()) {
      BOOST_TEST_REQUIRE(e.run(e.store.insert(key, {"v", 1h, user})).has_value());
      model[key] = {user, 1};
    } else if (op == 0) {
      BOOST_TEST_REQUIRE(e.run(e.store.erase(key)).value());
      model.erase(held);
    } else if (op == 1) {
      auto r = e.run(e.store.replace(key, {"v", 1h, user}, held->second.second));
      BOOST_TEST_REQUIRE(r.has_value());
      held->second = {user, *r};
    } else {
      const std::string to = "r" + std::to_string(renamed++);
      auto r = e.run(e.store.rotate(key, to, {"v", 1h, user}, held->second.second));
      BOOST_TEST_REQUIRE(r.has_value());
      model.erase(held);
      model[to] = {user, *r};
    }
    std::size_t bound = 0, anonymous = 0;
    for (const auto& [k, v] : model) (v.first.empty() ? anonymous : bound) += 1;
    BOOST_TEST_REQUIRE(e.store.user_bindings() == bound);
    BOOST_TEST_REQUIRE(e.store.anonymous() == anonymous);
    BOOST_TEST_REQUIRE(e.store.size() == model.size());
    if (step % 7 != 0) continue;
    for (const std::string& u : users) {
      if (u.empty()) continue;
      keys expected;
      for (const auto& [k, v] : model)
        if (v.first == u) expected.push_back(k);  // std::map: sorted, as list_user's
      auto listed = e.run(e.store.list_user(u));
      BOOST_TEST_REQUIRE(listed.has_value());
      BOOST_TEST_REQUIRE(*listed == expected);
    }
  }
  // erase_user empties each list and leaves the anonymous entries
  for (const std::string& u : users) {
    if (u.empty()) continue;
    keys expected;
    for (const auto& [k, v] : model)
      if (v.first == u) expected.push_back(k);
    auto erased = e.run(e.store.erase_user(u));
    BOOST_TEST_REQUIRE(erased.has_value());
    BOOST_TEST(*erased == expected);
  }
  BOOST_TEST(e.store.user_bindings() == 0u);
  BOOST_TEST(e.store.size() == e.store.anonymous());
}

BOOST_AUTO_TEST_CASE(copies_share_data) {
  asio::io_context ioc;
  manual_clock clock;
  std::optional<store_type> original(std::in_place, ioc.get_executor(), no_timer(), clock);
  store_type copy = *original;
  BOOST_TEST_REQUIRE(run_on(ioc, copy.insert("k", {"v", 1h, "u"})).has_value());
  BOOST_TEST(original->size() == 1u);
  BOOST_TEST(original->bytes() == copy.bytes());
  auto r = run_on(ioc, original->load("k"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->value == "v");

  // the data outlives the handle it was created through ...
  original.reset();
  BOOST_TEST(copy.size() == 1u);
  BOOST_TEST(run_on(ioc, copy.load("k")).has_value());

  // ... and an operation outlives the handle it was started from
  auto op = [&] {
    store_type temporary = copy;
    return temporary.load("k");
  }();
  r = run_on(ioc, std::move(op));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->version == 1u);

  // and the clock copy is shared: the store sees the test's time
  clock.advance(1h);
  BOOST_TEST(code(run_on(ioc, copy.load("k"))) == ec(error::expired));
}

BOOST_AUTO_TEST_CASE(bad_configuration_throws) {
  asio::io_context ioc;
  memory_store_options o;
  o.shards = 0;
  BOOST_CHECK_THROW(websession::memory_store(ioc.get_executor(), o), std::invalid_argument);
  o = no_timer();
  o.max_sessions = 10;
  o.max_anonymous_sessions = 11;
  BOOST_CHECK_THROW(websession::memory_store(ioc.get_executor(), o), std::invalid_argument);
  o.max_anonymous_sessions = 10;
  BOOST_CHECK_NO_THROW(websession::memory_store(ioc.get_executor(), o));
}

BOOST_AUTO_TEST_CASE(destroying_the_store_with_a_pending_timer_is_safe) {
  using clock = std::chrono::steady_clock;
  // A long interval: if the destructor did not cancel the wait, run() would block for it. The
  // sweep handle outlives the store.
  {
    asio::io_context ioc;
    memory_store_sweep sweeping;
    {
      websession::memory_store store(ioc.get_executor());
      sweeping = store.start_sweep(60s);
      BOOST_TEST_REQUIRE(run_on(ioc, store.insert("k", {"v", 1h, ""})).has_value());
      websession::memory_store copy = store;
    }
    ioc.restart();
    const auto start = clock::now();
    ioc.run_for(10s);
    BOOST_TEST(ioc.stopped());  // ran out of work
    BOOST_TEST((clock::now() - start < 5s));
  }
  // A short interval that has already fired and re-armed a few times.
  {
    asio::io_context ioc;
    {
      websession::memory_store store(ioc.get_executor());
      const memory_store_sweep sweeping = store.start_sweep(1ms);
      ioc.run_for(20ms);
    }
    ioc.restart();
    const auto start = clock::now();
    ioc.run_for(10s);
    BOOST_TEST(ioc.stopped());
    BOOST_TEST((clock::now() - start < 5s));
  }
  // Stopping the sweep lets the io_context run out of work while the store lives on.
  {
    asio::io_context ioc;
    websession::memory_store store(ioc.get_executor());
    memory_store_sweep sweeping = store.start_sweep(60s);
    sweeping.stop();
    const auto start = clock::now();
    ioc.run_for(10s);
    BOOST_TEST(ioc.stopped());
    BOOST_TEST((clock::now() - start < 5s));
    BOOST_TEST(run_on(ioc, store.insert("k", {"v", 1h, ""})).has_value());
  }
  // The last handle dropped on one thread while the timer runs on two others.
  for (int round = 0; round < 20; ++round) {
    asio::io_context ioc;
    manual_clock mc;
    auto work = asio::make_work_guard(ioc);
    std::vector<std::thread> threads;
    {
      memory_store_options o;
      o.shards = 1;
      std::optional<store_type> store(std::in_place, ioc.get_executor(), o, mc);
      // Outlives the store: the store's destruction stops the sweep.
      const memory_store_sweep sweeping = store->start_sweep(1ms);
      threads.emplace_back([&] { ioc.run(); });
      threads.emplace_back([&] { ioc.run(); });
      // Let a few ticks happen: one sweep has run once the expired entry is gone.
      auto op = store->insert("k", {"v", 1ms, ""});
      auto f = asio::co_spawn(ioc, std::move(op), asio::use_future);
      BOOST_TEST_REQUIRE(f.get().has_value());
      mc.advance(1ms);
      for (int i = 0; i < 2000 && store->size() != 0; ++i) std::this_thread::sleep_for(1ms);
      BOOST_TEST(store->size() == 0u);
      store.reset();
    }
    work.reset();
    for (auto& t : threads) t.join();  // returns only if the timer was cancelled
    BOOST_TEST(ioc.stopped());
  }
}

namespace {

struct mixed_counters {
  std::atomic<int> done{0};
  std::atomic<int> unexpected{0};
  std::atomic<int> succeeded{0};
};

const std::array<std::string, 4> users{"u0", "u1", "u2", "u3"};
constexpr int key_count = 64;

std::string key_name(int k) { return "key-" + std::to_string(k); }

// One coroutine of the mixed workload. The user travels inside the value, so the test can
// recompute the accounting and the index from what loads.
asio::awaitable<void> mixed_op(store_type store, int i, mixed_counters& c) {
  const std::string key = key_name(i % key_count);
  const std::string& user = users[static_cast<std::size_t>(i) % users.size()];
  const std::string value = user + ":" + std::string(static_cast<std::size_t>(i % 50), 'x');
  const store_write w{value, 1h, user};
  auto bad = [&] { c.unexpected.fetch_add(1); };
  switch (i % 4) {
    case 0: {
      auto r = co_await store.insert(key, w);
      if (r.has_value()) {
        c.succeeded.fetch_add(1);
        if (*r != 1u) bad();
      } else if (r.error() != error::conflict) {
        bad();
      }
      break;
    }
    case 1: {
      auto l = co_await store.load(key);
      if (!l.has_value()) {
        if (l.error() != error::not_found) bad();
        break;
      }
      auto r = co_await store.replace(key, w, l->version);
      if (r.has_value()) {
        c.succeeded.fetch_add(1);
        if (*r != l->version + 1) bad();
      } else if (r.error() != error::conflict && r.error() != error::not_found) {
        bad();
      }
      break;
    }
    case 2: {
      auto r = co_await store.erase(key);
      if (!r.has_value()) bad();
      break;
    }
    default: {
      auto l = co_await store.load(key);
      if (!l.has_value()) {
        if (l.error() != error::not_found) bad();
        break;
      }
      const std::string target = key_name((i + 7) % key_count);
      auto r = co_await store.rotate(key, target, w, l->version);
      if (r.has_value()) {
        c.succeeded.fetch_add(1);
        if (*r != l->version + 1) bad();
      } else if (r.error() != error::conflict && r.error() != error::not_found) {
        bad();
      }
      break;
    }
  }
  c.done.fetch_add(1);
}

void run_on_two_threads(asio::io_context& ioc) {
  std::thread other([&] { ioc.run(); });
  ioc.run();
  other.join();
}

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_mixed_operations) {
  constexpr int operations = 20'000;
  asio::io_context ioc(2);
  manual_clock clock;
  store_type store(ioc.get_executor(), no_timer(), clock);
  mixed_counters c;
  for (int i = 0; i < operations; ++i) asio::co_spawn(ioc, mixed_op(store, i, c), asio::detached);
  run_on_two_threads(ioc);
  BOOST_TEST(c.done.load() == operations);
  BOOST_TEST(c.unexpected.load() == 0);
  BOOST_TEST(c.succeeded.load() > 0);

  // Recompute count, bytes and the index from what is left.
  std::size_t live = 0;
  std::size_t bytes = 0;
  std::map<std::string, keys> by_user;
  for (int k = 0; k < key_count; ++k) {
    const std::string key = key_name(k);
    auto r = run_on(ioc, store.load(key));
    if (!r.has_value()) {
      BOOST_TEST(r.error() == ec(error::not_found));
      continue;
    }
    const std::string user = r->value.substr(0, r->value.find(':'));
    ++live;
    bytes += cost(key, r->value, user);
    by_user[user].push_back(key);
  }
  BOOST_TEST(store.size() == live);
  BOOST_TEST(store.bytes() == bytes);
  BOOST_TEST(store.user_bindings() == live);  // every value here is bound to a user
  for (const auto& user : users) {
    auto listed = run_on(ioc, store.list_user(user));
    BOOST_TEST_REQUIRE(listed.has_value());
    keys expected = by_user[user];
    std::sort(expected.begin(), expected.end());
    BOOST_TEST(*listed == expected);
  }

  for (int k = 0; k < key_count; ++k) {
    BOOST_TEST_REQUIRE(run_on(ioc, store.erase(key_name(k))).has_value());
  }
  BOOST_TEST(store.size() == 0u);
  BOOST_TEST(store.bytes() == 0u);
  BOOST_TEST(store.user_bindings() == 0u);
  for (const auto& user : users) {
    auto listed = run_on(ioc, store.list_user(user));
    BOOST_TEST_REQUIRE(listed.has_value());
    BOOST_TEST(listed->empty());
  }
}

namespace {

asio::awaitable<void> insert_distinct(store_type store, int i, std::string_view user,
                                      std::atomic<int>& ok, std::atomic<int>& full,
                                      std::atomic<int>& other) {
  const std::string key = "distinct-" + std::to_string(i);
  const store_write w{"0123456789", 1h, user};
  auto r = co_await store.insert(key, w);
  if (r.has_value()) {
    ok.fetch_add(1);
  } else if (r.error() == error::capacity) {
    full.fetch_add(1);
  } else {
    other.fetch_add(1);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(bounds_hold_exactly_under_concurrency) {
  constexpr int attempts = 4'000;
  // By count, then by bytes: every key has a 4-digit index, so every entry costs the same and
  // a budget of 300 entries' bytes admits exactly 300. Bound entries are refused beyond it;
  // anonymous ones all get in, evicting the oldest, and the store stays exactly at its bound.
  for (bool anonymous : {false, true}) {
    for (bool by_bytes : {false, true}) {
      BOOST_TEST_CONTEXT("anonymous " << anonymous << ", by bytes " << by_bytes) {
        const std::string user = anonymous ? "" : "u";
        const std::size_t each = cost("distinct-1000", "0123456789", user);
        asio::io_context ioc(2);
        manual_clock clock;
        auto o = no_timer();
        o.shards = 4;
        if (by_bytes) {
          o.max_bytes = 300 * each;
        } else {
          o.max_sessions = 300;
          o.max_anonymous_sessions = 300;
        }
        std::atomic<std::size_t> reported{0};
        o.on_evict = [&](std::string_view) { reported.fetch_add(1); };
        store_type store(ioc.get_executor(), o, clock);
        std::atomic<int> ok{0}, full{0}, other{0};
        for (int i = 1000; i < 1000 + attempts; ++i) {
          asio::co_spawn(ioc, insert_distinct(store, i, user, ok, full, other), asio::detached);
        }
        run_on_two_threads(ioc);
        BOOST_TEST(other.load() == 0);
        BOOST_TEST(ok.load() == (anonymous ? attempts : 300));
        BOOST_TEST(full.load() == (anonymous ? 0 : attempts - 300));
        BOOST_TEST(store.size() == 300u);
        BOOST_TEST(store.bytes() == 300 * each);
        BOOST_TEST(store.anonymous() == (anonymous ? 300u : 0u));
        BOOST_TEST(store.evictions() == (anonymous ? attempts - 300u : 0u));
        BOOST_TEST(reported.load() == store.evictions());
      }
    }
  }
}

namespace {

// Runs `op` to completion on a private io_context: for threads other than the test's (which
// must not use Boost.Test assertions).
template <class T>
T run_here(asio::io_context& ioc, asio::awaitable<T> op) {
  auto f = asio::co_spawn(ioc, std::move(op), asio::use_future);
  ioc.restart();
  ioc.run();
  return f.get();
}

}  // namespace

// A session rotated to a new key while erase_user runs must not survive it: erase_user takes
// a snapshot of the user's keys, and a rotation between the snapshot and the erasure of the
// old key used to move the session out of its reach (about 1 in 300 trials with one session).
// Here a thread rotates each of 16 sessions of one user in a loop while the test thread calls
// erase_user; afterwards the user must have no session left, whatever the interleaving.
BOOST_AUTO_TEST_CASE(erase_user_catches_concurrent_rotations) {
  constexpr int trials = 400;
  constexpr int sessions = 16;
  int survivors = 0;
  int rotations = 0;
  for (int trial = 0; trial < trials; ++trial) {
    auto o = no_timer();
    o.shards = 4;
    asio::io_context ioc;
    manual_clock clock;
    store_type store(ioc.get_executor(), o, clock);
    std::vector<std::pair<std::string, std::uint64_t>> live;
    for (int i = 0; i < sessions; ++i) {
      std::string key = "t" + std::to_string(trial) + "-s" + std::to_string(i) + "-0";
      BOOST_TEST_REQUIRE(run_on(ioc, store.insert(key, {"v", 1h, "alice"})).has_value());
      live.emplace_back(std::move(key), 1);
    }
    std::atomic<bool> started{false};
    std::atomic<bool> stop{false};
    std::atomic<int> rotated{0};
    std::thread rotator([&] {
      asio::io_context own;
      for (int n = 1; !stop.load(std::memory_order_acquire); ++n) {
        bool any = false;
        for (auto& [key, version] : live) {
          if (key.empty()) continue;
          std::string next = key.substr(0, key.rfind('-') + 1) + std::to_string(n);
          auto r = run_here(own, store.rotate(key, next, {"v", 1h, "alice"}, version));
          if (r.has_value()) {
            key = std::move(next);
            version = *r;
            rotated.fetch_add(1, std::memory_order_relaxed);
            any = true;
          } else {
            key.clear();  // erased: not_found from now on
          }
          started.store(true, std::memory_order_release);
        }
        if (!any) break;
      }
    });
    while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    auto erased = run_on(ioc, store.erase_user("alice"));
    stop.store(true, std::memory_order_release);
    rotator.join();
    BOOST_TEST_REQUIRE(erased.has_value());
    rotations += rotated.load();
    auto left = run_on(ioc, store.list_user("alice"));
    BOOST_TEST_REQUIRE(left.has_value());
    if (!left->empty() || store.size() != 0) ++survivors;
  }
  BOOST_TEST_MESSAGE("erase_user race: " << rotations << " rotations in " << trials << " trials");
  BOOST_TEST(rotations > 0);
  BOOST_TEST(survivors == 0);
}

// --- Eviction of anonymous entries (security review: a cookie-less flood filled the store) ---

BOOST_AUTO_TEST_CASE(anonymous_budget_defaults_and_zero) {
  asio::io_context ioc;
  manual_clock clock;
  BOOST_TEST(store_type(ioc.get_executor(), no_timer(), clock).max_anonymous() == 750'000u);
  auto o = no_timer();
  o.max_sessions = 2;
  BOOST_TEST(store_type(ioc.get_executor(), o, clock).max_anonymous() == 2u);  // 3/4, rounded up
  o.max_sessions = 0;
  BOOST_TEST(store_type(ioc.get_executor(), o, clock).max_anonymous() == 0u);

  // 0 anonymous sessions: every anonymous write is refused, bound ones are not
  o = no_timer();
  o.max_anonymous_sessions = 0;
  env e(o);
  BOOST_TEST(code(e.run(e.store.insert("a", {"v", 1h, ""}))) == ec(error::capacity));
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b", {"v", 1h, "u"})).has_value());
  BOOST_TEST(code(e.run(e.store.replace("b", {"v", 1h, ""}, 1))) == ec(error::capacity));
  BOOST_TEST(code(e.run(e.store.rotate("b", "c", {"v", 1h, ""}, 1))) == ec(error::capacity));
  BOOST_TEST(e.run(e.store.rotate("b", "c", {"v", 1h, "u"}, 1)).has_value());
  BOOST_TEST(e.store.size() == 1u);
  BOOST_TEST(e.store.anonymous() == 0u);
  BOOST_TEST(e.store.bytes() == cost("c", "v", "u"));
  BOOST_TEST(e.store.evictions() == 0u);
}

BOOST_AUTO_TEST_CASE(anonymous_inserts_evict_the_least_recently_used) {
  // One shard: the LRU order is exact.
  auto o = no_timer();
  o.shards = 1;
  o.max_sessions = 10;
  o.max_anonymous_sessions = 4;
  std::vector<std::string> reported;
  o.on_evict = [&](std::string_view key) { reported.emplace_back(key); };
  env e(o);
  for (const char* k : {"a0", "a1", "a2", "a3"}) {
    BOOST_TEST_REQUIRE(e.run(e.store.insert(k, {"v", 1h, ""})).has_value());
  }
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b0", {"v", 1h, "u"})).has_value());
  BOOST_TEST(e.store.anonymous() == 4u);

  // a0 is the oldest, but a load makes it the most recent: a1 goes
  BOOST_TEST_REQUIRE(e.run(e.store.load("a0")).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a4", {"v", 1h, ""})).has_value());
  BOOST_TEST(code(e.run(e.store.load("a1"))) == ec(error::not_found));
  BOOST_TEST(reported == keys{"a1"});
  // a write counts as a use too: a2 is replaced, so a3 goes next
  BOOST_TEST_REQUIRE(e.run(e.store.replace("a2", {"w", 1h, ""}, 1)).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a5", {"v", 1h, ""})).has_value());
  BOOST_TEST(code(e.run(e.store.load("a3"))) == ec(error::not_found));
  BOOST_TEST(reported == (keys{"a1", "a3"}));
  // a rotated entry is as recent as its rotation: a0 is now the oldest
  BOOST_TEST_REQUIRE(e.run(e.store.rotate("a4", "a6", {"v", 1h, ""}, 1)).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a7", {"v", 1h, ""})).has_value());
  BOOST_TEST(code(e.run(e.store.load("a0"))) == ec(error::not_found));
  BOOST_TEST(reported == (keys{"a1", "a3", "a0"}));

  for (const char* k : {"a2", "a5", "a6", "a7", "b0"}) {
    BOOST_TEST(e.run(e.store.load(k)).has_value(), k);
  }
  BOOST_TEST(e.store.size() == 5u);
  BOOST_TEST(e.store.anonymous() == 4u);
  BOOST_TEST(e.store.evictions() == 3u);
  BOOST_TEST(e.store.user_bindings() == 1u);
  BOOST_TEST(e.store.bytes() == cost("a2", "w") + 3 * cost("a5", "v") + cost("b0", "v", "u"));

  // an expired anonymous entry makes room without counting as an eviction
  BOOST_TEST_REQUIRE(e.run(e.store.erase("a7")).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("x", {"v", 1s, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.load("a2")).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.load("a5")).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.load("a6")).has_value());
  e.clock.advance(1s);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a8", {"v", 1h, ""})).has_value());
  BOOST_TEST(e.store.evictions() == 3u);
  BOOST_TEST(reported.size() == 3u);
  BOOST_TEST(e.store.size() == 5u);
  BOOST_TEST(e.store.anonymous() == 4u);
  BOOST_TEST(e.store.bytes() == cost("a2", "w") + 3 * cost("a5", "v") + cost("b0", "v", "u"));
}

BOOST_AUTO_TEST_CASE(bound_writes_evict_anonymous_entries_when_full) {
  // Several shards, so the victim is often in another shard than the write.
  for (std::size_t shards : {std::size_t{1}, std::size_t{16}}) {
    BOOST_TEST_CONTEXT("shards " << shards) {
      auto o = no_timer();
      o.shards = shards;
      o.max_sessions = 4;
      o.max_anonymous_sessions = 4;
      env e(o);
      auto fill = [&](int from) {
        for (int i = from; i < from + 4 && e.store.size() < 4; ++i) {
          BOOST_TEST_REQUIRE(e.run(e.store.insert("anon" + std::to_string(i), {"v", 1h, ""}))
                                 .has_value());
        }
      };
      fill(0);
      BOOST_TEST(e.store.anonymous() == 4u);
      // a login (insert bound to a user) into the full store evicts one anonymous session
      BOOST_TEST_REQUIRE(e.run(e.store.insert("bound0", {"v", 1h, "alice"})).has_value());
      BOOST_TEST(e.store.size() == 4u);
      BOOST_TEST(e.store.anonymous() == 3u);
      BOOST_TEST(e.store.evictions() == 1u);
      BOOST_TEST(e.run(e.store.load("bound0")).has_value());
      // a login by rotation, anonymous -> bound, with a longer key: by count it fits (one
      // entry leaves, one arrives), and the anonymous count goes down
      std::string victim;
      for (int i = 3; i >= 0 && victim.empty(); --i) {
        if (e.run(e.store.load("anon" + std::to_string(i))).has_value()) {
          victim = "anon" + std::to_string(i);
        }
      }
      BOOST_TEST_REQUIRE(!victim.empty());
      BOOST_TEST_REQUIRE(
          e.run(e.store.rotate(victim, "bound1-longer", {"v", 1h, "alice"}, 1)).has_value());
      BOOST_TEST(e.store.size() == 4u);
      BOOST_TEST(e.store.anonymous() == 2u);
      BOOST_TEST(e.store.user_bindings() == 2u);
      // more logins: the last two anonymous entries go, then the store is full of bound ones
      BOOST_TEST_REQUIRE(e.run(e.store.insert("bound2", {"v", 1h, "bob"})).has_value());
      BOOST_TEST_REQUIRE(e.run(e.store.insert("bound3", {"v", 1h, "bob"})).has_value());
      BOOST_TEST(e.store.anonymous() == 0u);
      BOOST_TEST(e.store.evictions() == 3u);
      BOOST_TEST(code(e.run(e.store.insert("bound4", {"v", 1h, "bob"}))) == ec(error::capacity));
      BOOST_TEST(code(e.run(e.store.insert("anon9", {"v", 1h, ""}))) == ec(error::capacity));
      for (const char* k : {"bound0", "bound1-longer", "bound2", "bound3"}) {
        BOOST_TEST(e.run(e.store.load(k)).has_value(), k);
      }
      BOOST_TEST(e.store.bytes() == cost("bound0", "v", "alice") +
                                        cost("bound1-longer", "v", "alice") +
                                        cost("bound2", "v", "bob") + cost("bound3", "v", "bob"));
      BOOST_TEST(e.store.evictions() == 3u);
    }
  }
}

BOOST_AUTO_TEST_CASE(writes_that_need_bytes_evict_anonymous_entries) {
  for (std::size_t shards : {std::size_t{1}, std::size_t{16}}) {
    BOOST_TEST_CONTEXT("shards " << shards) {
      const std::string ten(10, 'x');
      const std::size_t each = cost("a0", ten);
      auto o = no_timer();
      o.shards = shards;
      o.max_bytes = 6 * each;
      env e(o);
      for (int i = 0; i < 6; ++i) {
        BOOST_TEST_REQUIRE(
            e.run(e.store.insert("a" + std::to_string(i), {ten, 1h, ""})).has_value());
      }
      BOOST_TEST(e.store.bytes() == o.max_bytes);
      // an anonymous insert that needs the room of two entries evicts two
      const std::string big = ten + std::string(each, 'y');
      BOOST_TEST_REQUIRE(e.run(e.store.insert("b0", {big, 1h, ""})).has_value());
      BOOST_TEST(e.store.evictions() == 2u);
      BOOST_TEST(e.store.size() == 5u);
      // a replace that binds an anonymous session and grows it (a login that keeps the key)
      auto present = [&] {
        for (int i = 0; i < 6; ++i) {
          std::string k = "a" + std::to_string(i);
          auto r = e.run(e.store.load(k));
          if (r.has_value() && r->value == ten) return k;  // still anonymous
        }
        return std::string();
      };
      std::string k = present();
      BOOST_TEST_REQUIRE(!k.empty());
      BOOST_TEST_REQUIRE(e.run(e.store.replace(k, {big, 1h, "alice"}, 1)).has_value());
      BOOST_TEST(e.run(e.store.load(k)).has_value());  // never evicts the entry it writes
      BOOST_TEST(e.store.anonymous() == e.store.size() - 1);
      // a rotate that binds and grows
      std::string k2 = present();
      BOOST_TEST_REQUIRE(!k2.empty());
      BOOST_TEST_REQUIRE(e.run(e.store.rotate(k2, "r" + k2, {big, 1h, "bob"}, 1)).has_value());
      BOOST_TEST(e.store.anonymous() == e.store.size() - 2);
      // recompute the bytes from what is left
      std::size_t bytes = 0;
      std::size_t anonymous = 0;
      for (int i = 0; i < 6; ++i) {
        std::string a = "a" + std::to_string(i);
        auto r = e.run(e.store.load(a));
        if (r.has_value() && r->value == ten) {
          bytes += each;
          ++anonymous;
        }
      }
      if (e.run(e.store.load("b0")).has_value()) {
        bytes += cost("b0", big);
        ++anonymous;
      }
      bytes += cost(k, big, "alice") + cost("r" + k2, big, "bob");
      BOOST_TEST(e.store.bytes() == bytes);
      BOOST_TEST(e.store.anonymous() == anonymous);
      BOOST_TEST(e.store.size() == anonymous + 2);
      BOOST_TEST(e.store.bytes() <= o.max_bytes);
      // a bound write that cannot fit even with every anonymous entry gone evicts nothing
      const std::uint64_t before = e.store.evictions();
      const std::string huge(o.max_bytes - cost(k, big, "alice") - 100, 'h');
      BOOST_TEST(code(e.run(e.store.insert("h", {huge, 1h, "carol"}))) == ec(error::capacity));
      BOOST_TEST(e.store.evictions() == before);
      BOOST_TEST(e.store.anonymous() == anonymous);
    }
  }
}

BOOST_AUTO_TEST_CASE(unbinding_counts_against_the_anonymous_budget) {
  auto o = no_timer();
  o.shards = 1;
  o.max_sessions = 10;
  o.max_anonymous_sessions = 2;
  env e(o);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a0", {"v", 1h, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a1", {"v", 1h, ""})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b0", {"v", 1h, "u"})).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("b1", {"v", 1h, "u"})).has_value());
  // a logout that keeps the session (replace with no user) evicts the oldest anonymous one
  BOOST_TEST_REQUIRE(e.run(e.store.replace("b0", {"v", 1h, ""}, 1)).has_value());
  BOOST_TEST(code(e.run(e.store.load("a0"))) == ec(error::not_found));
  // and so does one by rotation
  BOOST_TEST_REQUIRE(e.run(e.store.rotate("b1", "b1x", {"v", 1h, ""}, 1)).has_value());
  BOOST_TEST(code(e.run(e.store.load("a1"))) == ec(error::not_found));
  BOOST_TEST(e.store.anonymous() == 2u);
  BOOST_TEST(e.store.size() == 2u);
  BOOST_TEST(e.store.user_bindings() == 0u);
  BOOST_TEST(e.store.evictions() == 2u);
  BOOST_TEST(e.store.bytes() == cost("b0", "v") + cost("b1x", "v"));
  // binding frees budget
  BOOST_TEST_REQUIRE(e.run(e.store.replace("b0", {"v", 1h, "u"}, 2)).has_value());
  BOOST_TEST(e.store.anonymous() == 1u);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("a2", {"v", 1h, ""})).has_value());
  BOOST_TEST(e.store.evictions() == 2u);
  BOOST_TEST(e.store.anonymous() == 2u);
}

namespace {

struct flood_counters {
  std::atomic<int> unexpected{0};
  std::atomic<int> bound_full{0};
};

// One step of a flood: anonymous inserts (most), loads, logins by rotation, logouts.
asio::awaitable<void> flood_op(store_type store, int i, flood_counters& c) {
  const std::string anon = "anon-" + std::to_string(i);
  const std::string value = "v" + std::string(static_cast<std::size_t>(i % 40), 'x');
  switch (i % 8) {
    case 5: {  // a visitor comes back and logs in: rotate an earlier anonymous key
      const std::string old = "anon-" + std::to_string(i - 3);
      auto l = co_await store.load(old);
      if (!l.has_value()) {
        if (l.error() != error::not_found) c.unexpected.fetch_add(1);
        break;
      }
      const std::string user = "user" + std::to_string(i % 5);
      const std::string login = "login-" + std::to_string(i);
      auto r = co_await store.rotate(old, login, {user + ":" + value, 1h, user}, l->version);
      if (!r.has_value()) {
        if (r.error() == error::capacity) {
          c.bound_full.fetch_add(1);
        } else if (r.error() != error::not_found && r.error() != error::conflict) {
          c.unexpected.fetch_add(1);
        }
      }
      break;
    }
    case 6: {  // a logout everywhere
      auto r = co_await store.erase_user("user" + std::to_string(i % 5));
      if (!r.has_value()) c.unexpected.fetch_add(1);
      break;
    }
    case 7: {  // an older visitor comes back
      auto l = co_await store.load("anon-" + std::to_string(i - 30));
      if (!l.has_value() && l.error() != error::not_found) c.unexpected.fetch_add(1);
      break;
    }
    default: {
      auto r = co_await store.insert(anon, {":" + value, 1h, ""});
      if (!r.has_value()) c.unexpected.fetch_add(1);  // anonymous inserts always get in
      break;
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_flood_keeps_accounting_exact) {
  constexpr int operations = 20'000;
  asio::io_context ioc(2);
  manual_clock clock;
  auto o = no_timer();
  o.shards = 8;
  o.max_sessions = 400;
  o.max_anonymous_sessions = 200;
  o.max_bytes = 300 * cost("anon-10000", ":v" + std::string(20, 'x'));
  std::atomic<std::uint64_t> reported{0};
  o.on_evict = [&](std::string_view) { reported.fetch_add(1); };
  store_type store(ioc.get_executor(), o, clock);
  flood_counters c;
  for (int i = 0; i < operations; ++i) {
    asio::co_spawn(ioc, flood_op(store, i, c), asio::detached);
  }
  run_on_two_threads(ioc);
  BOOST_TEST(c.unexpected.load() == 0);
  BOOST_TEST(store.evictions() > 0u);
  BOOST_TEST(reported.load() == store.evictions());

  // Recompute everything from what loads: the user travels in the value, before the ':'.
  std::size_t live = 0, anonymous = 0, bytes = 0;
  for (int i = 0; i < operations; ++i) {
    for (const std::string& key : {"anon-" + std::to_string(i), "login-" + std::to_string(i)}) {
      auto r = run_on(ioc, store.load(key));
      if (!r.has_value()) {
        BOOST_TEST(r.error() == ec(error::not_found));
        continue;
      }
      const std::string user = r->value.substr(0, r->value.find(':'));
      ++live;
      if (user.empty()) ++anonymous;
      bytes += cost(key, r->value, user);
    }
  }
  BOOST_TEST(store.size() == live);
  BOOST_TEST(store.anonymous() == anonymous);
  BOOST_TEST(store.bytes() == bytes);
  BOOST_TEST(store.user_bindings() == live - anonymous);
  BOOST_TEST(live <= o.max_sessions);
  BOOST_TEST(anonymous <= *o.max_anonymous_sessions);
  BOOST_TEST(bytes <= o.max_bytes);
  BOOST_TEST_MESSAGE("flood: " << live << " left (" << anonymous << " anonymous), "
                               << store.evictions() << " evictions, " << c.bound_full.load()
                               << " logins refused");
}

BOOST_AUTO_TEST_SUITE_END()

// The conformance kit (websession/testing/store_conformance.hpp) on the memory store, expiry
// driven by the manual clock, and on the store archetype, which does not expire values.
namespace {

struct memory_store_traits {
  using store_type = websession::basic_memory_store<manual_clock>;
  static store_type make_store(asio::any_io_executor ex, manual_clock clock) {
    return store_type(ex, no_timer(), clock);
  }
};

struct archetype_store_traits {
  using store_type = websession::testing::archetype_store;
  static constexpr auto ttl = websession::testing::ttl_support::none;
  static store_type make_store(asio::any_io_executor, manual_clock) { return {}; }
};

}  // namespace

WEBSESSION_STORE_CONFORMANCE_TESTS(memory_store_conformance, memory_store_traits)
WEBSESSION_STORE_CONFORMANCE_TESTS(archetype_store_conformance, archetype_store_traits)
