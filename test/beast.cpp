// SPDX-License-Identifier: BSL-1.0
// The Boost.Beast glue (websession/http/beast.hpp) with real beast::http messages against a
// session manager on the memory store, and client binding (fingerprints) in the manager.
#include "manager_fixture.hpp"

#include <websession/http/beast.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace websession;
using namespace websession::test;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;
using fixture = manager_fixture<memory_stack>;

const std::string cookie_name = "__Host-session";

request make_request(const std::string& cookie = {}, const std::string& agent = "agent/1.0") {
  request req{bhttp::verb::get, "/", 11};
  if (!cookie.empty()) req.set(bhttp::field::cookie, cookie);
  if (!agent.empty()) req.set(bhttp::field::user_agent, agent);
  return req;
}

std::vector<std::string> set_cookies(const response& res) {
  std::vector<std::string> out;
  const auto range = res.equal_range(bhttp::field::set_cookie);
  for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
  return out;
}

// The value the (only) Set-Cookie of `res` assigns.
std::string set_value(const response& res) {
  const std::vector<std::string> sc = set_cookies(res);
  BOOST_TEST_REQUIRE(sc.size() == 1u);
  const std::string& c = sc[0];
  BOOST_TEST_REQUIRE(c.starts_with(cookie_name + "="));
  return c.substr(cookie_name.size() + 1, c.find(';') - cookie_name.size() - 1);
}

template <class F>
session load(F& f, const request& req, http::glue_options o = {}) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await http::async_load_session(*f.mgr, req, o, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
}

template <class F>
error_code apply(F& f, session& s, response& res) {
  return f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await http::async_apply_session(*f.mgr, s, res, tuple_token);
    co_return ec;
  });
}

// One request through the glue: load, let `fn` act on the session, apply. Returns the response.
template <class F, class Fn>
response round_trip(F& f, const request& req, Fn fn, http::glue_options o = {}) {
  session s = load(f, req, o);
  fn(s);
  response res{bhttp::status::ok, 11};
  const error_code ec = apply(f, s, res);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return res;
}

// A first request that writes data; returns the session cookie value.
std::string start_session(fixture& f, http::glue_options o = {},
                          const std::string& agent = "agent/1.0") {
  response res = round_trip(f, make_request({}, agent), [](session& s) { s.set("n", 1); }, o);
  return set_value(res);
}

std::string with_cookie(const std::string& id) { return cookie_name + "=" + id; }

// Another request of session `id`, saving n = 100 while the caller's request is in flight (so
// that the caller's save meets a conflict).
awaitable<void> save_meanwhile(fixture& f, const std::string& id) {
  auto [ec, other] = co_await f.mgr->async_load(id, tuple_token);
  BOOST_TEST_REQUIRE(!ec);
  other.set("n", 100);
  auto [save_ec] = co_await f.mgr->async_save(other, tuple_token);
  BOOST_TEST_REQUIRE(!save_ec);
}

// Flips a bit in the middle of the stored (sealed) value of session `id`.
void tamper_stored_value(fixture& f, const std::string& id) {
  const std::string key = session_id::parse(id)->storage_key(test_options().key_prefix);
  f.run([&]() -> awaitable<void> {
    auto rec = co_await f.store.load(key);
    BOOST_TEST_REQUIRE(rec.has_value());
    std::string v = rec->value;
    v[v.size() / 2] ^= 0x01;
    auto r = co_await f.store.replace(key, store_write{v, 1h, {}}, rec->version);
    BOOST_TEST_REQUIRE(r.has_value());
  });
}

/// A store that can be switched off: every operation then fails with store_unavailable. With
/// set_yield(true) every operation first suspends (a post), as a networked store's would, so
/// that concurrent operations interleave.
class switchable_store {
 public:
  switchable_store(boost::asio::any_io_executor ex, manual_clock clock)
      : inner_(memory_stack::make_store(ex, clock)) {}

  void set_down(bool down) { *down_ = down; }
  void set_yield(bool yield) { *yield_ = yield; }

  awaitable<result<store_record>> load(std::string_view key) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.load(key);
  }
  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.insert(key, w);
  }
  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w, std::uint64_t v) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.replace(key, w, v);
  }
  awaitable<result<std::uint64_t>> rotate(std::string_view from, std::string_view to,
                                          store_write w, std::uint64_t v) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.rotate(from, to, w, v);
  }
  awaitable<result<bool>> erase(std::string_view key) {
    co_await pause();
    // error_code converts to bool too: say which alternative is meant.
    if (*down_) co_return result<bool>(boost::system::in_place_error, unavailable());
    co_return co_await inner_.erase(key);
  }
  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    co_await pause();
    if (*down_) co_return result<bool>(boost::system::in_place_error, unavailable());
    co_return co_await inner_.erase_bound(key, user);
  }
  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.erase_user(user);
  }
  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.list_user(user);
  }
  awaitable<error_code> ping() {
    co_await pause();
    if (*down_) co_return unavailable();
    co_return co_await inner_.ping();
  }

 private:
  static error_code unavailable() { return make_error_code(error::store_unavailable); }

  awaitable<void> pause() {
    if (*yield_)
      co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
  }

  memory_stack::store_type inner_;
  std::shared_ptr<bool> down_ = std::make_shared<bool>(false);
  std::shared_ptr<bool> yield_ = std::make_shared<bool>(false);
};
static_assert(session_store<switchable_store>);

struct switchable_stack {
  using store_type = switchable_store;
  using manager_type =
      basic_session_manager<json_serializer, aes_gcm_cipher, switchable_store, manual_clock>;
  static store_type make_store(boost::asio::any_io_executor ex, manual_clock clock,
                               memory_store_options = {}) {
    return store_type(ex, clock);
  }
  static aes_gcm_cipher make_cipher() { return aes_gcm_cipher(test_secret); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(client_binding)

BOOST_AUTO_TEST_CASE(fingerprints_are_stable_and_unambiguous) {
  const std::vector<std::string> ua = {"User-Agent"};
  const request a = make_request({}, "agent/1.0");
  const std::string fa = http::client_fingerprint(a, ua);
  BOOST_TEST(fa.size() == 43u);
  BOOST_TEST(http::client_fingerprint(make_request("x=1", "agent/1.0"), ua) == fa);
  BOOST_TEST(http::client_fingerprint(make_request({}, "agent/1.1"), ua) != fa);
  BOOST_TEST(http::client_fingerprint(a, {"user-agent"}) == fa);  // names are case-insensitive

  // Absent and empty differ; so do shifted bytes between headers and repeated fields.
  request absent = make_request({}, "");
  request empty = make_request({}, "");
  empty.set(bhttp::field::user_agent, "");
  BOOST_TEST(http::client_fingerprint(absent, ua) != http::client_fingerprint(empty, ua));

  const std::vector<std::string> two = {"X-A", "X-B"};
  request r1 = make_request();
  r1.set("X-A", "a");
  r1.set("X-B", "bc");
  request r2 = make_request();
  r2.set("X-A", "ab");
  r2.set("X-B", "c");
  BOOST_TEST(http::client_fingerprint(r1, two) != http::client_fingerprint(r2, two));
  request once = make_request();
  once.set("X-A", "ab");
  request twice = make_request();
  twice.insert("X-A", "a");
  twice.insert("X-A", "b");
  BOOST_TEST(http::client_fingerprint(once, two) != http::client_fingerprint(twice, two));
  // The order of the configured headers matters; the list itself is part of the meaning.
  const std::vector<std::string> swapped = {"X-B", "X-A"};
  BOOST_TEST(http::client_fingerprint(r1, two) != http::client_fingerprint(r1, swapped));
}

BOOST_AUTO_TEST_CASE(manager_checks_the_fingerprint_on_load) {
  fixture f;
  std::vector<session_event> events;
  std::vector<std::string> keys;
  f.mgr->set_observer([&](const session_event& e) {
    events.push_back(e);
    keys.emplace_back(e.storage_key);
  });
  session s = f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_create(tuple_token);
    co_return s;
  });
  f.mgr->set_fingerprint(s, "fp-A");
  BOOST_TEST(s.dirty());
  BOOST_TEST(s.metadata().fingerprint == "fp-A");
  const auto load_with = [&](const std::string& fp) {
    return f.run([&]() -> awaitable<std::tuple<error_code, session>> {
      co_return co_await f.mgr->async_load(s.id(), fp, tuple_token);
    });
  };
  f.run([&]() -> awaitable<void> { co_await f.mgr->async_save(s, tuple_token); });

