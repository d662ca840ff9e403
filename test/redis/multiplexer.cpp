// SPDX-License-Identifier: BSL-1.0
// The sans-IO multiplexer (redis/detail/multiplexer.hpp) driven without any server: scripted
// bytes and a scripted clock in, writes and completions out. Pipelining and failures out of
// order, deadlines expiring mid-reply, WAIT group commits, a READONLY burst, a reply split at
// every byte, RESP limits, cancellation at each step, and what a dropped or failed link does.
#include <websession/redis/detail/multiplexer.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using boost::system::error_code;
using ct = boost::asio::cancellation_type;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

redis::request command(std::string_view name, std::string_view arg, bool idempotent = false) {
  redis::request r(idempotent);
  r.push(name, arg);
  return r;
}

// A multiplexer with a clock, and every completion it produced, in order.
struct harness {
  explicit harness(rd::mux_options o = {}) : mux(o) {}

  rd::multiplexer mux;
  time_point now = time_point{} + 1h;
  std::vector<rd::mux_completion> done;
  rd::mux_write_hint hint = rd::mux_write_hint::none;

  std::shared_ptr<rd::mux_op> add(const redis::request& req, std::chrono::milliseconds timeout = 1s) {
    auto op = std::make_shared<rd::mux_op>();
    op->req = &req;
    op->deadline = now + timeout;
    hint = mux.add(op);
    collect();
    return op;
  }
  void collect() {
    for (auto& c : mux.take_completions()) done.push_back(std::move(c));
  }
  // Writes everything due, whole; returns the bytes.
  std::string write() {
    const std::string bytes(mux.begin_write(now));
    if (!bytes.empty()) BOOST_TEST(mux.wrote(bytes.size(), now));
    return bytes;
  }
  rd::mux_drop read(std::string_view bytes) {
    auto d = mux.on_read(bytes.data(), bytes.size(), now);
    collect();
    return d;
  }
  void connect() { mux.on_connected(now); }
  void disconnect() {
    mux.on_disconnected();
    collect();
  }
  // The completion of `op`, or nullptr.
  const rd::mux_completion* of(const std::shared_ptr<rd::mux_op>& op) const {
    for (const auto& c : done) {
      if (c.op == op) return &c;
    }
    return nullptr;
  }
  bool completed(const std::shared_ptr<rd::mux_op>& op) const { return of(op) != nullptr; }
  error_code ec(const std::shared_ptr<rd::mux_op>& op) const {
    auto c = of(op);
    BOOST_TEST_REQUIRE(c != nullptr);
    return c->ec;
  }
};

error_code code(redis::error e) { return make_error_code(e); }
error_code code(redis::client_error e) { return make_error_code(e); }
const error_code aborted = boost::asio::error::operation_aborted;

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_multiplexer)

BOOST_AUTO_TEST_CASE(pipelined_requests_go_out_in_one_write_and_replies_in_order) {
  harness h;
  h.connect();
  const auto a = command("GET", "a");
  auto b = command("SET", "b");
  b.push("GET", "b");
  const auto c = command("INCR", "c");
  auto oa = h.add(a);
  BOOST_TEST((h.hint == rd::mux_write_hint::now));  // nothing in flight: at once
  const std::string first = h.write();
  BOOST_TEST(first == std::string(a.payload()));
  auto ob = h.add(b);
  BOOST_TEST((h.hint == rd::mux_write_hint::soon));  // replies awaited: gather
  auto oc = h.add(c);
  BOOST_TEST(h.write() == std::string(b.payload()) + std::string(c.payload()));
  BOOST_TEST(!h.read("$1\r\nx\r\n+OK\r\n$1\r\n"));
  BOOST_TEST(h.ec(oa) == error_code{});
  BOOST_TEST(oa->replies.size() == 1u);
  BOOST_TEST(oa->replies[0].str == "x");
  BOOST_TEST(h.of(oa)->answered);
  BOOST_TEST(!h.completed(ob));  // half of its replies
  BOOST_TEST(!h.read("y\r\n:7\r\n"));
  BOOST_TEST(ob->replies.size() == 2u);
  BOOST_TEST(ob->replies[1].str == "y");
  BOOST_TEST(oc->replies.at(0).integer == 7);
  BOOST_TEST(h.done.size() == 3u);
  BOOST_TEST((h.done[1].op == ob && h.done[2].op == oc));
}

