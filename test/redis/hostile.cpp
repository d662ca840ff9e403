// SPDX-License-Identifier: BSL-1.0
// A hostile (or man-in-the-middle) Redis: a fake server on loopback that completes the
// connection's handshake and then answers commands with replies that announce more than the
// client may accept (config::limits), endless lines, deep nesting or RESP3 aggregates. The
// client must stay within a bounded amount of memory, drop the connection with a clear error,
// fail the requests in flight like on any dropped connection, and a session manager over
// fallback_store<redis_store, memory_store> must keep creating sessions in memory.
#include "server_fixture.hpp"

#include <websession/defaults.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/reader.hpp>
#include <websession/store/fallback.hpp>
#include <websession/store/memory.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <cctype>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace websession;
using namespace redis_test;
using boost::system::error_code;

namespace {

using websession::test::tuple_token;
constexpr std::size_t MiB = std::size_t{1} << 20;

// ---- peak memory of this process ------------------------------------------------------------

// The kB value of a field of /proc/self/status (VmHWM: the peak resident set).
std::size_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

// Resets the peak resident set to the current one (Linux: "5" to /proc/self/clear_refs) and
// returns it in bytes; the test then compares VmHWM against it.
std::size_t reset_peak_rss() {
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  return status_kb("VmHWM") * 1024;
}

std::size_t peak_rss() { return status_kb("VmHWM") * 1024; }

// ---- the fake server ----------------------------------------------------------------------

// What the fake server answers.
struct hostile_script {
  // Sent as the reply to the first command that is not part of the handshake (or to the
  // handshake itself with `in_handshake`).
  std::string payload;
  // After the payload, send `filler` bytes of `fill` (in 64 KiB writes) until the client
  // closes the connection or `filler` bytes went out: the body of an announced bulk string, or
  // an endless line.
  std::size_t filler = 0;
  char fill = 'x';
  // Answer CLIENT SETNAME (the handshake) with the payload rather than +OK.
  bool in_handshake = false;
};

// An acceptor on 127.0.0.1:0 in the test's io_context. The handshake (AUTH, SELECT, CLIENT
// SETNAME) is answered +OK; every other command (GET, SET, EVALSHA, PING...) gets the hostile
// script. Commands are parsed with redis::reader (a command is a RESP array of bulk strings).
class fake_redis {
 public:
  struct counters {
    int accepted = 0;
    int hostile_replies = 0;
    int closed_by_client = 0;  // connections the client closed (EOF, reset, broken pipe)
    std::size_t filler_sent = 0;
  };

  fake_redis(asio::io_context& ioc, hostile_script script)
      : st_(std::make_shared<state>(ioc, std::move(script))) {
    asio::co_spawn(ioc, accept_loop(st_), asio::detached);
  }

  fake_redis(const fake_redis&) = delete;
  fake_redis& operator=(const fake_redis&) = delete;

  ~fake_redis() { stop(); }

  std::uint16_t port() const { return st_->acceptor.local_endpoint().port(); }
  const counters& stats() const { return st_->stats; }

  // Closes the acceptor and every connection; their coroutines then end.
  void stop() {
    error_code ignored;
    st_->acceptor.close(ignored);
    for (auto& w : st_->sockets) {
      if (auto s = w.lock()) s->close(ignored);
    }
    st_->sockets.clear();
  }

 private:
  using tcp = asio::ip::tcp;

  struct state {
    state(asio::io_context& ioc, hostile_script s)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          script(std::move(s)) {}
    tcp::acceptor acceptor;
    hostile_script script;
    std::vector<std::weak_ptr<tcp::socket>> sockets;
    counters stats;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    for (;;) {
      auto [ec, sock] = co_await st->acceptor.async_accept(tuple_token);
      if (ec) co_return;
      ++st->stats.accepted;
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      st->sockets.push_back(s);
      asio::co_spawn(st->acceptor.get_executor(), serve(st, s), asio::detached);
    }
  }

  static bool handshake_command(const redis::reply& cmd) {
    if (cmd.elements.empty()) return false;
    std::string name = cmd.elements[0].str;
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name == "AUTH" || name == "SELECT" || name == "CLIENT";
  }

