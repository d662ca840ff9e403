// SPDX-License-Identifier: BSL-1.0
// End-to-end: several server processes on one Redis, and Redis killed (SIGKILL) under load and
// restarted on its append-only file.
// - two_processes_one_redis_lose_no_update: two example servers on one Redis, 16 sessions,
//   two concurrent clients per session alternating their requests between the processes: every
//   counter ends at exactly the number of acknowledged increments.
// - acknowledged_increments_survive_redis_kill: Redis with appendonly yes / appendfsync always,
//   200 concurrent updaters on Redis without the memory fallback, redis-server killed with
//   SIGKILL mid-traffic and restarted on the
//   same directory and port after a second: no request outlives its deadline, the server
//   survives (and exits 0 on SIGTERM), and no acknowledged increment is lost.
// - fallback_answers_visitors_refuses_logins_during_outage: the same outage with visitors and
//   logins beside the updaters: what the memory fallback answers during the outage, what it
//   refuses with 503, how fast, and that new sessions go to Redis again once it is back.
//
// Redis is started, killed and restarted on the test's main thread (its PR_SET_PDEATHSIG
// follows the forking thread); the worker threads only send HTTP requests, record what they
// saw, and never call Boost.Test (which is not thread-safe): the main thread checks afterwards.
#include "http_client.hpp"
#include "server_process.hpp"

#ifdef WEBSESSION_E2E_REDIS
#include "../redis/server_fixture.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

const std::string cookie_name = "__Host-session";
std::string cookie(const std::string& id) { return cookie_name + "=" + id; }

// The example server leaves redis::config::request_timeout at its default (2 s): every Redis
// request completes within that. A client gives up on an HTTP request after that plus a
// margin; an HTTP request that takes that long is counted as hung and fails the test.
constexpr std::chrono::milliseconds server_request_timeout = 2s;
constexpr std::chrono::milliseconds client_deadline = server_request_timeout + 2s;

// A client pauses this long after a failed request before its next one (the server says
// Retry-After: 1, which a test cannot afford to honour; not pausing at all would only spin).
constexpr std::chrono::milliseconds pause_after_failure = 10ms;

std::vector<std::string> redis_args(std::uint16_t port) {
  return {"--store", "redis", "--redis-url", "redis://127.0.0.1:" + std::to_string(port),
          "--threads", "2"};
}

// One HTTP request as a client saw it.
struct attempt {
  steady::time_point start, end;
  unsigned status = 0;  // 0: no response (timeout or connection error)
  bool timed_out = false;
  std::string error;
  std::optional<reply> res;

  // The session the response sets ("" when it sets none).
  std::string set_id() const {
    if (!res) return {};
    const std::vector<std::string> all = res->set_cookies();
    return all.empty() ? std::string() : cookie_value(all.front());
  }
  std::int64_t views() const {
    if (!res || status != 200) return -1;
    try {
      const boost::json::value v = res->json();
      return v.at("views").as_int64();
    } catch (...) {
      return -1;
    }
  }
};

attempt timed_send(client& c, request req) {
  attempt a;
  a.start = steady::now();
  try {
    a.res = c.send(std::move(req));
    a.status = a.res->status();
  } catch (const boost::system::system_error& e) {
    a.timed_out = e.code() == beast::error::timeout;
    a.error = e.what();
  }
  a.end = steady::now();
  return a;
}

attempt visit(client& c, const std::string& id) {
  return timed_send(c, client::make(bhttp::verb::get, "/visits", id.empty() ? "" : cookie(id)));
}

// A request's outcome and timing, kept for the figures.
struct sample {
  steady::time_point start, end;
  unsigned status;
};

// Problems a worker found, told by the main thread (the first few of each kind).
struct findings {
  std::uint64_t count = 0;
  std::vector<std::string> first;
  void add(std::string what) {
    ++count;
    if (first.size() < 5) first.push_back(std::move(what));
  }
};

// A client that increments the counter of its own session in Redis, one request at a time,
// and keeps score of what the server acknowledged.
struct updater {
  std::string id;
  std::int64_t acked = 0;         // 200 answers: increments the server acknowledged
  std::int64_t unknown = 0;       // failed attempts (5xx, timeout, connection error): their write may have happened
  std::int64_t last_views = 0;    // views in the last 200
  std::int64_t unknown_since = 0; // failed attempts since the last 200
  std::uint64_t refused = 0, other_status = 0, timeouts = 0, transport = 0;
  findings lost;                  // a 200 whose count skipped back or jumped too far
  findings replaced;              // a Set-Cookie on an existing session: it was lost and replaced
  std::vector<sample> samples;
  bool final_ok = false;

