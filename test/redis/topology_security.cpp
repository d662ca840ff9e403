// SPDX-License-Identifier: BSL-1.0
// AUTH, ACL users and TLS on Redis Cluster and Redis Sentinel, against real servers on loopback:
// the same credentials and TLS settings as a single connection, applied to every cluster node;
// the sentinels' own password set apart from the data nodes'; and wrong credentials failing
// clearly (the right error code and message, requests failing within their deadline).
#include "server_fixture.hpp"
#include "tls_fixture.hpp"
#include "topology_fixture.hpp"

#include <websession/redis/client.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace websession;
using namespace redis_test;
using boost::system::error_code;

namespace {

using steady = std::chrono::steady_clock;

// An ACL user for the client under test, on every node (the fixture itself uses the default
// user and its password).
const std::vector<std::string> app_user_args{"--user", "app", "on", ">apppw", "~*", "&*", "+@all"};

std::string cluster_url(std::string_view scheme, std::string_view userinfo,
                        const std::vector<std::uint16_t>& ports) {
  std::string u = std::string(scheme) + "://";
  if (!userinfo.empty()) u += std::string(userinfo) + "@";
  for (auto p : ports) u += "127.0.0.1:" + std::to_string(p) + ",";
  u.pop_back();
  return u;
}

std::string sentinel_url(std::string_view userinfo, const redis_sentinel_group& g) {
  std::string u = "redis-sentinel://";
  if (!userinfo.empty()) u += std::string(userinfo) + "@";
  for (auto p : g.sentinel_ports()) u += "127.0.0.1:" + std::to_string(p) + ",";
  u.pop_back();
  return u + "#" + g.master_name();
}

// Keys "tt:{N}k" until every master in `masters` owns at least `per_master` of them, by the
// owner the fixture sees (owner_port(slot)).
template <class OwnerPort>
std::map<std::uint16_t, std::vector<std::string>> keys_on_every_master(
    const std::vector<std::uint16_t>& masters, std::size_t per_master, OwnerPort owner_port) {
  std::map<std::uint16_t, std::vector<std::string>> by_master;
  for (auto m : masters) by_master[m];
  for (int i = 0;; ++i) {
    bool enough = true;
    for (auto& [m, keys] : by_master) enough = enough && keys.size() >= per_master;
    if (enough) break;
    const std::string k = "tt:{" + std::to_string(i) + "}k";
    const int owner = owner_port(key_slot(k));
    auto it = by_master.find(static_cast<std::uint16_t>(owner));
    if (it != by_master.end() && it->second.size() < per_master) it->second.push_back(k);
  }
  return by_master;
}

// insert, load, replace, load on every key through `store`; every value is checked.
asio::awaitable<void> round_trips(redis_store& store,
                                  const std::map<std::uint16_t, std::vector<std::string>>& keys,
                                  std::string_view what) {
  for (const auto& [master, list] : keys) {
    for (const auto& k : list) {
      const std::string v1 = "v1:" + k;
      auto ins = co_await store.insert(k, store_write{v1, std::chrono::seconds(60), ""});
      BOOST_TEST_REQUIRE(ins.has_value(), what << ": insert " << k << " (master " << master
                                                << "): " << ins.error().message());
      auto got = co_await store.load(k);
      BOOST_TEST_REQUIRE(got.has_value(), what << ": load " << k << ": " << got.error().message());
      BOOST_TEST(got->value == v1);
      BOOST_TEST(got->version == *ins);
      const std::string v2 = "v2:" + k;
      auto rep = co_await store.replace(k, store_write{v2, std::chrono::seconds(60), ""}, *ins);
      BOOST_TEST_REQUIRE(rep.has_value(),
                         what << ": replace " << k << ": " << rep.error().message());
      BOOST_TEST(*rep > *ins);
      got = co_await store.load(k);
      BOOST_TEST_REQUIRE(got.has_value(), what << ": load " << k << ": " << got.error().message());
      BOOST_TEST(got->value == v2);
      BOOST_TEST(got->version == *rep);
    }
  }
}

// A request through a client that cannot get in: fails with store_unavailable, within the
// request deadline (plus scheduling slack), and nothing hangs.
template <class Store>
asio::awaitable<void> fails_in_time(Store& store, std::chrono::milliseconds deadline,
                                    const std::string& what) {
  const auto start = steady::now();
  auto r = co_await store.load("tt:{abc}x");
  const auto took = steady::now() - start;
  BOOST_TEST(!r.has_value(), what << ": the request succeeded");
  if (!r) BOOST_TEST((r.error() == error::store_unavailable), what << ": " << r.error().message());
  BOOST_TEST((took < deadline + std::chrono::milliseconds(500)),
             what << ": took "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
}


bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// How many of the node's client connections are authenticated as `user` (CLIENT LIST).
int clients_as(const redis_cluster& cluster, std::uint16_t port, std::string_view user) {
  const std::string list = cluster.command_ok(port, {"CLIENT", "LIST"}).str;
  int n = 0;
  for (std::size_t pos = 0; (pos = list.find(" user=" + std::string(user) + " ", pos)) !=
                            std::string::npos;
       ++pos) {
    ++n;
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_cluster_security)

// Every node wants a password (requirepass, masterauth for the replicas) and knows an ACL user
// "app": a store on redis-cluster://app:apppw@... reads and writes on every master, and every
// master sees our connection authenticated as "app"; the default user's password alone works
// too.
BOOST_AUTO_TEST_CASE(acl_user_and_password_on_every_node) {
  redis_cluster::options o;
  o.replicas_per_master = 1;
  o.args = app_user_args;
  o.password = "pw";
  redis_cluster cluster(o);
  const auto masters = cluster.master_ports();
  BOOST_TEST_REQUIRE(masters.size() == 3u);
  const auto keys = keys_on_every_master(masters, 3, [&](int slot) {
    return cluster.slot_owner_port(slot);
  });
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url("redis-cluster", "app:apppw", {cluster.port(0)}));
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST(cfg->username == "app");
    BOOST_TEST(cfg->password == "apppw");
    auto c = std::make_shared<redis::cluster>(ioc.get_executor(), failover_config(*cfg));
    c->async_run(asio::detached);
    redis_store store(c);
    co_await round_trips(store, keys, "app user");
    for (const auto& [master, list] : keys) {
      for (const auto& k : list) {
        BOOST_TEST(cluster.command_ok(master, {"EXISTS", k}).integer == 1,
                   k << " is not on master " << master);
      }
      BOOST_TEST(clients_as(cluster, master, "app") >= 1,
                 "master " << master << " has no client authenticated as app");
    }
    const auto st = c->status();
    BOOST_TEST(st.covered_slots == 16384u);
    std::size_t connected_masters = 0;
    for (const auto& n : st.nodes) connected_masters += n.master && n.connected ? 1 : 0;
    BOOST_TEST(connected_masters == 3u);
    BOOST_TEST(!c->last_error(), c->last_error_message());
    auto pe = co_await store.ping();
    BOOST_TEST(!pe, pe.message());

    // The default user's password alone (AUTH password).
    auto def = redis::parse_url(cluster_url("redis-cluster", ":pw", {cluster.port(1)}));
    BOOST_TEST_REQUIRE(def.has_value());
    auto c2 = std::make_shared<redis::cluster>(ioc.get_executor(), failover_config(*def));
    c2->async_run(asio::detached);
    redis_store store2(c2);
    for (const auto& [master, list] : keys) {
      auto got = co_await store2.load(list.front());
      BOOST_TEST_REQUIRE(got.has_value(), "default user: load " << list.front() << ": "
                                                                << got.error().message());
      BOOST_TEST(got->value == "v2:" + list.front());
    }
    c->cancel();
    c2->cancel();
  });
}

