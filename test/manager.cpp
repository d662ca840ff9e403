// SPDX-License-Identifier: BSL-1.0
// The session manager's behaviour, run against every test stack (shipped defaults and the
// policy archetypes), so that stores and policies cannot drift apart.
#include "manager_fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <variant>

namespace asio = boost::asio;
using namespace websession;
using namespace websession::test;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

// The cases that are not parameterized over a stack (and the manager_archetypes suite) run in
// the unit program only, between #ifndef WEBSESSION_TEST_REDIS and #endif.
#ifdef WEBSESSION_TEST_REDIS
// The Redis test program runs this suite for the Redis store only: on one server, on a Cluster
// and on a Sentinel-managed master.
using stacks = boost::mpl::list<redis_stack, cluster_stack, sentinel_stack>;
// And the fallback store (Redis up) for the multi-threaded test.
using thread_stacks = boost::mpl::list<redis_stack, cluster_stack, sentinel_stack, fallback_stack>;
#else
using stacks = boost::mpl::list<memory_stack, archetype_stack>;
using thread_stacks = stacks;
#endif

template <class F>
error_code load_error(F& f, const std::string& cookie) {
  return f.run([&]() -> awaitable<error_code> {
    auto [ec, s] = co_await f.mgr->async_load(cookie, tuple_token);
    co_return ec;
  });
}

template <class F>
session create(F& f) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_create(tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
}

template <class F>
session load(F& f, const std::string& cookie) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_load(cookie, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
}

template <class F>
error_code save(F& f, session& s) {
  return f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await f.mgr->async_save(s, tuple_token);
    co_return ec;
  });
}

template <class F>
store_record raw(F& f, const std::string& key) {
  return f.run([&]() -> awaitable<store_record> {
    auto r = co_await f.store.load(key);
    BOOST_TEST_REQUIRE(r.has_value());
    co_return *r;
  });
}

template <class F>
void put_raw(F& f, const std::string& key, const std::string& value, std::uint64_t version) {
  f.run([&]() -> awaitable<void> {
    auto r = co_await f.store.replace(key, store_write{value, 1h, {}}, version);
    BOOST_TEST_REQUIRE(r.has_value());
  });
}

template <class F>
error_code rotate(F& f, session& s) {
  return f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await f.mgr->async_rotate(s, tuple_token);
    co_return ec;
  });
}

template <class F>
session login(F& f, const std::string& user) {
  session s = create(f);
  f.mgr->bind_user(s, user);
  BOOST_TEST_REQUIRE(!rotate(f, s));
  return s;
}

template <class F>
std::vector<session_info> list(F& f, const std::string& user) {
  return f.run([&]() -> awaitable<std::vector<session_info>> {
    auto [e, v] = co_await f.mgr->async_list_user(user, tuple_token);
    BOOST_TEST_REQUIRE(!e, e.message());
    co_return v;
  });
}

