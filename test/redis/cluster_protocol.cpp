// SPDX-License-Identifier: BSL-1.0
// Tests of the I/O-free parts of the Cluster and Sentinel support, without a server: hash slots,
// CLUSTER SHARDS / CLUSTER SLOTS replies (as Redis 7.0 sends them), MOVED / ASK, splitting a
// request into commands, and the Sentinel replies and messages.
#include <websession/redis/detail/cluster_protocol.hpp>
#include <websession/redis/detail/sentinel_protocol.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using redis::address;
using redis::reply;

// One reply from RESP2 bytes (as a server sends them).
reply parse_one(std::string_view bytes) {
  redis::reader r;
  BOOST_TEST_REQUIRE(!r.feed(bytes.data(), bytes.size()));
  auto next = r.next();
  BOOST_TEST_REQUIRE(next.has_value());
  BOOST_TEST_REQUIRE(next->has_value());
  return std::move(**next);
}

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// One node of a CLUSTER SHARDS reply, with the fields Redis 7.0 sends.
std::string shard_node(std::string_view ip, int port, std::string_view role, std::string_view health,
                       int tls_port = 0) {
  std::string out = "*" + std::to_string(tls_port ? 16 : 14) + "\r\n";
  out += bulk("id") + bulk(std::string(40, 'a'));
  out += bulk("port") + ":" + std::to_string(port) + "\r\n";
  if (tls_port) out += bulk("tls-port") + ":" + std::to_string(tls_port) + "\r\n";
  out += bulk("ip") + bulk(ip);
  out += bulk("endpoint") + bulk(ip);
  out += bulk("role") + bulk(role);
  out += bulk("replication-offset") + ":4242\r\n";
  out += bulk("health") + bulk(health);
  return out;
}

std::string shard(std::vector<std::pair<int, int>> ranges, std::vector<std::string> nodes) {
  std::string out = "*4\r\n" + bulk("slots") + "*" + std::to_string(ranges.size() * 2) + "\r\n";
  for (auto [a, b] : ranges) out += ":" + std::to_string(a) + "\r\n:" + std::to_string(b) + "\r\n";
  out += bulk("nodes") + "*" + std::to_string(nodes.size()) + "\r\n";
  for (auto& n : nodes) out += n;
  return out;
}

const address asked{"10.0.0.9", 7000};

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_cluster_protocol)

BOOST_AUTO_TEST_CASE(hash_slots_follow_the_cluster_spec) {
  BOOST_TEST(rd::crc16("123456789") == 0x31C3);
  BOOST_TEST(redis::hash_slot("123456789") == (0x31C3 & 16383));
  BOOST_TEST(redis::hash_slot("foo") == 12182);
  BOOST_TEST(redis::hash_slot("bar") == 5061);
  BOOST_TEST(redis::hash_slot("") == 0);
  // Hash tags, with the spec's own examples.
  BOOST_TEST(redis::hash_slot("{user1000}.following") == redis::hash_slot("user1000"));
  BOOST_TEST(redis::hash_slot("{user1000}.followers") == redis::hash_slot("user1000"));
  BOOST_TEST(redis::hash_tag("foo{}{bar}") == "foo{}{bar}");  // empty tag: the whole key
  BOOST_TEST(redis::hash_tag("foo{{bar}}zap") == "{bar");
  BOOST_TEST(redis::hash_tag("foo{bar}{zap}") == "bar");
  BOOST_TEST(redis::hash_tag("foo{bar") == "foo{bar");
  BOOST_TEST(redis::hash_tag("ws:{abc}hash") == "abc");
  // Computed at compile time too.
  static_assert(redis::hash_slot("{abc}x") == redis::hash_slot("abc"));
  // Every slot is reachable from three base64url characters (what a session's tag is).
  std::vector<bool> seen(redis::slot_count, false);
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string tag(3, 'A');
  for (char a : alphabet)
    for (char b : alphabet)
      for (char c : alphabet) {
        tag[0] = a;
        tag[1] = b;
        tag[2] = c;
        seen[redis::hash_slot(tag)] = true;
      }
  BOOST_TEST(std::count(seen.begin(), seen.end(), true) == redis::slot_count);
}

