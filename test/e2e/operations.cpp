// SPDX-License-Identifier: BSL-1.0
// End-to-end: the example server as a program. Health check, routing and request errors, size
// limits, keep-alive, signals, the audit log, configuration errors, and a session flow with curl.
#include "http_client.hpp"
#include "server_process.hpp"

#include <websession/id.hpp>
#include <websession/metrics.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

const std::string secure_name = "__Host-session";

std::string only_set_cookie(const reply& r) {
  const std::vector<std::string> all = r.set_cookies();
  BOOST_TEST_REQUIRE(all.size() == 1u);
  return all.front();
}

std::string session_cookie(const reply& r) {
  return secure_name + "=" + cookie_value(only_set_cookie(r));
}

// An error answer: the status, a JSON {"error": "..."} body, the JSON headers.
void check_error(const reply& r, unsigned status) {
  BOOST_TEST(r.status() == status, r.msg.body());
  BOOST_TEST(r.header("Content-Type") == "application/json");
  const boost::json::value body = r.json();
  BOOST_TEST_REQUIRE(body.is_object());
  BOOST_TEST(body.at("error").is_string());
}

reply post_raw(client& c, const std::string& target, const std::string& type, std::string body) {
  request req = client::make(bhttp::verb::post, target);
  if (!type.empty()) req.set(bhttp::field::content_type, type);
  req.body() = std::move(body);
  return c.send(std::move(req));
}