// A wrong password, a wrong user and no credentials at all: the requests fail with
// store_unavailable within request_timeout, the error handler reports auth_failed with the
// server's words, and last_error() says that AUTH was refused (not just "no map").
BOOST_AUTO_TEST_CASE(wrong_credentials_fail_clearly) {
  redis_cluster::options o;
  o.replicas_per_master = 0;
  o.args = app_user_args;
  o.password = "pw";
  redis_cluster cluster(o);
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    const auto deadline = std::chrono::milliseconds(800);
    struct attempt {
      std::string userinfo;
      std::string server_says;  // in the error message
    };
    const std::vector<attempt> attempts{
        {"app:wrong", "WRONGPASS"}, {"nobody:apppw", "WRONGPASS"}, {":wrong", "WRONGPASS"},
        {"", "NOAUTH"}};
    std::string unclear;  // the attempts whose last_error() does not say that AUTH failed
    for (const attempt& a : attempts) {
      const std::string url = cluster_url("redis-cluster", a.userinfo, cluster.ports());
      auto cfg = failover_config(redis::parse_url(url).value(), deadline);
      auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
      std::vector<std::pair<error_code, std::string>> reported;
      c->set_error_handler([&](const error_code& ec, std::string_view message) {
        if (reported.size() < 20) reported.emplace_back(ec, std::string(message));
      });
      c->async_run(asio::detached);
      redis_store store(c);
      co_await fails_in_time(store, deadline, url);
      // A second request: the cluster keeps failing the same way (no hang after the first).
      co_await fails_in_time(store, deadline, url + " (again)");
      const std::string message = c->last_error_message();
      BOOST_TEST_MESSAGE(url << ": last_error() " << c->last_error().message() << ": " << message);
      if (c->last_error() != redis::client_error::auth_failed || !contains(message, "AUTH") ||
          !contains(message, a.server_says)) {
        unclear += "\n  " + url + ": last_error() is " + c->last_error().message() + ": " + message;
      }
      // The node connections do know (and report) why.
      bool handler_saw_auth = false;
      for (const auto& [ec, m] : reported) {
        // "AUTH failed: WRONGPASS ...", or without a password "CLIENT SETNAME failed: NOAUTH
        // ..." (the first command of the connect).
        handler_saw_auth = handler_saw_auth || (ec == redis::client_error::auth_failed &&
                                                contains(m, a.server_says));
      }
      BOOST_TEST(handler_saw_auth, url << ": the error handler never reported auth_failed with "
                                       << a.server_says);
      BOOST_TEST(!c->connected());
      c->cancel();
    }
    BOOST_TEST(unclear.empty(), "the cluster's last_error() hides the AUTH failure:" << unclear);
  });
}