BOOST_AUTO_TEST_CASE(a_batch_goes_out_when_write_batch_requests_gathered) {
  rd::mux_options o;
  o.write_batch = 3;
  harness h(o);
  h.connect();
  std::vector<redis::request> reqs(5, command("GET", "k"));
  h.add(reqs[0]);
  h.write();
  h.add(reqs[1]);
  BOOST_TEST((h.hint == rd::mux_write_hint::soon));
  h.add(reqs[2]);
  BOOST_TEST((h.hint == rd::mux_write_hint::soon));
  h.add(reqs[3]);
  BOOST_TEST((h.hint == rd::mux_write_hint::now));
  h.mux.begin_write(h.now);  // a write going on: nothing to do now
  h.add(reqs[4]);
  BOOST_TEST((h.hint == rd::mux_write_hint::none));
  BOOST_TEST(h.mux.writing());
}

BOOST_AUTO_TEST_CASE(not_connected_requests_wait_in_the_queue) {
  harness h;
  const auto a = command("GET", "a");
  auto oa = h.add(a);
  BOOST_TEST((h.hint == rd::mux_write_hint::none));
  BOOST_TEST(!h.mux.write_due());
  BOOST_TEST(h.mux.begin_write(h.now).empty());
  h.connect();
  BOOST_TEST(h.write() == std::string(a.payload()));
  BOOST_TEST(!h.completed(oa));
}

BOOST_AUTO_TEST_CASE(failures_out_of_order_leave_the_others_their_replies) {
  harness h;
  h.connect();
  const auto a = command("GET", "a");
  const auto b = command("GET", "b");
  const auto c = command("GET", "c");
  auto oa = h.add(a, 1s);
  auto ob = h.add(b, 100ms);  // the middle one times out first
  auto oc = h.add(c, 1s);
  h.write();
  h.now += 150ms;
  h.mux.expire(h.now);
  h.collect();
  BOOST_TEST(h.ec(ob) == code(redis::error::timeout));
  BOOST_TEST(!h.completed(oa));
  h.mux.cancel(oc, ct::terminal);  // the last one is cancelled
  h.collect();
  BOOST_TEST(h.ec(oc) == aborted);
  // The replies of b and c still come, and go nowhere else.
  BOOST_TEST(!h.read("$1\r\nA\r\n$1\r\nB\r\n$1\r\nC\r\n"));
  BOOST_TEST(h.ec(oa) == error_code{});
  BOOST_TEST(oa->replies.at(0).str == "A");
  BOOST_TEST(h.done.size() == 3u);
  BOOST_TEST(h.mux.in_flight() == 0u);
  // The next request gets its own reply.
  const auto d = command("GET", "d");
  auto od = h.add(d);
  h.write();
  BOOST_TEST(!h.read("$1\r\nD\r\n"));
  BOOST_TEST(od->replies.at(0).str == "D");
}

BOOST_AUTO_TEST_CASE(a_deadline_expiring_mid_reply) {
  harness h;
  h.connect();
  auto two = command("GET", "a");
  two.push("GET", "b");
  const auto next = command("GET", "n");
  auto o2 = h.add(two, 100ms);
  auto on = h.add(next, 1s);
  h.write();
  // The first reply whole, the second half.
  BOOST_TEST(!h.read("$3\r\none\r\n$5\r\ntw"));
  BOOST_TEST(!h.completed(o2));
  h.now += 101ms;
  BOOST_TEST((h.mux.next_deadline() == time_point{} + 1h + 100ms));
  h.mux.expire(h.now);
  h.collect();
  BOOST_TEST(h.ec(o2) == code(redis::error::timeout));
  BOOST_TEST(o2->replies.empty());
  BOOST_TEST(!h.completed(on));
  // The rest of the late reply is skipped; the next request gets its own.
  BOOST_TEST(!h.read("o!!\r\n$4\r\nmine\r\n"));
  BOOST_TEST(h.ec(on) == error_code{});
  BOOST_TEST(on->replies.at(0).str == "mine");
}

BOOST_AUTO_TEST_CASE(unsent_requests_expire_as_not_connected_written_ones_as_timeout) {
  harness h;
  const auto a = command("GET", "a");
  auto oa = h.add(a, 100ms);
  h.now += 100ms;
  h.mux.expire(h.now);
  h.collect();
  BOOST_TEST(h.ec(oa) == code(redis::error::not_connected));
  // A cluster's node request reports not_sent, so the cluster may send it elsewhere.
  auto op = std::make_shared<rd::mux_op>();
  op->req = &a;
  op->deadline = h.now + 10ms;
  op->report_unsent = true;
  h.mux.add(op);
  h.now += 10ms;
  h.mux.expire(h.now);
  h.collect();
  BOOST_TEST(h.ec(op) == code(redis::client_error::not_sent));
  BOOST_TEST(!h.mux.next_deadline().has_value());
}