std::string user_json(const std::string& user) {
  boost::json::object o;
  o["user"] = user;
  return boost::json::serialize(o);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(operations)

BOOST_AUTO_TEST_CASE(healthz_reports_the_store_and_the_counters) {
  server_process srv;
  client c(srv.port());
  const reply r = c.get("/healthz");
  BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
  BOOST_TEST(r.header("Content-Type") == "application/json");
  BOOST_TEST(r.set_cookies().empty());  // no session for a health check
  BOOST_TEST_MESSAGE("/healthz: " << r.msg.body());
  const boost::json::value h = r.json();
  BOOST_TEST(h.at("status").as_string() == "ok");
  BOOST_TEST(h.at("store").at("kind").as_string() == "memory");
  BOOST_TEST(h.at("store").at("ok").as_bool());
  BOOST_TEST(h.at("store").at("latency_us").is_number());
  BOOST_TEST(h.at("degraded").as_bool() == false);
  // Every counter the manager has (evicted included), by the names the library describes.
  const boost::json::object& stats = h.at("stats").as_object();
  std::size_t counters = 0;
  boost::mp11::mp_for_each<
      boost::describe::describe_members<websession::session_stats, boost::describe::mod_public>>(
      [&](auto d) {
        ++counters;
        BOOST_TEST_CONTEXT(d.name) {
          BOOST_TEST_REQUIRE(stats.contains(d.name));
          BOOST_TEST(stats.at(d.name).template to_number<std::uint64_t>() == 0u);
        }
      });
  BOOST_TEST(counters >= 13u);
  BOOST_TEST(stats.size() == counters);
  BOOST_TEST(stats.contains("evicted"));

  // The counters follow the traffic.
  const std::string id = session_cookie(c.get("/visits"));
  c.get("/visits", id);
  c.get("/me", secure_name + "=" + websession::session_id::generate().to_string());
  c.get("/me", secure_name + "=short");
  const boost::json::value after = c.get("/healthz").json();
  BOOST_TEST(after.at("stats").at("created").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(after.at("stats").at("saved").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(after.at("stats").at("misses").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(after.at("stats").at("malformed").to_number<std::uint64_t>() == 1u);

  check_error(c.send(client::make(bhttp::verb::post, "/healthz")), 405);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(routing_and_request_errors_are_json) {
  server_process srv;
  client c(srv.port());
  check_error(c.get("/nope"), 404);
  check_error(c.get("/index.html"), 404);  // "/" is the web page (identity.cpp)
  check_error(c.send(client::make(bhttp::verb::post, "/visits/extra")), 404);
  BOOST_TEST(c.get("/visits?x=1").status() == 200u);  // the query is not part of the path

  const reply post_visits = c.send(client::make(bhttp::verb::post, "/visits"));
  check_error(post_visits, 405);
  BOOST_TEST(post_visits.header("Allow") == "GET");
  const reply get_login = c.get("/login");
  check_error(get_login, 405);
  BOOST_TEST(get_login.header("Allow") == "POST");
  check_error(c.send(client::make(bhttp::verb::delete_, "/me")), 405);

  // Login bodies: JSON only, an object with a sane "user".
  check_error(post_raw(c, "/login", "text/plain", user_json("ada")), 415);
  check_error(post_raw(c, "/login", "", user_json("ada")), 415);
  check_error(post_raw(c, "/login", "application/x-www-form-urlencoded", "user=ada"), 415);
  const std::vector<std::string> bad_bodies = {
      "",           "{",          "not json",          "[]",
      "{}",         "{\"user\":5}", "{\"user\":null}",  "{\"user\":\"\"}",
      "{\"usr\":\"ada\"}", user_json(std::string(200, 'a')), user_json("a\nb"),
      "{\"user\":\"ada\"} trailing"};
  for (const std::string& body : bad_bodies) {
    BOOST_TEST_CONTEXT("body " << body) {
      const reply r = post_raw(c, "/login", "application/json", body);
      check_error(r, 400);
      BOOST_TEST(r.set_cookies().empty());
    }
  }
  const reply ok = post_raw(c, "/login", "Application/JSON; charset=utf-8", user_json("ada"));
  BOOST_TEST(ok.status() == 200u, ok.msg.body());
  BOOST_TEST(c.connects() == 1u);  // errors answered without dropping the connection
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(request_size_limits) {
  server_process srv;
  {
    client c(srv.port());
    const reply big_body = post_raw(c, "/login", "application/json",
                                    "{\"user\":\"" + std::string(20 * 1024, 'a') + "\"}");
    check_error(big_body, 413);
    BOOST_TEST(!big_body.msg.keep_alive());
  }
  {
    client c(srv.port());
    request req = client::make(bhttp::verb::get, "/visits");
    req.set("X-Padding", std::string(20 * 1024, 'p'));
    const reply big_header = c.send(std::move(req));
    check_error(big_header, 431);
    BOOST_TEST(!big_header.msg.keep_alive());
  }
  const std::string garbage = raw_exchange(srv.port(), "NOT HTTP AT ALL\r\n\r\n");
  BOOST_TEST(garbage.starts_with("HTTP/1.1 400"), garbage);
  // A client that sends half a request and goes away costs nothing.
  raw_exchange(srv.port(), "GET /visits HTTP/1.1\r\nHost: x\r\nContent-Le", 300ms);
  client c(srv.port());
  BOOST_TEST(c.get("/visits").status() == 200u);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(keep_alive_and_connection_close) {
  server_process srv;
  client c(srv.port());
  for (int i = 0; i < 3; ++i) BOOST_TEST(c.get("/healthz").msg.keep_alive());
  BOOST_TEST(c.connects() == 1u);

  request close = client::make(bhttp::verb::get, "/healthz");
  close.keep_alive(false);
  BOOST_TEST(!c.send(std::move(close)).msg.keep_alive());
  BOOST_TEST(!c.is_open());

  request old = client::make(bhttp::verb::get, "/healthz");
  old.version(10);
  const reply r10 = c.send(std::move(old));
  BOOST_TEST(r10.status() == 200u);
  BOOST_TEST(r10.msg.version() == 10u);
  BOOST_TEST(!r10.msg.keep_alive());
  BOOST_TEST(c.connects() == 2u);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(sigterm_and_sigint_stop_cleanly_with_exit_0) {
  for (const int sig : {SIGTERM, SIGINT}) {
    BOOST_TEST_CONTEXT("signal " << sig) {
      server_process srv;
      client idle(srv.port());
      BOOST_TEST(idle.get("/visits").status() == 200u);  // a keep-alive connection left idle
      const auto t0 = std::chrono::steady_clock::now();
      BOOST_TEST(srv.stop(sig) == 0);
      const auto elapsed = std::chrono::steady_clock::now() - t0;
      // Idle connections are closed at once, not waited for (that would take the 5 s grace).
      BOOST_TEST(elapsed < 3s);
      BOOST_TEST(idle.wait_closed());
      const std::string err = srv.stderr_text();
      BOOST_TEST(err.find("shutting down") != std::string::npos, err);
      BOOST_TEST(err.find("still busy") == std::string::npos, err);
    }
  }
}

// --threads 2: an io_context per thread, each serving its own connections. A session made
// through one connection is seen and counted through sixteen others, which the server spreads
// over both io_contexts (it says how many each served when it stops); SIGTERM closes the idle
// connections of both at once and the server exits 0.
BOOST_AUTO_TEST_CASE(two_threads_share_sessions_and_stop_cleanly) {
  server_options o;
  o.args = {"--threads", "2"};
  server_process srv(o);
  client first(srv.port());
  const reply made = first.get("/visits");
  BOOST_TEST_REQUIRE(made.status() == 200u);
  const std::string header = session_cookie(made);
  std::vector<std::unique_ptr<client>> others;
  std::int64_t expected = 1;
  for (int i = 0; i < 16; ++i) {
    others.push_back(std::make_unique<client>(srv.port()));
    const reply r = others.back()->get("/visits", header);
    BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
    BOOST_TEST(r.set_cookies().empty());  // the same session, not a fresh one
    BOOST_TEST(r.json().at("views").as_int64() == ++expected);
  }
  // Each connection again, kept alive, then the first: one count over all of them.
  for (auto& c : others) BOOST_TEST(c->get("/healthz").status() == 200u);
  BOOST_TEST(first.get("/visits", header).json().at("views").as_int64() == expected + 1);
  for (auto& c : others) BOOST_TEST(c->connects() == 1u);

  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(srv.stop(SIGTERM) == 0);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 3s));
  BOOST_TEST(first.wait_closed());
  for (auto& c : others) BOOST_TEST(c->wait_closed());
  const std::string err = srv.stderr_text();
  BOOST_TEST(err.find("threads=2") != std::string::npos, err);
  BOOST_TEST(err.find("still busy") == std::string::npos, err);
  std::smatch m;
  const std::regex per_thread("connections per thread: ([0-9]+) ([0-9]+)\\)");
  BOOST_TEST_REQUIRE(std::regex_search(err, m, per_thread), err);
  const unsigned long a = std::stoul(m[1].str());
  const unsigned long b = std::stoul(m[2].str());
  BOOST_TEST(a > 0u, err);
  BOOST_TEST(b > 0u, err);
  BOOST_TEST(a + b >= 17u, err);
}

BOOST_AUTO_TEST_CASE(a_request_in_flight_finishes_during_shutdown) {
  server_options o;
  o.args = {"--shutdown-grace", "5s"};
  server_process srv(o);
  client idle(srv.port());
  BOOST_TEST(idle.get("/healthz").status() == 200u);
  raw_connection busy(srv.port());
  BOOST_TEST_REQUIRE(busy.send("GET /visits HTTP/1.1\r\nHost: x\r\n"));  // half a request
  std::this_thread::sleep_for(200ms);  // the server has read its first bytes: in flight
  srv.signal(SIGTERM);
  BOOST_TEST(idle.wait_closed());  // idle connections are closed at once
  BOOST_TEST(!srv.wait(300ms).has_value());  // the request in flight holds the exit
  BOOST_TEST_REQUIRE(busy.send("\r\n"));
  const std::string answer = busy.read_until_close();
  BOOST_TEST(answer.starts_with("HTTP/1.1 200"), answer);
  BOOST_TEST(answer.find("Connection: close") != std::string::npos, answer);
  BOOST_TEST(answer.find("{\"views\":1}") != std::string::npos, answer);
  BOOST_TEST(srv.wait(5s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(a_stuck_request_holds_shutdown_only_for_the_grace) {
  server_options o;
  o.args = {"--shutdown-grace", "300ms"};
  server_process srv(o);
  raw_connection stuck(srv.port());
  BOOST_TEST_REQUIRE(stuck.send("POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  std::this_thread::sleep_for(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(srv.stop() == 0);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(elapsed >= 250ms);
  BOOST_TEST(elapsed < 3s);
  BOOST_TEST(srv.stderr_text().find("still busy") != std::string::npos, srv.stderr_text());
}

BOOST_AUTO_TEST_CASE(audit_log_is_json_lines_without_cookie_ids) {
  server_process srv;
  client c(srv.port());
  std::vector<std::string> secrets;  // every session id and CSRF token the server handed out
  const auto remember = [&](const reply& r) {
    for (const std::string& sc : r.set_cookies())
      if (const std::string v = cookie_value(sc); !v.empty()) secrets.push_back(v);
    if (r.status() == 200 && r.json().as_object().contains("csrf"))
      secrets.emplace_back(r.json().at("csrf").as_string());
    return r;
  };
  const auto login = [&](const std::string& cookie, const std::string& user) {
    request req = client::make(bhttp::verb::post, "/login", cookie);
    req.set(bhttp::field::content_type, "application/json");
    req.body() = user_json(user);
    return remember(c.send(std::move(req)));
  };

  const std::string anon = session_cookie(remember(c.get("/visits")));
  const reply ada1 = login(anon, "ada");  // rotates a stored session
  const std::string ada1_cookie = session_cookie(ada1);
  const std::string ada1_token(ada1.json().at("csrf").as_string());
  const std::string ada1_key =
      websession::session_id::parse(cookie_value(only_set_cookie(ada1)))->storage_key("websession:");
  const reply ada2 = login({}, "ada");
  const std::string ada2_cookie = session_cookie(ada2);
  remember(c.get("/csrf", ada2_cookie));
  BOOST_TEST(remember(c.post("/logout-everywhere", ada1_cookie, {}, ada1_token)).status() == 200u);
  const reply bob = login({}, "bob \"the\" \\ builder");  // JSON-escaped in the log
  BOOST_TEST(remember(c.post("/logout", session_cookie(bob), {}, std::string(bob.json().at("csrf").as_string()))).status() == 200u);
  BOOST_TEST(srv.stop() == 0);

  const std::vector<std::string> lines = srv.audit_lines();
  BOOST_TEST_REQUIRE(!lines.empty());
  const std::regex ts(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  const std::set<std::string> known = {"login", "logout", "logout_everywhere", "rotate",
                                       "tamper", "expired", "destroyed"};
  std::map<std::string, int> events;
  bool saw_ada1_login = false;
  for (const std::string& line : lines) {
    BOOST_TEST_CONTEXT(line) {
      boost::system::error_code ec;
      const boost::json::value v = boost::json::parse(line, ec);
      BOOST_TEST_REQUIRE(!ec);
      BOOST_TEST_REQUIRE(v.is_object());
      const boost::json::object& o = v.as_object();
      BOOST_TEST(std::regex_match(std::string(o.at("ts").as_string()), ts));
      const std::string event(o.at("event").as_string());
      BOOST_TEST(known.count(event) == 1u);
      ++events[event];
      const std::string key(o.at("key").as_string());
      BOOST_TEST(key.starts_with("websession:"));
      BOOST_TEST(key.size() == std::string("websession:{tag}").size() + 43);
      if (event == "login" || event == "logout" || event == "logout_everywhere")
        BOOST_TEST(o.contains("user"));
      if (event == "login" && key == ada1_key) saw_ada1_login = o.at("user").as_string() == "ada";
      for (const std::string& secret : secrets) BOOST_TEST(line.find(secret) == std::string::npos);
    }
  }
  BOOST_TEST(events["login"] == 3);
  BOOST_TEST(events["rotate"] == 1);  // only the login on a stored session moved a key
  BOOST_TEST(events["logout_everywhere"] == 1);
  BOOST_TEST(events["logout"] == 1);
  BOOST_TEST(events["destroyed"] == 3);  // two of ada's, one of bob's
  BOOST_TEST(saw_ada1_login);
  BOOST_TEST(secrets.size() >= 8u);
}

BOOST_AUTO_TEST_CASE(curl_session_flow) {
  server_options o;
  o.args = {"--insecure-cookies"};  // curl, like browsers, keeps Secure cookies off plain http
  server_process srv(o);
  const std::string jar = (srv.dir() / "cookies.txt").string();
  const std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  // Returns {status, body}; curl itself must succeed.
  const auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-c", jar, "-b", jar,
                                     "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    const captured out = run_capture(argv);
    BOOST_TEST_REQUIRE(out.status == 0, out.output);
    const std::size_t nl = out.output.rfind('\n');
    BOOST_TEST_REQUIRE(nl != std::string::npos);
    return std::make_pair(std::stoi(out.output.substr(nl + 1)), out.output.substr(0, nl));
  };
  const auto json = [](const std::string& body) { return boost::json::parse(body); };

  auto [s1, b1] = curl({base + "/visits"});
  BOOST_TEST(s1 == 200);
  BOOST_TEST(json(b1).at("views").as_int64() == 1);
  auto [s2, b2] = curl({base + "/visits"});
  BOOST_TEST(json(b2).at("views").as_int64() == 2);
  auto [s3, b3] = curl({"-H", "Content-Type: application/json", "-d", "{\"user\":\"ada\"}",
                        base + "/login"});
  BOOST_TEST_REQUIRE(s3 == 200, b3);
  const std::string token(json(b3).at("csrf").as_string());
  auto [s4, b4] = curl({base + "/me"});
  BOOST_TEST(s4 == 200);
  BOOST_TEST(json(b4).at("user").as_string() == "ada");
  auto [s5, b5] = curl({"-X", "POST", base + "/logout"});
  BOOST_TEST(s5 == 403);  // no token
  auto [s6, b6] = curl({"-X", "POST", "-H", "X-CSRF-Token: " + token, base + "/logout"});
  BOOST_TEST(s6 == 200, b6);
  auto [s7, b7] = curl({base + "/me"});
  BOOST_TEST(s7 == 401);
  BOOST_TEST(read_file(jar).find("\tsession\t") == std::string::npos);  // the jar dropped it

  // Expect: 100-continue is answered at once (curl would otherwise wait 5 s, then send anyway).
  const auto t0 = std::chrono::steady_clock::now();
  auto [s8, b8] = curl({"--expect100-timeout", "5", "-H", "Expect: 100-continue", "-H",
                        "Content-Type: application/json", "-d", "{\"user\":\"bob\"}", base + "/login"});
  const auto waited = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(s8 == 200, b8);
  BOOST_TEST(waited < 3s);
  BOOST_TEST(srv.stop() == 0);
}

BOOST_AUTO_TEST_CASE(configuration_from_the_environment) {
  server_options o;
  // The command line (--port 0, from the fixture) wins over WEBSESSION_PORT.
  o.env = {"WEBSESSION_PORT=1", "WEBSESSION_THREADS=2", "WEBSESSION_INSECURE_COOKIES=1",
           "WEBSESSION_ABSOLUTE_TIMEOUT=1h"};
  server_process srv(o);
  client c(srv.port());
  const std::string sc = only_set_cookie(c.get("/visits"));
  BOOST_TEST(sc.starts_with("session="));
  BOOST_TEST(std::stol(cookie_attribute(sc, "Max-Age")) <= 3600);
  BOOST_TEST(srv.stop() == 0);
  BOOST_TEST(srv.stderr_text().find("threads=2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(dev_secret_works_and_warns) {
  server_options o;
  o.with_secret = false;
  o.args = {"--dev-secret"};
  server_process srv(o);
  client c(srv.port());
  BOOST_TEST(c.get("/visits").status() == 200u);
  BOOST_TEST(srv.stop() == 0);
  BOOST_TEST(srv.stderr_text().find("WARNING") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_configuration_exits_2_with_a_message) {
  const std::string secret = "WEBSESSION_SECRET=" + test_secret;
  const std::vector<bad_start> cases = {
      {"no secret", {}, {}, "WEBSESSION_SECRET"},
      {"short secret", {}, {"WEBSESSION_SECRET=short"}, "32"},
#ifdef WEBSESSION_E2E_REDIS
      {"bad redis url", {"--store", "redis", "--redis-url", "http://127.0.0.1"}, {secret}, "redis-url"},
      {"bad redis url from env", {}, {secret, "WEBSESSION_STORE=redis", "WEBSESSION_REDIS_URL=redis://:x"}, "WEBSESSION_REDIS_URL"},
#else
      {"redis", {"--store", "redis"}, {secret}, "redis store not available in this build"},
#endif
      {"unknown store", {"--store", "mongo"}, {secret}, "mongo"},
      {"unknown fallback", {"--redis-fallback", "disk"}, {secret}, "--redis-fallback"},
      {"unknown fallback from env", {}, {secret, "WEBSESSION_REDIS_FALLBACK=yes"}, "WEBSESSION_REDIS_FALLBACK"},
      {"zero threads", {"--threads", "0"}, {secret}, "--threads"},
      {"port range", {"--port=70000"}, {secret}, "--port"},
      {"bad env port", {}, {secret, "WEBSESSION_PORT=http"}, "WEBSESSION_PORT"},
      {"unknown flag", {"--bogus"}, {secret}, "--bogus"},
      {"missing value", {"--address"}, {secret}, "--address"},
      {"bad address", {"--address", "localhost:80"}, {secret}, "localhost:80"},
      {"bad session option", {}, {secret, "WEBSESSION_COOKIE_SAMESITE=sideways"}, "WEBSESSION_COOKIE_SAMESITE"},
      {"insecure __Host-", {}, {secret, "WEBSESSION_COOKIE_SECURE=false"}, "__Host-"},
      {"audit log dir", {"--audit-log", "/nonexistent/dir/audit.log"}, {secret}, "audit log"},
      {"bad grace", {"--shutdown-grace", "5 minutes"}, {secret}, "--shutdown-grace"},
  };
  expect_refused_at_start(cases);

  const captured help = run_capture({server_binary(), "--help"});
  BOOST_TEST(help.status == 0);
  BOOST_TEST(help.output.find("usage: server") != std::string::npos);

  // A port in use is a runtime failure (1), not a configuration error.
  server_process taken;
  const captured busy = run_capture(
      {server_binary(), "--port", std::to_string(taken.port())}, {secret}, 10s);
  BOOST_TEST(busy.status == 1, busy.output);
  BOOST_TEST(taken.stop() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
