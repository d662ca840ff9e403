// SPDX-License-Identifier: BSL-1.0
// What the topology is trusted with, against scripted fake nodes on loopback addresses
// (127.0.0.2 and friends): a MOVED to a host the seeds do not vouch for gets no connection (and
// so no credentials), a map is installed only under the seeds' rule, nodes that left the map
// are let go, the node count is capped, the allow-list holds; Sentinel's quorum, ROLE before the
// data credentials, the configuration rules, and the warnings about TLS trust.
#include "fake_node.hpp"

#include <websession/redis/cluster.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/slot.hpp>

#include <boost/asio/detached.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace redis_test;
namespace redis = websession::redis;
using boost::system::error_code;
using websession::test::tuple_token;

namespace {

std::string name(const redis::address& a) { return a.host + ":" + std::to_string(a.port); }

redis::config cluster_config(const redis::address& seed) {
  redis::config c;
  c.deployment = redis::deployment::cluster;
  c.cluster.seeds = {seed};
  c.password = "secret";
  c.request_timeout = 1500ms;
  c.connect_timeout = 500ms;
  c.reconnect_max = 200ms;
  return c;
}

redis::request get(std::string_view key) {
  redis::request r;
  r.push("GET", key);
  r.route(key);
  return r;
}

// The error handler's messages, for checks.
struct error_log {
  std::vector<std::pair<error_code, std::string>> entries;
  auto handler() {
    return [this](const error_code& ec, std::string_view m) { entries.emplace_back(ec, std::string(m)); };
  }
  int count(redis::client_error e) const {
    int n = 0;
    for (const auto& [ec, m] : entries) n += ec == make_error_code(e) ? 1 : 0;
    return n;
  }
  bool has(std::string_view part) const {
    for (const auto& [ec, m] : entries) {
      if (m.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_cluster_trust_live)

// The security review's probe: one -MOVED 7629 127.0.0.2:P made the client connect there and
// send AUTH with the password. Now the seed is asked for the map first; its map does not name
// that host, so the request goes back to the seed (and fails after max_redirects).
BOOST_AUTO_TEST_CASE(a_moved_to_a_host_the_seeds_do_not_name_gets_no_connection) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node stranger(ioc, "127.0.0.2", [](const auto&) { return std::string("$6\r\nstolen\r\n"); });
    std::unique_ptr<fake_node> seed;
    seed = std::make_unique<fake_node>(
        ioc, "127.0.0.1",
        cluster_script([&] { return shards_reply({{seed->addr()}}); },
                       [&](const auto&) {
                         return "-MOVED " + std::to_string(redis::hash_slot("k")) + " " +
                                name(stranger.addr()) + "\r\n";
                       }));
    redis::cluster c(ioc.get_executor(), cluster_config(seed->addr()));
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST(ec == make_error_code(redis::error::too_many_redirects), ec.message());
    BOOST_TEST(stranger.accepted() == 0);
    BOOST_TEST(stranger.count("AUTH") == 0);
    BOOST_TEST(seed->count("CLUSTER") >= 2);  // the MOVED made it ask the seed again
    BOOST_TEST(c.status().moved == 0u);
    c.cancel();
    stranger.stop();
    seed->stop();
  });
}

// When the seeds' map agrees with the MOVED (the slot did move there), the request goes there.
BOOST_AUTO_TEST_CASE(a_moved_is_followed_once_the_seeds_map_agrees) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node target(ioc, "127.0.0.2",
                     cluster_script([] { return std::string("*0\r\n"); },
                                    [](const auto&) { return std::string("$2\r\nok\r\n"); }));
    bool moved = false;
    std::unique_ptr<fake_node> seed;
    seed = std::make_unique<fake_node>(
        ioc, "127.0.0.1",
        cluster_script(
            [&] { return shards_reply({{moved ? target.addr() : seed->addr()}}); },
            [&](const auto&) {
              moved = true;
              return "-MOVED " + std::to_string(redis::hash_slot("k")) + " " +
                     name(target.addr()) + "\r\n";
            }));
    redis::cluster c(ioc.get_executor(), cluster_config(seed->addr()));
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message() << "; " << c.last_error_message());
    BOOST_TEST(replies.at(0).str == "ok");
    BOOST_TEST(target.count("GET") == 1);
    BOOST_TEST(target.count("CLUSTER") == 0);  // the seed told the map, not the target
    c.cancel();
    target.stop();
    seed->stop();
  });
}