BOOST_AUTO_TEST_CASE(wait_groups_confirm_every_durable_request_written_before_them) {
  harness h;
  h.connect();
  auto d1 = command("SET", "a");
  d1.wait_for_replicas(1, 100ms);
  auto d2 = command("SET", "b");
  d2.wait_for_replicas(2, 300ms);
  const auto plain = command("GET", "c");
  auto o1 = h.add(d1);
  auto o2 = h.add(d2);
  auto op = h.add(plain);
  const std::string bytes = h.write();
  redis::request wait;
  wait.push("WAIT", 2, 300);  // the most replicas and the longest timeout of the group
  BOOST_TEST(bytes == std::string(d1.payload()) + std::string(d2.payload()) +
                          std::string(plain.payload()) + std::string(wait.payload()));
  BOOST_TEST(!h.read("+OK\r\n+OK\r\n$1\r\nc\r\n"));
  BOOST_TEST(h.ec(op) == error_code{});  // not durable: at once
  BOOST_TEST(!h.completed(o1));          // held until the WAIT answers
  BOOST_TEST(!h.completed(o2));
  // A durable request written while the WAIT is in flight waits for a WAIT of its own.
  auto d3 = command("SET", "d");
  d3.wait_for_replicas(1, 100ms);
  auto o3 = h.add(d3);
  const std::string third = h.write();
  BOOST_TEST(third == std::string(d3.payload()));  // no second WAIT while one is in flight
  BOOST_TEST(!h.mux.wait_due());
  BOOST_TEST(!h.read(":1\r\n"));  // one replica: enough for d1, not for d2
  BOOST_TEST(h.ec(o1) == error_code{});
  BOOST_TEST(o1->replies.at(0).str == "OK");
  BOOST_TEST(h.ec(o2) == code(redis::error::replicas_not_confirmed));
  BOOST_TEST(!h.completed(o3));
  BOOST_TEST(!h.read("+OK\r\n"));
  BOOST_TEST(h.mux.wait_due());  // d3 answered; its WAIT goes out now
  redis::request wait3;
  wait3.push("WAIT", 1, 100);
  BOOST_TEST(h.write() == std::string(wait3.payload()));
  BOOST_TEST(!h.read(":1\r\n"));
  BOOST_TEST(h.ec(o3) == error_code{});
}

BOOST_AUTO_TEST_CASE(a_dropped_link_fails_held_durable_requests) {
  harness h;
  h.connect();
  auto d = command("SET", "a", true);
  d.wait_for_replicas(1, 100ms);
  auto od = h.add(d);
  h.write();
  BOOST_TEST(!h.read("+OK\r\n"));
  h.disconnect();
  // It ran; whether a replica has it is unknown, even for an idempotent request.
  BOOST_TEST(h.ec(od) == code(redis::error::connection_lost));
}

BOOST_AUTO_TEST_CASE(a_readonly_burst_requeues_what_did_not_run) {
  rd::mux_options o;
  o.requeue_not_master = true;
  harness h(o);
  h.connect();
  std::vector<redis::request> reqs;
  for (int i = 0; i < 5; ++i) reqs.push_back(command("SET", "k" + std::to_string(i)));
  auto mixed = command("GET", "x");
  mixed.push("SET", "x");
  std::vector<std::shared_ptr<rd::mux_op>> ops;
  for (const auto& r : reqs) ops.push_back(h.add(r));
  auto om = h.add(mixed);
  const std::string written = h.write();
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += "-READONLY You can't write against a read only replica.\r\n";
  // The mixed request's GET ran: it completes with its replies (the caller decides).
  burst += "$1\r\nv\r\n-READONLY You can't write against a read only replica.\r\n";
  const auto drop = h.read(burst);
  BOOST_TEST(drop.ec == code(redis::client_error::not_master));
  BOOST_TEST(h.ec(om) == error_code{});
  BOOST_TEST(om->replies.at(1).is_error());
  for (const auto& op : ops) BOOST_TEST(!h.completed(op));
  h.disconnect();
  for (const auto& op : ops) BOOST_TEST(!h.completed(op));  // not lost: queued again
  BOOST_TEST(h.mux.queued() == 5u);
  h.connect();
  std::string again;
  for (const auto& r : reqs) again += std::string(r.payload());
  BOOST_TEST(h.write() == again);  // first, in their order
  std::string oks;
  for (int i = 0; i < 5; ++i) oks += "+OK\r\n";
  BOOST_TEST(!h.read(oks));
  for (const auto& op : ops) BOOST_TEST(h.ec(op) == error_code{});
  (void)written;
}

