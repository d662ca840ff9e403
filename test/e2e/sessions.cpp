// SPDX-License-Identifier: BSL-1.0
// End-to-end: the session flows of the example server over real connections. Cookie flags,
// login with id rotation, logout and logout-everywhere, CSRF, bad and expired cookies, and
// exact counting under concurrent requests.
#include "http_client.hpp"
#include "server_process.hpp"

#ifdef WEBSESSION_E2E_REDIS
#include "../redis/server_fixture.hpp"
#endif

#include <websession/id.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

const std::string secure_name = "__Host-session";
const std::string plain_name = "session";

// The one Set-Cookie of `r`, or "" when it sets none.
std::string set_cookie_of(const reply& r) {
  const std::vector<std::string> all = r.set_cookies();
  BOOST_TEST_REQUIRE(all.size() <= 1u);
  return all.empty() ? std::string() : all.front();
}

// The session id `r` sets; fails the test when it sets none.
std::string new_id(const reply& r) {
  const std::string sc = set_cookie_of(r);
  BOOST_TEST_REQUIRE(!sc.empty(), "expected a Set-Cookie");
  const std::string id = cookie_value(sc);
  BOOST_TEST(id.size() == 47u);  // 43 base64url characters, '.', a 3-character slot tag
  return id;
}

std::string cookie(const std::string& id, const std::string& name = secure_name) {
  return name + "=" + id;
}

std::int64_t views(const reply& r) {
  BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
  return r.json().at("views").as_int64();
}

std::string login_body(const std::string& user) {
  boost::json::object o;
  o["user"] = user;
  return boost::json::serialize(o);
}

struct login_result {
  std::string id;
  std::string csrf;
};

// Logs `user` in on the session `id` (none: a new one).
login_result login(client& c, const std::string& user, const std::string& id = {}) {
  const reply r = c.post("/login", id.empty() ? std::string() : cookie(id), login_body(user));
  BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
  const boost::json::value body = r.json();
  BOOST_TEST(body.at("user").as_string() == user);
  const std::string csrf(body.at("csrf").as_string());
  BOOST_TEST(csrf.size() == 64u);
  return {new_id(r), csrf};
}

std::string me(client& c, const std::string& id) {
  const reply r = c.get("/me", cookie(id));
  if (r.status() == 401) return {};
  BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
  return std::string(r.json().at("user").as_string());
}

void check_json_headers(const reply& r) {
  BOOST_TEST(r.header("Content-Type") == "application/json");
  BOOST_TEST(r.header("Cache-Control") == "no-store");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sessions)