  auto [ok_ec, ok] = load_with("fp-A");
  BOOST_TEST(!ok_ec);
  BOOST_TEST(ok.metadata().fingerprint == "fp-A");
  BOOST_TEST(!ok.dirty());

  auto [bad_ec, bad] = load_with("fp-B");
  BOOST_TEST(bad_ec == error::tampered);
  BOOST_TEST(f.mgr->stats().tampered == 1u);
  BOOST_TEST(f.mgr->stats().loaded == 1u);
  BOOST_TEST_REQUIRE(!events.empty());
  BOOST_TEST((events.back().kind == session_event_kind::tampered));
  BOOST_TEST(keys.back() == s.storage_key());

  // The session itself is untouched: its own client still gets it, and no check without one.
  BOOST_TEST(!std::get<0>(load_with("fp-A")));
  BOOST_TEST(!std::get<0>(load_with("")));
  BOOST_TEST(f.mgr->stats().tampered == 1u);

  // An expired session is expired, whoever asks.
  f.clock.advance(9h);
  BOOST_TEST(std::get<0>(load_with("fp-B")) == error::expired);
}

BOOST_AUTO_TEST_CASE(unbound_sessions_take_the_first_fingerprint) {
  fixture f;
  session s = f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_create(tuple_token);
    co_return s;
  });
  BOOST_TEST(s.metadata().fingerprint.empty());
  session l = f.run([&]() -> awaitable<session> {
    auto [ec, l] = co_await f.mgr->async_load(s.id(), "fp-A", tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return l;
  });
  BOOST_TEST(l.metadata().fingerprint == "fp-A");
  BOOST_TEST(l.dirty());
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_save(l, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
  error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [ec, x] = co_await f.mgr->async_load(s.id(), "fp-B", tuple_token);
    co_return ec;
  });
  BOOST_TEST(ec == error::tampered);
}

BOOST_AUTO_TEST_CASE(glue_gives_another_client_a_fresh_session) {
  fixture f;
  bool saw_tampered = false;
  f.mgr->set_observer([&](const session_event& e) {
    saw_tampered = saw_tampered || e.kind == session_event_kind::tampered;
  });
  http::glue_options bind;
  bind.bind_client = true;
  const std::string id = start_session(f, bind, "browser-A");

  session other = load(f, make_request(with_cookie(id), "browser-B"), bind);
  BOOST_TEST(other.is_new());
  BOOST_TEST(other.id() != id);
  BOOST_TEST(!other.get("n"));
  BOOST_TEST(f.mgr->stats().tampered == 1u);
  BOOST_TEST(saw_tampered);

  session same = load(f, make_request(with_cookie(id), "browser-A"), bind);
  BOOST_TEST(same.id() == id);
  BOOST_TEST(same.get_as<int>("n").value_or(0) == 1);

  // Without binding, the glue checks nothing.
  BOOST_TEST(load(f, make_request(with_cookie(id), "browser-B")).id() == id);
}

BOOST_AUTO_TEST_CASE(fresh_sessions_carry_the_fingerprint) {
  fixture f;
  http::glue_options bind;
  bind.bind_client = true;
  const request req = make_request({}, "browser-A");
  session s = load(f, req, bind);
  BOOST_TEST(s.metadata().fingerprint == http::client_fingerprint(req, bind.fingerprint_headers));
  BOOST_TEST(!s.dirty());  // binding alone does not make it worth storing
  BOOST_TEST(load(f, req).metadata().fingerprint.empty());
}

BOOST_AUTO_TEST_CASE(lazy_session_is_clean_and_carries_the_fingerprint) {
  fixture f;
  BOOST_TEST(f.mgr->new_session().dirty());
  session s = f.mgr->new_lazy_session("fp-A");
  BOOST_TEST(s.valid());
  BOOST_TEST(s.is_new());
  BOOST_TEST(!s.dirty());
  BOOST_TEST(s.metadata().fingerprint == "fp-A");
  BOOST_TEST(s.metadata().csrf_secret.size() == 32u);
  BOOST_TEST(f.mgr->new_lazy_session().metadata().fingerprint.empty());
  // A plain save stores it all the same (it is new), fingerprint included.
  const error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [e] = co_await f.mgr->async_save(s, tuple_token);
    co_return e;
  });
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(!s.is_new());
  const auto load_as = [&](const std::string& fp) {
    return f.run([&]() -> awaitable<error_code> {
      auto [e, x] = co_await f.mgr->async_load(s.id(), fp, tuple_token);
      co_return e;
    });
  };
  BOOST_TEST(!load_as("fp-A"));
  BOOST_TEST(load_as("fp-B") == error::tampered);
}

BOOST_AUTO_TEST_CASE(glue_binds_sessions_made_without_it) {
  fixture f;
  http::glue_options bind;
  bind.bind_client = true;
  const std::string id = start_session(f);  // no binding yet
  response res = round_trip(f, make_request(with_cookie(id), "browser-A"), [](session&) {}, bind);
  BOOST_TEST(set_value(res) == id);  // the adopted fingerprint was written: Max-Age refreshed
  session other = load(f, make_request(with_cookie(id), "browser-B"), bind);
  BOOST_TEST(other.id() != id);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(beast_glue)

BOOST_AUTO_TEST_CASE(untouched_fresh_session_is_neither_stored_nor_sent) {
  fixture f;
  session s = load(f, make_request());
  BOOST_TEST(s.valid());
  BOOST_TEST(s.is_new());
  BOOST_TEST(!s.dirty());
  BOOST_TEST(s.metadata().csrf_secret.size() == 32u);
  response res{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, s, res));
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(f.mgr->stats().created == 0u);
}