BOOST_AUTO_TEST_CASE(request_route) {
  redis::request r;
  BOOST_TEST(r.slot() == -1);
  r.push("GET", "ws:{abc}k").route("ws:{abc}k");
  BOOST_TEST(r.slot() == redis::hash_slot("abc"));
  r.clear();
  BOOST_TEST(r.slot() == -1);
}

BOOST_AUTO_TEST_CASE(cluster_shards_of_redis_7) {
  const std::string bytes =
      "*3\r\n" +
      shard({{0, 5460}}, {shard_node("127.0.0.1", 7000, "master", "online"),
                          shard_node("127.0.0.1", 7003, "replica", "online")}) +
      shard({{5461, 10922}}, {shard_node("127.0.0.1", 7001, "master", "online")}) +
      shard({{10923, 12000}, {12001, 16383}},
            {shard_node("127.0.0.1", 7002, "master", "failed"),
             shard_node("127.0.0.1", 7005, "replica", "online")});
  const reply r = parse_one(bytes);
  auto shards = rd::parse_cluster_shards(r, asked, false);
  BOOST_TEST_REQUIRE(shards.has_value(), shards.error().message());
  BOOST_TEST_REQUIRE(shards->size() == 3u);
  BOOST_TEST(((*shards)[0].master == address{"127.0.0.1", 7000}));
  BOOST_TEST((*shards)[0].replicas.size() == 1u);
  BOOST_TEST(((*shards)[0].slots == std::vector<rd::slot_range>{{0, 5460}}));
  BOOST_TEST(((*shards)[1].master == address{"127.0.0.1", 7001}));
  // A failed master serves nothing until its replica takes over.
  BOOST_TEST((*shards)[2].master.host.empty());
  BOOST_TEST((*shards)[2].slots.size() == 2u);

  // With TLS, nodes are reached on their tls-port; a node without one is left out.
  const std::string tls_bytes =
      "*1\r\n" + shard({{0, 16383}}, {shard_node("10.1.1.1", 7000, "master", "online", 17000)});
  auto tls = rd::parse_cluster_shards(parse_one(tls_bytes), asked, true);
  BOOST_TEST_REQUIRE(tls.has_value());
  BOOST_TEST(((*tls)[0].master == address{"10.1.1.1", 17000}));
  auto no_tls_port = rd::parse_cluster_shards(parse_one("*1\r\n" + shard({{0, 16383}}, {shard_node("h", 7000, "master", "online")})), asked, true);
  BOOST_TEST_REQUIRE(no_tls_port.has_value());
  BOOST_TEST((*no_tls_port)[0].master.host.empty());

  // An empty announced endpoint means the node that answered; "?" is unusable.
  const std::string unknown =
      "*1\r\n" + shard({{0, 100}}, {shard_node("", 7000, "master", "online")});
  auto u = rd::parse_cluster_shards(parse_one(unknown), asked, false);
  BOOST_TEST_REQUIRE(u.has_value());
  BOOST_TEST(((*u)[0].master == address{"10.0.0.9", 7000}));
  const std::string question =
      "*1\r\n" + shard({{0, 100}}, {shard_node("?", 7000, "master", "online")});
  auto q = rd::parse_cluster_shards(parse_one(question), asked, false);
  BOOST_TEST_REQUIRE(q.has_value());
  BOOST_TEST((*q)[0].master.host.empty());
}

BOOST_AUTO_TEST_CASE(malformed_cluster_shards_are_protocol_errors) {
  const auto expect_bad = [](const std::string& bytes) {
    auto r = rd::parse_cluster_shards(parse_one(bytes), asked, false);
    BOOST_TEST(!r.has_value(), bytes);
    if (!r) BOOST_TEST((r.error() == redis::client_error::protocol_error));
  };
  expect_bad("+OK\r\n");
  expect_bad("*1\r\n:1\r\n");
  expect_bad("*1\r\n*2\r\n" + bulk("slots") + "*0\r\n");  // no nodes
  expect_bad("*1\r\n" + shard({{0, 16384}}, {}));             // slot out of range
  expect_bad("*1\r\n" + shard({{10, 5}}, {}));                // reversed range
  expect_bad("*1\r\n*4\r\n" + bulk("slots") + "*1\r\n:0\r\n" + bulk("nodes") + "*0\r\n");  // odd
  expect_bad("*1\r\n" + shard({{0, 1}}, {"*4\r\n" + bulk("port") + ":99999\r\n" + bulk("ip") + bulk("h")}));
  // An empty cluster is a valid (if useless) answer.
  auto empty = rd::parse_cluster_shards(parse_one("*0\r\n"), asked, false);
  BOOST_TEST_REQUIRE(empty.has_value());
  BOOST_TEST(empty->empty());
}