BOOST_AUTO_TEST_CASE(readonly_is_a_plain_reply_without_sentinel) {
  harness h;
  h.connect();
  const auto r = command("SET", "k");
  auto op = h.add(r);
  h.write();
  BOOST_TEST(!h.read("-READONLY no\r\n"));
  BOOST_TEST(h.ec(op) == error_code{});
  BOOST_TEST(op->replies.at(0).is_error());
}

BOOST_AUTO_TEST_CASE(a_reply_split_at_every_byte) {
  const std::string bytes =
      "$5\r\nhe\r\nl\r\n*3\r\n:1\r\n*2\r\n$0\r\n\r\n$-1\r\n$2\r\nzz\r\n+OK\r\n-ERR x\r\n*-1\r\n"
      ":-42\r\n";
  const auto run = [&](const std::vector<std::size_t>& cuts) {
    harness h;
    h.connect();
    auto a = command("GET", "a");
    auto b = command("LRANGE", "b");
    b.push("PING", "p");
    auto c = command("GET", "c");
    c.push("GET", "d");
    c.push("INCR", "e");
    auto oa = h.add(a);
    auto ob = h.add(b);
    auto oc = h.add(c);
    h.write();
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
      BOOST_TEST(!h.read(std::string_view(bytes).substr(from, cut - from)));
      from = cut;
    }
    BOOST_TEST(!h.read(std::string_view(bytes).substr(from)));
    BOOST_TEST_REQUIRE(h.done.size() == 3u);
    BOOST_TEST(oa->replies.at(0).str == "he\r\nl");
    BOOST_TEST(ob->replies.at(0).elements.size() == 3u);
    BOOST_TEST(ob->replies.at(0).elements.at(1).elements.at(1).is_nil());
    BOOST_TEST(ob->replies.at(1).str == "OK");
    BOOST_TEST(oc->replies.at(0).is_error());
    BOOST_TEST(oc->replies.at(1).is_nil());
    BOOST_TEST(oc->replies.at(2).integer == -42);
  };
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) run({cut});
  std::vector<std::size_t> every;
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) every.push_back(cut);
  run(every);
}

BOOST_AUTO_TEST_CASE(resp_limits_and_protocol_errors_drop_the_link) {
  rd::mux_options o;
  o.limits.max_elements = 4;
  o.limits.max_bulk_length = 16;
  const std::vector<std::pair<std::string, error_code>> cases{
      {"*5\r\n", code(redis::client_error::reply_too_large)},
      {"$17\r\n", code(redis::client_error::reply_too_large)},
      {"%1\r\n", code(redis::client_error::protocol_error)},
      {"?what\r\n", code(redis::client_error::protocol_error)},
  };
  for (const auto& [bytes, expected] : cases) {
    harness h(o);
    h.connect();
    const auto keep = command("GET", "k", true);
    const auto lose = command("SET", "k");
    auto ok = h.add(keep);
    auto ol = h.add(lose);
    h.write();
    const auto drop = h.read(bytes);
    BOOST_TEST(drop.ec == expected, bytes);
    BOOST_TEST(!drop.message.empty());
    h.disconnect();
    BOOST_TEST(!h.completed(ok));  // idempotent: sent again after the reconnect
    BOOST_TEST(h.ec(ol) == code(redis::error::connection_lost));
    h.connect();
    BOOST_TEST(h.write() == std::string(keep.payload()));
    BOOST_TEST(!h.read("$1\r\nv\r\n"));  // the parser was reset with the link
    BOOST_TEST(h.ec(ok) == error_code{});
  }
}

BOOST_AUTO_TEST_CASE(a_reply_nobody_asked_for_drops_the_link) {
  harness h;
  h.connect();
  const auto drop = h.read("+OK\r\n");
  BOOST_TEST(drop.ec == code(redis::client_error::unexpected_reply));
}