template <class F>
result<bool> destroy_key(F& f, const std::string& key, const std::string& user = {}) {
  return f.run([&]() -> awaitable<result<bool>> {
    error_code e;
    bool erased = false;
    if (user.empty()) {
      std::tie(e, erased) = co_await f.mgr->async_destroy_key(key, tuple_token);
    } else {
      std::tie(e, erased) = co_await f.mgr->async_destroy_user_key(user, key, tuple_token);
    }
    if (e) co_return result<bool>(boost::system::in_place_error, e);
    co_return erased;
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(manager)

BOOST_AUTO_TEST_CASE_TEMPLATE(create_then_load_round_trips, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  BOOST_TEST(s.valid());
  BOOST_TEST(s.id().size() == session_id::tagged_size);
  BOOST_TEST(s.id_changed());
  BOOST_TEST(s.storage_key().starts_with("test:"));
  BOOST_TEST(s.storage_key().find(s.id()) == std::string::npos);
  BOOST_TEST(s.metadata().version == 1u);
  BOOST_TEST(s.metadata().csrf_secret.size() == 32u);

  s.set("views", 3);
  s.set("name", std::string("ada"));
  BOOST_TEST(s.dirty());
  BOOST_TEST(!save(f, s));
  BOOST_TEST(!s.dirty());

  session l = load(f, s.id());
  BOOST_TEST(l.get_as<int>("views").value_or(-1) == 3);
  BOOST_TEST(l.get_as<std::string>("name").value_or("") == "ada");
  BOOST_TEST(!l.id_changed());
  BOOST_TEST((l.metadata() == s.metadata()));
  BOOST_TEST(f.mgr->stats().created == 1u);
  BOOST_TEST(f.mgr->stats().loaded == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(malformed_cookies_never_reach_the_store, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  std::string id = s.id();
  std::string bad_char = id;
  bad_char[5] = '+';
  std::string padded = id.substr(0, 42) + "=";
  const std::vector<std::string> cookies = {
      "",                      // empty
      id.substr(0, 42),        // truncated
      id + "A",                // one too long
      std::string(10000, 'A'), // oversized
      bad_char,                // outside base64url
      padded,                  // padding
      std::string(43, ' '),    // whitespace
      "not a session id at all",
  };
  for (const std::string& c : cookies) {
    BOOST_TEST(load_error(f, c) == error::malformed, "cookie: " << c.substr(0, 50));
  }
  BOOST_TEST(f.mgr->stats().malformed == cookies.size());
  if constexpr (std::is_same_v<Stack, archetype_stack>) {
    BOOST_TEST(f.store.inspect().loads == 0u);
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(unknown_id_is_not_found, Stack, stacks) {
  manager_fixture<Stack> f;
  BOOST_TEST(load_error(f, session_id::generate().to_string()) == error::not_found);
  BOOST_TEST(f.mgr->stats().misses == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(modified_stored_values_are_tampered, Stack, stacks) {
  manager_fixture<Stack> f;
  session a = create(f);
  session b = create(f);
  store_record ra = raw(f, a.storage_key());
  store_record rb = raw(f, b.storage_key());

  // Bit flip in the middle.
  std::string flipped = ra.value;
  flipped[flipped.size() / 2] ^= 0x01;
  put_raw(f, a.storage_key(), flipped, ra.version);
  BOOST_TEST(load_error(f, a.id()) == error::tampered);

  // Truncated.
  put_raw(f, a.storage_key(), ra.value.substr(0, ra.value.size() - 5), ra.version + 1);
  BOOST_TEST(load_error(f, a.id()) == error::tampered);

  // B's value copied under A's key.
  put_raw(f, a.storage_key(), rb.value, ra.version + 2);
  BOOST_TEST(load_error(f, a.id()) == error::tampered);

  BOOST_TEST(f.mgr->stats().tampered == 3u);
  // B itself is untouched.
  BOOST_TEST(load(f, b.id()).valid());
}

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(wrong_key_is_tampered) {
  manager_fixture<memory_stack> f;
  session s = create(f);
  // Another manager on the same store, with another secret.
  memory_stack::manager_type other(f.ioc.get_executor(), aes_gcm_cipher(std::string(40, 'x')),
                                   f.store, test_options(), {}, f.clock);
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e, l] = co_await other.async_load(s.id(), tuple_token);
    co_return e;
  });
  BOOST_TEST(ec == error::tampered);
}
#endif

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(rotated_keyring_reads_old_sessions) {
  manager_fixture<memory_stack> f;
  session s = create(f);
  s.set("k", "v");
  BOOST_TEST(!save(f, s));
  std::vector<aes_gcm_cipher::key_secret> ring{{2, std::string(40, 'n')}, {1, test_secret}};
  memory_stack::manager_type rotated(f.ioc.get_executor(), aes_gcm_cipher(ring), f.store,
                                     test_options(), {}, f.clock);
  session l = f.run([&]() -> awaitable<session> {
    auto [e, l] = co_await rotated.async_load(s.id(), tuple_token);
    BOOST_TEST_REQUIRE(!e);
    l.set("k2", "v2");
    auto [e2] = co_await rotated.async_save(l, tuple_token);
    BOOST_TEST_REQUIRE(!e2);
    co_return l;
  });
  // Rewritten with the new key: the old manager can no longer read it.
  BOOST_TEST(static_cast<unsigned char>(raw(f, s.storage_key()).value[1]) == 2u);
  BOOST_TEST(load_error(f, s.id()) == error::tampered);
}
#endif

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(undecodable_and_oversized_values_are_malformed) {
  manager_fixture<memory_stack> f;
  session s = create(f);
  store_record r = raw(f, s.storage_key());
  // Authentic but not a session encoding.
  std::string sealed;
  BOOST_TEST_REQUIRE(!f.mgr->get_cipher().seal("{\"v\":99}", s.storage_key(), sealed));
  put_raw(f, s.storage_key(), sealed, r.version);
  BOOST_TEST(load_error(f, s.id()) == error::malformed);
  // Far beyond max_value_bytes: refused before decryption.
  put_raw(f, s.storage_key(), std::string(f.mgr->get_options().max_value_bytes + 4096, 'x'),
          r.version + 1);
  BOOST_TEST(load_error(f, s.id()) == error::malformed);
  BOOST_TEST(f.mgr->stats().malformed == 2u);
  BOOST_TEST(f.mgr->stats().tampered == 0u);
}
#endif

BOOST_AUTO_TEST_CASE_TEMPLATE(saving_too_much_data_is_too_large, Stack, stacks) {
  options o = test_options();
  o.max_value_bytes = 2048;
  manager_fixture<Stack> f(o);
  session s = create(f);
  s.set("blob", std::string(4096, 'z'));
  BOOST_TEST(save(f, s) == error::too_large);
  // The stored session is unchanged.
  BOOST_TEST(load(f, s.id()).get("blob") == nullptr);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(idle_deadline_expires, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  f.clock.advance(30min - 1ms);
  BOOST_TEST(load(f, s.id()).valid());
  f.clock.advance(1ms);
  BOOST_TEST(load_error(f, s.id()) == error::expired);
  BOOST_TEST(f.mgr->stats().expired == 1u);
  // Expired sessions are gone, not resurrected by a later load.
  BOOST_TEST(load_error(f, s.id()) != error_code{});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(touch_slides_the_idle_deadline_at_most_once_per_interval, Stack,
                              stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  const auto v1 = s.metadata().version;

  f.clock.advance(30s);  // within the touch interval: no write
  session l = load(f, s.id());
  BOOST_TEST(!save(f, l));
  BOOST_TEST(raw(f, s.storage_key()).version == v1);

  f.clock.advance(31s);  // past it: an unchanged session is rewritten with a new deadline
  l = load(f, s.id());
  BOOST_TEST(!save(f, l));
  BOOST_TEST(raw(f, s.storage_key()).version == v1 + 1);
  BOOST_TEST(f.mgr->stats().touched == 1u);

  // 61 s after creation + 30 min - 1 ms: alive only thanks to the touch.
  f.clock.advance(30min - 1ms);
  BOOST_TEST(load(f, s.id()).valid());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(absolute_deadline_expires_despite_activity, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  // Active every 20 minutes for 8 hours.
  for (int i = 0; i < 23; ++i) {
    f.clock.advance(20min);
    session l = load(f, s.id());
    BOOST_TEST_REQUIRE(!save(f, l));
  }
  f.clock.advance(20min - 1ms);  // 8 h - 1 ms after creation
  session l = load(f, s.id());
  BOOST_TEST((l.metadata().idle_deadline == l.metadata().absolute_deadline));
  f.clock.advance(1ms);
  BOOST_TEST(load_error(f, s.id()) == error::expired);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(rotation_kills_the_old_id, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  s.set("cart", 7);
  const std::string old_id = s.id();
  const std::string old_csrf = s.metadata().csrf_secret;
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e] = co_await f.mgr->async_rotate(s, tuple_token);
    co_return e;
  });
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(s.id() != old_id);
  BOOST_TEST(s.metadata().csrf_secret != old_csrf);
  BOOST_TEST(!s.dirty());
  BOOST_TEST(load_error(f, old_id) == error::not_found);
  BOOST_TEST(load(f, s.id()).template get_as<int>("cart").value_or(0) == 7);
  BOOST_TEST(f.mgr->stats().rotated == 1u);
}

// Slot tags: an anonymous session keeps its tag through a rotation (one slot on a cluster), a
// login rotation gives it the user's tag (the slot of the user's index), and an id from before
// slot tags (43 characters, stored under prefix + hash) still loads and rotates into a tagged one.
BOOST_AUTO_TEST_CASE_TEMPLATE(slot_tags_follow_the_user_and_old_ids_still_work, Stack, stacks) {
  manager_fixture<Stack> f;
  const auto rotate = [&](session& s) {
    return f.run([&]() -> awaitable<error_code> {
      auto [e] = co_await f.mgr->async_rotate(s, tuple_token);
      co_return e;
    });
  };
  const auto tag_of = [](const session& s) { return s.id().substr(session_id::encoded_size + 1); };
  session s = create(f);
  const std::string anonymous_tag = tag_of(s);
  BOOST_TEST(s.storage_key().find("{" + anonymous_tag + "}") != std::string::npos);
  BOOST_TEST_REQUIRE(!rotate(s));
  BOOST_TEST(tag_of(s) == anonymous_tag);
  f.mgr->bind_user(s, "ada");
  BOOST_TEST_REQUIRE(!rotate(s));
  BOOST_TEST(tag_of(s) == f.mgr->user_tag("ada"));
  BOOST_TEST(s.storage_key().find("{" + f.mgr->user_tag("ada") + "}") != std::string::npos);

  // A session stored the way ids were before slot tags.
  session t = create(f);
  t.set("kept", 5);
  BOOST_TEST_REQUIRE(!save(f, t));
  const std::string prefix = f.mgr->get_options().key_prefix;
  const std::string legacy_id = t.id().substr(0, session_id::encoded_size);
  const std::string legacy_key = session_id::parse(legacy_id)->storage_key(prefix);
  BOOST_TEST(legacy_key.size() == prefix.size() + 43);
  std::string plain, sealed;
  BOOST_TEST_REQUIRE(!f.mgr->get_cipher().open(raw(f, t.storage_key()).value, t.storage_key(), plain));
  BOOST_TEST_REQUIRE(!f.mgr->get_cipher().seal(plain, legacy_key, sealed));
  f.run([&]() -> awaitable<void> {
    auto r = co_await f.store.insert(legacy_key, store_write{sealed, std::chrono::hours(1), {}});
    BOOST_TEST_REQUIRE(r.has_value());
  });
  session old = load(f, legacy_id);
  BOOST_TEST(old.id() == legacy_id);
  BOOST_TEST(old.storage_key() == legacy_key);
  BOOST_TEST(old.template get_as<int>("kept").value_or(0) == 5);
  old.set("kept", 6);
  BOOST_TEST_REQUIRE(!save(f, old));
  f.mgr->bind_user(old, "grace");
  BOOST_TEST_REQUIRE(!rotate(old));
  BOOST_TEST(old.id().size() == session_id::tagged_size);
  BOOST_TEST(tag_of(old) == f.mgr->user_tag("grace"));
  BOOST_TEST(load_error(f, legacy_id) == error::not_found);
  BOOST_TEST(load(f, old.id()).template get_as<int>("kept").value_or(0) == 6);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(destroy_then_load_is_not_found, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e] = co_await f.mgr->async_destroy(s, tuple_token);
    co_return e;
  });
  BOOST_TEST(!ec);
  BOOST_TEST(s.destroyed());
  BOOST_TEST(!s.valid());
  BOOST_TEST(load_error(f, s.id()) == error::not_found);
  BOOST_TEST(save(f, s) == error::invalid_session);
  BOOST_TEST(save(f, *std::make_unique<session>()) == error::invalid_session);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stale_save_conflicts, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  session a = load(f, s.id());
  session b = load(f, s.id());
  a.set("who", "a");
  b.set("who", "b");
  BOOST_TEST(!save(f, a));
  BOOST_TEST(save(f, b) == error::conflict);
  BOOST_TEST(load(f, s.id()).template get_as<std::string>("who").value_or("") == "a");
  BOOST_TEST(f.mgr->stats().conflicts == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(users_are_listed_and_destroyed_together, Stack, stacks) {
  manager_fixture<Stack> f;
  std::vector<session> alice;
  for (int i = 0; i < 3; ++i) {
    session s = create(f);
    f.mgr->bind_user(s, "alice");
    error_code ec = f.run([&]() -> awaitable<error_code> {
      auto [e] = co_await f.mgr->async_rotate(s, tuple_token);
      co_return e;
    });
    BOOST_TEST_REQUIRE(!ec);
    alice.push_back(s);
  }
  session bob = f.mgr->new_session();  // bound before its first save: needs no rotation
  f.mgr->bind_user(bob, "bob");
  BOOST_TEST_REQUIRE(!save(f, bob));

  auto listed = f.run([&]() -> awaitable<std::vector<session_info>> {
    auto [e, v] = co_await f.mgr->async_list_user("alice", tuple_token);
    BOOST_TEST(!e);
    co_return v;
  });
  BOOST_TEST(listed.size() == 3u);
  for (auto& info : listed) BOOST_TEST(info.metadata.user == "alice");

  std::size_t n = f.run([&]() -> awaitable<std::size_t> {
    auto [e, count] = co_await f.mgr->async_destroy_user("alice", tuple_token);
    BOOST_TEST(!e);
    co_return count;
  });
  BOOST_TEST(n == 3u);
  for (auto& s : alice) BOOST_TEST(load_error(f, s.id()) == error::not_found);
  BOOST_TEST(load(f, bob.id()).user() == "bob");
  BOOST_TEST(f.mgr->stats().destroyed == 3u);
}

#ifndef WEBSESSION_TEST_REDIS
// A memory store full of users' sessions refuses new ones; it never evicts a logged-in session.
BOOST_AUTO_TEST_CASE(full_store_refuses_new_sessions) {
  memory_store_options so;
  so.max_sessions = 2;
  manager_fixture<memory_stack> f(test_options(), so);
  session a = login(f, "ada");
  session b = login(f, "bob");
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e, s] = co_await f.mgr->async_create(tuple_token);
    co_return e;
  });
  BOOST_TEST(ec == error::capacity);
  BOOST_TEST(f.mgr->stats().store_errors == 1u);
  // Live sessions of users were not evicted.
  BOOST_TEST(load(f, a.id()).valid());
  BOOST_TEST(load(f, b.id()).valid());
  BOOST_TEST(f.store.evictions() == 0u);
  // Room is made by expiry.
  f.clock.advance(31min);
  BOOST_TEST(create(f).valid());
}
#endif

#ifndef WEBSESSION_TEST_REDIS
// A flood of visitors cannot lock users out of a full memory store: the least recently used
// anonymous session makes room for a new visitor, and for a login.
BOOST_AUTO_TEST_CASE(visitors_make_room_for_logins) {
  memory_store_options so;
  so.max_sessions = 3;
  so.shards = 1;  // exact LRU
  manager_fixture<memory_stack> f(test_options(), so);
  session a = create(f);
  session b = create(f);
  session c = create(f);
  BOOST_TEST(load(f, a.id()).valid());  // b is now the least recently used
  session d = create(f);
  BOOST_TEST(load_error(f, b.id()) == error::not_found);
  session user = f.mgr->new_session();
  f.mgr->bind_user(user, "ada");
  BOOST_TEST_REQUIRE(!save(f, user));  // a login into a full store evicts a visitor (c)
  BOOST_TEST(load(f, user.id()).user() == "ada");
  BOOST_TEST(load_error(f, c.id()) == error::not_found);
  BOOST_TEST(load(f, a.id()).valid());
  BOOST_TEST(load(f, d.id()).valid());
  BOOST_TEST(f.store.evictions() == 2u);
  BOOST_TEST(f.store.size() == 3u);
}
#endif

BOOST_AUTO_TEST_CASE_TEMPLATE(observer_sees_lifecycle_events, Stack, stacks) {
  manager_fixture<Stack> f;
  std::vector<session_event_kind> seen;
  std::string previous;
  f.mgr->set_observer([&](const session_event& e) {
    seen.push_back(e.kind);
    if (e.kind == session_event_kind::rotated) previous = std::string(e.previous_key);
    throw std::runtime_error("observers cannot break operations");
  });
  session s = create(f);
  const std::string first_key = s.storage_key();
  f.run([&]() -> awaitable<void> {
    auto [e1] = co_await f.mgr->async_rotate(s, tuple_token);
    BOOST_TEST(!e1);
    auto [e2] = co_await f.mgr->async_destroy(s, tuple_token);
    BOOST_TEST(!e2);
  });
  session t = create(f);
  f.clock.advance(31min);
  BOOST_TEST(load_error(f, t.id()) == error::expired);
  std::vector<session_event_kind> expected = {
      session_event_kind::created, session_event_kind::rotated, session_event_kind::destroyed,
      session_event_kind::created, session_event_kind::expired};
  BOOST_TEST((seen == expected));
  BOOST_TEST(seen.size() == expected.size());
  BOOST_TEST(previous == first_key);
}

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(completion_tokens_callback_future_deferred) {
  manager_fixture<memory_stack> f;
  // Callback.
  error_code cb_ec = make_error_code(error::internal);
  session cb_session;
  f.mgr->async_create([&](error_code ec, session s) {
    cb_ec = ec;
    cb_session = std::move(s);
  });
  f.ioc.restart();
  f.ioc.run();
  BOOST_TEST(!cb_ec);
  BOOST_TEST(cb_session.valid());

  // Initiated before the io_context runs, with an argument that dies at once: the operation
  // must own what it needs (ASan catches a dangling view here).
  {
    std::string cookie = cb_session.id();
    f.mgr->async_load(cookie, [&](error_code ec, session s) {
      cb_ec = ec;
      BOOST_TEST(s.id() == cb_session.id());
    });
    cookie.assign(cookie.size(), '#');
  }
  cb_ec = make_error_code(error::internal);
  f.ioc.restart();
  f.ioc.run();
  BOOST_TEST(!cb_ec);

  // use_future, completed by another thread running the io_context.
  std::future<session> fut = f.mgr->async_load(cb_session.id(), asio::use_future);
  f.ioc.restart();
  std::thread runner([&] { f.ioc.run(); });
  runner.join();
  BOOST_TEST(fut.get().id() == cb_session.id());

  // use_future with an error: the future throws system_error carrying the code.
  std::future<session> bad = f.mgr->async_load("garbage", asio::use_future);
  f.ioc.restart();
  f.ioc.run();
  try {
    bad.get();
    BOOST_FAIL("expected an exception");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == error::malformed);
  }

  // deferred, launched later with a callback.
  auto op = f.mgr->async_ping(asio::deferred);
  bool pinged = false;
  std::move(op)([&](error_code ec) { pinged = !ec; });
  f.ioc.restart();
  f.ioc.run();
  BOOST_TEST(pinged);

  // Plain use_awaitable throws on errors.
  bool threw = f.run([&]() -> awaitable<bool> {
    try {
      co_await f.mgr->async_load("garbage", asio::use_awaitable);
    } catch (const boost::system::system_error& e) {
      co_return e.code() == error::malformed;
    }
    co_return false;
  });
  BOOST_TEST(threw);

  // Plain use_awaitable on success: the value itself, and nothing for a void operation.
  std::string loaded_id = f.run([&]() -> awaitable<std::string> {
    co_await f.mgr->async_ping(asio::use_awaitable);
    session s = co_await f.mgr->async_load(cb_session.id(), asio::use_awaitable);
    co_return s.id();
  });
  BOOST_TEST(loaded_id == cb_session.id());

  // as_tuple(use_awaitable) on a void operation that fails.
  error_code save_ec = f.run([&]() -> awaitable<error_code> {
    session invalid;
    auto [e] = co_await f.mgr->async_save(invalid, tuple_token);
    co_return e;
  });
  BOOST_TEST(save_ec == error::invalid_session);
}
#endif

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(throwing_update_function_is_an_error_not_a_crash) {
  manager_fixture<memory_stack> f;
  session s = create(f);
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e, r] = co_await f.mgr->async_update(
        s.id(), [](session&) { throw std::runtime_error("user code failed"); }, tuple_token);
    co_return e;
  });
  BOOST_TEST(ec == error::internal);

  // With plain use_awaitable: thrown as system_error(internal); a failing void operation throws
  // its error too.
  auto thrown = [&](auto op) {
    return f.run([&]() -> awaitable<error_code> {
      try {
        co_await op();
      } catch (const boost::system::system_error& e) {
        co_return e.code();
      }
      co_return error_code{};
    });
  };
  BOOST_TEST(thrown([&]() -> awaitable<void> {
               co_await f.mgr->async_update(
                   s.id(), [](session&) { throw std::runtime_error("user code failed"); },
                   asio::use_awaitable);
             }) == error::internal);
  BOOST_TEST(thrown([&]() -> awaitable<void> {
               session invalid;
               co_await f.mgr->async_save(invalid, asio::use_awaitable);
             }) == error::invalid_session);
}
#endif

