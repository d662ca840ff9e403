// SPDX-License-Identifier: BSL-1.0
// End-to-end: the example server's hardening from the security reviews. A connection limit
// (--max-connections: one more connection gets a 503 and is closed, the server keeps
// accepting) and a share of it per client address (--max-connections-per-client), /healthz
// pinging the store at most once a second however many ask, /healthz details only for loopback clients unless --healthz-details says
// otherwise, the Redis password from WEBSESSION_REDIS_PASSWORD or --redis-password-file against
// a redis-server with requirepass, session options that do not validate (exit 2 before
// listening), and the quickstart refusing to run without a secret.
#include "http_client.hpp"
#include "server_process.hpp"

#include "server/config.hpp"  // example/server: the /healthz decision, tested directly

#ifdef WEBSESSION_E2E_REDIS
#include "../redis/server_fixture.hpp"
#endif

#include <boost/asio/ip/address.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

std::string quickstart_binary() {
  if (const char* p = std::getenv("WEBSESSION_E2E_QUICKSTART"); p && *p) return p;
#ifdef WEBSESSION_E2E_QUICKSTART
  return WEBSESSION_E2E_QUICKSTART;
#else
  throw std::runtime_error("set WEBSESSION_E2E_QUICKSTART to the quickstart binary");
#endif
}

// An IPv4 address of this host that is not a loopback one (to be a client the server does not
// see as local); nullopt if the host has none.
std::optional<std::string> non_loopback_ipv4() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* a = list; a && !found; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (!::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text)) continue;
    if (!boost::asio::ip::make_address_v4(text).is_loopback()) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

// GET url with curl (no proxy): {status, body}.
std::pair<int, std::string> curl_get(const std::string& url) {
  const captured out = run_capture(
      {"curl", "-sS", "--noproxy", "*", "--max-time", "10", "-w", "\n%{http_code}", url});
  BOOST_TEST_REQUIRE(out.status == 0, out.output);
  const std::size_t nl = out.output.rfind('\n');
  BOOST_TEST_REQUIRE(nl != std::string::npos);
  return {std::stoi(out.output.substr(nl + 1)), out.output.substr(0, nl)};
}

// A /healthz body with the details (store, stats) or only the status.
bool has_details(const boost::json::value& v) {
  return v.as_object().contains("store") && v.as_object().contains("stats");
}

void write_file(const std::filesystem::path& p, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ::chmod(p.c_str(), mode);
}