BOOST_AUTO_TEST_CASE(first_write_sends_the_cookie_with_its_flags) {
  fixture f;
  session s = load(f, make_request());
  s.set("user", std::string("ada"));
  response res{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, s, res));
  const std::vector<std::string> sc = set_cookies(res);
  BOOST_TEST_REQUIRE(sc.size() == 1u);
  // The manual clock starts at 2026-01-01T00:00:00Z; the absolute timeout is 8 h.
  BOOST_TEST(sc[0] == cookie_name + "=" + s.id() +
                          "; Path=/; Max-Age=28800; Expires=Thu, 01 Jan 2026 08:00:00 GMT; "
                          "Secure; HttpOnly; SameSite=Lax");
  BOOST_TEST(f.mgr->stats().created == 1u);
  BOOST_TEST(!s.is_new());
}

BOOST_AUTO_TEST_CASE(explicitly_marked_fresh_session_is_stored) {
  fixture f;
  response res = round_trip(f, make_request(), [](session& s) { s.mark_dirty(); });
  BOOST_TEST(set_value(res).size() == session_id::tagged_size);
  BOOST_TEST(f.mgr->stats().created == 1u);
}

BOOST_AUTO_TEST_CASE(returning_client_gets_its_session_and_no_cookie) {
  fixture f;
  const std::string id = start_session(f);
  response res = round_trip(f, make_request(with_cookie(id)), [&](session& s) {
    BOOST_TEST(s.id() == id);
    BOOST_TEST(!s.is_new());
    BOOST_TEST(s.get_as<int>("n").value_or(0) == 1);
  });
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(f.mgr->stats().created == 1u);
  BOOST_TEST(f.mgr->stats().loaded == 1u);
}

BOOST_AUTO_TEST_CASE(cookie_is_found_among_others_and_in_any_cookie_field) {
  fixture f;
  const std::string id = start_session(f);
  for (const std::string& header :
       {"a=1; " + with_cookie(id) + "; b=2", "a=1;" + with_cookie(id), " " + with_cookie(id) + " ",
        cookie_name + "=\"" + id + "\"", cookie_name + "=junk; " + with_cookie(id),
        cookie_name + "=bad\"; " + with_cookie(id)}) {
    BOOST_TEST(load(f, make_request(header)).id() == id, "header: " << header);
  }
  request two_fields = make_request();
  two_fields.insert(bhttp::field::cookie, "a=1");
  two_fields.insert(bhttp::field::cookie, with_cookie(id));
  BOOST_TEST(load(f, two_fields).id() == id);
}