// Runs op(i) for i in [0, n) at once, as coroutines on the fixture's io_context, which two
// threads run; op returns awaitable<error_code>. Returns {succeeded, failed}.
template <class F, class Op>
std::pair<int, int> run_on_two_threads(F& f, int n, Op op) {
  std::atomic<int> ok{0}, failed{0};
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        f.ioc,
        [&, i]() -> awaitable<void> {
          const error_code ec = co_await op(i);
          (ec ? failed : ok).fetch_add(1);
          // A store's background work (a Redis connection) would keep run() going.
          if (ok + failed == n) f.ioc.stop();
        },
        asio::detached);
  }
  f.ioc.restart();
  std::thread second([&] { f.ioc.run(); });
  f.ioc.run();
  second.join();
  return {ok.load(), failed.load()};
}

const auto increment_n = [](session& x) { x.set("n", x.get_as<int>("n").value_or(-1000000) + 1); };

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_updates_lose_nothing, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  s.set("n", 0);
  BOOST_TEST_REQUIRE(!save(f, s));

  constexpr int n = 1000;
  const auto [ok, failed] = run_on_two_threads(f, n, [&](int) -> awaitable<error_code> {
    auto [ec, r] = co_await f.mgr->async_update(s.id(), increment_n, tuple_token);
    co_return ec;
  });
  BOOST_TEST(failed == 0);
  BOOST_TEST(ok == n);
  BOOST_TEST(load(f, s.id()).template get_as<int>("n").value_or(-1) == n);
  // The updates took turns (two threads, one manager): none had to retry.
  BOOST_TEST(f.mgr->stats().conflicts == 0u);
}