  // A read or write that failed because the client closed the connection.
  static void note_end(state& st, const error_code& ec) {
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe) {
      ++st.stats.closed_by_client;
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<state> st, std::shared_ptr<tcp::socket> s) {
    redis::reader commands;
    std::vector<char> buf(16 * 1024);
    const std::string filler(64 * 1024, st->script.fill);
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), tuple_token);
      if (ec) {
        note_end(*st, ec);
        co_return;
      }
      if (commands.feed(buf.data(), n)) co_return;
      for (;;) {
        auto next = commands.next();
        if (!next || !*next) break;
        const bool hostile = st->script.in_handshake || !handshake_command(**next);
        const std::string answer = hostile ? st->script.payload : std::string("+OK\r\n");
        if (hostile) ++st->stats.hostile_replies;
        auto [wec, wn] = co_await asio::async_write(*s, asio::buffer(answer), tuple_token);
        if (wec) {
          note_end(*st, wec);
          co_return;
        }
        if (!hostile) continue;
        for (std::size_t sent = 0; sent < st->script.filler; sent += filler.size()) {
          auto [fec, fn] = co_await asio::async_write(*s, asio::buffer(filler), tuple_token);
          if (fec) {
            note_end(*st, fec);
            co_return;
          }
          st->stats.filler_sent += fn;
        }
      }
    }
  }

  std::shared_ptr<state> st_;
};

// ---- the scenario -------------------------------------------------------------------------

struct expectation {
  error_code code;         // what the connection reports for the drop
  std::string in_message;  // a part of its message
};

// One connection (whose errors are recorded) to a fake server playing `script`, a raw request on
// it, and a session manager over fallback_store<redis_store, memory_store> on it.
void run_hostile(const hostile_script& script, const expectation& want,
                 redis::reply_limits limits = {}, std::size_t peak_bound = 48 * MiB) {
  const std::size_t base = reset_peak_rss();
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    using namespace std::chrono_literals;
    fake_redis fake(ioc, script);

    redis::config cfg;
    cfg.port = fake.port();
    cfg.request_timeout = 1s;
    cfg.connect_timeout = 1s;
    cfg.reconnect_min = 10ms;
    cfg.reconnect_max = 100ms;
    cfg.fail_fast_when_down = true;
    cfg.limits = limits;
    auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
    std::vector<std::pair<error_code, std::string>> errors;
    conn->set_error_handler([&](const error_code& ec, std::string_view message) {
      errors.emplace_back(ec, std::string(message));
    });
    conn->async_run(asio::detached);

    // A raw request fails like on any dropped connection: connection_lost (written, then
    // dropped), not_connected (not written: the server is known down), or timeout.
    redis::request get;
    get.push("GET", "k");
    const auto start = std::chrono::steady_clock::now();
    auto [ec, replies] = co_await conn->async_exec(get, tuple_token);
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST((ec == redis::error::connection_lost || ec == redis::error::not_connected ||
                ec == redis::error::timeout),
               ec.message());
    BOOST_TEST(replies.empty());
    BOOST_TEST(took < 3s);

    // The connection was dropped with the expected error and message.
    BOOST_TEST(!errors.empty());
    bool seen = false;
    for (const auto& [e, m] : errors) {
      if (e == want.code && m.find(want.in_message) != std::string::npos) seen = true;
    }
    std::string all;
    for (const auto& [e, m] : errors) all += e.message() + ": " + m + "\n";
    BOOST_TEST(seen, "errors:\n" << all);
    BOOST_TEST(fake.stats().hostile_replies >= 1);

    // Sessions: created in memory, and usable there.
    memory_store_options mo;
    using store_t = fallback_store<redis_store, memory_store>;
    store_t store(redis_store(conn), memory_store(ioc.get_executor(), mo), 50ms);
    basic_session_manager<json_serializer, aes_gcm_cipher, store_t, std::chrono::system_clock>
        mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), store, options{});
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      auto [e1, s] = co_await mgr.async_create(tuple_token);
      BOOST_TEST_REQUIRE(!e1, e1.message());
      s.set("n", i);
      auto [e2] = co_await mgr.async_save(s, tuple_token);
      BOOST_TEST_REQUIRE(!e2, e2.message());
      auto [e3, l] = co_await mgr.async_load(s.id(), tuple_token);
      BOOST_TEST_REQUIRE(!e3, e3.message());
      BOOST_TEST(l.get_as<int>("n").value_or(-1) == i);
      ids.insert(s.id());
      co_await sleep_for(60ms);  // past the probe interval: the next create probes Redis
    }
    BOOST_TEST(ids.size() == 3u);
    BOOST_TEST(store.degraded());
    BOOST_TEST(store.secondary().size() == 3u);
    BOOST_TEST(store.stats().secondary_inserts == 3u);
    // The client dropped the connection (the server saw it close) and connected again.
    BOOST_TEST(co_await wait_until([&] { return fake.stats().accepted >= 2; }, 2s));
    BOOST_TEST(co_await wait_until([&] { return fake.stats().closed_by_client >= 1; }, 2s));

    conn->cancel();
    fake.stop();
  });
  const std::size_t peak = peak_rss();
  const std::size_t grown = peak > base ? peak - base : 0;
  BOOST_TEST(grown < peak_bound, "peak resident set grew by " << grown / 1024 << " KiB");
}