BOOST_AUTO_TEST_CASE(cluster_slots_are_grouped_by_master) {
  const auto node = [](std::string_view ip, int port) {
    return "*3\r\n" + bulk(ip) + ":" + std::to_string(port) + "\r\n" + bulk(std::string(40, 'b'));
  };
  const std::string bytes = "*3\r\n"
                            "*4\r\n:0\r\n:100\r\n" + node("127.0.0.1", 7000) + node("127.0.0.1", 7003) +
                            "*3\r\n:101\r\n:200\r\n" + node("", 7001) +
                            "*3\r\n:201\r\n:16383\r\n" + node("127.0.0.1", 7000);
  auto shards = rd::parse_cluster_slots(parse_one(bytes), asked);
  BOOST_TEST_REQUIRE(shards.has_value());
  BOOST_TEST_REQUIRE(shards->size() == 2u);
  BOOST_TEST(((*shards)[0].master == address{"127.0.0.1", 7000}));
  BOOST_TEST((*shards)[0].slots.size() == 2u);
  BOOST_TEST((*shards)[0].replicas.size() == 1u);
  BOOST_TEST(((*shards)[1].master == address{"10.0.0.9", 7001}));
  BOOST_TEST(!rd::parse_cluster_slots(parse_one("*1\r\n*2\r\n:0\r\n:1\r\n"), asked).has_value());
  BOOST_TEST(!rd::parse_cluster_slots(parse_one("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n" + bulk("h")), asked).has_value());
}

BOOST_AUTO_TEST_CASE(moved_and_ask) {
  auto m = rd::parse_redirect("MOVED 3999 127.0.0.1:6381", asked);
  BOOST_TEST_REQUIRE(m.has_value());
  BOOST_TEST((m->type == rd::redirect::kind::moved));
  BOOST_TEST(m->slot == 3999);
  BOOST_TEST((m->to == address{"127.0.0.1", 6381}));
  auto a = rd::parse_redirect("ASK 12182 10.0.0.2:7002", asked);
  BOOST_TEST_REQUIRE(a.has_value());
  BOOST_TEST((a->type == rd::redirect::kind::ask));
  BOOST_TEST((a->to == address{"10.0.0.2", 7002}));
  // No better name than the one we used: ":port"; an unknown endpoint: "?".
  BOOST_TEST((rd::parse_redirect("MOVED 1 :7005", asked)->to == address{"10.0.0.9", 7005}));
  BOOST_TEST(rd::parse_redirect("MOVED 1 ?:7005", asked)->to.host.empty());
  // IPv6 endpoints come without brackets: the port follows the last colon.
  BOOST_TEST((rd::parse_redirect("MOVED 1 ::1:7005", asked)->to == address{"::1", 7005}));
  for (const char* bad : {"MOVED", "MOVED 1", "MOVED x h:1", "MOVED 16384 h:1", "MOVED 1 h",
                          "MOVED 1 h:0", "MOVED 1 h:70000", "ASK 1 h:x", "ERR MOVED 1 h:1",
                          "moved 1 h:1"}) {
    BOOST_TEST(!rd::parse_redirect(bad, asked).has_value(), bad);
  }
  BOOST_TEST(rd::retryable_cluster_error("TRYAGAIN Multiple keys request during rehashing of slot"));
  BOOST_TEST(rd::retryable_cluster_error("CLUSTERDOWN The cluster is down"));
  BOOST_TEST(rd::retryable_cluster_error("LOADING Redis is loading the dataset in memory"));
  BOOST_TEST(!rd::retryable_cluster_error("ERR unknown command"));
  BOOST_TEST(!rd::retryable_cluster_error("CROSSSLOT Keys in request don't hash to the same slot"));
}