// async_update of a session the handler loaded already: many requests of one session load it,
// then take turns; a turn whose session is older than what an earlier turn saved takes that
// state (handed over in memory, or reloaded), so no save conflicts and nothing is lost.
BOOST_AUTO_TEST_CASE_TEMPLATE(updates_of_loaded_sessions_take_turns, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  s.set("n", 0);
  BOOST_TEST_REQUIRE(!save(f, s));

  constexpr int n = 200;
  const std::uint64_t loads_before = f.mgr->stats().loaded;
  std::atomic<int> out_of_order{0};
  std::vector<session> loaded(n);
  const auto [ok, failed] = run_on_two_threads(f, n, [&](int i) -> awaitable<error_code> {
    auto [ec, l] = co_await f.mgr->async_load(s.id(), tuple_token);
    if (ec) co_return ec;
    session& mine = loaded[static_cast<std::size_t>(i)];
    mine = std::move(l);
    auto [e2] = co_await f.mgr->async_update(mine, increment_n, tuple_token);
    // On success the caller's session holds the state it saved.
    if (!e2 && (mine.dirty() || mine.get_as<int>("n").value_or(0) < 1)) out_of_order.fetch_add(1);
    co_return e2;
  });
  BOOST_TEST(failed == 0);
  BOOST_TEST(ok == n);
  BOOST_TEST(out_of_order.load() == 0);
  BOOST_TEST(load(f, s.id()).template get_as<int>("n").value_or(-1) == n);
  BOOST_TEST(f.mgr->stats().conflicts == 0u);
  // A request reloads at most once: when it loaded before a save whose turn ended before it
  // came (nobody waited then, so no state was handed over).
  BOOST_TEST(f.mgr->stats().loaded - loads_before <= 2 * std::uint64_t{n} + 1);
}