BOOST_AUTO_TEST_CASE(changed_session_refreshes_the_cookie) {
  fixture f;
  const std::string id = start_session(f);
  f.clock.advance(10s);
  response res = round_trip(f, make_request(with_cookie(id)), [](session& s) { s.set("n", 2); });
  BOOST_TEST_REQUIRE(set_cookies(res).size() == 1u);
  BOOST_TEST(set_value(res) == id);
  BOOST_TEST(set_cookies(res)[0].find("; Max-Age=28790;") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(touch_refreshes_max_age) {
  fixture f;
  const std::string id = start_session(f);
  f.clock.advance(30s);  // within the touch interval (1 min): no write, no cookie
  BOOST_TEST(set_cookies(round_trip(f, make_request(with_cookie(id)), [](session&) {})).empty());
  f.clock.advance(90s);  // 2 min after the last write: touched
  response res = round_trip(f, make_request(with_cookie(id)), [](session&) {});
  BOOST_TEST_REQUIRE(set_cookies(res).size() == 1u);
  BOOST_TEST(set_value(res) == id);
  BOOST_TEST(set_cookies(res)[0].find("; Max-Age=28680; Expires=Thu, 01 Jan 2026 08:00:00 GMT;") !=
             std::string::npos);
  BOOST_TEST(f.mgr->stats().touched == 1u);
}

BOOST_AUTO_TEST_CASE(bad_cookies_give_a_fresh_session) {
  fixture f;
  const std::string id = start_session(f);
  std::string other_char = id;
  other_char[20] = other_char[20] == 'A' ? 'B' : 'A';
  const std::vector<std::string> bad = {
      with_cookie(id.substr(0, 42)),                        // truncated
      with_cookie(id + "A"),                                // too long
      with_cookie(other_char),                              // tampered: well-formed, unknown
      with_cookie(session_id::generate().to_string()),      // foreign
      with_cookie(""),                                      // empty
      with_cookie("\"" + id),                               // unbalanced quote
      cookie_name + " =" + id,                              // not the cookie's name
      "__host-session=" + id,                               // names are case-sensitive
      with_cookie(id) + std::string(8192, 'x'),             // oversized header
  };
  for (const std::string& header : bad) {
    bool ran = false;
    response res = round_trip(f, make_request(header), [&](session& s) {
      ran = true;
      BOOST_TEST(s.is_new());
      BOOST_TEST(s.id() != id);
      BOOST_TEST(!s.get("n"));
    });
    BOOST_TEST(ran);
    BOOST_TEST(res.result() == bhttp::status::ok);
    BOOST_TEST(set_cookies(res).empty(), "header: " << header.substr(0, 60));
  }
  // Truncated, too long and empty reached the manager (no store round trip); the others were not
  // candidates at all.
  BOOST_TEST(f.mgr->stats().malformed == 3u);
  BOOST_TEST(f.mgr->stats().misses == 2u);     // tampered, foreign
  // The real session is still there.
  BOOST_TEST(load(f, make_request(with_cookie(id))).id() == id);
}

BOOST_AUTO_TEST_CASE(tampered_stored_value_gives_a_fresh_session) {
  fixture f;
  const std::string id = start_session(f);
  tamper_stored_value(f, id);
  session s = load(f, make_request(with_cookie(id)));
  BOOST_TEST(s.is_new());
  BOOST_TEST(s.id() != id);
  BOOST_TEST(f.mgr->stats().tampered == 1u);
}

BOOST_AUTO_TEST_CASE(expired_session_gives_a_fresh_session) {
  fixture f;
  const std::string id = start_session(f);
  f.clock.advance(31min);  // idle timeout is 30 min
  session s = load(f, make_request(with_cookie(id)));
  BOOST_TEST(s.is_new());
  BOOST_TEST(s.id() != id);
  BOOST_TEST(f.mgr->stats().expired == 1u);
}

// cookie.persistent=false: the glue sends a browser-session cookie, and the server-side
// deadlines still end the session.
BOOST_AUTO_TEST_CASE(browser_session_cookie_when_not_persistent) {
  options o = test_options();
  o.cookie.persistent = false;
  fixture f(o);
  response res = round_trip(f, make_request(), [](session& s) { s.set("n", 1); });
  const std::vector<std::string> sc = set_cookies(res);
  BOOST_TEST_REQUIRE(sc.size() == 1u);
  BOOST_TEST(sc[0].find("Max-Age") == std::string::npos, sc[0]);
  BOOST_TEST(sc[0].find("Expires") == std::string::npos, sc[0]);
  BOOST_TEST(sc[0].ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax"), sc[0]);
  const std::string id = set_value(res);
  f.clock.advance(20min);
  BOOST_TEST(load(f, make_request(with_cookie(id))).id() == id);
  f.clock.advance(31min);  // idle timeout is 30 min
  BOOST_TEST(load(f, make_request(with_cookie(id))).is_new());
}

BOOST_AUTO_TEST_CASE(rotation_sends_the_new_id) {
  fixture f;
  const std::string id = start_session(f);
  session s = load(f, make_request(with_cookie(id)));
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_rotate(s, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
  response res{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, s, res));
  const std::string new_id = set_value(res);
  BOOST_TEST(new_id == s.id());
  BOOST_TEST(new_id != id);
  BOOST_TEST(load(f, make_request(with_cookie(new_id))).get_as<int>("n").value_or(0) == 1);
  BOOST_TEST(load(f, make_request(with_cookie(id))).is_new());  // the old id is dead
}

BOOST_AUTO_TEST_CASE(destroy_sends_a_deletion_cookie) {
  fixture f;
  const std::string id = start_session(f);
  session s = load(f, make_request(with_cookie(id)));
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_destroy(s, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
  response res{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, s, res));
  const std::vector<std::string> sc = set_cookies(res);
  BOOST_TEST_REQUIRE(sc.size() == 1u);
  BOOST_TEST(sc[0] == cookie_name +
                          "=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; "
                          "HttpOnly; SameSite=Lax");
  BOOST_TEST(load(f, make_request(with_cookie(id))).is_new());
}

BOOST_AUTO_TEST_CASE(handler_set_cookies_are_kept) {
  fixture f;
  response with_other{bhttp::status::ok, 11};
  with_other.insert(bhttp::field::set_cookie, "theme=dark");
  session s = load(f, make_request());
  s.set("n", 1);
  BOOST_TEST(!apply(f, s, with_other));
  BOOST_TEST(set_cookies(with_other).size() == 2u);
  BOOST_TEST(set_cookies(with_other)[0] == "theme=dark");
}

// A response that sets (or deletes) the session cookie must not be kept by a shared cache, or
// another user could be served the cookie; a handler's own Cache-Control is left alone.
BOOST_AUTO_TEST_CASE(session_cookie_responses_are_not_cached) {
  fixture f;
  response first = round_trip(f, make_request(), [](session& s) { s.set("n", 1); });
  BOOST_TEST_REQUIRE(set_cookies(first).size() == 1u);
  BOOST_TEST(first[bhttp::field::cache_control] == "private, no-store");
  const std::string id = set_value(first);

  // No Set-Cookie: no Cache-Control either (the handler decides about caching).
  response plain = round_trip(f, make_request(with_cookie(id)), [](session&) {});
  BOOST_TEST(set_cookies(plain).empty());
  BOOST_TEST(plain.count(bhttp::field::cache_control) == 0u);

  // With a Set-Cookie, what the handler set for the page is replaced, not kept or doubled: a
  // `public` or `max-age` would let a shared cache hand the cookie to the next visitor. A value
  // that already forbids storing (no-store, not public) is kept.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"public, max-age=3600", "private, no-store"},
      {"max-age=60", "private, no-store"},
      {"private, max-age=600", "private, no-store"},
      {"no-cache", "private, no-store"},
      {"public, no-store", "private, no-store"},
      {"no-store=x-public", "no-store=x-public"},
      {"no-store", "no-store"},
      {"No-Store, Max-Age=0", "No-Store, Max-Age=0"},
      {"private,no-store", "private,no-store"},
  };
  for (const auto& [handlers, sent] : cases) {
    session s = load(f, make_request(with_cookie(id)));
    s.set("n", 2);
    response own{bhttp::status::ok, 11};
    own.set(bhttp::field::cache_control, handlers);
    BOOST_TEST(!apply(f, s, own));
    BOOST_TEST(set_cookies(own).size() == 1u);
    BOOST_TEST(own.count(bhttp::field::cache_control) == 1u, handlers);
    BOOST_TEST(own[bhttp::field::cache_control] == sent, handlers);
  }
  // Two fields, one of them public: replaced by one.
  {
    session s = load(f, make_request(with_cookie(id)));
    s.set("n", 3);
    response two{bhttp::status::ok, 11};
    two.insert(bhttp::field::cache_control, "no-store");
    two.insert(bhttp::field::cache_control, "public");
    BOOST_TEST(!apply(f, s, two));
    BOOST_TEST(two.count(bhttp::field::cache_control) == 1u);
    BOOST_TEST(two[bhttp::field::cache_control] == "private, no-store");
  }
  // Without a Set-Cookie the handler's choice stands.
  session unchanged = load(f, make_request(with_cookie(id)));
  response page{bhttp::status::ok, 11};
  page.set(bhttp::field::cache_control, "public, max-age=3600");
  BOOST_TEST(!apply(f, unchanged, page));
  BOOST_TEST(set_cookies(page).empty());
  BOOST_TEST(page[bhttp::field::cache_control] == "public, max-age=3600");

  // The deletion cookie of a logout too.
  session d = load(f, make_request(with_cookie(id)));
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_destroy(d, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
  response gone{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, d, gone));
  BOOST_TEST(set_cookies(gone).size() == 1u);
  BOOST_TEST(gone[bhttp::field::cache_control] == "private, no-store");
}

BOOST_AUTO_TEST_CASE(default_constructed_session_is_refused) {
  fixture f;
  session s;
  response res{bhttp::status::ok, 11};
  BOOST_TEST(apply(f, s, res) == error::invalid_session);
  BOOST_TEST(set_cookies(res).empty());
}

BOOST_AUTO_TEST_CASE(store_failures_propagate) {
  manager_fixture<switchable_stack> f;
  const request first = make_request();
  session s = load(f, first);
  s.set("n", 1);
  response res{bhttp::status::ok, 11};
  BOOST_TEST(!apply(f, s, res));
  const std::string id = set_value(res);

  f.store.set_down(true);
  const request with_id = make_request(with_cookie(id));
  const error_code ec = f.run([&]() -> awaitable<error_code> {
    auto [ec, x] = co_await http::async_load_session(*f.mgr, with_id, tuple_token);
    co_return ec;
  });
  BOOST_TEST(ec == error::store_unavailable);
  // No cookie: no store round trip is needed, so no error either.
  BOOST_TEST(load(f, make_request()).is_new());

  s.set("n", 2);
  response res2{bhttp::status::ok, 11};
  BOOST_TEST(apply(f, s, res2) == error::store_unavailable);
  BOOST_TEST(set_cookies(res2).empty());
}

BOOST_AUTO_TEST_CASE(works_with_a_callback_token) {
  fixture f;
  const std::string id = start_session(f);
  std::optional<std::string> got;
  {
    // Initiated outside any coroutine; the request object goes away only after completion.
    const request req = make_request(with_cookie(id));
    http::async_load_session(*f.mgr, req, [&](error_code ec, session s) {
      BOOST_TEST(!ec);
      got = s.id();
    });
    while (!got) {
      f.ioc.restart();
      f.ioc.run_one();
    }
  }
  BOOST_TEST(*got == id);
}

BOOST_AUTO_TEST_CASE(status_mapping) {
  using bhttp::status;
  BOOST_TEST(http::session_error_status(error::store_unavailable) == status::service_unavailable);
  BOOST_TEST(http::session_error_status(error::timeout) == status::service_unavailable);
  BOOST_TEST(http::session_error_status(error::capacity) == status::service_unavailable);
  BOOST_TEST(http::session_error_status(error::conflict) == status::conflict);
  BOOST_TEST(http::session_error_status(error::not_found) == status::conflict);
  BOOST_TEST(http::session_error_status(error::expired) == status::conflict);
  BOOST_TEST(http::session_error_status(error::internal) == status::internal_server_error);
  BOOST_TEST(http::session_error_status(error::too_large) == status::internal_server_error);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(with_session)

BOOST_AUTO_TEST_CASE(handler_sees_the_session_and_the_cookie_follows) {
  fixture f;
  const auto visit = [&](const request& req) {
    return f.run([&]() -> awaitable<response> {
      co_return co_await http::with_session(
          *f.mgr, req, [](const request& rq, session& s) -> awaitable<response> {
            const int n = s.get_as<int>("n").value_or(0) + 1;
            s.set("n", n);
            response res{bhttp::status::ok, rq.version()};
            res.body() = std::to_string(n);
            res.prepare_payload();
            co_return res;
          });
    });
  };
  response r1 = visit(make_request());
  BOOST_TEST(r1.result() == bhttp::status::ok);
  BOOST_TEST(r1.body() == "1");
  const std::string id = set_value(r1);
  response r2 = visit(make_request(with_cookie(id)));
  BOOST_TEST(r2.body() == "2");
  BOOST_TEST(set_value(r2) == id);  // written (dirty), so Max-Age is refreshed
  response r3 = visit(make_request(with_cookie(id)));
  BOOST_TEST(r3.body() == "3");
}

BOOST_AUTO_TEST_CASE(options_may_be_a_temporary_in_the_co_await) {
  // GCC 12 destroyed aggregate temporaries in co_await expressions twice; glue_options is not one.
  fixture f;
  const request req = make_request({}, "browser-A");
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req,
        [](const request&, session& s) -> awaitable<response> {
          BOOST_TEST(s.metadata().fingerprint.empty());
          s.set("n", 1);
          co_return response{bhttp::status::ok, 11};
        },
        http::glue_options{});
  });
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST(set_value(res).size() == session_id::tagged_size);
}