BOOST_AUTO_TEST_CASE(a_moved_for_another_slot_is_refused) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    std::unique_ptr<fake_node> seed;
    seed = std::make_unique<fake_node>(
        ioc, "127.0.0.1",
        cluster_script([&] { return shards_reply({{seed->addr()}}); },
                       [&](const auto&) {
                         return "-MOVED " + std::to_string(redis::hash_slot("k") ^ 1) + " " +
                                name(seed->addr()) + "\r\n";
                       }));
    redis::cluster c(ioc.get_executor(), cluster_config(seed->addr()));
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST(ec == make_error_code(redis::client_error::bad_redirect), ec.message());
    BOOST_TEST(seed->count("GET") == 1);
    BOOST_TEST(c.status().moved == 0u);
    c.cancel();
    seed->stop();
  });
}

// The seeds are asked before the nodes learned from them; a node that is not a seed cannot
// bring a new host into the map.
BOOST_AUTO_TEST_CASE(seeds_first_and_only_seeds_introduce_hosts) {
  error_log log;  // outlives the io_context's work (run_test drains it)
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node newcomer(ioc, "127.0.0.3",
                       cluster_script([] { return std::string("*0\r\n"); },
                                      [](const auto&) { return std::string("$1\r\nx\r\n"); }));
    std::unique_ptr<fake_node> node;
    bool hijacked = false;
    node = std::make_unique<fake_node>(
        ioc, "127.0.0.2",
        cluster_script(
            [&] { return shards_reply({{hijacked ? newcomer.addr() : node->addr()}}); },
            [](const auto&) { return std::string("$1\r\nv\r\n"); }));
    fake_node seed(ioc, "127.0.0.1",
                   cluster_script([&] { return shards_reply({{node->addr()}}); },
                                  [](const auto&) { return std::string("$1\r\ns\r\n"); }));
    auto cfg = cluster_config(seed.addr());
    cfg.cluster.refresh_interval = 100ms;
    redis::cluster c(ioc.get_executor(), cfg);
    c.set_error_handler(log.handler());
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message() << "; " << c.last_error_message());
    BOOST_TEST(replies.at(0).str == "v");
    co_await sleep_for(600ms);
    BOOST_TEST(seed.count("CLUSTER") >= 3);
    BOOST_TEST(node->count("CLUSTER") == 0);  // the seed answered every time
    // The seed goes away; the node now names a host nobody vouched for.
    seed.stop();
    hijacked = true;
    co_await wait_until([&] { return node->count("CLUSTER") >= 2; }, 3s);
    co_await sleep_for(300ms);
    BOOST_TEST(node->count("CLUSTER") >= 2);
    BOOST_TEST(newcomer.accepted() == 0);
    BOOST_TEST(log.has("only the seeds introduce hosts"));
    auto [ec2, replies2] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST(!ec2);  // the old map still serves
    c.cancel();
    newcomer.stop();
    node->stop();
  });
}

// A node that leaves the map is let go once its requests are done.
BOOST_AUTO_TEST_CASE(connections_of_nodes_that_left_the_map_close) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node leaving(ioc, "127.0.0.2",
                      cluster_script([] { return std::string("*0\r\n"); },
                                     [](const auto&) { return std::string("$1\r\nL\r\n"); }));
    bool left = false;
    std::unique_ptr<fake_node> seed;
    seed = std::make_unique<fake_node>(
        ioc, "127.0.0.1",
        cluster_script(
            [&] {
              if (left) return shards_reply({{seed->addr()}});
              return shards_reply({{seed->addr(), 0, 8191}, {leaving.addr(), 8192, 16383}});
            },
            [](const auto&) { return std::string("$1\r\nS\r\n"); }));
    auto cfg = cluster_config(seed->addr());
    cfg.cluster.refresh_interval = 100ms;
    redis::cluster c(ioc.get_executor(), cfg);
    c.async_run(asio::detached);
    const auto req = get("foo");  // slot 12182
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message() << "; " << c.last_error_message());
    BOOST_TEST(replies.at(0).str == "L");
    BOOST_TEST(leaving.open() == 1);
    left = true;
    BOOST_TEST(co_await wait_until([&] { return leaving.open() == 0; }, 3s),
               "the connection of a node that left the map is still open");
    auto [ec2, replies2] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST_REQUIRE(!ec2, ec2.message());
    BOOST_TEST(replies2.at(0).str == "S");
    BOOST_TEST(leaving.accepted() == 1);
    c.cancel();
    leaving.stop();
    seed->stop();
  });
}