BOOST_AUTO_TEST_CASE(cancellation_at_each_step) {
  harness h;
  h.connect();
  auto d = command("SET", "d");
  d.wait_for_replicas(1, 100ms);
  const auto r = command("GET", "r");
  // Queued: any cancellation type drops it; it is never written.
  {
    auto busy = h.add(r);
    h.write();
    auto queued = h.add(r);
    h.mux.cancel(queued, ct::total);
    h.collect();
    BOOST_TEST(h.ec(queued) == aborted);
    BOOST_TEST(h.write().empty());
    BOOST_TEST(!h.read("$1\r\nx\r\n"));
    BOOST_TEST(h.ec(busy) == error_code{});
  }
  // Written: total cancellation is ignored (it may have run); terminal completes it and its
  // reply is skipped.
  {
    auto written = h.add(r);
    h.write();
    h.mux.cancel(written, ct::total);
    h.collect();
    BOOST_TEST(!h.completed(written));
    h.mux.cancel(written, ct::partial);
    h.collect();
    BOOST_TEST(h.ec(written) == aborted);
    auto after = h.add(r);
    h.write();
    BOOST_TEST(!h.read("$4\r\nlate\r\n$4\r\nmine\r\n"));
    BOOST_TEST(after->replies.at(0).str == "mine");
  }
  // Answered but held for its WAIT: terminal cancellation completes it; the WAIT still comes.
  {
    auto held = h.add(d);
    h.write();
    BOOST_TEST(!h.read("+OK\r\n"));
    BOOST_TEST(!h.completed(held));
    h.mux.cancel(held, ct::terminal);
    h.collect();
    BOOST_TEST(h.ec(held) == aborted);
    const auto count = h.done.size();
    BOOST_TEST(!h.read(":1\r\n"));
    BOOST_TEST(h.done.size() == count);  // no second completion
  }
  // Done: nothing happens.
  {
    auto finished = h.add(r);
    h.write();
    BOOST_TEST(!h.read("$1\r\nz\r\n"));
    const auto count = h.done.size();
    h.mux.cancel(finished, ct::terminal);
    h.collect();
    BOOST_TEST(h.done.size() == count);
  }
  // Stopped: everything completes with operation_aborted, new requests at once.
  {
    auto queued = h.add(r);
    h.mux.stop();
    h.collect();
    BOOST_TEST(h.ec(queued) == aborted);
    auto late = h.add(r);
    BOOST_TEST(h.ec(late) == aborted);
    BOOST_TEST(!h.mux.write_due());
  }
}

BOOST_AUTO_TEST_CASE(reconnect_decisions) {
  // Written requests: idempotent ones are sent again first, the others fail; queued ones wait.
  {
    harness h;
    h.connect();
    const auto idem = command("GET", "i", true);
    const auto once = command("INCR", "o");
    auto oi = h.add(idem);
    auto oo = h.add(once);
    h.write();
    const auto later = command("GET", "l");
    auto ol = h.add(later);
    h.disconnect();
    BOOST_TEST(h.ec(oo) == code(redis::error::connection_lost));
    BOOST_TEST(!h.completed(oi));
    BOOST_TEST(!h.completed(ol));
    h.mux.on_connect_failed();  // without fail-fast, a failed attempt changes nothing
    h.collect();
    BOOST_TEST(!h.completed(oi));
    h.connect();
    BOOST_TEST(h.write() == std::string(idem.payload()) + std::string(later.payload()));
  }
  // With fail_fast_when_down: a failed attempt fails the queue, and later requests at once,
  // until a connection is made again.
  {
    rd::mux_options o;
    o.fail_fast_when_down = true;
    harness h(o);
    const auto r = command("GET", "k");
    auto waiting = h.add(r);  // the first connect may still succeed: it waits
    BOOST_TEST(!h.completed(waiting));
    h.mux.on_connect_failed();
    h.collect();
    BOOST_TEST(h.ec(waiting) == code(redis::error::not_connected));
    auto now = h.add(r);
    BOOST_TEST(h.ec(now) == code(redis::error::not_connected));
    h.connect();
    auto up = h.add(r);
    BOOST_TEST(!h.completed(up));
    BOOST_TEST((h.hint == rd::mux_write_hint::now));
  }
  // An empty request completes at once, connected or not.
  {
    harness h;
    redis::request empty;
    auto op = h.add(empty);
    BOOST_TEST(h.ec(op) == error_code{});
  }
}

BOOST_AUTO_TEST_CASE(partial_writes_advance_and_stamp_the_batch_when_whole) {
  harness h;
  h.connect();
  const auto a = command("SET", "a");
  auto oa = h.add(a);
  const std::string bytes(h.mux.begin_write(h.now));
  BOOST_TEST(!h.mux.wrote(3, h.now));
  BOOST_TEST(h.mux.unwritten() == bytes.substr(3));
  BOOST_TEST((oa->sent_at == time_point{}));  // the health check's clock has not started
  h.now += 5ms;
  BOOST_TEST(h.mux.wrote(bytes.size() - 3, h.now));
  BOOST_TEST((oa->sent_at == h.now));
  BOOST_TEST(!h.mux.writing());
}

BOOST_AUTO_TEST_SUITE_END()