BOOST_AUTO_TEST_CASE(read_only_handler_sends_no_cookie) {
  fixture f;
  const std::string id = start_session(f);
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req, [](const request&, session& s) -> awaitable<response> {
          response res{bhttp::status::ok, 11};
          res.body() = std::to_string(s.get_as<int>("n").value_or(-1));
          co_return res;
        });
  });
  BOOST_TEST(res.body() == "1");
  BOOST_TEST(set_cookies(res).empty());
}

BOOST_AUTO_TEST_CASE(conflicting_save_answers_409) {
  fixture f;
  const std::string id = start_session(f);
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req, [&](const request&, session& s) -> awaitable<response> {
          // A concurrent request for the same session saves first.
          co_await save_meanwhile(f, id);
          s.set("n", 2);
          response res{bhttp::status::ok, 11};
          res.body() = "stored n=2";
          co_return res;
        });
  });
  BOOST_TEST(res.result() == bhttp::status::conflict);
  BOOST_TEST(res.body() != "stored n=2");
  BOOST_TEST(res[bhttp::field::cache_control] == "no-store");
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(load(f, make_request(with_cookie(id))).get_as<int>("n").value_or(0) == 100);
}

BOOST_AUTO_TEST_CASE(store_down_answers_503) {
  manager_fixture<switchable_stack> f;
  bool ran = false;
  using empty_response = bhttp::response<bhttp::empty_body>;
  const auto handler = [&](const request&, session& s) -> awaitable<empty_response> {
    ran = true;
    s.set("n", 1);
    co_return empty_response{bhttp::status::ok, 11};
  };
  const request req = make_request(with_cookie(session_id::generate().to_string()));
  auto visit = [&](const request& rq) {
    return f.run([&]() -> awaitable<empty_response> {
      co_return co_await http::with_session(*f.mgr, rq, handler);
    });
  };
  f.store.set_down(true);
  auto res = visit(req);
  BOOST_TEST(res.result() == bhttp::status::service_unavailable);
  BOOST_TEST(!ran);  // the load failed: the handler never ran
  // A request without a cookie runs the handler; the save fails.
  res = visit(make_request());
  BOOST_TEST(ran);
  BOOST_TEST(res.result() == bhttp::status::service_unavailable);
  BOOST_TEST(res.count(bhttp::field::set_cookie) == 0u);
}

// A login whose rotation failed (the store timed out) must not be stored under the old id:
// the glue's save is refused, so an id planted before the login does not become the user's.
BOOST_AUTO_TEST_CASE(a_failed_login_rotation_stores_no_login) {
  manager_fixture<switchable_stack> f;
  const request first = make_request();
  session s = load(f, first);
  s.set("cart", 1);
  response res0{bhttp::status::ok, 11};
  BOOST_TEST_REQUIRE(!apply(f, s, res0));
  const std::string planted = set_value(res0);  // the id an attacker got a victim to use

  using empty_response = bhttp::response<bhttp::empty_body>;
  const request req = make_request(with_cookie(planted));
  bool skip = false;
  const auto login = [&](const request&, session& x) -> awaitable<empty_response> {
    f.mgr->bind_user(x, "victim");
    f.store.set_down(true);  // a transient failure, during the rotation only
    auto [ec] = co_await f.mgr->async_rotate(x, tuple_token);
    f.store.set_down(false);
    BOOST_TEST(ec == error::store_unavailable);
    if (skip) x.skip_save();  // the handler's way to say "store nothing"
    co_return empty_response{bhttp::status::unauthorized, 11};
  };
  auto visit = [&] {
    return f.run([&]() -> awaitable<empty_response> {
      co_return co_await http::with_session(*f.mgr, req, login);
    });
  };
  empty_response res = visit();
  BOOST_TEST(res.result() == bhttp::status::internal_server_error);  // rotation_required
  BOOST_TEST(res.count(bhttp::field::set_cookie) == 0u);
  BOOST_TEST(load(f, make_request(with_cookie(planted))).user().empty());
  skip = true;
  res = visit();
  BOOST_TEST(res.result() == bhttp::status::unauthorized);  // the handler's own answer
  BOOST_TEST(res.count(bhttp::field::set_cookie) == 0u);
  BOOST_TEST(load(f, make_request(with_cookie(planted))).user().empty());
}