BOOST_AUTO_TEST_CASE(a_map_beyond_the_node_cap_is_refused) {
  error_log log;  // outlives the io_context's work (run_test drains it)
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    std::vector<std::unique_ptr<fake_node>> others;
    for (const char* ip : {"127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
      others.push_back(std::make_unique<fake_node>(
          ioc, ip,
          cluster_script([] { return std::string("*0\r\n"); },
                         [](const auto&) { return std::string("$1\r\nx\r\n"); })));
    }
    fake_node seed(ioc, "127.0.0.1",
                   cluster_script(
                       [&] {
                         return shards_reply({{others[0]->addr(), 0, 5000, {others[2]->addr()}},
                                              {others[1]->addr(), 5001, 16383}});
                       },
                       [](const auto&) { return std::string("$1\r\ns\r\n"); }));
    auto cfg = cluster_config(seed.addr());
    cfg.cluster.max_nodes = 2;
    cfg.request_timeout = 600ms;
    redis::cluster c(ioc.get_executor(), cfg);
    c.set_error_handler(log.handler());
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST(ec == make_error_code(redis::error::not_connected), ec.message());
    BOOST_TEST(log.count(redis::client_error::too_many_nodes) >= 1);
    BOOST_TEST(c.last_error() == make_error_code(redis::client_error::too_many_nodes),
               c.last_error_message());
    for (auto& n : others) BOOST_TEST(n->accepted() == 0);
    c.cancel();
    for (auto& n : others) n->stop();
    seed.stop();
  });
}

BOOST_AUTO_TEST_CASE(the_allow_list_holds) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node outside(ioc, "127.0.0.2",
                      cluster_script([] { return std::string("*0\r\n"); },
                                     [](const auto&) { return std::string("$1\r\nx\r\n"); }));
    fake_node seed(ioc, "127.0.0.1",
                   cluster_script([&] { return shards_reply({{outside.addr()}}); },
                                  [](const auto&) { return std::string("$1\r\ns\r\n"); }));
    auto cfg = cluster_config(seed.addr());
    cfg.cluster.allowed_hosts = {"127.0.0.1/32"};
    cfg.request_timeout = 600ms;
    redis::cluster c(ioc.get_executor(), cfg);
    c.async_run(asio::detached);
    const auto req = get("k");
    auto [ec, replies] = co_await c.async_exec(req, tuple_token);
    BOOST_TEST(ec == make_error_code(redis::error::not_connected), ec.message());
    BOOST_TEST(c.last_error() == make_error_code(redis::client_error::host_not_allowed),
               c.last_error_message());
    BOOST_TEST(outside.accepted() == 0);
    c.cancel();
    outside.stop();
    seed.stop();
  });
  auto cfg = cluster_config({"127.0.0.1", 7000});
  cfg.cluster.allowed_hosts = {"10.0.0.0/8"};
  BOOST_CHECK_THROW(redis::cluster(asio::system_executor(), cfg), std::invalid_argument);
  cfg.cluster.allowed_hosts = {"10.0.0.0/99"};
  BOOST_CHECK_THROW(redis::cluster(asio::system_executor(), cfg), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(tls_trust_warnings) {
  asio::io_context ioc;
  auto cfg = cluster_config({"127.0.0.1", free_port()});
  cfg.tls = true;
  const auto warnings = [&](const redis::config& c) {
    error_log log;
    asio::io_context local;
    {
      redis::cluster cl(local.get_executor(), c);
      cl.set_error_handler(log.handler());
      cl.async_run(asio::detached);
      local.run_for(50ms);
      cl.cancel();
    }
    local.run_for(200ms);
    return log.count(redis::client_error::insecure_setup);
  };
  BOOST_TEST(warnings(cfg) == 1);  // public trust store, no pinned name
  auto pinned = cfg;
  pinned.tls_server_name = "cache.internal";
  BOOST_TEST(warnings(pinned) == 0);
  auto unverified = pinned;
  unverified.verify_peer = false;
  BOOST_TEST(warnings(unverified) == 1);
  auto strict = cfg;
  strict.strict_tls = true;
  BOOST_CHECK_THROW(redis::cluster(ioc.get_executor(), strict), std::invalid_argument);
  strict.tls_server_name = "cache.internal";
  BOOST_CHECK_NO_THROW(redis::cluster(ioc.get_executor(), strict));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_sentinel_trust)

namespace {

redis::config sentinel_config(std::vector<redis::address> sentinels) {
  redis::config c;
  c.deployment = redis::deployment::sentinel;
  c.sentinel.sentinels = std::move(sentinels);
  c.sentinel.master_name = "m";
  c.sentinel.subscribe = false;
  c.sentinel.password = "sentinelpw";
  c.password = "secret";
  c.request_timeout = 800ms;
  c.connect_timeout = 500ms;
  c.reconnect_max = 100ms;
  return c;
}

std::string master_at(const redis::address& a) {
  return "*2\r\n" + resp_bulk(a.host) + resp_bulk(std::to_string(a.port));
}

fake_node::script sentinel_script(std::function<redis::address()> master) {
  return [master = std::move(master)](const std::vector<std::string>& c) {
    if (c[0] == "SENTINEL") return master_at(master());
    return std::string("+OK\r\n");
  };
}

fake_node::script data_script(bool is_master) {
  return [is_master](const std::vector<std::string>& c) {
    if (c[0] == "ROLE") {
      return is_master ? std::string("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")
                       : std::string("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n$9\r\nconnected\r\n:0\r\n");
    }
    if (c[0] == "GET") return std::string("$2\r\nok\r\n");
    if (c[0] == "PING") return std::string("+PONG\r\n");
    return std::string("+OK\r\n");
  };
}

}  // namespace

// A server the sentinels name is asked ROLE before anything else: one that is not a master never
// receives the data password.
BOOST_AUTO_TEST_CASE(role_is_checked_before_the_data_credentials) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node replica(ioc, "127.0.0.2", data_script(false));
    fake_node sentinel(ioc, "127.0.0.1", sentinel_script([&] { return replica.addr(); }));
    redis::connection conn(ioc.get_executor(), sentinel_config({sentinel.addr()}));
    conn.async_run(asio::detached);
    co_await wait_until([&] { return replica.count("ROLE") >= 2; }, 3s);
    BOOST_TEST(replica.count("ROLE") >= 2);
    BOOST_TEST(replica.count("AUTH") == 0);
    BOOST_TEST(replica.count("CLIENT") == 0);
    BOOST_TEST(conn.last_error() == make_error_code(redis::client_error::not_master),
               conn.last_error_message());
    BOOST_TEST(!conn.connected());
    conn.cancel();
    replica.stop();
    sentinel.stop();
  });
}