// A save the turns do not see (another process, or a plain async_save) makes the update reload
// and reapply: both changes are kept.
BOOST_AUTO_TEST_CASE_TEMPLATE(update_of_loaded_session_reloads_after_a_foreign_save, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  s.set("n", 0);
  BOOST_TEST_REQUIRE(!save(f, s));
  session mine = load(f, s.id());
  session other = load(f, s.id());
  other.set("other", true);
  BOOST_TEST_REQUIRE(!save(f, other));
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e] = co_await f.mgr->async_update(
        mine, [](session& x) { x.set("n", x.get_as<int>("n").value_or(-100) + 1); }, tuple_token);
    co_return e;
  });
  BOOST_TEST(!ec);
  BOOST_TEST(f.mgr->stats().conflicts == 1u);
  session after = load(f, s.id());
  BOOST_TEST(after.template get_as<int>("n").value_or(-1) == 1);
  BOOST_TEST(after.template get_as<bool>("other").value_or(false));
  BOOST_TEST(mine.template get_as<bool>("other").value_or(false));  // `mine` is what was saved
  BOOST_TEST(mine.metadata().version == after.metadata().version);
}

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(update_of_loaded_session_errors) {
  manager_fixture<memory_stack> f;
  auto update = [&](session& x, auto fn) {
    return f.run([&]() -> awaitable<error_code> {
      auto [e] = co_await f.mgr->async_update(x, fn, tuple_token);
      co_return e;
    });
  };
  const auto bump_n = [](session& x) { x.set("n", x.get_as<int>("n").value_or(0) + 1); };
  session invalid;
  BOOST_TEST(update(invalid, bump_n) == error::invalid_session);

  // A new session is changed and stored at once.
  session fresh = f.mgr->new_session();
  BOOST_TEST(!update(fresh, bump_n));
  BOOST_TEST(load(f, fresh.id()).template get_as<int>("n").value_or(0) == 1);

  // Destroyed between the load and the update: not_found, nothing stored again.
  session s = create(f);
  session stale = load(f, s.id());
  BOOST_TEST_REQUIRE(!f.run([&]() -> awaitable<error_code> {
    auto [e] = co_await f.mgr->async_destroy(s, tuple_token);
    co_return e;
  }));
  BOOST_TEST(update(stale, bump_n) == error::not_found);
  BOOST_TEST(load_error(f, s.id()) == error::not_found);

  // A throwing function is an error, not a crash, and leaves the lane free.
  session t = create(f);
  session t1 = load(f, t.id());
  BOOST_TEST(update(t1, [](session&) { throw std::runtime_error("user code failed"); }) ==
             error::internal);
  session t2 = load(f, t.id());
  BOOST_TEST(!update(t2, bump_n));
  BOOST_TEST(load(f, t.id()).template get_as<int>("n").value_or(0) == 1);
}
#endif

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(new_session_is_stored_on_first_save) {
  manager_fixture<memory_stack> f;
  session s = f.mgr->new_session();
  BOOST_TEST(s.is_new());
  BOOST_TEST(load_error(f, s.id()) == error::not_found);
  s.set("a", 1);
  BOOST_TEST(!save(f, s));
  BOOST_TEST(!s.is_new());
  BOOST_TEST(load(f, s.id()).template get_as<int>("a").value_or(0) == 1);
  BOOST_TEST(f.mgr->stats().created == 1u);
}
#endif

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_CASE(invalid_options_throw_at_construction) {
  asio::io_context ioc;
  options o = test_options();
  o.touch_interval = 2h;
  BOOST_CHECK_THROW(session_manager(ioc.get_executor(), aes_gcm_cipher(test_secret), o),
                    std::invalid_argument);
}
#endif

// A visitor's session idles out after anonymous_idle_timeout, a user's after idle_timeout.
BOOST_AUTO_TEST_CASE_TEMPLATE(anonymous_sessions_idle_out_sooner, Stack, stacks) {
  options o = test_options();
  o.anonymous_idle_timeout = 5min;
  manager_fixture<Stack> f(o);
  session visitor = create(f);
  session user = login(f, "ada");
  BOOST_TEST((user.metadata().idle_deadline - user.metadata().last_seen == 30min));
  f.clock.advance(5min - 1ms);
  BOOST_TEST(load(f, visitor.id()).valid());
  f.clock.advance(1ms);
  BOOST_TEST(load_error(f, visitor.id()) == error::expired);
  f.clock.advance(24min);
  BOOST_TEST(load(f, user.id()).user() == "ada");
}

// A stored session whose bound user changed is not saved under its old id: a planted id (or a
// login whose rotation failed) must not become the user's session.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_login_is_stored_only_with_a_new_id, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  const std::string planted = s.id();
  f.mgr->bind_user(s, "victim");
  BOOST_TEST(save(f, s) == error::rotation_required);
  BOOST_TEST(load(f, planted).user().empty());  // nothing of the login was stored
  // Another user on a bound session: the same.
  session a = login(f, "ada");
  f.mgr->bind_user(a, "bob");
  BOOST_TEST(save(f, a) == error::rotation_required);
  BOOST_TEST(load(f, a.id()).user() == "ada");
  // Unbinding needs no new id; rotating stores the binding.
  session b = login(f, "bob");
  f.mgr->bind_user(b, "");
  BOOST_TEST(!save(f, b));
  BOOST_TEST(load(f, b.id()).user().empty());
  BOOST_TEST(!rotate(f, s));
  BOOST_TEST(load(f, s.id()).user() == "victim");
  BOOST_TEST(load_error(f, planted) == error::not_found);
}

// A login beyond max_sessions_per_user destroys the user's least recently used sessions.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_login_beyond_the_per_user_limit_evicts_the_oldest, Stack, stacks) {
  options o = test_options();
  o.max_sessions_per_user = 3;
  manager_fixture<Stack> f(o);
  std::vector<std::string> evicted;
  f.mgr->set_observer([&](const session_event& e) {
    if (e.kind == session_event_kind::evicted) evicted.emplace_back(e.storage_key);
  });
  std::vector<session> s;
  for (int i = 0; i < 3; ++i) {
    s.push_back(login(f, "ada"));
    f.clock.advance(1s);
  }
  // Using the first makes the second the least recently used.
  s[0].mark_dirty();
  BOOST_TEST_REQUIRE(!save(f, s[0]));
  f.clock.advance(1s);
  session other = login(f, "bob");
  s.push_back(login(f, "ada"));
  BOOST_TEST(list(f, "ada").size() == 3u);
  BOOST_TEST((evicted == std::vector<std::string>{s[1].storage_key()}));
  BOOST_TEST(load_error(f, s[1].id()) == error::not_found);
  BOOST_TEST(load(f, s[0].id()).valid());
  BOOST_TEST(load(f, s[3].id()).valid());
  BOOST_TEST(load(f, other.id()).valid());
  BOOST_TEST(f.mgr->stats().evicted == 1u);
}

// async_list_user gives no session secrets, least recently used first.
BOOST_AUTO_TEST_CASE_TEMPLATE(listing_leaves_out_the_session_secrets, Stack, stacks) {
  manager_fixture<Stack> f;
  session a = login(f, "ada");
  f.mgr->set_fingerprint(a, "fp-of-a-browser");
  BOOST_TEST_REQUIRE(!save(f, a));
  f.clock.advance(1s);
  session b = login(f, "ada");
  const auto infos = list(f, "ada");
  BOOST_TEST_REQUIRE(infos.size() == 2u);
  BOOST_TEST(infos[0].storage_key == a.storage_key());
  BOOST_TEST(infos[1].storage_key == b.storage_key());
  for (const auto& i : infos) {
    BOOST_TEST(i.metadata.csrf_secret.empty());
    BOOST_TEST(i.metadata.fingerprint.empty());
    BOOST_TEST(i.metadata.user == "ada");
  }
}