// An error-response hook as an application writes one: its own status and body, and what it
// was told, for the assertions.
struct recording_hook {
  std::vector<error_code>* errors;
  std::vector<bhttp::status>* suggested;
  response operator()(const request& req, const error_code& ec, bhttp::status st) const {
    errors->push_back(ec);
    suggested->push_back(st);
    response res{bhttp::status::bad_gateway, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = std::string("{\"error\":\"") + std::string(http::session_error_text(ec)) + "\"}";
    res.prepare_payload();
    return res;
  }
};

BOOST_AUTO_TEST_CASE(error_hook_answers_store_failures) {
  manager_fixture<switchable_stack> f;
  const std::string id = [&] {
    session s = load(f, make_request());
    s.set("n", 1);
    response res{bhttp::status::ok, 11};
    BOOST_TEST_REQUIRE(!apply(f, s, res));
    return set_value(res);
  }();
  std::vector<error_code> errors;
  std::vector<bhttp::status> suggested;
  const recording_hook hook{&errors, &suggested};
  int ran = 0;
  const auto handler = [&](const request&, session& s) -> awaitable<response> {
    ++ran;
    s.set("n", 2);
    co_return response{bhttp::status::ok, 11};
  };
  const auto visit = [&](const request& rq) {
    return f.run([&]() -> awaitable<response> {
      co_return co_await http::with_session(*f.mgr, rq, handler, hook);
    });
  };
  f.store.set_down(true);
  // The load fails: the hook answers, the handler never runs.
  response res = visit(make_request(with_cookie(id)));
  BOOST_TEST(ran == 0);
  BOOST_TEST(res.result() == bhttp::status::bad_gateway);
  BOOST_TEST(res.body() == "{\"error\":\"session store unavailable, retry later\"}");
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST_REQUIRE(errors.size() == 1u);
  BOOST_TEST(errors[0] == error::store_unavailable);
  BOOST_TEST((suggested[0] == bhttp::status::service_unavailable));
  // No cookie: the handler runs, the save fails, the hook replaces the handler's answer.
  res = visit(make_request());
  BOOST_TEST(ran == 1);
  BOOST_TEST(res.result() == bhttp::status::bad_gateway);
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST_REQUIRE(errors.size() == 2u);
  BOOST_TEST(errors[1] == error::store_unavailable);
  // Store back: the handler's own answer, no hook.
  f.store.set_down(false);
  res = visit(make_request(with_cookie(id)));
  BOOST_TEST(ran == 2);
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST(errors.size() == 2u);
}

BOOST_AUTO_TEST_CASE(error_hook_answers_a_conflict_with_409_suggested) {
  fixture f;
  const std::string id = start_session(f);
  std::vector<error_code> errors;
  std::vector<bhttp::status> suggested;
  const recording_hook hook{&errors, &suggested};
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req,
        [&](const request&, session& s) -> awaitable<response> {
          co_await save_meanwhile(f, id);
          s.set("n", 2);
          co_return response{bhttp::status::ok, 11};
        },
        hook);
  });
  BOOST_TEST(res.result() == bhttp::status::bad_gateway);
  BOOST_TEST(res.body() == "{\"error\":\"the session changed during the request, retry it\"}");
  BOOST_TEST_REQUIRE(errors.size() == 1u);
  BOOST_TEST(errors[0] == error::conflict);
  BOOST_TEST((suggested[0] == bhttp::status::conflict));
}

// A bad cookie is not a failure: the hook is not asked, the handler gets a fresh session.
BOOST_AUTO_TEST_CASE(error_hook_never_sees_a_tampered_cookie) {
  fixture f;
  const std::string id = start_session(f);
  tamper_stored_value(f, id);
  std::vector<error_code> errors;
  std::vector<bhttp::status> suggested;
  const recording_hook hook{&errors, &suggested};
  bool fresh = false;
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req,
        [&](const request&, session& s) -> awaitable<response> {
          fresh = s.is_new() && s.id() != id && !s.get("n");
          s.set("n", 1);
          co_return response{bhttp::status::ok, 11};
        },
        hook);
  });
  BOOST_TEST(errors.empty());
  BOOST_TEST(fresh);
  BOOST_TEST(f.mgr->stats().tampered == 1u);
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST(set_value(res) != id);
}

// Without a hook, the answer is default_error_response: text/plain with session_error_text.
BOOST_AUTO_TEST_CASE(default_error_response_is_plain_text) {
  manager_fixture<switchable_stack> f;
  f.store.set_down(true);
  const request req = make_request(with_cookie(session_id::generate().to_string()));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(*f.mgr, req,
                                          [](const request&, session&) -> awaitable<response> {
                                            co_return response{bhttp::status::ok, 11};
                                          });
  });
  BOOST_TEST(res.result() == bhttp::status::service_unavailable);
  BOOST_TEST(res.body() == "session store unavailable, retry later\n");
  BOOST_TEST(res[bhttp::field::content_type] == "text/plain; charset=utf-8");
  BOOST_TEST(res[bhttp::field::cache_control] == "no-store");
  BOOST_TEST(http::session_error_text(error::internal) == "internal error");
}

// The "do not store" outcome: an anonymous request whose handler wrote to its fresh session
// but must not create one.
BOOST_AUTO_TEST_CASE(skip_save_creates_no_session) {
  fixture f;
  std::string seen_id;
  const auto anonymous = [&](const request& rq) {
    return f.run([&]() -> awaitable<response> {
      co_return co_await http::with_session(
          *f.mgr, rq, [&](const request&, session& s) -> awaitable<response> {
            BOOST_TEST(s.is_new());
            BOOST_TEST(!s.get("cart"));
            seen_id = s.id();
            s.set("cart", 3);
            s.skip_save();
            response res{bhttp::status::ok, 11};
            res.body() = "anonymous";
            co_return res;
          });
    });
  };
  response res = anonymous(make_request());
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST(res.body() == "anonymous");
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(res.count(bhttp::field::cache_control) == 0u);
  BOOST_TEST(f.store.size() == 0u);
  BOOST_TEST(f.mgr->stats().created == 0u);
  const std::string first_id = seen_id;
  // The next request without a cookie starts afresh (the handler checks: new, no cart).
  res = anonymous(make_request());
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(seen_id != first_id);
  BOOST_TEST(f.store.size() == 0u);
  // Nor does the id the first one saw name anything now.
  session s = load(f, make_request(with_cookie(first_id)));
  BOOST_TEST(s.is_new());
  BOOST_TEST(s.id() != first_id);
}

// skip_save on a stored session: neither its changes nor a due touch are written, no cookie.
BOOST_AUTO_TEST_CASE(skip_save_leaves_a_stored_session_as_it_was) {
  fixture f;
  const std::string id = start_session(f);  // n = 1
  f.clock.advance(20min);                   // a save would be a touch now
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req, [](const request&, session& s) -> awaitable<response> {
          s.set("n", 2);
          s.skip_save();
          co_return response{bhttp::status::ok, 11};
        });
  });
  BOOST_TEST(set_cookies(res).empty());
  BOOST_TEST(f.mgr->stats().saved == 0u);  // the first request created it; nothing since
  BOOST_TEST(f.mgr->stats().touched == 0u);
  BOOST_TEST(load(f, make_request(with_cookie(id))).get_as<int>("n").value_or(0) == 1);
}