BOOST_AUTO_TEST_CASE(a_quorum_of_sentinels_must_agree) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    fake_node good(ioc, "127.0.0.2", data_script(true));
    fake_node evil(ioc, "127.0.0.3", data_script(true));
    fake_node s1(ioc, "127.0.0.1", sentinel_script([&] { return evil.addr(); }));
    fake_node s2(ioc, "127.0.0.1", sentinel_script([&] { return good.addr(); }));
    fake_node s3(ioc, "127.0.0.1", sentinel_script([&] { return good.addr(); }));
    auto cfg = sentinel_config({s1.addr(), s2.addr(), s3.addr()});
    cfg.sentinel.quorum = 2;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    redis::request req;
    req.push("GET", "k");
    auto [ec, replies] = co_await conn.async_exec(req, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message() << "; " << conn.last_error_message());
    BOOST_TEST((conn.server_address() == good.addr()));
    BOOST_TEST(evil.accepted() == 0);
    conn.cancel();
    // Only the dissenting sentinel answers: no quorum, no move.
    s2.stop();
    s3.stop();
    redis::connection lone(ioc.get_executor(), cfg);
    lone.async_run(asio::detached);
    auto [ec2, replies2] = co_await lone.async_exec(req, tuple_token);
    BOOST_TEST(ec2 == make_error_code(redis::error::not_connected));
    BOOST_TEST(lone.last_error() == make_error_code(redis::client_error::no_quorum),
               lone.last_error_message());
    BOOST_TEST(evil.accepted() == 0);
    lone.cancel();
    good.stop();
    evil.stop();
    s1.stop();
  });
}

BOOST_AUTO_TEST_CASE(configuration_rules_and_the_password_warning) {
  asio::io_context ioc;
  auto cfg = sentinel_config({{"127.0.0.1", free_port()}});
  auto tls_data_plain_sentinel = cfg;
  tls_data_plain_sentinel.tls = true;
  tls_data_plain_sentinel.tls_server_name = "x";
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), tls_data_plain_sentinel),
                    std::invalid_argument);
  tls_data_plain_sentinel.sentinel.tls = true;
  BOOST_CHECK_NO_THROW(redis::connection(ioc.get_executor(), tls_data_plain_sentinel));
  auto quorum = cfg;
  quorum.sentinel.quorum = 0;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), quorum), std::invalid_argument);
  quorum.sentinel.quorum = 2;  // one sentinel
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), quorum), std::invalid_argument);
  const auto warnings = [&](const redis::config& c) {
    error_log log;
    asio::io_context local;
    {
      redis::connection conn(local.get_executor(), c);
      conn.set_error_handler(log.handler());
      conn.async_run(asio::detached);
      local.run_for(100ms);
      BOOST_TEST(conn.last_error() != make_error_code(redis::client_error::insecure_setup));
    }
    local.run_for(200ms);
    return log.count(redis::client_error::insecure_setup);
  };
  BOOST_TEST(warnings(cfg) == 0);
  auto open = cfg;
  open.sentinel.password.clear();
  BOOST_TEST(warnings(open) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