const auto too_large = make_error_code(redis::client_error::reply_too_large);
const auto protocol = make_error_code(redis::client_error::protocol_error);

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_hostile_server)

// Ten bytes that made the reader allocate and zero 4,000,000 reply slots (275 MiB) and then
// wait for elements that never come.
BOOST_AUTO_TEST_CASE(huge_array_count) {
  run_hostile({"*4000000\r\n"}, {too_large, "an array of 4000000 elements announced"});
}

// Seven arrays inside each other announcing the most elements allowed (before, 7 x 72 MiB of
// slots), and an eighth announcing one more.
BOOST_AUTO_TEST_CASE(nested_arrays_at_the_limit_then_one_beyond) {
  std::string payload;
  for (int i = 0; i < 7; ++i) payload += "*1048576\r\n";
  payload += "*1048577\r\n";
  run_hostile({payload}, {too_large, "an array of 1048577 elements announced"});
}

// A 100 GB bulk string announced, and then its bytes streamed for as long as the client reads
// (up to 512 MiB): before, the client buffered all of it.
BOOST_AUTO_TEST_CASE(huge_bulk_length_then_its_bytes) {
  run_hostile({"$100000000000\r\n", 512 * MiB},
              {too_large, "a bulk string of 100000000000 bytes announced"});
}

// A simple string that never ends (no CRLF), streamed for as long as the client reads (up to
// 512 MiB): refused after max_line_length (64 KiB). Before, the client buffered it and scanned
// it again from its start on every read (quadratic: 18 s of CPU for 16 MiB).
BOOST_AUTO_TEST_CASE(endless_line) {
  run_hostile({"+", 512 * MiB, 'a'}, {too_large, "config::limits.max_line_length"});
}

// Limits set in the config reach the connection's reader.
BOOST_AUTO_TEST_CASE(configured_limits) {
  redis::reply_limits limits;
  limits.max_elements = 2;
  run_hostile({"*3\r\n:1\r\n:2\r\n:3\r\n"},
              {too_large,
               "an array of 3 elements announced, beyond config::limits.max_elements (2)"},
              limits);
}

BOOST_AUTO_TEST_CASE(deep_nesting) {
  std::string payload;
  for (int i = 0; i < 100000; ++i) payload += "*1\r\n";
  run_hostile({payload}, {protocol, "nested multi bulk replies with depth > 7"});
}

// RESP3 aggregates (a map, a set, a push, an attribute) are not RESP2, whatever they announce.
BOOST_AUTO_TEST_CASE(resp3_aggregates) {
  for (std::string_view p : {"%4000000\r\n", "~4000000\r\n", ">4000000\r\n", "|4000000\r\n"}) {
    BOOST_TEST_CONTEXT(p) { run_hostile({std::string(p)}, {protocol, "reply type byte"}); }
  }
}

BOOST_AUTO_TEST_CASE(negative_length) {
  run_hostile({"*-5\r\n"}, {protocol, "Multi-bulk length out of range"});
}

// The handshake itself answered with a huge header: the connect attempt fails with the error;
// with fail_fast_when_down, requests fail at once and sessions go to memory.
BOOST_AUTO_TEST_CASE(huge_reply_during_the_handshake) {
  hostile_script s{"*4000000\r\n"};
  s.in_handshake = true;
  run_hostile(s, {too_large, "an array of 4000000 elements announced"});
}

BOOST_AUTO_TEST_CASE(zero_limits_are_rejected) {
  asio::io_context ioc;
  redis::config cfg;
  cfg.limits.max_elements = 0;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), std::invalid_argument);
  cfg.limits = {};
  cfg.limits.max_bulk_length = 0;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), std::invalid_argument);
  cfg.limits = {};
  cfg.limits.max_line_length = 63;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), std::invalid_argument);
  cfg.limits.max_line_length = 64;
  BOOST_CHECK_NO_THROW(redis::connection(ioc.get_executor(), cfg));
}

BOOST_AUTO_TEST_SUITE_END()