  // Creates the session; false if the server did not.
  bool create(client& c) {
    const attempt a = visit(c, {});
    samples.push_back({a.start, a.end, a.status});
    if (a.status != 200 || a.views() != 1 || a.set_id().empty()) return false;
    id = a.set_id();
    acked = last_views = 1;
    return true;
  }

  // One increment; true if acknowledged.
  bool step(client& c) {
    const attempt a = visit(c, id);
    samples.push_back({a.start, a.end, a.status});
    if (a.status == 200) {
      const std::int64_t v = a.views();
      // Sequential requests on one session: the count moves by one, plus at most one for each
      // failed attempt whose write happened anyway.
      if (v <= last_views || v > last_views + 1 + unknown_since)
        lost.add("views " + std::to_string(v) + " after " + std::to_string(last_views) + " with " +
                 std::to_string(unknown_since) + " unknown outcomes");
      if (!a.set_id().empty() && a.set_id() != id) replaced.add("new cookie at views " + std::to_string(v));
      ++acked;
      last_views = v;
      unknown_since = 0;
      return true;
    }
    ++unknown;
    ++unknown_since;
    if (a.status == 503) ++refused;
    else if (a.status != 0) ++other_status;
    else if (a.timed_out) ++timeouts;
    else ++transport;
    return false;
  }

  // The last increment, once Redis is back: retried (each retry an unknown outcome if it
  // fails) until acknowledged or `limit` passes.
  void finish(client& c, std::chrono::milliseconds limit) {
    const auto give_up = steady::now() + limit;
    while (!(final_ok = step(c)) && steady::now() < give_up) std::this_thread::sleep_for(pause_after_failure);
  }
};

// Latency percentiles of `v` (microseconds) as "p50 / p99 / max" in milliseconds.
std::string latency_text(std::vector<std::int64_t> v) {
  if (v.empty()) return "n/a";
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1000.0;
  };
  std::ostringstream s;
  s.precision(3);
  s << "p50 " << at(0.50) << " ms, p99 " << at(0.99) << " ms, max " << static_cast<double>(v.back()) / 1000.0 << " ms";
  return s.str();
}

// Polls `pred` every 10 ms until it holds or `limit` passes.
bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto give_up = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Worker threads that are always told to stop and joined, even when the test fails half-way.
class crew {
 public:
  crew() = default;
  crew(const crew&) = delete;
  crew& operator=(const crew&) = delete;
  ~crew() {
    stop = true;
    join();
  }

  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};

  void spawn(std::function<void()> f) { threads_.emplace_back(std::move(f)); }
  /// Waits for every thread (set `stop` first to make them end early).
  void join() {
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  std::vector<std::thread> threads_;
};

// One worker per updater on `workers`, talking to the server on `port`: it creates its session
// (counted in workers.ready), increments until workers.stop (adding each acknowledged one to
// `acknowledged`, pausing after a failure), then retries a last increment with finish().
void spawn_updaters(crew& workers, std::vector<updater>& ups, unsigned short port,
                    std::atomic<std::uint64_t>& acknowledged) {
  for (updater& u : ups) {
    workers.spawn([&workers, &u, &acknowledged, port] {
      client c(port, client_deadline);
      const bool created = u.create(c);
      ++workers.ready;
      if (!created) return;
      while (!workers.stop) {
        if (u.step(c)) ++acknowledged;
        else std::this_thread::sleep_for(pause_after_failure);
      }
      u.finish(c, 10s);
    });
  }
}

std::int64_t dbsize(std::uint16_t port) {
  const captured out = run_capture({"redis-cli", "-p", std::to_string(port), "DBSIZE"}, {}, 5s);
  if (out.status != 0) return -1;
  try {
    return std::stoll(out.output);
  } catch (...) {
    return -1;
  }
}

bool healthz_degraded(unsigned short port, bool& degraded) {
  try {
    client c(port, 2s);
    const reply r = c.get("/healthz");
    if (r.status() != 200) return false;
    degraded = r.json().at("degraded").as_bool();
    return true;
  } catch (...) {
    return false;
  }
}