// async_destroy_key deletes nothing but this manager's session keys; async_destroy_user_key
// only a session of that user.
BOOST_AUTO_TEST_CASE_TEMPLATE(destroying_by_key_checks_the_key_and_the_user, Stack, stacks) {
  manager_fixture<Stack> f;
  session a = login(f, "alice");
  session b = login(f, "bob");
  const std::string index = f.mgr->user_index("alice");
  const std::string p = f.mgr->get_options().key_prefix;
  for (const std::string& bad :
       {index, p, std::string("other-app:config"), a.id(), p + "{abc}" + std::string(42, 'A'),
        p + "{a.c}" + std::string(43, 'A'), "prod:" + a.storage_key().substr(p.size()),
        a.storage_key() + "x"}) {
    auto r = destroy_key(f, bad);
    BOOST_TEST((!r && r.error() == error::invalid_argument), bad);
  }
  BOOST_TEST(load(f, a.id()).valid());
  // Bob's key through Alice's "devices" page: refused, in the store's one step.
  auto r = destroy_key(f, b.storage_key(), "alice");
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(!*r);
  BOOST_TEST(load(f, b.id()).user() == "bob");
  r = destroy_key(f, b.storage_key(), "bob");
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(*r);
  BOOST_TEST(load_error(f, b.id()) == error::not_found);
  r = destroy_key(f, a.storage_key(), "");
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(*r);  // the administrator's unchecked form
  auto empty_user = f.run([&]() -> awaitable<error_code> {
    auto [e, erased] = co_await f.mgr->async_destroy_user_key("", a.storage_key(), tuple_token);
    co_return e;
  });
  BOOST_TEST(empty_user == error::invalid_argument);
}

// The index names in the store are keyed hashes of the user: no dictionary reverses them
// without the secret, and they stay the same when the keyring rotates.
BOOST_AUTO_TEST_CASE_TEMPLATE(user_index_names_are_keyed, Stack, stacks) {
  manager_fixture<Stack> f;
  const std::string keyed = f.mgr->user_index("ada@example.com");
  // The archetype cipher has no key: it keeps the unkeyed hash.
  if constexpr (std::is_same_v<typename Stack::manager_type::cipher_type, aes_gcm_cipher>)
    BOOST_TEST(keyed != user_index_key(f.mgr->get_options().key_prefix, "ada@example.com"));
  BOOST_TEST(keyed.find("ada") == std::string::npos);
  session a = login(f, "ada@example.com");
  BOOST_TEST(a.storage_key().find("{" + f.mgr->user_tag("ada@example.com") + "}") !=
             std::string::npos);
  // Sessions bound before keyed hashes (under the unkeyed index) are still revoked.
  const std::string legacy_index = user_index_key(f.mgr->get_options().key_prefix, "ada@example.com");
  f.run([&]() -> awaitable<void> {
    session old = f.mgr->new_session();
    auto r = co_await f.store.insert(old.storage_key(), store_write{"sealed", 1h, legacy_index});
    BOOST_TEST_REQUIRE(r.has_value());
  });
  const std::size_t n = f.run([&]() -> awaitable<std::size_t> {
    auto [e, count] = co_await f.mgr->async_destroy_user("ada@example.com", tuple_token);
    BOOST_TEST(!e);
    co_return count;
  });
  BOOST_TEST(n == 2u);
  BOOST_TEST(load_error(f, a.id()) == error::not_found);
}

// The example server's deployment (issue 17): one manager shared by two io_contexts, each run
// by one thread. The requests of one session arrive on both: their updates take turns across
// the io_contexts (the lane handed from one to the other), counts are exact and no save
// conflicts. With the memory store, a third thread sweeps meanwhile and the expired sessions
// (and only those) go. scripts/test.sh tsan runs it under ThreadSanitizer.
BOOST_AUTO_TEST_CASE_TEMPLATE(two_io_contexts_share_one_manager, Stack, thread_stacks) {
  options o = test_options();
  o.idle_timeout = 10min;
  o.anonymous_idle_timeout = 10min;
  manager_fixture<Stack> f(o);
  asio::io_context other(1);
  constexpr bool sweeps = requires { f.store.sweep(); };

  std::vector<std::string> doomed;
  if constexpr (sweeps) {
    for (int i = 0; i < 20; ++i) doomed.push_back(create(f).id());
    f.clock.advance(6min);
  }
  constexpr std::size_t hot_count = 2;
  std::vector<std::string> hot;
  for (std::size_t i = 0; i < hot_count; ++i) {
    session s = create(f);
    s.set("n", 0);
    BOOST_TEST_REQUIRE(!save(f, s));
    hot.push_back(s.id());
  }
  if constexpr (sweeps) f.clock.advance(6min);  // the doomed idled 12 min, the hot ones 6

  constexpr int per_context = 8;
  constexpr int rounds = 25;
  std::array<std::atomic<int>, hot_count> increments{};
  std::atomic<int> finished{0};
  std::atomic<bool> sweeping{true};
  std::mutex m;
  std::vector<std::string> failures;
  auto fail = [&](const std::string& what, error_code ec) {
    std::lock_guard lock(m);
    failures.push_back(what + ": " + ec.message());
  };
  auto worker = [&](int w) -> awaitable<void> {
    for (int r = 0; r < rounds; ++r) {
      const std::size_t k = static_cast<std::size_t>(w + r) % hot_count;
      auto [ec, s] = co_await f.mgr->async_load(hot[k], tuple_token);
      if (ec) {
        fail("load", ec);
        continue;
      }
      auto [e2] = co_await f.mgr->async_update(s, increment_n, tuple_token);
      if (e2) fail("update", e2);
      else increments[k].fetch_add(1);
    }
    if (finished.fetch_add(1) + 1 == 2 * per_context) {
      f.ioc.stop();  // a store's background work (a Redis connection) would keep run() going
      other.stop();
    }
  };
  for (int w = 0; w < per_context; ++w) {
    asio::co_spawn(f.ioc, worker(w), asio::detached);
    asio::co_spawn(other, worker(per_context + w), asio::detached);
  }
  std::size_t swept = 0;
  std::thread sweeper([&] {
    if constexpr (sweeps) {
      do {  // at least once, even if the workers are done before this thread runs
        swept += f.store.sweep();
        std::this_thread::yield();
      } while (sweeping.load());
    }
  });
  f.ioc.restart();
  std::thread second([&] { other.run(); });
  f.ioc.run();
  second.join();
  sweeping = false;
  sweeper.join();

  for (const std::string& failure : failures) BOOST_ERROR(failure);
  int total = 0;
  for (std::size_t k = 0; k < hot_count; ++k) {
    BOOST_TEST(load(f, hot[k]).template get_as<int>("n").value_or(-1) == increments[k].load());
    total += increments[k].load();
  }
  BOOST_TEST(total == 2 * per_context * rounds);
  BOOST_TEST(f.mgr->stats().conflicts == 0u);
  if constexpr (sweeps) {
    BOOST_TEST(swept == doomed.size());
    for (const std::string& id : doomed) BOOST_TEST(load_error(f, id) == error::not_found);
  }
}