// A handler whose session ended under it carries on as a request without a cookie would.
BOOST_AUTO_TEST_CASE(fresh_session_after_the_session_ended) {
  fixture f;
  http::glue_options bind;
  bind.bind_client = true;
  const std::string id = start_session(f, bind, "browser-A");
  const request req = make_request(with_cookie(id), "browser-A");
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req,
        [&](const request& rq, session& s) -> awaitable<response> {
          session other = s;  // another request logs out meanwhile
          auto [destroy_ec] = co_await f.mgr->async_destroy(other, tuple_token);
          BOOST_TEST_REQUIRE(!destroy_ec);
          const auto increment = [](session& x) { x.set("n", x.get_as<int>("n").value_or(0) + 1); };
          auto [ec] = co_await f.mgr->async_update(s, increment, tuple_token);
          BOOST_TEST(http::starts_fresh(ec), ec.message());
          s = http::fresh_session(*f.mgr, rq, bind);
          BOOST_TEST(s.is_new());
          BOOST_TEST(!s.dirty());
          BOOST_TEST(s.metadata().fingerprint == http::client_fingerprint(rq, bind.fingerprint_headers));
          s.set("n", 1);
          co_return response{bhttp::status::ok, 11};
        },
        bind);
  });
  BOOST_TEST(res.result() == bhttp::status::ok);
  const std::string fresh = set_value(res);
  BOOST_TEST(fresh != id);
  session s = load(f, make_request(with_cookie(fresh), "browser-A"), bind);
  BOOST_TEST(s.id() == fresh);
  BOOST_TEST(s.get_as<int>("n").value_or(0) == 1);
  BOOST_TEST(!http::starts_fresh(make_error_code(error::store_unavailable)));
  BOOST_TEST(!http::starts_fresh(make_error_code(error::conflict)));
}