// Redis that writes every acknowledged command to its append-only file before answering.
redis_test::redis_server::options durable_redis() {
  redis_test::redis_server::options o;
  o.no_persistence = false;
  o.args = {"--appendonly", "yes", "--appendfsync", "always", "--save", ""};
  return o;
}

long long ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Times the main thread publishes to the workers: 0 until set (steady_clock ticks).
struct published_time {
  std::atomic<steady::rep> ticks{0};
  void set(steady::time_point t) { ticks = t.time_since_epoch().count(); }
  std::optional<steady::time_point> get() const {
    const steady::rep v = ticks;
    if (v == 0) return std::nullopt;
    return steady::time_point(steady::duration(v));
  }
};

// The kinds of request in the fallback test.
enum class kind { returning, fresh, memory_session, other_session, login };
constexpr const char* kind_names[] = {"returning session", "new visitor", "session made during the outage",
                                      "visitor session", "login"};

struct tagged_sample {
  kind k;
  steady::time_point start, end;
  unsigned status;
};

// A visitor without login: comes without a cookie, keeps the one it gets for up to 5 visits,
// and starts afresh after the fifth or after a failure. A session whose creation started after
// Redis was killed and ended before its restart began lives in the fallback's memory for sure.
struct visitor {
  std::string id;
  std::int64_t last = 0;
  bool in_memory = false;
  findings fresh_refused;     // a request without a cookie not answered 200 with views 1
  findings memory_refused;    // a request on a session in memory not answered 200
  findings miscounted;        // a 200 whose count is not the previous one plus one
  std::vector<tagged_sample> samples;

  void step(client& c, const published_time& killed, const published_time& restarting) {
    const bool had = !id.empty();
    const kind k = !had ? kind::fresh : in_memory ? kind::memory_session : kind::other_session;
    const attempt a = visit(c, id);
    samples.push_back({k, a.start, a.end, a.status});
    const std::string what = a.status ? std::to_string(a.status) : a.error;
    if (!had) {
      if (a.status != 200 || a.views() != 1 || a.set_id().empty()) {
        fresh_refused.add(what);
        return;
      }
      id = a.set_id();
      last = 1;
      const std::optional<steady::time_point> kill = killed.get(), restart = restarting.get();
      in_memory = kill && a.start >= *kill && (!restart || a.end <= *restart);
      return;
    }
    if (a.status == 200) {
      if (a.views() != last + 1 || !a.set_id().empty())
        miscounted.add("views " + std::to_string(a.views()) + " after " + std::to_string(last));
      last = a.views();
      if (last < 5) return;
    } else if (in_memory) {
      memory_refused.add(what + " at visit " + std::to_string(last + 1));
    }
    id.clear();
    in_memory = false;
  }
};

std::string login_body(const std::string& user) {
  boost::json::object o;
  o["user"] = user;
  return boost::json::serialize(o);
}

attempt login(client& c, const std::string& user) {
  request req = client::make(bhttp::verb::post, "/login");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = login_body(user);
  return timed_send(c, std::move(req));
}

// The outage both durability tests stage, from the main thread: 1.5 s of traffic, SIGKILL,
// a second without Redis, a restart on the same directory and port, then traffic until
// `back()` holds (at most 10 s) and one more second. `killed` is published once Redis is dead
// (`while_down` runs then), `restarting` just before it is started again.
struct outage_times {
  steady::time_point kill, restart_begin, restart_end, recovered;
  bool recovered_in_time = false;
};

outage_times stage_outage(redis_test::redis_server& redis, const std::function<bool()>& back,
                          published_time& killed, published_time& restarting,
                          const std::function<void()>& while_down = {}) {
  outage_times t;
  std::this_thread::sleep_for(1500ms);
  redis.kill_hard();
  t.kill = steady::now();
  killed.set(t.kill);
  if (while_down) while_down();
  std::this_thread::sleep_until(t.kill + 1s);
  t.restart_begin = steady::now();
  restarting.set(t.restart_begin);
  redis.start();
  t.restart_end = steady::now();
  t.recovered_in_time = wait_for(back, 10s);
  t.recovered = steady::now();
  std::this_thread::sleep_for(1s);
  return t;
}