// TLS on every node (bus and replication too) besides the password and the ACL user: a store on
// rediss-cluster://app:apppw@... (seeds on the TLS ports, config::ca_file set) works on every
// master, routes by the "tls-port" of CLUSTER SHARDS (the plain ports are open too, so a client
// that took "port" would fail its handshakes), and follows a MOVED to the TLS port after a slot
// moved. A CA that did not sign the nodes' certificate fails in time.
// The cluster's last_error_message() names the failed certificate verification.
BOOST_AUTO_TEST_CASE(tls_cluster_with_acl_user) {
  test_pki pki;
  redis_cluster::options o;
  o.replicas_per_master = 1;
  o.args = app_user_args;
  o.password = "pw";
  o.tls = {pki.file("server.crt"), pki.file("server.key"), pki.file("ca.crt")};
  std::unique_ptr<redis_cluster> made;
  try {
    made = std::make_unique<redis_cluster>(o);
  } catch (const std::exception& e) {
    // Only a redis-server built without TLS is a reason to skip; anything else is a failure.
    const std::string why = e.what();
    if (contains(why, "tls") && contains(why, "exited at start")) {
      BOOST_WARN_MESSAGE(false, "SKIPPED: redis-server could not start with TLS: " << why);
      return;
    }
    throw;
  }
  redis_cluster& cluster = *made;
  // What the cluster says over TLS: "tls-port" beside "port".
  {
    const auto shards = redis_cli(cluster.port(0), {"CLUSTER", "SHARDS"}, 5s, cluster.auth());
    BOOST_TEST(contains(shards, "tls-port"), shards);
  }
  const auto masters = cluster.master_ports();
  BOOST_TEST_REQUIRE(masters.size() == 3u);
  const auto keys = keys_on_every_master(masters, 2, [&](int slot) {
    return cluster.slot_owner_port(slot);
  });
  const auto tls_of = [&](std::uint16_t plain) {
    return cluster.tls_port(cluster.index_of(plain));
  };
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url("rediss-cluster", "app:apppw", {cluster.tls_port(0)}));
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST(cfg->tls);
    cfg->ca_file = pki.file("ca.crt");
    // No periodic refresh during the test: only the MOVED below may teach the client the slot's
    // new owner. With failover_config's 1 s, a migration slower than that (ThreadSanitizer, a
    // loaded machine) let the refresh find the new owner first, and no MOVED was followed.
    auto client_cfg = failover_config(*cfg);
    client_cfg.cluster.refresh_interval = std::chrono::minutes(10);
    auto c = std::make_shared<redis::cluster>(ioc.get_executor(), client_cfg);
    c->async_run(asio::detached);
    redis_store store(c);
    co_await round_trips(store, keys, "TLS");
    BOOST_TEST(!c->last_error(), c->last_error_message());
    const auto st = c->status();
    BOOST_TEST(st.covered_slots == 16384u);
    std::set<std::uint16_t> tls_ports(cluster.tls_ports().begin(), cluster.tls_ports().end());
    std::set<std::uint16_t> routed;
    for (const auto& n : st.nodes) {
      BOOST_TEST(tls_ports.count(n.node.port) == 1u,
                 "the map names " << n.node.host << ":" << n.node.port << ", not a TLS port");
      if (n.master) {
        routed.insert(n.node.port);
        BOOST_TEST(n.connected, n.node.port);
      }
    }
    std::set<std::uint16_t> expected;
    for (auto m : masters) expected.insert(tls_of(m));
    BOOST_TEST((routed == expected), "the client routes to other masters than the TLS ports");
    for (const auto& [master, list] : keys) {
      BOOST_TEST(clients_as(cluster, master, "app") >= 1, "master " << master);
    }

    // One slot (holding a key) moves to another master, key included (MIGRATE over TLS with
    // AUTH): the old owner answers MOVED with the new owner's TLS port, which the client follows.
    // A map refresh that was still due from the start (the first requests wait for the map and
    // for the nodes' TLS handshakes, and each asks for the next refresh) may run during the move
    // and learn the new owner first, under load (seen under a CPU hog): then no MOVED is owed,
    // and the slot moves back and again (5 moves at most) until a move is followed by a MOVED;
    // a move without one fails unless the client read the map again meanwhile.
    const std::string& moving = keys.begin()->second.front();
    const int slot = key_slot(moving);
    std::uint16_t from = keys.begin()->first;
    std::uint16_t to = std::next(keys.begin())->first;
    int moves = 0;
    for (;; ++moves, std::swap(from, to)) {
      const auto moved_before = c->status().moved;
      const auto refreshes_before = c->status().refreshes;
      co_await off_loop([&] { cluster.migrate_slot(slot, from, to); });
      BOOST_TEST(cluster.command_ok(to, {"EXISTS", moving}).integer == 1);
      auto got = co_await store.load(moving);
      BOOST_TEST_REQUIRE(got.has_value(), "load after the slot moved: " << got.error().message()
                                                                        << "; "
                                                                        << c->last_error_message());
      BOOST_TEST(got->value == "v2:" + moving);
      const bool moved = c->status().moved > moved_before;
      const bool refreshed = c->status().refreshes != refreshes_before;
      if (!moved && refreshed && moves < 4) continue;
      BOOST_TEST(moved, "no MOVED was followed (" << moves + 1
                                                  << " moves; a map refresh during this one: "
                                                  << refreshed << "); last error: "
                                                  << c->last_error_message());
      break;
    }
    BOOST_TEST_MESSAGE("slot " << slot << " moved " << moves + 1 << " times");
    bool found = false;
    for (const auto& n : c->status().nodes) {
      if (n.master && n.node.port == tls_of(to) && n.connected) found = true;
    }
    BOOST_TEST(found, "the new owner's TLS port is not a connected master of the map");

    // A CA that did not sign the nodes' certificate: no map, a clear reason, in time.
    const auto deadline = std::chrono::milliseconds(800);
    auto untrusted_cfg = failover_config(*cfg, deadline);
    untrusted_cfg.ca_file = pki.file("other-ca.crt");
    auto untrusted = std::make_shared<redis::cluster>(ioc.get_executor(), untrusted_cfg);
    bool handler_saw_verify = false;
    untrusted->set_error_handler([&](const error_code&, std::string_view message) {
      handler_saw_verify =
          handler_saw_verify || contains(std::string(message), "certificate verify failed");
    });
    untrusted->async_run(asio::detached);
    redis_store untrusted_store(untrusted);
    co_await fails_in_time(untrusted_store, deadline, "wrong CA");
    BOOST_TEST(handler_saw_verify, "the error handler never reported the failed verification");
    BOOST_TEST_MESSAGE("wrong CA: last_error() " << untrusted->last_error().message() << ": "
                                                 << untrusted->last_error_message());
    BOOST_TEST(contains(untrusted->last_error_message(), "certificate verify failed"),
               "the cluster's last_error() hides the TLS failure: "
                   << untrusted->last_error().message() << ": "
                   << untrusted->last_error_message());
    c->cancel();
    untrusted->cancel();
  });
}