BOOST_AUTO_TEST_CASE(logout_through_the_handler) {
  fixture f;
  const std::string id = start_session(f);
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *f.mgr, req, [&](const request&, session& s) -> awaitable<response> {
          auto [ec] = co_await f.mgr->async_destroy(s, tuple_token);
          BOOST_TEST(!ec);
          co_return response{bhttp::status::ok, 11};
        });
  });
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST_REQUIRE(set_cookies(res).size() == 1u);
  BOOST_TEST(set_cookies(res)[0].starts_with(cookie_name + "=; Path=/; Max-Age=0;"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// The glue is generic over the message's Fields and over the manager (http::glue_manager), and
// hands the manager the id it parsed.
namespace {

// A Fields type of its own (Beast's is_fields holds for classes derived from basic_fields).
struct app_fields : bhttp::fields {
  using bhttp::fields::fields;
};
using app_request = bhttp::request<bhttp::string_body, app_fields>;
using app_response = bhttp::response<bhttp::string_body, app_fields>;

// A manager wrapper, as an application might write one around the library's (to log, to
// count): it models glue_manager and records which load the glue asked for.
template <class Manager>
class recording_manager {
 public:
  explicit recording_manager(Manager& m) : inner_(m) {}
  auto get_executor() const { return inner_.get_executor(); }
  const options& get_options() const { return inner_.get_options(); }
  const auto& get_clock() const { return inner_.get_clock(); }
  session new_lazy_session(std::string fingerprint) const {
    return inner_.new_lazy_session(std::move(fingerprint));
  }
  template <class Token>
  auto async_load(const session_id& id, std::string_view fingerprint, Token&& token) {
    ++by_id;
    return inner_.async_load(id, fingerprint, std::forward<Token>(token));
  }
  template <class Token>
  auto async_load(std::string_view cookie, std::string_view fingerprint, Token&& token) {
    ++by_text;
    return inner_.async_load(cookie, fingerprint, std::forward<Token>(token));
  }
  template <class Token>
  auto async_save(session& s, Token&& token) {
    return inner_.async_save(s, std::forward<Token>(token));
  }
  int by_id = 0;
  int by_text = 0;

 private:
  Manager& inner_;
};

static_assert(http::glue_fields<bhttp::fields>);
static_assert(http::glue_fields<app_fields>);
static_assert(!http::glue_fields<std::string>);
static_assert(http::glue_manager<fixture::manager_type>);
static_assert(http::glue_manager<recording_manager<fixture::manager_type>>);
static_assert(!http::glue_manager<int>);
static_assert(!http::glue_manager<memory_stack::store_type>);

}  // namespace

BOOST_AUTO_TEST_SUITE(glue_generic)

BOOST_AUTO_TEST_CASE(requests_and_responses_with_their_own_fields_type) {
  fixture f;
  app_request first{bhttp::verb::get, "/", 11};
  first.set(bhttp::field::user_agent, "agent/1.0");
  const http::glue_options bind = [] {
    http::glue_options o;
    o.bind_client = true;
    return o;
  }();
  app_response res = f.run([&]() -> awaitable<app_response> {
    co_return co_await http::with_session(
        *f.mgr, first,
        [](const app_request&, session& s) -> awaitable<app_response> {
          s.set("n", 1);
          co_return app_response{bhttp::status::ok, 11};
        },
        bind);
  });
  BOOST_TEST_REQUIRE(res.count(bhttp::field::set_cookie) == 1u);
  BOOST_TEST(res[bhttp::field::cache_control] == "private, no-store");
  const std::string set_cookie(res[bhttp::field::set_cookie]);
  const std::string id =
      set_cookie.substr(cookie_name.size() + 1, set_cookie.find(';') - cookie_name.size() - 1);

  app_request again{bhttp::verb::get, "/", 11};
  again.set(bhttp::field::user_agent, "agent/1.0");
  again.set(bhttp::field::cookie, with_cookie(id));
  BOOST_TEST(http::client_fingerprint(again, {"User-Agent"}) ==
             http::client_fingerprint(make_request({}, "agent/1.0"), {"User-Agent"}));
  session s = f.run([&]() -> awaitable<session> {
    auto [ec, loaded] = co_await http::async_load_session(*f.mgr, again, bind, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return loaded;
  });
  BOOST_TEST(s.id() == id);
  BOOST_TEST(s.get_as<int>("n").value_or(0) == 1);
  BOOST_TEST(!http::fresh_session(*f.mgr, again, bind).metadata().fingerprint.empty());
}

BOOST_AUTO_TEST_CASE(the_glue_hands_the_manager_the_id_it_parsed) {
  fixture f;
  const std::string id = start_session(f);
  recording_manager rec(*f.mgr);
  const request req = make_request(with_cookie(id));
  response res = f.run([&]() -> awaitable<response> {
    co_return co_await http::with_session(rec, req,
                                          [](const request&, session& s) -> awaitable<response> {
                                            BOOST_TEST(s.get_as<int>("n").value_or(0) == 1);
                                            co_return response{bhttp::status::ok, 11};
                                          });
  });
  BOOST_TEST(res.result() == bhttp::status::ok);
  BOOST_TEST(rec.by_id == 1);   // parsed once, by the glue
  BOOST_TEST(rec.by_text == 0);
  // A cookie that is no id goes to the manager as text, which counts it as malformed.
  const std::uint64_t malformed = f.mgr->stats().malformed;
  session fresh = f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await http::async_load_session(rec, make_request(with_cookie("short")),
                                                     tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
  BOOST_TEST(fresh.is_new());
  BOOST_TEST(rec.by_text == 1);
  BOOST_TEST(f.mgr->stats().malformed == malformed + 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// Client binding on every async_update path: a cookie replayed from another client changes
// nothing through the cookie overloads, and an update of a loaded session never takes over (by
// a reload or a hand-over) a state that belongs to another client.
BOOST_AUTO_TEST_SUITE(client_binding_on_updates)

namespace {

const auto bump_n = [](session& x) { x.set("n", x.get_as<int>("n").value_or(0) + 1); };

// A session stored without a fingerprint (before binding was turned on), loaded by two clients:
// each client's first load takes its own fingerprint.
template <class Stack>
struct two_clients {
  manager_fixture<Stack> f;
  std::string id;
  session thief;
  session owner;

  two_clients() {
    session s = f.run([&]() -> awaitable<session> {
      auto [ec, s] = co_await f.mgr->async_create(tuple_token);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      co_return s;
    });
    id = s.id();
    thief = load_for("fp-thief");
    owner = load_for("fp-owner");
  }

  session load_for(std::string fp) {
    return f.run([&]() -> awaitable<session> {
      auto [ec, l] = co_await f.mgr->async_load(id, fp, tuple_token);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      co_return l;
    });
  }
};

template <class F>
session stored(F& f, const std::string& id) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, l] = co_await f.mgr->async_load(id, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return l;
  });
}

template <class F, class Fn>
error_code update_loaded(F& f, session& s, Fn fn) {
  return f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await f.mgr->async_update(s, fn, tuple_token);
    co_return ec;
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(cookie_overloads_check_the_client) {
  fixture f;
  session s = f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_create(tuple_token);
    co_return s;
  });
  f.mgr->set_fingerprint(s, "fp-A");
  BOOST_TEST_REQUIRE(!f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await f.mgr->async_save(s, tuple_token);
    co_return ec;
  }));
  int calls = 0;
  auto counted = [&calls](session& x) {
    ++calls;
    bump_n(x);
  };
  const session_id parsed_id = *session_id::parse(s.id());
  auto update_as = [&](std::string fp, bool parsed) {
    return f.run([&]() -> awaitable<error_code> {
      error_code ec;
      session ignored;
      if (parsed) {
        std::tie(ec, ignored) = co_await f.mgr->async_update(parsed_id, fp, counted, tuple_token);
      } else {
        std::tie(ec, ignored) = co_await f.mgr->async_update(s.id(), fp, counted, tuple_token);
      }
      co_return ec;
    });
  };
  // Another client: refused before fn runs, nothing written, counted as tampered.
  BOOST_TEST(update_as("fp-B", false) == error::tampered);
  BOOST_TEST(update_as("fp-B", true) == error::tampered);
  BOOST_TEST(calls == 0);
  BOOST_TEST(f.mgr->stats().tampered == 2u);
  BOOST_TEST(stored(f, s.id()).get_as<int>("n").value_or(0) == 0);
  // Its own client: both overloads update.
  BOOST_TEST(!update_as("fp-A", false));
  BOOST_TEST(!update_as("fp-A", true));
  BOOST_TEST(calls == 2);
  BOOST_TEST(stored(f, s.id()).get_as<int>("n").value_or(0) == 2);
  // No fingerprint: nothing to check (binding off), as with async_load.
  BOOST_TEST(!f.run([&]() -> awaitable<error_code> {
    auto [ec, x] = co_await f.mgr->async_update(s.id(), counted, tuple_token);
    co_return ec;
  }));
  BOOST_TEST(stored(f, s.id()).get_as<int>("n").value_or(0) == 3);
}

// The owner's plain save moves the version on; the thief's update conflicts and reloads: the
// reload is the owner's session now, which the thief's client must not take.
BOOST_FIXTURE_TEST_CASE(reload_after_a_conflict_checks_the_client, two_clients<memory_stack>) {
  owner.set("owner", true);
  BOOST_TEST_REQUIRE(!f.run([&]() -> awaitable<error_code> {
    auto [ec] = co_await f.mgr->async_save(owner, tuple_token);
    co_return ec;
  }));
  const error_code ec = update_loaded(f, thief, [](session& x) { x.set("stolen", true); });
  BOOST_TEST(ec == error::tampered);
  const session after = stored(f, id);
  BOOST_TEST(!after.get("stolen"));
  BOOST_TEST(after.get_as<bool>("owner").value_or(false));
  BOOST_TEST(after.metadata().fingerprint == "fp-owner");
  BOOST_TEST(f.mgr->stats().tampered == 1u);
  // The owner's own updates go on.
  BOOST_TEST(!update_loaded(f, owner, bump_n));
}

// The owner's update ended before the thief's began (nobody waited, nothing handed over): the
// thief's reloads, and the reload must be refused.
BOOST_FIXTURE_TEST_CASE(reload_after_an_earlier_update_checks_the_client,
                        two_clients<memory_stack>) {
  BOOST_TEST_REQUIRE(!update_loaded(f, owner, [](session& x) { x.set("owner", true); }));
  int calls = 0;
  const error_code ec = update_loaded(f, thief, [&calls](session& x) {
    ++calls;
    x.set("stolen", true);
  });
  BOOST_TEST(ec == error::tampered);
  BOOST_TEST(calls == 0);
  BOOST_TEST(!stored(f, id).get("stolen"));
  BOOST_TEST(thief.metadata().fingerprint == "fp-thief");  // `s` keeps its own state
}

// The thief's update waits behind the owner's, which hands over the state it saved: that state
// is the owner's, and the hand-over is refused like a reload.
BOOST_FIXTURE_TEST_CASE(state_handed_over_checks_the_client, two_clients<switchable_stack>) {
  f.store.set_yield(true);  // every store operation suspends: the two updates interleave
  int thief_calls = 0;
  auto [owner_ec, thief_ec] = f.run([&]() -> awaitable<std::tuple<error_code, error_code>> {
    using namespace boost::asio::experimental::awaitable_operators;
    auto owner_update = [&]() -> awaitable<error_code> {
      auto [e] = co_await f.mgr->async_update(
          owner, [](session& x) { x.set("owner", true); }, tuple_token);
      co_return e;
    };
    auto thief_update = [&]() -> awaitable<error_code> {
      auto [e] = co_await f.mgr->async_update(
          thief,
          [&thief_calls](session& x) {
            ++thief_calls;
            x.set("stolen", true);
          },
          tuple_token);
      co_return e;
    };
    co_return co_await (owner_update() && thief_update());
  });
  BOOST_TEST(!owner_ec);
  BOOST_TEST(thief_ec == error::tampered);
  BOOST_TEST(thief_calls == 0);
  const session after = stored(f, id);
  BOOST_TEST(after.get_as<bool>("owner").value_or(false));
  BOOST_TEST(!after.get("stolen"));
  BOOST_TEST(f.mgr->stats().tampered == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