// Closes `held` (a request with Connection: close), then whether a new connection from the same
// address is served within 3 s (the server gives the place back as the connection closes).
bool close_frees_a_place(client& held, unsigned short port) {
  request close = client::make(bhttp::verb::get, "/healthz");
  close.keep_alive(false);
  if (held.send(std::move(close)).msg.keep_alive()) return false;
  for (const auto deadline = std::chrono::steady_clock::now() + 3s;
       std::chrono::steady_clock::now() < deadline;) {
    try {
      client fresh(port, 2s);
      if (fresh.get("/visits").status() == 200u) return true;
    } catch (const std::runtime_error&) {  // refused while the server still counted it
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hardening)

// ---------------------------------------------------------------------------------------------
// Connection limit

BOOST_AUTO_TEST_CASE(connection_limit_refuses_the_next_and_recovers) {
  server_options o;
  o.args = {"--max-connections", "2"};
  server_process srv(o);
  client first(srv.port());
  client second(srv.port());
  BOOST_TEST_REQUIRE(first.get("/visits").status() == 200u);  // both held open (keep-alive)
  BOOST_TEST_REQUIRE(second.get("/visits").status() == 200u);

  // The third is answered 503 and closed at once, without sending a byte itself.
  const auto t0 = std::chrono::steady_clock::now();
  const std::string refused = raw_connection(srv.port(), 5s).read_until_close();
  BOOST_TEST(refused.starts_with("HTTP/1.1 503"), refused);
  BOOST_TEST(refused.find("Connection: close") != std::string::npos, refused);
  BOOST_TEST(refused.find("{\"error\":\"too many connections\"}\n") != std::string::npos, refused);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(elapsed < 3s);
  // A burst of them: each refused, none served, and the accept loop lives on.
  for (int i = 0; i < 50; ++i) {
    raw_connection c(srv.port(), 5s);
    c.send("GET /visits HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string answer = c.read_until_close();  // 503, or a reset if the request was unread
    BOOST_TEST((answer.empty() || answer.starts_with("HTTP/1.1 503")), answer);
  }
  // The two held connections still work.
  BOOST_TEST(first.get("/visits").status() == 200u);
  BOOST_TEST(second.get("/visits").status() == 200u);
  BOOST_TEST(first.connects() == 1u);
  BOOST_TEST(second.connects() == 1u);

  // Closing one frees its place (the server deregisters it as it closes: retry briefly).
  BOOST_TEST(close_frees_a_place(first, srv.port()));
  BOOST_TEST(second.get("/visits").status() == 200u);
  BOOST_TEST(srv.stop() == 0);
  const std::string err = srv.stderr_text();
  BOOST_TEST(err.find("refused") != std::string::npos, err);
  BOOST_TEST(err.find("max_connections=2") != std::string::npos, err);
}

// ---------------------------------------------------------------------------------------------
// /healthz details

BOOST_AUTO_TEST_CASE(healthz_details_decision) {
  using example::healthz_details;
  using example::shows_healthz_details;
  namespace ip = boost::asio::ip;
  const auto at = [](const char* a) { return ip::make_address(a); };
  for (const char* local : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    BOOST_TEST_CONTEXT(local) {
      BOOST_TEST(shows_healthz_details(healthz_details::loopback, at(local)));
      BOOST_TEST(shows_healthz_details(healthz_details::always, at(local)));
      BOOST_TEST(!shows_healthz_details(healthz_details::never, at(local)));
    }
  }
  for (const char* remote : {"192.0.2.2", "10.0.0.1", "0.0.0.0", "::ffff:192.0.2.2",
                             "2001:db8::1", "::", "fe80::1", "128.0.0.1"}) {
    BOOST_TEST_CONTEXT(remote) {
      BOOST_TEST(!shows_healthz_details(healthz_details::loopback, at(remote)));
      BOOST_TEST(shows_healthz_details(healthz_details::always, at(remote)));
      BOOST_TEST(!shows_healthz_details(healthz_details::never, at(remote)));
    }
  }
  // An address the socket could not tell (default-constructed) is not local.
  BOOST_TEST(!shows_healthz_details(healthz_details::loopback, ip::address()));
}

BOOST_AUTO_TEST_CASE(healthz_never_gives_only_the_status) {
  for (const bool from_env : {false, true}) {
    BOOST_TEST_CONTEXT("from_env " << from_env) {
      server_options o;
      if (from_env) o.env = {"WEBSESSION_HEALTHZ_DETAILS=never"};
      else o.args = {"--healthz-details", "never"};
      server_process srv(o);
      client c(srv.port());
      const reply r = c.get("/healthz");
      BOOST_TEST(r.status() == 200u);
      BOOST_TEST(r.msg.body() == "{\"status\":\"ok\"}\n");
      BOOST_TEST(r.header("Content-Type") == "application/json");
      BOOST_TEST(r.set_cookies().empty());
      BOOST_TEST(srv.stop() == 0);
      BOOST_TEST(srv.stderr_text().find("healthz_details=never") != std::string::npos);
    }
  }
  // The default, from 127.0.0.1: the details.
  server_process srv;
  client c(srv.port());
  BOOST_TEST(has_details(c.get("/healthz").json()));
  BOOST_TEST(srv.stop() == 0);
}

// A client from this host's own non-loopback address is not local: only the status, unless
// --healthz-details always.
BOOST_AUTO_TEST_CASE(healthz_from_a_non_loopback_address) {
  const std::optional<std::string> ip = non_loopback_ipv4();
  if (!ip) {
    BOOST_TEST_MESSAGE("no non-loopback IPv4 address on this host: skipped");
    return;
  }
  BOOST_TEST_MESSAGE("non-loopback client address " << *ip);
  for (const char* mode : {"loopback", "always"}) {
    BOOST_TEST_CONTEXT(mode) {
      server_options o;
      o.args = {"--address", *ip, "--healthz-details", mode};
      server_process srv(o);
      auto [status, body] = curl_get("http://" + *ip + ":" + std::to_string(srv.port()) + "/healthz");
      BOOST_TEST(status == 200);
      const boost::json::value v = boost::json::parse(body);
      BOOST_TEST(v.at("status").as_string() == "ok");
      BOOST_TEST(has_details(v) == (std::string(mode) == "always"), body);
      BOOST_TEST(srv.stop() == 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration errors: exit 2 with a message, before listening

BOOST_AUTO_TEST_CASE(invalid_options_exit_2_before_listening) {
  const std::string secret = "WEBSESSION_SECRET=" + test_secret;
  std::vector<bad_start> cases = {
      {"idle timeout 0", {}, {secret, "WEBSESSION_IDLE_TIMEOUT=0"}, "idle_timeout must be positive"},
      {"SameSite=None without Secure", {},
       {secret, "WEBSESSION_COOKIE_NAME=session", "WEBSESSION_COOKIE_SECURE=false",
        "WEBSESSION_COOKIE_SAMESITE=none"}, "SameSite=None"},
      {"lower-case __host- cookie without Secure", {},
       {secret, "WEBSESSION_COOKIE_NAME=__host-sid", "WEBSESSION_COOKIE_SECURE=false"}, "__Host-"},
      {"cookie name with a space", {}, {secret, "WEBSESSION_COOKIE_NAME=my session"}, "cookie.name"},
      {"cookie path with ;", {}, {secret, "WEBSESSION_COOKIE_PATH=/a;b", "WEBSESSION_COOKIE_NAME=sid"},
       "cookie.path"},
      {"SameSite=None with --insecure-cookies", {"--insecure-cookies"},
       {secret, "WEBSESSION_COOKIE_SAMESITE=none"}, "SameSite=None"},
      {"max connections 0", {"--max-connections", "0"}, {secret}, "--max-connections"},
      {"max connections not a number", {"--max-connections=many"}, {secret}, "--max-connections"},
      {"max connections negative from env", {}, {secret, "WEBSESSION_MAX_CONNECTIONS=-1"},
       "WEBSESSION_MAX_CONNECTIONS"},
      {"max connections too many", {"--max-connections", "1000001"}, {secret}, "--max-connections"},
      {"healthz mode", {"--healthz-details", "sometimes"}, {secret}, "--healthz-details"},
      {"healthz mode from env", {}, {secret, "WEBSESSION_HEALTHZ_DETAILS=yes"},
       "WEBSESSION_HEALTHZ_DETAILS"},
      {"healthz mode missing", {"--healthz-details"}, {secret}, "--healthz-details"},
  };
#ifdef WEBSESSION_E2E_REDIS
  cases.push_back({"idle timeout 0, redis store", {"--store", "redis"},
                   {secret, "WEBSESSION_IDLE_TIMEOUT=0"}, "idle_timeout must be positive"});
#endif
  expect_refused_at_start(cases);
}

// ---------------------------------------------------------------------------------------------
// Quickstart: no built-in secret

BOOST_AUTO_TEST_CASE(quickstart_needs_a_secret_or_dev_secret) {
  const captured none = run_capture({quickstart_binary()});
  BOOST_TEST(none.status == 2, none.output);
  BOOST_TEST(none.output.find("WEBSESSION_SECRET is not set") != std::string::npos, none.output);
  BOOST_TEST(none.output.find("created") == std::string::npos, none.output);

  const captured empty = run_capture({quickstart_binary()}, {"WEBSESSION_SECRET="});
  BOOST_TEST(empty.status == 2, empty.output);

  const captured short_secret = run_capture({quickstart_binary()}, {"WEBSESSION_SECRET=short"});
  BOOST_TEST(short_secret.status == 2, short_secret.output);
  BOOST_TEST(short_secret.output.find("32") != std::string::npos, short_secret.output);

  const captured bad_option =
      run_capture({quickstart_binary()}, {"WEBSESSION_SECRET=" + test_secret, "WEBSESSION_IDLE_TIMEOUT=0"});
  BOOST_TEST(bad_option.status == 2, bad_option.output);
  BOOST_TEST(bad_option.output.find("idle_timeout must be positive") != std::string::npos, bad_option.output);

  const captured bad_arg = run_capture({quickstart_binary(), "--secret=x"});
  BOOST_TEST(bad_arg.status == 2, bad_arg.output);

  const captured dev = run_capture({quickstart_binary(), "--dev-secret"});
  BOOST_TEST(dev.status == 0, dev.output);
  BOOST_TEST(dev.output.find("WARNING: --dev-secret") != std::string::npos, dev.output);
  BOOST_TEST(dev.output.find("logout   1 session(s) of ada destroyed") != std::string::npos, dev.output);

  const captured with_secret = run_capture({quickstart_binary()}, {"WEBSESSION_SECRET=" + test_secret});
  BOOST_TEST(with_secret.status == 0, with_secret.output);
  BOOST_TEST(with_secret.output.find("WARNING") == std::string::npos, with_secret.output);
  BOOST_TEST(with_secret.output.find("stats    created=") != std::string::npos, with_secret.output);
}

// ---------------------------------------------------------------------------------------------
// The Redis password, against a redis-server with requirepass

#ifdef WEBSESSION_E2E_REDIS
namespace {

const std::string redis_password = "e2e-redis-pass-0123456789";

// Keys in the Redis on `port` (the server's sessions reached Redis, not the memory fallback).
long long redis_keys(std::uint16_t port) {
  const captured out = run_capture({"redis-cli", "-p", std::to_string(port), "DBSIZE"},
                                   {"REDISCLI_AUTH=" + redis_password});
  BOOST_TEST_REQUIRE(out.status == 0, out.output);
  return std::stoll(out.output);
}

struct redis_outcome {
  bool stored = false;     // a session reached Redis
  bool healthy = false;    // /healthz 200 and not degraded
  std::string stderr_text;
};

// Starts the server on `redis` with `args`/`env`, makes a session, and reports.
redis_outcome run_against(const redis_test::redis_server& redis, std::vector<std::string> args,
                          std::vector<std::string> env) {
  server_options o;
  o.args = {"--store", "redis"};
  o.args.insert(o.args.end(), args.begin(), args.end());
  o.env = std::move(env);
  server_process srv(o);
  client c(srv.port());
  const long long before = redis_keys(redis.port());
  BOOST_TEST(c.get("/visits").status() == 200u);  // from memory if Redis refused us
  redis_outcome out;
  out.stored = redis_keys(redis.port()) > before;
  const reply h = c.get("/healthz");
  out.healthy = h.status() == 200u && !h.json().at("degraded").as_bool();
  BOOST_TEST(srv.stop() == 0);
  out.stderr_text = srv.stderr_text();
  return out;
}

bool contains(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(redis_password_from_env_or_file, *redis_test::needs_redis_server()) {
  redis_test::redis_server::options ro;
  ro.args = {"--requirepass", redis_password};
  redis_test::redis_server redis(ro);
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
  temp_dir dir;

  BOOST_TEST_CONTEXT("no password: Redis refuses, sessions fall back to memory") {
    const redis_outcome r = run_against(redis, {"--redis-url", url}, {});
    BOOST_TEST(!r.stored);
    BOOST_TEST(!r.healthy);
  }
  BOOST_TEST_CONTEXT("WEBSESSION_REDIS_PASSWORD") {
    const redis_outcome r =
        run_against(redis, {"--redis-url", url}, {"WEBSESSION_REDIS_PASSWORD=" + redis_password});
    BOOST_TEST(r.stored);
    BOOST_TEST(r.healthy);
    BOOST_TEST(!contains(r.stderr_text, "WARNING"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("--redis-password-file, mode 0600, trailing newline") {
    const auto file = dir.path() / "pw";
    write_file(file, redis_password + "\n");
    const redis_outcome r = run_against(redis, {"--redis-url", url, "--redis-password-file", file.string()}, {});
    BOOST_TEST(r.stored);
    BOOST_TEST(r.healthy);
    BOOST_TEST(!contains(r.stderr_text, "WARNING"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("WEBSESSION_REDIS_PASSWORD_FILE, mode 0644, CRLF: works, warns") {
    const auto file = dir.path() / "pw-open";
    write_file(file, redis_password + "\r\n", 0644);
    const redis_outcome r = run_against(redis, {"--redis-url", url},
                                        {"WEBSESSION_REDIS_PASSWORD_FILE=" + file.string()});
    BOOST_TEST(r.stored);
    BOOST_TEST(r.healthy);
    BOOST_TEST(contains(r.stderr_text, "may be read by its group or others"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("password inside --redis-url: works, warns") {
    const redis_outcome r = run_against(
        redis, {"--redis-url", "redis://:" + redis_password + "@127.0.0.1:" + std::to_string(redis.port())}, {});
    BOOST_TEST(r.stored);
    BOOST_TEST(contains(r.stderr_text, "WARNING: --redis-url holds a password"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("password inside WEBSESSION_REDIS_URL: works, no process-list warning") {
    const redis_outcome r = run_against(
        redis, {}, {"WEBSESSION_REDIS_URL=redis://:" + redis_password + "@127.0.0.1:" + std::to_string(redis.port())});
    BOOST_TEST(r.stored);
    BOOST_TEST(!contains(r.stderr_text, "WARNING"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("a wrong password in the URL is replaced by the environment's") {
    const redis_outcome r = run_against(
        redis, {"--redis-url", "redis://:wrong@127.0.0.1:" + std::to_string(redis.port())},
        {"WEBSESSION_REDIS_PASSWORD=" + redis_password});
    BOOST_TEST(r.stored);
    BOOST_TEST(contains(r.stderr_text, "replaced"), r.stderr_text);
  }
  BOOST_TEST_CONTEXT("the URL's user name is kept: AUTH default <password>") {
    const redis_outcome r = run_against(
        redis, {"--redis-url", "redis://default@127.0.0.1:" + std::to_string(redis.port())},
        {"WEBSESSION_REDIS_PASSWORD=" + redis_password});
    BOOST_TEST(r.stored);
    BOOST_TEST(r.healthy);
  }
  BOOST_TEST_CONTEXT("a wrong password in the file: starts, Redis refuses, memory fallback") {
    const auto file = dir.path() / "pw-wrong";
    write_file(file, "not-the-password\n");
    const redis_outcome r = run_against(redis, {"--redis-url", url, "--redis-password-file", file.string()}, {});
    BOOST_TEST(!r.stored);
    BOOST_TEST(!r.healthy);
  }
}

BOOST_AUTO_TEST_CASE(bad_redis_password_sources_exit_2) {
  const std::string secret = "WEBSESSION_SECRET=" + test_secret;
  temp_dir dir;
  const auto empty = dir.path() / "empty";
  write_file(empty, "");
  const auto newline_only = dir.path() / "newline";
  write_file(newline_only, "\n");
  const auto two_lines = dir.path() / "two-lines";
  write_file(two_lines, "first\nsecond\n");
  const auto nul = dir.path() / "nul";
  write_file(nul, std::string("pass\0word", 9));
  const auto huge = dir.path() / "huge";
  write_file(huge, std::string(5000, 'p'));
  const auto good = dir.path() / "good";
  write_file(good, redis_password);
  const std::vector<bad_start> cases = {
      {"missing file", {"--redis-password-file", (dir.path() / "nope").string()}, {}, "No such file"},
      {"directory", {"--redis-password-file", dir.path().string()}, {}, "not a file"},
      {"empty file", {"--redis-password-file", empty.string()}, {}, "empty"},
      {"only a newline", {"--redis-password-file", newline_only.string()}, {}, "empty"},
      {"two lines", {"--redis-password-file", two_lines.string()}, {}, "more than one line"},
      {"NUL byte", {"--redis-password-file", nul.string()}, {}, "NUL"},
      {"over 4 KB", {"--redis-password-file", huge.string()}, {}, "4096"},
      {"file from env missing", {}, {"WEBSESSION_REDIS_PASSWORD_FILE=/nonexistent/pw"}, "No such file"},
      {"env and file both", {"--redis-password-file", good.string()},
       {"WEBSESSION_REDIS_PASSWORD=x"}, "keep one"},
      {"flag without value", {"--redis-password-file"}, {}, "--redis-password-file needs a value"},
  };
  // Port 1 on loopback: nothing is ever connected to, the configuration fails first.
  expect_refused_at_start(cases, {"--store", "redis", "--redis-url", "redis://127.0.0.1:1"},
                          {secret}, redis_password);
}
#endif

// ---------------------------------------------------------------------------------------------
// Connections per client address, and /healthz's store ping (the second security review)

namespace {

// Opens a keep-alive connection from `source` (127.0.0.1 by default; any 127.x.y.z is this
// host's loopback too, a different client address for the server) and makes one request on it.
std::unique_ptr<client> served_client(unsigned short port, const std::string& source = {}) {
  auto c = std::make_unique<client>(port, 5s);
  if (!source.empty()) c->bind_source(source);
  BOOST_TEST_REQUIRE(c->get("/visits").status() == 200u);
  return c;
}

bool refused_at_once(unsigned short port, const std::string& source = {}) {
  const std::string answer = raw_connection(port, 5s, source).read_until_close();
  return answer.starts_with("HTTP/1.1 503") &&
         answer.find("{\"error\":\"too many connections\"}") != std::string::npos;
}

std::uint64_t healthz_pings(client& c) {
  return c.get("/healthz").json().at("store").at("pings").to_number<std::uint64_t>();
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_client_address_gets_only_its_share_of_the_connections) {
  server_options o;
  o.args = {"--max-connections", "64", "--max-connections-per-client", "3"};
  server_process srv(o);
  std::vector<std::unique_ptr<client>> mine;
  for (int i = 0; i < 3; ++i) mine.push_back(served_client(srv.port()));
  // A fourth from the same address is refused at once, though 61 places are free.
  BOOST_TEST(refused_at_once(srv.port()));
  // Another address has a share of its own.
  std::vector<std::unique_ptr<client>> theirs;
  for (int i = 0; i < 3; ++i) theirs.push_back(served_client(srv.port(), "127.0.0.2"));
  // The held connections still work.
  for (auto& c : mine) BOOST_TEST(c->get("/visits").status() == 200u);
  BOOST_TEST(mine[0]->connects() == 1u);

  // Closing one frees its place for that address (the server counts it out as it closes).
  BOOST_TEST(close_frees_a_place(*mine[0], srv.port()));
  BOOST_TEST(srv.stop() == 0);
  const std::string err = srv.stderr_text();
  BOOST_TEST(err.find("max_connections_per_client=3") != std::string::npos, err);
  BOOST_TEST(err.find("1 from a client over its share") != std::string::npos, err);
}

// Without --max-connections-per-client, a non-loopback address gets an eighth of
// --max-connections; loopback addresses (a reverse proxy or a load test on this host) are not
// limited by the default.
BOOST_AUTO_TEST_CASE(the_default_share_is_an_eighth_of_the_connections) {
  server_options o;
  o.args = {"--max-connections", "200"};
  server_process srv(o);
  std::vector<std::unique_ptr<client>> held;
  for (int i = 0; i < 30; ++i) held.push_back(served_client(srv.port()));
  if (const std::optional<std::string> ip = non_loopback_ipv4()) {
    for (int i = 0; i < 25; ++i) held.push_back(served_client(srv.port(), *ip));
    BOOST_TEST(refused_at_once(srv.port(), *ip));
    BOOST_TEST(served_client(srv.port())->get("/visits").status() == 200u);
  } else {
    BOOST_TEST_MESSAGE("no non-loopback IPv4 address here: the default share is not tried");
  }
  BOOST_TEST(srv.stop() == 0);
  BOOST_TEST(srv.stderr_text().find("max_connections_per_client=25 (loopback: no limit)") !=
             std::string::npos);
}

// A flood of /healthz on two threads pings the store about once a second, not once a request.
BOOST_AUTO_TEST_CASE(healthz_pings_the_store_at_most_once_a_second) {
  server_options o;
  o.args = {"--threads", "2"};
  server_process srv(o);
  client watcher(srv.port());
  const std::uint64_t first = healthz_pings(watcher);
  BOOST_TEST(first == 1u);

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> answered{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t) {
    flood.emplace_back([&] {
      client c(srv.port());
      for (int i = 0; i < 50; ++i) {
        const reply r = c.get("/healthz");
        if (r.status() == 200u && r.json().at("store").at("ok").as_bool()) ++answered;
      }
    });
  }
  for (auto& t : flood) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::uint64_t during = healthz_pings(watcher) - first;
  BOOST_TEST(answered.load() == 200);
  BOOST_TEST_MESSAGE("200 /healthz in " << seconds << " s: " << during << " store pings");
  BOOST_TEST(during <= static_cast<std::uint64_t>(seconds) + 2u);
  BOOST_TEST(during < 50u);

  // A cached answer says how old it is; after a quiet second the next request pings again.
  std::this_thread::sleep_for(1200ms);
  const boost::json::value fresh = watcher.get("/healthz").json();
  const std::uint64_t pings = fresh.at("store").at("pings").to_number<std::uint64_t>();
  BOOST_TEST(pings == first + during + 1u);
  BOOST_TEST(fresh.at("store").at("checked_ms_ago").to_number<std::int64_t>() < 1000);
  BOOST_TEST(srv.stop() == 0);
}

#ifdef WEBSESSION_E2E_REDIS
// The same flood against Redis, counted by Redis itself (INFO commandstats): before the cache,
// every /healthz was a PING (one per master on a Cluster).
BOOST_AUTO_TEST_CASE(healthz_flood_sends_redis_few_pings, *redis_test::needs_redis_server()) {
  redis_test::redis_server redis;
  const std::string port = std::to_string(redis.port());
  server_options o;
  o.args = {"--threads", "2", "--store", "redis", "--redis-url", "redis://127.0.0.1:" + port};
  server_process srv(o);
  auto redis_pings = [&] {
    const captured out = run_capture({"redis-cli", "-p", port, "INFO", "commandstats"}, {}, 5s);
    const std::size_t at = out.output.find("cmdstat_ping:calls=");
    if (at == std::string::npos) return std::uint64_t{0};
    return static_cast<std::uint64_t>(std::stoull(out.output.substr(at + 19)));
  };
  client watcher(srv.port());
  BOOST_TEST_REQUIRE(watcher.get("/healthz").json().at("store").at("ok").as_bool());
  const std::uint64_t before = redis_pings();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t) {
    flood.emplace_back([&] {
      client c(srv.port());
      for (int i = 0; i < 50; ++i) BOOST_TEST(c.get("/healthz").status() == 200u);
    });
  }
  for (auto& t : flood) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::uint64_t sent = redis_pings() - before;
  BOOST_TEST_MESSAGE("200 /healthz in " << seconds << " s: " << sent << " PINGs reached Redis");
  // At most one per second from /healthz, and the clients' own idle health checks.
  BOOST_TEST(sent <= 2 * static_cast<std::uint64_t>(seconds) + 6u);
  BOOST_TEST(srv.stop() == 0);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