// A TLS-only cluster (--port 0, TLS bus): CLUSTER SHARDS reports only "tls-port", no "port",
// and a store on rediss-cluster://... works on every master through it. Built here rather than
// with redis_cluster, whose own checks speak plain RESP.
BOOST_AUTO_TEST_CASE(tls_only_cluster) {
  test_pki pki;
  const std::vector<std::string> cli_tls{"--tls", "--cacert", pki.file("ca.crt")};
  std::vector<std::unique_ptr<redis_server>> nodes;
  for (int i = 0; i < 3; ++i) {
    redis_server::options so;
    so.tls = true;
    // A node timeout of 5 s, not the fixture's 1 s: it is also how long a node gives the
    // handshake of a CLUSTER MEET (over TLS here) before forgetting the new node, and redis-cli
    // meets each node once: on a loaded machine (CI under ThreadSanitizer) a 1 s handshake
    // timed out and redis-cli waited for the join until its deadline.
    so.args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-node-timeout", "5000", "--cluster-port", std::to_string(free_port()),
               "--tls-cert-file", pki.file("server.crt"), "--tls-key-file", pki.file("server.key"),
               "--tls-ca-cert-file", pki.file("ca.crt"), "--tls-auth-clients", "no",
               "--tls-cluster", "yes", "--tls-replication", "yes"};
    try {
      nodes.push_back(std::make_unique<redis_server>(so));
    } catch (const std::exception& e) {
      if (contains(e.what(), "exited at start") && contains(e.what(), "tls")) {
        BOOST_WARN_MESSAGE(false, "SKIPPED: redis-server could not start with TLS: " << e.what());
        return;
      }
      throw;
    }
  }
  std::vector<std::uint16_t> ports;
  for (auto& n : nodes) ports.push_back(n->port());
  {
    std::vector<std::string> create{"redis-cli"};
    create.insert(create.end(), cli_tls.begin(), cli_tls.end());
    create.insert(create.end(), {"--cluster", "create"});
    for (auto p : ports) create.push_back("127.0.0.1:" + std::to_string(p));
    create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    const auto made = run_process(create, 30s);
    BOOST_TEST_REQUIRE((!made.timed_out && made.exit_code == 0),
                       join_args(create) << " failed: " << made.output);
  }
  // Until every node says cluster_state:ok and knows the three masters.
  const auto tls_cli = [&](std::uint16_t port, std::vector<std::string> args) {
    args.insert(args.begin(), cli_tls.begin(), cli_tls.end());
    return redis_cli(port, std::move(args), 5s);
  };
  const auto give_up = steady::now() + 15s;
  for (;;) {
    bool ok = true;
    std::string last;
    for (auto p : ports) {
      last = tls_cli(p, {"CLUSTER", "INFO"});
      ok = ok && info_field(last, "cluster_state") == "ok" &&
           info_field(last, "cluster_known_nodes") == "3" &&
           info_field(last, "cluster_slots_ok") == "16384";
    }
    if (ok) break;
    BOOST_TEST_REQUIRE((steady::now() < give_up), "the TLS cluster did not become ok: " << last);
    std::this_thread::sleep_for(50ms);
  }
  // CLUSTER SHARDS (redis-cli prints each field name on a line of its own).
  const std::string shards = tls_cli(ports[0], {"CLUSTER", "SHARDS"});
  BOOST_TEST(contains(shards, "\ntls-port\n"), shards);
  BOOST_TEST(!contains(shards, "\nport\n"), shards);
  // The owner of a slot, from CLUSTER NODES (over TLS it names the TLS ports).
  const auto view = parse_cluster_nodes(tls_cli(ports[0], {"CLUSTER", "NODES"}));
  const auto owner = [&](int slot) -> int {
    for (const auto& e : view) {
      if (!e.is_master()) continue;
      for (const auto& r : e.slots) {
        if (slot >= r.first && slot <= r.second) return e.port;
      }
    }
    return -1;
  };
  const auto keys = keys_on_every_master(ports, 2, owner);
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url("rediss-cluster", "", {ports[2]}));
    BOOST_TEST_REQUIRE(cfg.has_value());
    cfg->ca_file = pki.file("ca.crt");
    auto c = std::make_shared<redis::cluster>(ioc.get_executor(), failover_config(*cfg));
    c->async_run(asio::detached);
    redis_store store(c);
    co_await round_trips(store, keys, "TLS only");
    BOOST_TEST(!c->last_error(), c->last_error_message());
    const auto st = c->status();
    BOOST_TEST(st.covered_slots == 16384u);
    std::set<std::uint16_t> routed;
    for (const auto& n : st.nodes) {
      if (n.master && n.connected) routed.insert(n.node.port);
    }
    BOOST_TEST((routed == std::set<std::uint16_t>(ports.begin(), ports.end())));
    for (const auto& [master, list] : keys) {
      for (const auto& k : list) {
        BOOST_TEST(contains(tls_cli(master, {"EXISTS", k}), "1"), k << " not on " << master);
      }
    }
    c->cancel();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_sentinel_security)