// DESIGN: "a manager can be shared by many coroutines and by several threads". Sixteen
// coroutines on an io_context that four threads run, all at once: updates and plain saves of
// shared sessions, logins (rotations) and destroys of their own sessions, concurrent rotations
// of one session, loads and saves racing the destroy of another, and loads that a timer
// cancels. Half the workers run on strands of their own, the others straight on the io_context
// (the manager needs no strand). Only those on strands race a timer with `||`: Asio's awaitable
// operators complete both branches on the coroutine's executor, and without a strand the
// winner's cancellation of the loser races the loser's own completion (ThreadSanitizer reports
// it in Asio's cancellation_signal). scripts/test.sh tsan runs it under ThreadSanitizer.
// Boost.Test is not thread-safe: the workers record failures, the test thread checks them.
BOOST_AUTO_TEST_CASE_TEMPLATE(four_threads_share_one_manager, Stack, thread_stacks) {
  using namespace asio::experimental::awaitable_operators;
  options o = test_options();
  o.max_update_attempts = 1000;  // the plain saves below make updates retry; none may give up
  manager_fixture<Stack> f(o);
  constexpr int shared_count = 4;
  constexpr int workers = 16;
  constexpr int rounds = 6;
  const std::array<std::string, 4> users{"tu0", "tu1", "tu2", "tu3"};

  std::vector<std::string> ids;
  for (int i = 0; i < shared_count; ++i) {
    session s = create(f);
    s.set("n", 0);
    BOOST_TEST_REQUIRE(!save(f, s));
    ids.push_back(s.id());
  }
  const std::string victim_id = create(f).id();   // destroyed by one worker mid-way
  const std::string rotated_id = create(f).id();  // rotated by several workers at once

  std::array<std::atomic<int>, shared_count> increments{};
  std::atomic<int> done{0}, rotations{0}, conflicts{0}, cancelled{0}, completed{0};
  std::array<std::atomic<int>, 4> kept_logins{};
  std::mutex m;
  std::vector<std::string> failures;
  std::string rotated_to;
  auto fail = [&](const std::string& what, error_code ec) {
    std::lock_guard lock(m);
    failures.push_back(what + ": " + ec.message());
  };

  auto worker = [&](int w, bool on_strand) -> awaitable<void> {
    const std::string& user = users[static_cast<std::size_t>(w) % users.size()];
    for (int r = 0; r < rounds; ++r) {
      const std::size_t mine = static_cast<std::size_t>(w + r) % shared_count;
      {  // An update of a shared session: never lost, never given up.
        auto [ec, s] = co_await f.mgr->async_update(ids[mine], increment_n, tuple_token);
        if (ec) fail("update", ec);
        else increments[mine].fetch_add(1);
      }
      {  // A plain save of another shared session: stored, or a conflict.
        auto [ec, s] = co_await f.mgr->async_load(ids[(mine + 1) % shared_count], tuple_token);
        if (ec) {
          fail("load shared", ec);
        } else {
          s.set("w" + std::to_string(w), r);
          auto [e2] = co_await f.mgr->async_save(s, tuple_token);
          if (e2 == error::conflict) conflicts.fetch_add(1);
          else if (e2) fail("save shared", e2);
        }
      }
      {  // A session of its own: login (rotation), load, the old id gone, destroyed every other round.
        auto [ec, s] = co_await f.mgr->async_create(tuple_token);
        if (ec) {
          fail("create", ec);
        } else {
          s.set("owner", w);
          const std::string old_id = s.id();
          f.mgr->bind_user(s, user);
          auto [e2] = co_await f.mgr->async_rotate(s, tuple_token);
          if (e2) {
            fail("login", e2);
          } else {
            auto [e3, l] = co_await f.mgr->async_load(s.id(), tuple_token);
            if (e3) fail("load after login", e3);
            else if (l.user() != user || l.template get_as<int>("owner").value_or(-1) != w)
              fail("load after login: wrong session", {});
            auto [e4, gone] = co_await f.mgr->async_load(old_id, tuple_token);
            if (e4 != error::not_found) fail("old id after login", e4);
            if (r % 2 == 0) {
              auto [e5] = co_await f.mgr->async_destroy(s, tuple_token);
              if (e5) fail("destroy", e5);
              auto [e6, g] = co_await f.mgr->async_load(old_id, tuple_token);
              auto [e7, h] = co_await f.mgr->async_load(s.id(), tuple_token);
              if (e6 != error::not_found || e7 != error::not_found) fail("destroyed session loads", e7);
            } else {
              kept_logins[static_cast<std::size_t>(w) % users.size()].fetch_add(1);
            }
          }
        }
      }
      {  // The victim: loads and saves race its destroy.
        auto [ec, v] = co_await f.mgr->async_load(victim_id, tuple_token);
        if (ec && ec != error::not_found) fail("load victim", ec);
        if (!ec && w == 0 && r == rounds / 2) {
          auto [e2] = co_await f.mgr->async_destroy(v, tuple_token);
          if (e2) fail("destroy victim", e2);
        } else if (!ec) {
          v.set("w", w);
          auto [e2] = co_await f.mgr->async_save(v, tuple_token);
          if (e2 && e2 != error::conflict && e2 != error::not_found) fail("save victim", e2);
        }
      }
      if (r == 0) {  // One session rotated by every worker at once: exactly one wins.
        auto [ec, s] = co_await f.mgr->async_load(rotated_id, tuple_token);
        if (ec && ec != error::not_found) fail("load rotated", ec);
        if (!ec) {
          auto [e2] = co_await f.mgr->async_rotate(s, tuple_token);
          if (!e2) {
            rotations.fetch_add(1);
            std::lock_guard lock(m);
            rotated_to = s.id();
          } else if (e2 != error::conflict && e2 != error::not_found) {
            fail("rotate shared", e2);
          }
        }
      }
      if (on_strand) {  // A load racing a timer: it completes, or the timer cancels it.
        asio::steady_timer t(co_await asio::this_coro::executor,
                             std::chrono::microseconds((w * 37 + r * 11) % 300));
        auto res = co_await (f.mgr->async_load(ids[mine], tuple_token) || t.async_wait(tuple_token));
        if (res.index() == 1) {
          cancelled.fetch_add(1);
        } else {
          auto& [e2, s] = std::get<0>(res);
          if (e2) fail("raced load", e2);
          else completed.fetch_add(1);
        }
      }
    }
  };

  for (int w = 0; w < workers; ++w) {
    auto finish = [&](std::exception_ptr e) {
      if (e) fail("worker threw", make_error_code(error::internal));
      // A store's background work (a Redis connection) would keep run() going.
      if (done.fetch_add(1) + 1 == workers) f.ioc.stop();
    };
    if (w % 2 == 0) asio::co_spawn(asio::make_strand(f.ioc), worker(w, true), finish);
    else asio::co_spawn(f.ioc, worker(w, false), finish);
  }
  f.ioc.restart();
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { f.ioc.run(); });
  f.ioc.run();
  for (auto& t : threads) t.join();

  BOOST_TEST(done.load() == workers);
  BOOST_TEST(failures.empty());
  for (std::size_t i = 0; i < failures.size() && i < 10; ++i) BOOST_TEST_MESSAGE(failures[i]);
  for (std::size_t i = 0; i < shared_count; ++i) {
    BOOST_TEST(increments[i].load() == workers * rounds / shared_count);
    BOOST_TEST(load(f, ids[i]).template get_as<int>("n").value_or(-1) == increments[i].load());
  }
  BOOST_TEST(load_error(f, victim_id) == error::not_found);
  BOOST_TEST(rotations.load() == 1);
  BOOST_TEST(load_error(f, rotated_id) == error::not_found);
  BOOST_TEST_REQUIRE(!rotated_to.empty());
  BOOST_TEST(load(f, rotated_to).valid());
  BOOST_TEST(cancelled.load() + completed.load() == workers / 2 * rounds);
  for (std::size_t u = 0; u < users.size(); ++u) {
    BOOST_TEST(list(f, users[u]).size() == static_cast<std::size_t>(kept_logins[u].load()));
    const std::size_t erased = f.run([&]() -> awaitable<std::size_t> {
      auto [ec, n] = co_await f.mgr->async_destroy_user(users[u], tuple_token);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      co_return n;
    });
    BOOST_TEST(erased == static_cast<std::size_t>(kept_logins[u].load()));
    BOOST_TEST(list(f, users[u]).empty());
  }
  BOOST_TEST_MESSAGE(Stack::name << ": " << conflicts.load() << " conflicting saves, "
                                 << cancelled.load() << " loads cancelled by their timer");
}