// Checks the updaters: the session was created, nothing hung, no acknowledged increment was
// lost, the final count is within what the outcomes allow, and no request that ran entirely
// while Redis was down was answered 200 (the sessions live in Redis: such an answer could only
// come from a stale copy). Reports the totals.
void check_updaters(const std::vector<updater>& ups, const std::string& label, const outage_times& t) {
  std::uint64_t acked = 0, unknown = 0, refused = 0, other = 0, timeouts = 0, transport = 0,
                lost = 0, replaced = 0, finals = 0, extra = 0, ok_while_down = 0;
  for (std::size_t i = 0; i < ups.size(); ++i) {
    const updater& u = ups[i];
    BOOST_TEST_CONTEXT(label << " " << i) {
      BOOST_TEST_REQUIRE(!u.id.empty(), "the session was not created");
      BOOST_TEST(u.final_ok, "no acknowledged increment once Redis was back");
      BOOST_TEST(u.lost.count == 0u, u.lost.count << " lost increments, e.g. " << (u.lost.first.empty() ? "" : u.lost.first.front()));
      BOOST_TEST(u.replaced.count == 0u, "the session was replaced: " << (u.replaced.first.empty() ? "" : u.replaced.first.front()));
      // The final count holds every acknowledged increment, and at most the unknown outcomes more.
      BOOST_TEST(u.last_views >= u.acked);
      BOOST_TEST(u.last_views <= u.acked + u.unknown);
    }
    acked += static_cast<std::uint64_t>(u.acked);
    unknown += static_cast<std::uint64_t>(u.unknown);
    extra += static_cast<std::uint64_t>(u.last_views - u.acked);
    refused += u.refused;
    other += u.other_status;
    timeouts += u.timeouts;
    transport += u.transport;
    lost += u.lost.count;
    replaced += u.replaced.count;
    finals += u.final_ok;
    for (const sample& s : u.samples) ok_while_down += s.status == 200 && s.start >= t.kill && s.end <= t.restart_begin;
  }
  BOOST_TEST_MESSAGE(label << ": " << ups.size() << " sessions, " << acked << " acknowledged increments, "
                     << unknown << " unknown outcomes (" << refused << " x 503, " << other << " other status, "
                     << timeouts << " timeouts, " << transport << " connection errors), of which "
                     << extra << " were applied; " << lost << " lost, " << replaced << " sessions replaced; "
                     << finals << " final increments acknowledged");
  BOOST_TEST(timeouts == 0u, timeouts << " requests hung past the " << client_deadline.count() << " ms deadline");
  BOOST_TEST(other == 0u, other << " answers other than 200 and 503");
  BOOST_TEST(transport == 0u, transport << " requests failed on the connection");
  BOOST_TEST(ok_while_down == 0u, ok_while_down << " updates answered 200 while Redis was down");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(durability, *redis_test::needs_redis_server())

// Two server processes share one Redis. Each of 16 sessions has two clients running at once,
// each alternating its requests between the processes, so the two processes update the same
// session concurrently: the versioned writes must make one of them retry, never drop an
// increment. Every count acknowledged is seen exactly once and the final count is exact.
BOOST_AUTO_TEST_CASE(two_processes_one_redis_lose_no_update) {
  const auto t0 = steady::now();
  redis_test::redis_server redis;
  server_options o;
  o.args = redis_args(redis.port());
  server_process a(o);
  server_process b(o);
  const unsigned short ports[2] = {a.port(), b.port()};

  constexpr int sessions = 16;
  constexpr int workers_per_session = 2;
  constexpr int per_worker = 20;
  std::vector<std::string> ids(sessions);
  {
    client ca(a.port()), cb(b.port());
    for (int s = 0; s < sessions; ++s) {
      const reply r = (s % 2 ? cb : ca).get("/visits");
      BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
      BOOST_TEST_REQUIRE(r.set_cookies().size() == 1u);
      ids[s] = cookie_value(r.set_cookies().front());
    }
  }

  // Per session: the counts the 200s carried (the creation's 1 included), other outcomes.
  struct tally {
    std::mutex m;
    std::vector<std::int64_t> seen{1};
    std::map<std::string, int> failures;
    int replaced = 0;
  };
  std::vector<tally> tallies(sessions);
  {
    crew workers;
    for (int s = 0; s < sessions; ++s) {
      for (int w = 0; w < workers_per_session; ++w) {
        workers.spawn([&, s, w] {
          client c[2] = {client(ports[0], client_deadline), client(ports[1], client_deadline)};
          for (int i = 0; i < per_worker && !workers.stop; ++i) {
            const int side = (i + w) % 2;
            const attempt r = visit(c[side], ids[s]);
            std::lock_guard lock(tallies[s].m);
            if (r.status == 200) {
              tallies[s].seen.push_back(r.views());
              if (!r.set_id().empty()) ++tallies[s].replaced;
            } else {
              ++tallies[s].failures[r.status ? std::to_string(r.status) + " " + r.res->msg.body() : r.error];
            }
          }
        });
      }
    }
    workers.join();
  }

  client ca(a.port()), cb(b.port());
  std::uint64_t acked = 0, failed = 0;
  for (int s = 0; s < sessions; ++s) {
    BOOST_TEST_CONTEXT("session " << s) {
      tally& t = tallies[s];
      for (const auto& [what, n] : t.failures) {
        BOOST_TEST_MESSAGE("session " << s << ": " << n << " x " << what);
        failed += static_cast<std::uint64_t>(n);
      }
      BOOST_TEST(t.failures.empty());
      BOOST_TEST(t.replaced == 0);
      std::sort(t.seen.begin(), t.seen.end());
      std::vector<std::int64_t> expected(t.seen.size());
      for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<std::int64_t>(i) + 1;
      BOOST_TEST(t.seen == expected, boost::test_tools::per_element());
      // The final count, read (and incremented once more) through either process.
      const reply r = (s % 2 ? ca : cb).get("/visits", cookie(ids[s]));
      BOOST_TEST_REQUIRE(r.status() == 200u, r.msg.body());
      BOOST_TEST(r.json().at("views").as_int64() == static_cast<std::int64_t>(t.seen.size()) + 1);
      acked += t.seen.size();
    }
  }
  BOOST_TEST_MESSAGE("two processes: " << sessions << " sessions, " << acked << " acknowledged increments, "
                     << failed << " failed, conflicts retried: "
                     << ca.get("/healthz").json().at("stats").at("conflicts").to_number<std::uint64_t>() << " + "
                     << cb.get("/healthz").json().at("stats").at("conflicts").to_number<std::uint64_t>()
                     << "; " << ms_between(t0, steady::now()) << " ms");
  BOOST_TEST(a.stop() == 0);
  BOOST_TEST(b.stop() == 0);
}

// Redis on an fsync-always append-only file is killed with SIGKILL under the traffic of 200
// updaters and restarted a second later on the same directory and port, the traffic going on
// throughout. The server answers 503 while Redis is away (its sessions live there), no request
// outlives its deadline, every increment acknowledged with 200 is still counted afterwards, and
// the server answers /healthz and exits 0 on SIGTERM.
//
// The server runs on Redis alone (--redis-fallback none): a request waits for the reconnection
// up to the request timeout instead of failing at once, so requests in flight across the
// restart are answered late but within their deadline.
BOOST_AUTO_TEST_CASE(acknowledged_increments_survive_redis_kill) {
  const auto t0 = steady::now();
  redis_test::redis_server redis(durable_redis());
  server_options o;
  o.args = redis_args(redis.port());
  o.args.insert(o.args.end(), {"--redis-fallback", "none"});
  server_process srv(o);

  constexpr int n = 200;
  std::vector<updater> ups(n);
  std::atomic<std::uint64_t> acknowledged{0};
  outage_times t;
  {
    crew workers;
    spawn_updaters(workers, ups, srv.port(), acknowledged);
    BOOST_TEST_REQUIRE(wait_for([&] { return workers.ready == n; }, 20s), "the sessions were not all created");
    const auto created = steady::now();
    // Back: a round of acknowledged increments (as many as there are updaters) after the restart.
    std::uint64_t mark = 0;
    published_time killed, restarting;
    t = stage_outage(redis, [&] { return acknowledged >= mark + n; }, killed, restarting,
                     [&] { mark = acknowledged; });
    BOOST_TEST(t.recovered_in_time, "updates were not acknowledged again within 10 s of the restart");
    workers.stop = true;
    workers.join();
    BOOST_TEST_MESSAGE("redis kill: " << n << " sessions created in " << ms_between(t0, created)
                       << " ms; restart took " << ms_between(t.restart_begin, t.restart_end)
                       << " ms; updates acknowledged again " << ms_between(t.restart_end, t.recovered)
                       << " ms after it");
  }
  check_updaters(ups, "redis kill", t);

  // Every request finished within its deadline (checked above as timeouts); and the slowest.
  std::vector<std::int64_t> all;
  for (const updater& u : ups)
    for (const sample& s : u.samples)
      all.push_back(std::chrono::duration_cast<std::chrono::microseconds>(s.end - s.start).count());
  BOOST_TEST_MESSAGE("redis kill: " << all.size() << " requests, latency " << latency_text(all));

  client c(srv.port());
  const reply health = c.get("/healthz");
  BOOST_TEST(health.status() == 200u, health.msg.body());
  BOOST_TEST(srv.stop() == 0);
  BOOST_TEST_MESSAGE("redis kill: " << ms_between(t0, steady::now()) << " ms in all");
}

// The same outage with the memory fallback at work (the example server's Redis store): 100
// updaters of sessions in Redis, 60 visitors and 40 clients logging in. What the library
// promises (include/websession/store/fallback.hpp): new visitors are answered from memory and
// their sessions keep working, also once Redis is back; sessions living in Redis and logins
// are refused with 503, never served from memory or silently replaced; nothing hangs; once
// Redis is back the store leaves degraded mode, new sessions and logins go to Redis again, and
// no acknowledged increment of a Redis session is lost. The figures for the outage (requests
// started between the kill and the restart) are reported.
BOOST_AUTO_TEST_CASE(fallback_answers_visitors_refuses_logins_during_outage) {
  const auto t0 = steady::now();
  redis_test::redis_server redis(durable_redis());
  server_options o;
  o.args = redis_args(redis.port());
  server_process srv(o);

  constexpr int n_updaters = 100, n_visitors = 60, n_logins = 40;
  std::vector<updater> ups(n_updaters);
  std::vector<visitor> visitors(n_visitors);
  std::vector<std::vector<tagged_sample>> logins(n_logins);
  std::atomic<std::uint64_t> acknowledged{0};
  published_time killed, restarting;
  outage_times t;
  bool health_answered = false, health_degraded = false;
  {
    crew workers;
    spawn_updaters(workers, ups, srv.port(), acknowledged);
    for (int i = 0; i < n_visitors; ++i) {
      workers.spawn([&, i] {
        client c(srv.port(), client_deadline);
        ++workers.ready;
        while (!workers.stop) visitors[i].step(c, killed, restarting);
      });
    }
    for (int i = 0; i < n_logins; ++i) {
      workers.spawn([&, i] {
        client c(srv.port(), client_deadline);
        ++workers.ready;
        const std::string user = "user-" + std::to_string(i);
        while (!workers.stop) {
          const attempt a = login(c, user);
          logins[i].push_back({kind::login, a.start, a.end, a.status});
          if (a.status != 200) std::this_thread::sleep_for(pause_after_failure);
        }
      });
    }
    constexpr int n = n_updaters + n_visitors + n_logins;
    BOOST_TEST_REQUIRE(wait_for([&] { return workers.ready == n; }, 20s), "the sessions were not all created");
    std::uint64_t mark = 0;
    t = stage_outage(
        redis, [&] { return acknowledged >= mark + n_updaters; },
        killed, restarting, [&] {
          mark = acknowledged;
          // While Redis is away the fallback answers the health check, saying it is degraded.
          health_answered = healthz_degraded(srv.port(), health_degraded);
        });
    BOOST_TEST(t.recovered_in_time, "updates were not acknowledged again within 10 s of the restart");
    workers.stop = true;
    workers.join();
  }
  BOOST_TEST(health_answered, "/healthz did not answer 200 during the outage");
  BOOST_TEST(health_degraded, "/healthz did not report degraded during the outage");
  check_updaters(ups, "fallback", t);

  // Visitors: new ones and sessions made in memory always answered, counts exact.
  std::uint64_t memory_sessions = 0;
  std::vector<tagged_sample> all;
  for (std::size_t i = 0; i < visitors.size(); ++i) {
    const visitor& v = visitors[i];
    BOOST_TEST_CONTEXT("visitor " << i) {
      BOOST_TEST(v.fresh_refused.count == 0u, "new visitor not answered: " << (v.fresh_refused.first.empty() ? "" : v.fresh_refused.first.front()));
      BOOST_TEST(v.memory_refused.count == 0u, "session in memory refused: " << (v.memory_refused.first.empty() ? "" : v.memory_refused.first.front()));
      BOOST_TEST(v.miscounted.count == 0u, "count off: " << (v.miscounted.first.empty() ? "" : v.miscounted.first.front()));
    }
    for (const tagged_sample& s : v.samples) memory_sessions += s.k == kind::memory_session;
    all.insert(all.end(), v.samples.begin(), v.samples.end());
  }
  // Requests on sessions made during the outage, including after Redis came back.
  BOOST_TEST(memory_sessions > 0u);
  for (const updater& u : ups)
    for (const sample& s : u.samples) all.push_back({kind::returning, s.start, s.end, s.status});
  for (const auto& l : logins) all.insert(all.end(), l.begin(), l.end());

  // Logins: 200 or 503 only; never 200 while Redis was away the whole time.
  std::uint64_t login_ok_during = 0, login_odd = 0;
  for (const auto& l : logins) {
    for (const tagged_sample& s : l) {
      if (s.status != 200 && s.status != 503) ++login_odd;
      if (s.status == 200 && s.start >= t.kill && s.end <= t.restart_begin) ++login_ok_during;
    }
  }
  BOOST_TEST(login_ok_during == 0u, login_ok_during << " logins accepted while Redis was down");
  BOOST_TEST(login_odd == 0u, login_odd << " login answers other than 200 and 503");

  // The figures: requests started during the outage, by kind and answer; the latency of the
  // second before it for comparison.
  std::uint64_t answered = 0, refused = 0, failed = 0, hung = 0;
  std::vector<std::int64_t> latency, latency_before;
  std::map<std::pair<int, unsigned>, std::uint64_t> by_kind;
  for (const tagged_sample& s : all) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(s.end - s.start).count();
    if (s.status == 0 && s.end - s.start >= client_deadline) ++hung;
    if (s.start >= t.kill - 1s && s.end < t.kill) latency_before.push_back(us);
    if (s.start < t.kill || s.start >= t.restart_begin) continue;
    latency.push_back(us);
    ++by_kind[{static_cast<int>(s.k), s.status}];
    if (s.status == 200) ++answered;
    else if (s.status == 503) ++refused;
    else ++failed;
  }
  BOOST_TEST(hung == 0u);
  BOOST_TEST(failed == 0u, failed << " requests during the outage neither answered nor refused");
  BOOST_TEST(answered > 0u);
  BOOST_TEST(refused > 0u);
  std::ostringstream detail;
  for (const auto& [key, count] : by_kind) detail << "; " << kind_names[key.first] << " " << key.second << ": " << count;
  BOOST_TEST_MESSAGE("fallback: during the outage (" << ms_between(t.kill, t.restart_begin) << " ms) "
                     << answered << " requests answered 200 by the fallback, " << refused
                     << " refused with 503, " << failed << " failed; latency " << latency_text(latency)
                     << detail.str() << "; in the second before the kill: " << latency_before.size()
                     << " requests, latency " << latency_text(latency_before));
  BOOST_TEST_MESSAGE("fallback: restart took " << ms_between(t.restart_begin, t.restart_end)
                     << " ms; Redis sessions updated again " << ms_between(t.restart_end, t.recovered)
                     << " ms after it");

  // Back on Redis: not degraded, new sessions created there, logins accepted.
  bool degraded = true;
  BOOST_TEST(wait_for([&] { return healthz_degraded(srv.port(), degraded) && !degraded; }, 10s),
             "/healthz still degraded 10 s after the restart");
  client c(srv.port());
  const std::int64_t keys_before = dbsize(redis.port());
  for (int i = 0; i < 10; ++i) {
    const reply r = c.get("/visits");
    BOOST_TEST(r.status() == 200u, r.msg.body());
  }
  BOOST_TEST(dbsize(redis.port()) == keys_before + 10, "the new sessions did not go to Redis");
  const attempt back = login(c, "after-the-outage");
  BOOST_TEST(back.status == 200u);

  int degradations = 0, recoveries = 0;
  for (const std::string& line : srv.audit_lines()) {
    degradations += line.find("\"store_degraded\"") != std::string::npos;
    recoveries += line.find("\"store_recovered\"") != std::string::npos;
  }
  BOOST_TEST(degradations >= 1);
  BOOST_TEST(recoveries >= 1);

  const reply health = c.get("/healthz");
  BOOST_TEST(health.status() == 200u, health.msg.body());
  BOOST_TEST(srv.stop() == 0);
  BOOST_TEST_MESSAGE("fallback: " << ms_between(t0, steady::now()) << " ms in all");
}

BOOST_AUTO_TEST_SUITE_END()

#endif  // WEBSESSION_E2E_REDIS