// Sentinels with a password of their own (requirepass), data nodes with another: the client
// gets the data nodes' password from the URL and the sentinels' from config::sentinel, finds
// the master, uses it, listens for +switch-master on an authenticated sentinel connection and
// follows a failover.
BOOST_AUTO_TEST_CASE(separate_sentinel_and_data_credentials) {
  redis_sentinel_group::options o;
  o.data_password = "datapw";
  o.sentinel_password = "sentinelpw";
  redis_sentinel_group group(o);
  // The set-up really wants the passwords.
  BOOST_TEST(redis_command(group.sentinel_ports()[0], {"PING"}).str.rfind("NOAUTH", 0) == 0u);
  BOOST_TEST(redis_command(group.data_ports()[0], {"PING"}).str.rfind("NOAUTH", 0) == 0u);
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(sentinel_url(":datapw", group));
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST(cfg->password == "datapw");
    BOOST_TEST(cfg->sentinel.password.empty());
    cfg->sentinel.password = "sentinelpw";
    auto conn = std::make_shared<redis::connection>(ioc.get_executor(), failover_config(*cfg, 4s));
    conn->async_run(asio::detached);
    redis_store store(conn);
    auto ins = co_await store.insert("tt:{s}a", store_write{"one", std::chrono::seconds(60), ""});
    BOOST_TEST_REQUIRE(ins.has_value(),
                       ins.error().message() << "; " << conn->last_error_message());
    auto got = co_await store.load("tt:{s}a");
    BOOST_TEST_REQUIRE(got.has_value(), got.error().message());
    BOOST_TEST(got->value == "one");
    const std::uint16_t old_master = group.master_port_now();
    BOOST_TEST(conn->server_address().port == old_master);

    // Our +switch-master subscription: a client of a sentinel with a subscription (the
    // sentinels subscribe only on the data nodes).
    bool subscribed = false;
    co_await wait_until(
        [&] {
          for (std::size_t i = 0; i < group.sentinel_ports().size() && !subscribed; ++i) {
            const auto list = group.sentinel_command(i, {"CLIENT", "LIST"}).str;
            subscribed = contains(list, " sub=1 ");
          }
          return subscribed;
        },
        3s);
    BOOST_TEST(subscribed, "no sentinel has an (authenticated) subscriber");

    // A failover: the client follows to the new master (the sentinels need the data password
    // for it, and we need both).
    const auto started = steady::now();
    std::uint16_t new_master = 0;
    co_await off_loop([&] {
      group.failover(10s);
      new_master = group.wait_master_change(old_master, 10s);
    });
    BOOST_TEST_REQUIRE(new_master != 0, "no failover: " << group.describe());
    auto rep = co_await store.replace("tt:{s}a", store_write{"two", std::chrono::seconds(60), ""},
                                      *ins);
    BOOST_TEST_REQUIRE(rep.has_value(),
                       rep.error().message() << "; " << conn->last_error_message());
    got = co_await store.load("tt:{s}a");
    BOOST_TEST_REQUIRE(got.has_value(), got.error().message());
    BOOST_TEST(got->value == "two");
    BOOST_TEST(conn->server_address().port == new_master);
    BOOST_TEST_MESSAGE("sentinel failover with passwords: followed after "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() -
                                                                                started)
                              .count()
                       << " ms, " << conn->connect_count() << " connects");
    conn->cancel();
  }, 25s);
}