// The parsed-id overloads (what the HTTP glue calls, having parsed the cookie once) load what
// the cookie overload loads and check the client binding the same way.
BOOST_AUTO_TEST_CASE_TEMPLATE(loads_by_a_parsed_id, Stack, stacks) {
  manager_fixture<Stack> f;
  session s = create(f);
  s.set("n", 5);
  BOOST_TEST_REQUIRE(!save(f, s));
  const session_id id = *session_id::parse(s.id());
  auto load_by_id = [&](std::string_view fingerprint) {
    return f.run([&]() -> awaitable<std::pair<error_code, session>> {
      auto [ec, l] = co_await f.mgr->async_load(id, fingerprint, tuple_token);
      co_return std::pair<error_code, session>(ec, std::move(l));
    });
  };
  auto [e0, by_id] = load_by_id({});
  BOOST_TEST_REQUIRE(!e0, e0.message());
  BOOST_TEST(by_id.id() == s.id());
  BOOST_TEST(by_id.storage_key() == s.storage_key());
  BOOST_TEST(by_id.template get_as<int>("n").value_or(0) == 5);
  BOOST_TEST(!by_id.id_changed());
  BOOST_TEST(!by_id.dirty());

  // Without a stored fingerprint the client's is taken (and to be written); with one stored,
  // another client's is refused.
  auto [ec_a, first] = load_by_id("fp-a");
  BOOST_TEST_REQUIRE(!ec_a);
  BOOST_TEST(first.dirty());
  BOOST_TEST_REQUIRE(!save(f, first));
  const std::uint64_t tampered = f.mgr->stats().tampered;
  BOOST_TEST(load_by_id("fp-b").first == ec(error::tampered));
  BOOST_TEST(f.mgr->stats().tampered == tampered + 1);
  BOOST_TEST(!load_by_id("fp-a").first);

  // An id nobody stored: not found, counted as a miss; the two-argument overload too.
  const session_id unknown = session_id::generate();
  const std::uint64_t misses = f.mgr->stats().misses;
  const error_code gone = f.run([&]() -> awaitable<error_code> {
    auto [e, l] = co_await f.mgr->async_load(unknown, tuple_token);
    co_return e;
  });
  BOOST_TEST(gone == ec(error::not_found));
  BOOST_TEST(f.mgr->stats().misses == misses + 1);
}

// "Log out everywhere" undone by someone who can write to the store: an old sealed value put
// back under its key opens (it is authentic). With the application's valid-after time (kept
// outside the store) it is refused, erased, and left out of listings; sessions written after
// that time, and sessions of other users, are not affected.
BOOST_AUTO_TEST_CASE_TEMPLATE(values_sealed_before_valid_after_are_refused, Stack, stacks) {
  manager_fixture<Stack> f;
  std::mutex m;
  std::map<std::string, time_point, std::less<>> valid_after;  // the application's user table
  f.mgr->set_valid_after([&](std::string_view user) {
    std::lock_guard lock(m);
    const auto it = valid_after.find(user);
    return it == valid_after.end() ? time_point{} : it->second;
  });

  session alice = login(f, "alice");
  alice.set("role", "admin");
  BOOST_TEST_REQUIRE(!save(f, alice));
  session bob = login(f, "bob");
  // Someone copies alice's sealed value (read access to the store is enough).
  const store_record copy = raw(f, alice.storage_key());

  // Log out everywhere: the time first, then the sessions.
  f.clock.advance(1min);
  {
    std::lock_guard lock(m);
    valid_after["alice"] = f.clock.now();
  }
  const std::size_t ended = f.run([&]() -> awaitable<std::size_t> {
    auto [e, n] = co_await f.mgr->async_destroy_user("alice", tuple_token);
    BOOST_TEST_REQUIRE(!e, e.message());
    co_return n;
  });
  BOOST_TEST(ended == 1u);

  // The copy goes back, under its key and in alice's index.
  auto restore = [&] {
    f.run([&]() -> awaitable<void> {
      const std::string index = f.mgr->user_index("alice");
      auto r = co_await f.store.insert(alice.storage_key(), store_write{copy.value, 1h, index});
      BOOST_TEST_REQUIRE(r.has_value(), r.error().message());
    });
  };
  restore();
  BOOST_TEST(list(f, "alice").empty());
  const std::uint64_t loaded = f.mgr->stats().loaded;
  BOOST_TEST(load_error(f, alice.id()) == ec(error::revoked));
  BOOST_TEST(f.mgr->stats().revoked == 1u);
  BOOST_TEST(f.mgr->stats().loaded == loaded);
  // Refused, so erased: it is not served again.
  BOOST_TEST(load_error(f, alice.id()) == ec(error::not_found));
  // An update by cookie is refused the same way.
  restore();
  const error_code by_update = f.run([&]() -> awaitable<error_code> {
    auto [e, s] = co_await f.mgr->async_update(
        alice.id(), [](session& x) { x.set("role", "admin"); }, tuple_token);
    co_return e;
  });
  BOOST_TEST(by_update == ec(error::revoked));
  BOOST_TEST(ec(error::revoked) == condition::session_gone);  // the glue starts afresh

  // Other users, and alice's logins after the time, are served.
  BOOST_TEST(load(f, bob.id()).user() == "bob");
  f.clock.advance(1ms);
  session again = login(f, "alice");
  BOOST_TEST(load(f, again.id()).user() == "alice");
  BOOST_TEST(list(f, "alice").size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

#ifndef WEBSESSION_TEST_REDIS
BOOST_AUTO_TEST_SUITE(manager_archetypes)

// All four policies minimal: the manager needs nothing beyond the concepts.
BOOST_AUTO_TEST_CASE(all_four_archetypes_instantiate_the_manager) {
  asio::io_context ioc;
  archetype_store store;
  basic_session_manager<archetype_serializer, archetype_cipher, archetype_store, archetype_clock>
      m(ioc.get_executor(), archetype_cipher{}, store, test_options());
  std::string loaded;
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        auto [e1, s] = co_await m.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e1);
        s.set("hello", "world");
        auto [e2] = co_await m.async_save(s, tuple_token);
        BOOST_TEST_REQUIRE(!e2);
        auto [e3, l] = co_await m.async_load(s.id(), tuple_token);
        BOOST_TEST_REQUIRE(!e3);
        loaded = l.get_as<std::string>("hello").value_or("");
      },
      asio::detached);
  ioc.run();
  BOOST_TEST(loaded == "world");
  BOOST_TEST(store.inspect().map.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
#endif