BOOST_AUTO_TEST_CASE(secure_cookie_flags_by_default) {
  server_process srv;
  client c(srv.port());

  // An anonymous request that stores nothing sets no cookie.
  const reply anon = c.get("/me");
  BOOST_TEST(anon.status() == 401u);
  BOOST_TEST(anon.set_cookies().empty());

  const reply first = c.get("/visits");
  BOOST_TEST(views(first) == 1);
  check_json_headers(first);
  const std::string sc = set_cookie_of(first);
  BOOST_TEST_MESSAGE("Set-Cookie: " << sc);
  BOOST_TEST(sc.starts_with(secure_name + "="));
  const std::string id = new_id(first);
  BOOST_TEST(websession::session_id::parse(id).has_value());
  BOOST_TEST(cookie_attribute(sc, "Path") == "/");
  BOOST_TEST(cookie_attribute(sc, "Secure") == "");
  BOOST_TEST(cookie_attribute(sc, "HttpOnly") == "");
  BOOST_TEST(cookie_attribute(sc, "SameSite") == "Lax");
  BOOST_TEST(cookie_attribute(sc, "Domain") == absent);  // __Host-: host-only
  BOOST_TEST(cookie_attribute(sc, "Expires") != absent);
  const std::string max_age = cookie_attribute(sc, "Max-Age");
  BOOST_TEST_REQUIRE(max_age != absent);
  const long age = std::stol(max_age);
  BOOST_TEST(age > 8 * 3600 - 60);  // the default absolute timeout, 8 h
  BOOST_TEST(age <= 8 * 3600);

  // The same session on the next request; its id does not change, so no new cookie.
  const reply second = c.get("/visits", cookie(id));
  BOOST_TEST(views(second) == 2);
  BOOST_TEST(second.set_cookies().empty());
  BOOST_TEST(c.connects() == 1u);  // keep-alive: one connection for all of it
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(insecure_cookies_for_plain_http) {
  server_options o;
  o.args = {"--insecure-cookies"};
  server_process srv(o);
  client c(srv.port());
  const reply r = c.get("/visits");
  const std::string sc = set_cookie_of(r);
  BOOST_TEST_MESSAGE("Set-Cookie: " << sc);
  BOOST_TEST(sc.starts_with(plain_name + "="));
  BOOST_TEST(cookie_attribute(sc, "Secure") == absent);
  BOOST_TEST(cookie_attribute(sc, "HttpOnly") != absent);
  BOOST_TEST(cookie_attribute(sc, "SameSite") == "Lax");
  BOOST_TEST(cookie_attribute(sc, "Path") == "/");
  BOOST_TEST(cookie_attribute(sc, "Max-Age") != absent);
  BOOST_TEST(views(c.get("/visits", cookie(new_id(r), plain_name))) == 2);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(login_rotates_the_id_and_kills_the_old_one) {
  server_process srv;
  client c(srv.port());
  const std::string before = new_id(c.get("/visits"));

  const login_result after = login(c, "ada", before);
  BOOST_TEST(after.id != before);
  BOOST_TEST(me(c, after.id) == "ada");
  BOOST_TEST(views(c.get("/visits", cookie(after.id))) == 2);  // the data moved with the session

  // The old cookie is dead: a fresh, anonymous session, and nothing of the old one.
  BOOST_TEST(me(c, before).empty());
  const reply old = c.get("/visits", cookie(before));
  BOOST_TEST(views(old) == 1);
  const std::string fresh = new_id(old);
  BOOST_TEST(fresh != before);
  BOOST_TEST(fresh != after.id);

  // A login without any session works too, and a second login rotates again.
  const login_result bob = login(c, "bob");
  BOOST_TEST(me(c, bob.id) == "bob");
  const login_result again = login(c, "bob", bob.id);
  BOOST_TEST(again.id != bob.id);
  BOOST_TEST(me(c, bob.id).empty());
  BOOST_TEST(me(c, again.id) == "bob");
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(csrf_is_enforced) {
  server_process srv;
  client c(srv.port());

  // A token of the session before login: rotation renews the CSRF secret.
  const std::string anon = new_id(c.get("/visits"));
  const reply pre = c.get("/csrf", cookie(anon));
  BOOST_TEST_REQUIRE(pre.status() == 200u);
  const std::string pre_token(pre.json().at("csrf").as_string());

  const login_result ada = login(c, "ada", anon);
  const login_result bob = login(c, "bob");
  const std::string forged(64, 'A');

  for (const auto* target : {"/logout", "/logout-everywhere"}) {
    BOOST_TEST_CONTEXT(target) {
      const reply missing = c.post(target, cookie(ada.id));
      BOOST_TEST(missing.status() == 403u);
      BOOST_TEST(missing.json().at("error").is_string());
      BOOST_TEST(missing.set_cookies().empty());
      BOOST_TEST(c.post(target, cookie(ada.id), {}, std::string("garbage")).status() == 403u);
      BOOST_TEST(c.post(target, cookie(ada.id), {}, forged).status() == 403u);
      BOOST_TEST(c.post(target, cookie(ada.id), {}, std::string()).status() == 403u);
      BOOST_TEST(c.post(target, cookie(ada.id), {}, bob.csrf).status() == 403u);  // another session's
      BOOST_TEST(c.post(target, cookie(ada.id), {}, pre_token).status() == 403u);  // before rotation
      // A valid token without the session cookie: a fresh session, whose secret nobody has.
      BOOST_TEST(c.post(target, {}, {}, ada.csrf).status() == 403u);
      BOOST_TEST(me(c, ada.id) == "ada");  // nothing happened
    }
  }

  // Any token of the session verifies: the one from login, or a fresh one from /csrf.
  const reply fresh = c.get("/csrf", cookie(ada.id));
  const std::string fresh_token(fresh.json().at("csrf").as_string());
  BOOST_TEST(fresh_token != ada.csrf);  // salted: a different token every time
  const reply out = c.post("/logout", cookie(ada.id), {}, fresh_token);
  BOOST_TEST(out.status() == 200u, out.msg.body());
  BOOST_TEST(me(c, bob.id) == "bob");
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(logout_destroys_the_session_and_deletes_the_cookie) {
  server_process srv;
  client c(srv.port());
  const login_result ada = login(c, "ada");
  const reply out = c.post("/logout", cookie(ada.id), {}, ada.csrf);
  BOOST_TEST_REQUIRE(out.status() == 200u, out.msg.body());
  BOOST_TEST(out.json().at("logged_out").as_bool());
  const std::string sc = set_cookie_of(out);
  BOOST_TEST_MESSAGE("Set-Cookie: " << sc);
  BOOST_TEST(sc.starts_with(secure_name + "=;"));
  BOOST_TEST(cookie_attribute(sc, "Max-Age") == "0");
  // Deleting a __Host- cookie needs the same flags as setting it.
  BOOST_TEST(cookie_attribute(sc, "Path") == "/");
  BOOST_TEST(cookie_attribute(sc, "Secure") != absent);

  BOOST_TEST(me(c, ada.id).empty());
  // The token died with the session.
  BOOST_TEST(c.post("/logout", cookie(ada.id), {}, ada.csrf).status() == 403u);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(logout_everywhere_ends_every_session_of_the_user) {
  server_process srv;
  client c(srv.port());
  const login_result laptop = login(c, "ada");
  const login_result phone = login(c, "ada");
  const login_result other = login(c, "bob");
  BOOST_TEST(me(c, laptop.id) == "ada");
  BOOST_TEST(me(c, phone.id) == "ada");

  const reply out = c.post("/logout-everywhere", cookie(phone.id), {}, phone.csrf);
  BOOST_TEST_REQUIRE(out.status() == 200u, out.msg.body());
  BOOST_TEST(out.json().at("destroyed").as_int64() == 2);
  BOOST_TEST(cookie_attribute(set_cookie_of(out), "Max-Age") == "0");
  BOOST_TEST(me(c, laptop.id).empty());
  BOOST_TEST(me(c, phone.id).empty());
  BOOST_TEST(me(c, other.id) == "bob");  // another user is untouched

  // Without a user there is nothing to end everywhere.
  const std::string anon = new_id(c.get("/visits"));
  const std::string token(c.get("/csrf", cookie(anon)).json().at("csrf").as_string());
  BOOST_TEST(c.post("/logout-everywhere", cookie(anon), {}, token).status() == 401u);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(bad_cookies_get_a_fresh_session_never_an_error) {
  server_process srv;
  client c(srv.port());
  const std::string good = new_id(c.get("/visits"));

  std::string tampered = good;
  tampered[10] = tampered[10] == 'A' ? 'B' : 'A';  // still well-formed, another id
  const std::string foreign = websession::session_id::generate().to_string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tampered", cookie(tampered)},
      {"truncated", cookie(good.substr(0, 20))},
      {"one char longer", cookie(good + "A")},
      {"foreign id", cookie(foreign)},
      {"empty value", secure_name + "="},
      {"quoted garbage", secure_name + "=\"!!\""},
      {"non-ASCII", secure_name + "=\xc3\xa9t\xc3\xa9"},
      {"space inside", secure_name + "=ab cd"},
      {"base64 padding", cookie(good.substr(0, 42) + "=")},
      {"no equals", secure_name},
      {"duplicates", cookie(tampered) + "; " + cookie(foreign) + "; " + secure_name + "=x"},
      {"wrong name", "session=" + good},
      {"lower-case name", "__host-session=" + good},
      {"oversized header", cookie(good) + "; pad=" + std::string(9000, 'x')},
      {"long value", cookie(std::string(4000, 'A'))},
      {"separators only", ";;; ; ="},
  };
  for (const auto& [what, header] : cases) {
    BOOST_TEST_CONTEXT(what) {
      const reply r = c.get("/visits", header);
      BOOST_TEST(r.status() == 200u);
      BOOST_TEST(views(r) == 1);
      const std::string id = new_id(r);
      BOOST_TEST(id != good);
      BOOST_TEST(c.get("/me", header).status() == 401u);
    }
  }
  // None of that touched the real session.
  BOOST_TEST(views(c.get("/visits", cookie(good))) == 2);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(expired_cookie_gets_a_fresh_session) {
  server_options o;
  o.env = {"WEBSESSION_IDLE_TIMEOUT=700ms", "WEBSESSION_ANONYMOUS_IDLE_TIMEOUT=700ms",
           "WEBSESSION_TOUCH_INTERVAL=100ms"};
  server_process srv(o);
  client c(srv.port());
  const std::string id = new_id(c.get("/visits"));
  BOOST_TEST(views(c.get("/visits", cookie(id))) == 2);
  std::this_thread::sleep_for(1s);
  const reply r = c.get("/visits", cookie(id));
  BOOST_TEST(views(r) == 1);
  BOOST_TEST(new_id(r) != id);
  BOOST_TEST(srv.stop() == 0);
  bool logged = false;
  for (const std::string& line : srv.audit_lines()) logged = logged || line.find("\"expired\"") != std::string::npos;
  BOOST_TEST(logged, "an \"expired\" audit event");
}

// 100 increments from concurrent requests on several connections, with one cookie, against a
// server running two threads (an io_context each): the updates take turns in the manager, so
// none is lost, every response saw a distinct count, and none had to retry (no version
// conflict: a turn that loaded the session before another saved it gets the saved state).
BOOST_AUTO_TEST_CASE(parallel_visits_with_one_cookie_are_exact) {
  server_options o;
  o.args = {"--threads", "2"};
  server_process srv(o);
  client setup(srv.port());
  // Stored but never counted: the 100 below start from zero.
  const std::string id = new_id(setup.get("/csrf"));
  const std::string header = cookie(id);

  constexpr int connections = 20;
  constexpr int per_connection = 5;
  std::latch start(connections);
  std::mutex mutex;
  std::vector<std::int64_t> seen;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&] {
      try {
        client c(srv.port());
        start.arrive_and_wait();
        for (int i = 0; i < per_connection; ++i) {
          const reply r = c.get("/visits", header);
          std::lock_guard lock(mutex);
          if (r.status() != 200 || !r.set_cookies().empty())
            errors.push_back(std::to_string(r.status()) + " " + r.msg.body());
          else
            seen.push_back(r.json().at("views").as_int64());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        errors.emplace_back(e.what());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  BOOST_TEST(errors.empty(), (errors.empty() ? "" : errors.front()));
  std::sort(seen.begin(), seen.end());
  std::vector<std::int64_t> expected(connections * per_connection);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<std::int64_t>(i) + 1;
  BOOST_TEST(seen == expected, boost::test_tools::per_element());
  BOOST_TEST(views(setup.get("/visits", header)) == connections * per_connection + 1);

  const boost::json::value health = setup.get("/healthz").json();
  const auto conflicts = health.at("stats").at("conflicts").to_number<std::uint64_t>();
  BOOST_TEST_MESSAGE("100 parallel visits in " << ms.count() << " ms, " << conflicts << " conflicts");
  BOOST_TEST(conflicts == 0u);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

#ifdef WEBSESSION_E2E_REDIS
// The same flows on the Redis store (a fallback of Redis and memory), and what Redis holds
// afterwards: no session data in the clear, no cookie id, no user name, in keys or values.
BOOST_AUTO_TEST_CASE(redis_store_flows_and_holds_nothing_readable,
                     *redis_test::needs_redis_server()) {
  redis_test::redis_server redis;
  const std::string port = std::to_string(redis.port());
  server_options o;
  o.args = {"--store", "redis", "--redis-url", "redis://127.0.0.1:" + port, "--threads", "2"};
  server_process srv(o);
  client c(srv.port());

  const std::string before = new_id(c.get("/visits"));
  BOOST_TEST(views(c.get("/visits", cookie(before))) == 2);
  const std::string user = "alice-e2e-marker";
  const login_result after = login(c, user, before);
  BOOST_TEST(me(c, after.id) == user);
  BOOST_TEST(me(c, before).empty());  // rotated: the old id is dead in Redis too

  // Parallel visits with one cookie stay exact on Redis.
  std::vector<std::thread> workers;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      client w(srv.port());
      for (int i = 0; i < 10; ++i)
        if (w.get("/visits", cookie(after.id)).status() == 200u) ++ok;
    });
  }
  for (auto& w : workers) w.join();
  BOOST_TEST(ok.load() == 40);
  BOOST_TEST(views(c.get("/visits", cookie(after.id))) == 43);

  const reply health = c.get("/healthz");
  BOOST_TEST(health.status() == 200u, health.msg.body());

  const captured keys = run_capture({"redis-cli", "-p", port, "--scan"});
  BOOST_TEST_REQUIRE(keys.status == 0, keys.output);
  std::vector<std::string> names;
  for (std::size_t pos = 0, nl; (nl = keys.output.find('\n', pos)) != std::string::npos; pos = nl + 1)
    if (nl > pos) names.push_back(keys.output.substr(pos, nl - pos));
  BOOST_TEST(names.size() >= 2u);  // the session and the user's index
  for (const std::string& key : names) {
    BOOST_TEST_CONTEXT(key) {
      BOOST_TEST(key.find(after.id) == std::string::npos);
      BOOST_TEST(key.find(before) == std::string::npos);
      BOOST_TEST(key.find(user) == std::string::npos);
      const captured dump = run_capture({"redis-cli", "-p", port, "--raw", "DUMP", key});
      BOOST_TEST_REQUIRE(dump.status == 0);
      BOOST_TEST(dump.output.find("views") == std::string::npos);
      BOOST_TEST(dump.output.find(user) == std::string::npos);
      BOOST_TEST(dump.output.find(after.id) == std::string::npos);
    }
  }
  BOOST_TEST(srv.stop() == 0);
}

// A store failure is answered by the example's error-response hook for the glue's
// with_session: 503, {"error": session_error_text}, Retry-After: 1, the JSON headers, and no
// Set-Cookie, for a returning session (its load fails) and for a new one (its save fails).
// Redis alone (no memory fallback), killed: each request waits out the request timeout (2 s).
BOOST_AUTO_TEST_CASE(store_failure_is_a_json_503_with_retry_after) {
  redis_test::redis_server redis;
  server_options o;
  o.args = {"--store", "redis", "--redis-url", "redis://127.0.0.1:" + std::to_string(redis.port()),
            "--redis-fallback", "none"};
  server_process srv(o);
  client c(srv.port());
  const std::string id = new_id(c.get("/visits"));
  redis.kill_hard();
  for (const std::string& jar : {cookie(id), std::string()}) {
    BOOST_TEST_CONTEXT(jar) {
      const reply r = c.get("/visits", jar);
      BOOST_TEST(r.status() == 503u, r.msg.body());
      check_json_headers(r);
      BOOST_TEST(r.header("Retry-After") == "1");
      BOOST_TEST(r.set_cookies().empty());
      BOOST_TEST(r.json().at("error") == "session store unavailable, retry later");
    }
  }
  BOOST_TEST(srv.stop() == 0);
}
#endif