// Wrong or missing sentinel password: no_sentinel, with a message saying that AUTH was refused
// (or that the sentinel wants one). Wrong data password with the right sentinel password:
// auth_failed. Every request fails with store_unavailable within its deadline.
BOOST_AUTO_TEST_CASE(wrong_sentinel_or_data_password_fails_clearly) {
  redis_sentinel_group::options o;
  o.data_password = "datapw";
  o.sentinel_password = "sentinelpw";
  o.sentinels = 2;
  o.quorum = 1;
  redis_sentinel_group group(o);
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    const auto deadline = std::chrono::milliseconds(800);
    struct attempt {
      std::string userinfo;
      std::string sentinel_password;
      redis::client_error expected;
      std::vector<std::string> message_has;
    };
    const std::vector<attempt> attempts{
        {":datapw", "wrong", redis::client_error::no_sentinel, {"refused AUTH", "WRONGPASS"}},
        {":datapw", "", redis::client_error::no_sentinel, {"NOAUTH"}},
        {":wrong", "sentinelpw", redis::client_error::auth_failed, {"AUTH", "WRONGPASS"}},
        {"", "sentinelpw", redis::client_error::auth_failed, {"NOAUTH"}},
    };
    for (const attempt& a : attempts) {
      auto cfg = failover_config(redis::parse_url(sentinel_url(a.userinfo, group)).value(), deadline);
      cfg.sentinel.password = a.sentinel_password;
      const std::string what = "data '" + a.userinfo + "', sentinel password '" +
                               a.sentinel_password + "'";
      auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
      conn->async_run(asio::detached);
      redis_store store(conn);
      co_await fails_in_time(store, deadline, what);
      co_await fails_in_time(store, deadline, what + " (again)");
      const std::string message = conn->last_error_message();
      BOOST_TEST_MESSAGE(what << ": last_error() " << conn->last_error().message() << ": "
                              << message);
      BOOST_TEST((conn->last_error() == a.expected),
                 what << ": last_error() is " << conn->last_error().message() << ": " << message);
      for (const auto& part : a.message_has) {
        BOOST_TEST(contains(message, part), what << ": '" << part << "' not in: " << message);
      }
      BOOST_TEST(!conn->connected());
      conn->cancel();
    }
  });
}

BOOST_AUTO_TEST_SUITE_END()