BOOST_AUTO_TEST_CASE(requests_split_into_their_commands) {
  redis::request r;
  r.push("SET", "k", std::string("v\r\n*1\r\n", 8)).push("GET", "k").push("PING");
  const auto parts = rd::split_commands(r.payload());
  BOOST_TEST_REQUIRE(parts.size() == 3u);
  std::string joined;
  for (auto p : parts) joined += p;
  BOOST_TEST(joined == r.payload());
  redis::request get;
  get.push("GET", "k");
  BOOST_TEST(parts[1] == get.payload());
  BOOST_TEST(rd::split_commands("").empty());
  BOOST_TEST(rd::split_commands("*1\r\n$3\r\nGE").empty());
  BOOST_TEST(rd::split_commands("PING\r\n").empty());
  BOOST_TEST(rd::split_commands("*1\r\n$99\r\nGET\r\n").empty());
}

BOOST_AUTO_TEST_CASE(sentinel_replies) {
  // As redis-sentinel 7.0 answers (samples taken on loopback).
  auto known = rd::parse_master_addr(parse_one("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n35587\r\n"));
  BOOST_TEST((known.type == rd::sentinel_answer::kind::master));
  BOOST_TEST((known.master == address{"127.0.0.1", 35587}));
  BOOST_TEST((rd::parse_master_addr(parse_one("*-1\r\n")).type == rd::sentinel_answer::kind::unknown_name));
  BOOST_TEST((rd::parse_master_addr(parse_one("-ERR unknown\r\n")).type == rd::sentinel_answer::kind::bad_reply));
  BOOST_TEST((rd::parse_master_addr(parse_one("*2\r\n$1\r\nh\r\n$1\r\nx\r\n")).type == rd::sentinel_answer::kind::bad_reply));
  BOOST_TEST((rd::parse_master_addr(parse_one("*1\r\n$1\r\nh\r\n")).type == rd::sentinel_answer::kind::bad_reply));

  BOOST_TEST(rd::role_is_master(parse_one(
      "*3\r\n$6\r\nmaster\r\n:425\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$5\r\n35277\r\n$1\r\n0\r\n")));
  BOOST_TEST(!rd::role_is_master(parse_one(
      "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:35587\r\n$9\r\nconnected\r\n:425\r\n")));
  BOOST_TEST(!rd::role_is_master(parse_one("*2\r\n$8\r\nsentinel\r\n*1\r\n$8\r\nmymaster\r\n")));
  BOOST_TEST(!rd::role_is_master(parse_one("-NOAUTH Authentication required.\r\n")));

  const reply sw = parse_one("*3\r\n" + bulk("message") + bulk("+switch-master") +
                             bulk("mymaster 127.0.0.1 35587 127.0.0.1 35277"));
  auto to = rd::parse_switch_master(sw, "mymaster");
  BOOST_TEST_REQUIRE(to.has_value());
  BOOST_TEST((*to == address{"127.0.0.1", 35277}));
  BOOST_TEST(!rd::parse_switch_master(sw, "other").has_value());
  BOOST_TEST(!rd::parse_switch_master(parse_one("*3\r\n" + bulk("subscribe") + bulk("+switch-master") + ":1\r\n"), "mymaster").has_value());
  BOOST_TEST(!rd::parse_switch_master(parse_one("*3\r\n" + bulk("message") + bulk("+switch-master") + bulk("mymaster 1 2")), "mymaster").has_value());
  // Both ends of the switch: a sentinel that still names the old master loses to it.
  auto both = rd::parse_master_switch(sw, "mymaster");
  BOOST_TEST_REQUIRE(both.has_value());
  BOOST_TEST((both->from == address{"127.0.0.1", 35587}));
  BOOST_TEST((both->to == address{"127.0.0.1", 35277}));
  BOOST_TEST(!rd::parse_master_switch(parse_one("*3\r\n" + bulk("message") + bulk("+switch-master") + bulk("mymaster 127.0.0.1 x 127.0.0.1 35277")), "mymaster").has_value());

  BOOST_TEST(rd::not_master_error("READONLY You can't write against a read only replica."));
  BOOST_TEST(rd::not_master_error("LOADING Redis is loading the dataset in memory"));
  BOOST_TEST(!rd::not_master_error("ERR wrong number of arguments"));
}

BOOST_AUTO_TEST_SUITE_END()
