// SPDX-License-Identifier: BSL-1.0
// The store on Redis Cluster and Redis Sentinel, against real servers on loopback: sessions
// spread over every master, slot migration during traffic (ASK, MOVED, TRYAGAIN), kill -9 of a
// master and SENTINEL FAILOVER during 200 concurrent updaters (every operation ends within its
// deadline, no acknowledged increment is lost with WAIT), and bad topology input (a seed that is
// not a cluster node, uncovered slots, unknown master name, no sentinel, no node at all).
//
// The failover tests print what they measured (BOOST_TEST_MESSAGE: run with --log_level=message).
#include "../support/redis.hpp"
#include "server_fixture.hpp"
#include "topology_fixture.hpp"

#include <websession/defaults.hpp>
#include <websession/redis/client.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace websession;
using namespace redis_test;
using boost::system::error_code;

namespace {

using websession::test::redis_manager;
using websession::test::tuple_token;
using steady = std::chrono::steady_clock;

options test_opts() { return websession::test::test_opts("tt:"); }

std::string cluster_url(const std::vector<std::uint16_t>& ports) {
  std::string u = "redis-cluster://";
  for (auto p : ports) u += "127.0.0.1:" + std::to_string(p) + ",";
  u.pop_back();
  return u;
}

std::string sentinel_url(const redis_sentinel_group& g) {
  std::string u = "redis-sentinel://";
  for (auto p : g.sentinel_ports()) u += "127.0.0.1:" + std::to_string(p) + ",";
  u.pop_back();
  return u + "#" + g.master_name();
}

// Many coroutines, each incrementing its own session with async_update until told to stop;
// what was acknowledged, what failed and how long each update took.
struct traffic {
  struct worker {
    std::string id;
    long long acked = 0;   // increments that completed without error
    long long failed = 0;  // that failed (may or may not have been applied)
    std::vector<std::pair<steady::time_point, bool>> outcomes;  // end time, ok
  };
  std::vector<worker> workers;
  std::map<std::string, long long> errors;  // error message -> count
  std::chrono::nanoseconds longest{0};
  std::atomic<bool> stop{false};
  int running = 0;

  asio::awaitable<void> run(redis_manager& mgr, std::size_t i) {
    ++running;
    worker& w = workers[i];
    while (!stop) {
      const auto start = steady::now();
      auto [ec, s] = co_await mgr.async_update(
          w.id, [](session& s) { s.set("n", s.get_as<long long>("n").value_or(0) + 1); },
          tuple_token);
      const auto end = steady::now();
      longest = std::max<std::chrono::nanoseconds>(longest, end - start);
      w.outcomes.emplace_back(end, !ec);
      if (ec) {
        ++w.failed;
        ++errors[ec.message()];
        // Do not spin while nothing answers.
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
        co_await t.async_wait(tuple_token);
      } else {
        ++w.acked;
      }
    }
    --running;
  }

  // Starts `n` workers on fresh sessions of `mgr` (bound to `user`, if given, through a
  // rotation, as at a login).
  asio::awaitable<void> start(redis_manager& mgr, std::size_t n, std::string user = {}) {
    workers.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto [ec, s] = co_await mgr.async_create(tuple_token);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      if (!user.empty()) {
        mgr.bind_user(s, user);
        auto [re] = co_await mgr.async_rotate(s, tuple_token);
        BOOST_TEST_REQUIRE(!re, re.message());
      }
      workers[i].id = s.id();
    }
    for (std::size_t i = 0; i < n; ++i) {
      asio::co_spawn(co_await asio::this_coro::executor, run(mgr, i), asio::detached);
    }
  }

  asio::awaitable<void> finish() {
    stop = true;
    while (running > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(10));
      co_await t.async_wait(tuple_token);
    }
  }

  long long total_acked() const {
    long long n = 0;
    for (auto& w : workers) n += w.acked;
    return n;
  }
  long long total_failed() const {
    long long n = 0;
    for (auto& w : workers) n += w.failed;
    return n;
  }

  // The longest time any session went without a successful update, over the stretches that
  // end after `since`: how long the outage lasted for the sessions it hit.
  std::chrono::milliseconds recovery(steady::time_point since) const {
    std::chrono::nanoseconds worst{0};
    for (auto& w : workers) {
      steady::time_point last_ok = since;
      for (auto& [t, ok] : w.outcomes) {
        if (!ok) continue;
        if (t >= since) worst = std::max<std::chrono::nanoseconds>(worst, t - last_ok);
        if (t > last_ok) last_ok = t;
      }
      // A session never updated again counts until the traffic stopped.
      if (!w.outcomes.empty()) {
        worst = std::max<std::chrono::nanoseconds>(worst, w.outcomes.back().first - last_ok);
      }
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(worst);
  }

  std::string error_summary() const {
    std::string out;
    for (auto& [m, n] : errors) out += (out.empty() ? "" : ", ") + std::to_string(n) + "x " + m;
    return out.empty() ? "none" : out;
  }

  // Every session holds at least its acknowledged increments (none lost), and at most those
  // plus the failed ones (a failed update may have been applied).
  asio::awaitable<void> verify(redis_manager& mgr) {
    long long lost = 0, extra = 0;
    for (auto& w : workers) {
      auto [ec, s] = co_await mgr.async_load(w.id, tuple_token);
      BOOST_TEST(!ec, ec.message());
      if (ec) {
        lost += w.acked;
        continue;
      }
      const long long n = s.get_as<long long>("n").value_or(0);
      if (n < w.acked) lost += w.acked - n;
      if (n > w.acked + w.failed) extra += n - w.acked - w.failed;
    }
    BOOST_TEST(lost == 0, lost << " acknowledged increments lost");
    BOOST_TEST(extra == 0, extra << " increments more than were attempted");
  }
};

// `total` session-shaped keys ("tt:" + 43 characters ending in their number, padded with
// `fill`), none in slot 0 if `skip_slot0`, written straight to the masters that own them in one
// pipeline per master (no client routing involved). Returns them by master port.
std::map<std::uint16_t, std::vector<std::string>> write_keys_to_masters(redis_cluster& cluster,
                                                                        std::size_t total, char fill,
                                                                        bool skip_slot0) {
  std::vector<std::uint16_t> owner(16384, 0);
  for (const auto& e : cluster.nodes_view(cluster.port(0))) {
    if (!e.is_master()) continue;
    for (const auto& [a, b] : e.slots) {
      for (int s = a; s <= b; ++s) owner[static_cast<std::size_t>(s)] = e.port;
    }
  }
  std::map<std::uint16_t, std::vector<std::string>> by_master;
  for (std::size_t i = 0, made = 0; made < total; ++i) {
    const std::string n = std::to_string(i);
    const std::string key = "tt:" + std::string(43 - n.size(), fill) + n;
    if (skip_slot0 && key_slot(key) == 0) continue;
    const auto port = owner[static_cast<std::size_t>(key_slot(key))];
    BOOST_TEST_REQUIRE(port != 0);
    by_master[port].push_back(key);
    ++made;
  }
  for (const auto& [port, keys] : by_master) {
    resp_connection c(port);
    std::string pipeline;
    for (const auto& k : keys) pipeline += resp_connection::encode({"SET", k, "v", "EX", "600"});
    c.send_raw(pipeline);
    for (std::size_t i = 0; i < keys.size(); ++i) BOOST_TEST_REQUIRE(!c.read(10s).is_error());
  }
  return by_master;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_cluster_store)

// The sessions land on every master, and a cluster client reports the topology it routes by.
BOOST_AUTO_TEST_CASE(sessions_spread_over_every_master) {
  redis_cluster cluster(redis_cluster::options{3, 0, 1000, {}, std::chrono::seconds(20)});
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url({cluster.port(0)})).value();  // one seed is enough
    redis::client client(ioc.get_executor(), cfg);
    client.async_run(asio::detached);
    redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(client),
                      test_opts());
    std::vector<std::string> ids;
    for (int i = 0; i < 300; ++i) {
      auto [ec, s] = co_await mgr.async_create(tuple_token);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      ids.push_back(s.id());
    }
    const redis::topology t = client.topology();
    BOOST_TEST((t.deployment == redis::deployment::cluster));
    BOOST_TEST(t.connected);
    BOOST_TEST(t.cluster.covered_slots == 16384u);
    std::size_t masters = 0;
    for (auto& n : t.cluster.nodes) masters += n.master ? 1 : 0;
    BOOST_TEST(masters == 3u);
    for (auto port : cluster.master_ports()) {
      const auto keys = cluster.command(port, {"DBSIZE"});
      BOOST_TEST(keys.integer > 30, "master " << port << " holds " << keys.integer << " keys");
    }
    auto n = co_await mgr.get_store().count("tt:");
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(*n == 300u);
    auto [pe] = co_await mgr.async_ping(tuple_token);
    BOOST_TEST(!pe);
    // A user's sessions all live in the slot of the user's index.
    std::vector<session> ada;
    for (int i = 0; i < 5; ++i) {
      auto [ec, s] = co_await mgr.async_load(ids[i], tuple_token);
      BOOST_TEST_REQUIRE(!ec);
      mgr.bind_user(s, "ada");
      auto [re] = co_await mgr.async_rotate(s, tuple_token);
      BOOST_TEST_REQUIRE(!re, re.message());
      BOOST_TEST(redis::hash_slot(s.storage_key()) ==
                 redis::hash_slot(mgr.user_index("ada")));
      ada.push_back(std::move(s));
    }
    auto [de, count] = co_await mgr.async_destroy_user("ada", tuple_token);
    BOOST_TEST(!de);
    BOOST_TEST(count == 5u);
    client.cancel();
  });
}

// count() SCANs every master in turn, addressing them by their index in the client's map. The
// map is read again (here every 50 ms) from whichever node answers first, and each node lists
// the shards in its own order: the count must still visit each master exactly once. It counted
// one master twice and skipped another when a refresh landed between two masters' SCANs (seen
// as 303 of 300 under ThreadSanitizer).
BOOST_AUTO_TEST_CASE(count_is_exact_while_the_map_is_refreshed) {
  redis_cluster cluster(redis_cluster::options{3, 0, 1000, {}, std::chrono::seconds(20)});
  // 3600 session-shaped keys, about 1200 per master, so that each master takes two SCAN pages.
  constexpr std::size_t total = 3600;
  const auto by_master = write_keys_to_masters(cluster, total, 'x', false);
  BOOST_TEST_REQUIRE(by_master.size() == 3u);
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url({cluster.port(0)})).value();
    cfg.cluster.refresh_interval = std::chrono::milliseconds(1);  // the 50 ms floor applies
    redis::client client(ioc.get_executor(), cfg);
    client.async_run(asio::detached);
    redis_store store(client);
    // count() needs the first map (no master to ask before it).
    const bool mapped = co_await wait_until([&] { return client.connected(); }, std::chrono::seconds(10));
    BOOST_TEST_REQUIRE(mapped, "no slot map: " << client.cluster()->last_error_message());
    const auto until = steady::now() + std::chrono::seconds(3);
    int counts = 0, wrong = 0;
    std::size_t last = 0;
    while (steady::now() < until || counts < 20) {
      auto n = co_await store.count("tt:");
      BOOST_TEST_REQUIRE(n.has_value(), (n ? std::string() : n.error().message()));
      ++counts;
      if (*n != total) {
        ++wrong;
        last = *n;
      }
    }
    const auto refreshes = client.cluster()->status().refreshes;
    BOOST_TEST(wrong == 0, wrong << " of " << counts << " counts were wrong (last " << last
                                 << " of " << total << ") over " << refreshes << " refreshes");
    // The map was read again many times while the counts ran.
    BOOST_TEST(refreshes > 10u);
    client.cancel();
  });
}

// The same while slot 0 (which holds none of the keys) moves back and forth between two
// masters: each move changes which master has the lowest slot, so the masters' order in the
// client's next map changes, and a count that spans the new map starts again rather than
// scanning one master twice.
BOOST_AUTO_TEST_CASE(count_is_exact_while_the_masters_change_order) {
  redis_cluster cluster(redis_cluster::options{3, 0, 1000, {}, std::chrono::seconds(20)});
  constexpr std::size_t total = 3000;
  write_keys_to_masters(cluster, total, 'y', true);
  const std::uint16_t first = static_cast<std::uint16_t>(cluster.slot_owner_port(0));
  const std::uint16_t last = static_cast<std::uint16_t>(cluster.slot_owner_port(16383));
  BOOST_TEST_REQUIRE(first != last);
  std::atomic<bool> stop{false};
  std::atomic<int> moves{0};
  std::string mover_error;
  std::thread mover([&] {
    try {
      std::uint16_t from = first, to = last;
      while (!stop) {
        cluster.migrate_slot(0, from, to);
        ++moves;
        std::swap(from, to);
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
      }
    } catch (const std::exception& e) {
      mover_error = e.what();
    }
  });
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url(cluster_url({cluster.port(0)})).value();
    cfg.cluster.refresh_interval = std::chrono::milliseconds(1);  // the 50 ms floor applies
    redis::client client(ioc.get_executor(), cfg);
    client.async_run(asio::detached);
    redis_store store(client);
    // count() needs the first map (no master to ask before it).
    const bool mapped = co_await wait_until([&] { return client.connected(); }, std::chrono::seconds(10));
    BOOST_TEST_REQUIRE(mapped, "no slot map: " << client.cluster()->last_error_message());
    const auto until = steady::now() + std::chrono::seconds(3);
    int counts = 0, wrong = 0, failed = 0;
    std::size_t last_wrong = 0;
    while (steady::now() < until || counts < 20) {
      auto n = co_await store.count("tt:");
      ++counts;
      if (!n) {
        ++failed;  // three map changes in a row: allowed, but must stay rare
      } else if (*n != total) {
        ++wrong;
        last_wrong = *n;
      }
    }
    BOOST_TEST(wrong == 0, wrong << " of " << counts << " counts were wrong (last " << last_wrong
                                 << " of " << total << ")");
    BOOST_TEST(failed * 10 < counts, failed << " of " << counts << " counts failed");
    BOOST_TEST(client.cluster()->status().refreshes > 10u);
    client.cancel();
  });
  stop = true;
  mover.join();
  BOOST_TEST(mover_error.empty(), mover_error);
  BOOST_TEST(moves.load() >= 5, moves.load() << " moves of slot 0");
}

// Slots move between masters while 32 coroutines update sessions in them: the requests follow
// ASK (during the move) and MOVED (after it), wait out TRYAGAIN, and every one succeeds.
BOOST_AUTO_TEST_CASE(slot_migration_during_traffic) {
  redis_cluster cluster(redis_cluster::options{3, 0, 1000, {}, std::chrono::seconds(20)});
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto cfg = failover_config(redis::parse_url(cluster_url(cluster.master_ports())).value(),
                                   std::chrono::seconds(5));
        auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
        c->async_run(asio::detached);
        redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')), redis_store(c),
                          test_opts());
        // 32 sessions of one user: one slot (the user's), which then moves.
        traffic t;
        co_await t.start(mgr, 32, "mover");
        const int slot = redis::hash_slot(mgr.user_index("mover"));
        co_await sleep_for(std::chrono::milliseconds(300));
        const auto before = c->status();
        // Move the slot to another master and back, step by step, with traffic between steps.
        for (int round = 0; round < 2; ++round) {
          const std::uint16_t from = static_cast<std::uint16_t>(cluster.slot_owner_port(slot));
          std::uint16_t to = 0;
          for (auto p : cluster.master_ports()) {
            if (p != from) to = p;
          }
          co_await off_loop([&] { cluster.set_importing(slot, from, to); });
          co_await off_loop([&] { cluster.set_migrating(slot, from, to); });
          co_await sleep_for(std::chrono::milliseconds(200));
          // Half the keys first, so that some scripts find their keys split (TRYAGAIN).
          co_await off_loop([&] { cluster.move_keys(slot, from, to, 5); });
          co_await sleep_for(std::chrono::milliseconds(200));
          co_await off_loop([&] { cluster.move_keys(slot, from, to); });
          co_await sleep_for(std::chrono::milliseconds(200));
          co_await off_loop([&] { cluster.set_node(slot, from, to); });
          co_await sleep_for(std::chrono::milliseconds(400));
        }
        co_await t.finish();
        const auto after = c->status();
        BOOST_TEST_MESSAGE("slot migration: " << t.total_acked() << " updates, "
                                              << t.total_failed() << " failed ("
                                              << t.error_summary() << "); ASK "
                                              << after.ask - before.ask << ", MOVED "
                                              << after.moved - before.moved << ", retries "
                                              << after.retries - before.retries << ", maps read "
                                              << after.refreshes - before.refreshes);
        BOOST_TEST(t.total_failed() == 0, t.error_summary());
        BOOST_TEST(after.ask > before.ask);
        // Thousands of redirections, a handful of map reads: refreshes are shared.
        BOOST_TEST(after.refreshes - before.refreshes < 40u);
        BOOST_TEST(after.moved > before.moved);
        BOOST_TEST(t.total_acked() > 100);
        co_await t.verify(mgr);
        c->cancel();
      },
      std::chrono::seconds(60));
}

// kill -9 of a master under 200 concurrent updaters, with WAIT 1: its replica takes over, every
// update ends within its deadline, and no acknowledged increment is lost. The killed node comes
// back (as a replica), so that WAIT 1 can be met again on that shard.
BOOST_AUTO_TEST_CASE(master_killed_during_200_updaters) {
  redis_cluster cluster(redis_cluster::options{3, 1, 1000, {}, std::chrono::seconds(30)});
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        const auto request_timeout = std::chrono::seconds(4);
        auto cfg = failover_config(redis::parse_url(cluster_url(cluster.master_ports())).value(),
                                   request_timeout);
        auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
        c->async_run(asio::detached);
        redis_store_options so;
        so.wait_replicas = 1;
        so.wait_timeout = std::chrono::milliseconds(500);
        redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                          redis_store(c, so), test_opts());
        traffic t;
        co_await t.start(mgr, 200);
        co_await sleep_for(std::chrono::milliseconds(1000));
        const std::uint16_t victim = cluster.master_ports().front();
        const std::size_t victim_index = cluster.index_of(victim);
        int victim_slot = 0;
        while (cluster.slot_owner_port(victim_slot) != victim) ++victim_slot;
        const auto killed_at = steady::now();
        cluster.kill_hard(victim_index);
        // Until its replica took over its slots and the cluster is whole again.
        bool promoted = false;
        co_await off_loop([&] {
          const auto give_up = steady::now() + std::chrono::seconds(15);
          while (steady::now() < give_up && !promoted) {
            const int owner = cluster.slot_owner_port(victim_slot);
            promoted = owner > 0 && owner != victim && cluster.wait_state_ok(std::chrono::milliseconds(100));
            if (!promoted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        });
        BOOST_TEST(promoted, "no replica took over");
        const auto state_ok = steady::now() - killed_at;
        // On this thread, not off_loop's: the fixture's children die with the thread that
        // started them (PR_SET_PDEATHSIG follows the thread, not the process).
        cluster.start(victim_index);
        co_await sleep_for(std::chrono::milliseconds(2500));
        co_await t.finish();
        const auto recovered = t.recovery(killed_at);
        BOOST_TEST_MESSAGE("cluster kill -9: replica took over, cluster_state:ok after "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(state_ok).count()
                           << " ms; longest a session went without an update " << recovered.count()
                           << " ms; " << t.total_acked() << " updates acknowledged, "
                           << t.total_failed() << " failed (" << t.error_summary()
                           << "); longest update "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(t.longest).count()
                           << " ms; maps read " << c->status().refreshes);
        // An update is a load and a save (and a retry after a conflict): each store request
        // ends within request_timeout.
        BOOST_TEST((t.longest < 3 * request_timeout));
        BOOST_TEST((recovered < std::chrono::seconds(15)));
        BOOST_TEST(t.total_acked() > 1000);
        co_await t.verify(mgr);
        c->cancel();
      },
      std::chrono::seconds(90));
}

// A seed that is not a cluster node, a cluster with slots nobody serves, and seeds that are all
// down: clear errors within the request deadline, no crash, no hang.
BOOST_AUTO_TEST_CASE(bad_cluster_topologies_fail_clearly) {
  redis_server plain;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    const auto deadline = std::chrono::milliseconds(600);
    {
      auto cfg = failover_config(redis::parse_url(cluster_url({plain.port()})).value(), deadline);
      auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
      c->async_run(asio::detached);
      redis_store store(c);
      const auto start = steady::now();
      auto r = co_await store.load("tt:{abc}x");
      BOOST_TEST(!r.has_value());
      if (!r) BOOST_TEST((r.error() == error::store_unavailable), r.error().message());
      BOOST_TEST((steady::now() - start < deadline + std::chrono::milliseconds(500)));
      BOOST_TEST((c->last_error() == redis::client_error::not_a_cluster), c->last_error_message());
      BOOST_TEST(c->last_error_message().find("not a cluster node") != std::string::npos);
      c->cancel();
    }
    {
      auto cfg = failover_config(redis::parse_url(cluster_url({free_port(), free_port()})).value(),
                                 deadline);
      auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
      c->async_run(asio::detached);
      redis_store store(c);
      const auto start = steady::now();
      auto r = co_await store.load("tt:{abc}x");
      BOOST_TEST(!r.has_value());
      BOOST_TEST((steady::now() - start < deadline + std::chrono::milliseconds(500)));
      BOOST_TEST((c->last_error() == redis::client_error::no_cluster_map), c->last_error_message());
      c->cancel();
    }
  });
}

BOOST_AUTO_TEST_CASE(uncovered_slots_fail_clearly) {
  // Three cluster nodes that know each other, with slots 0..9999 assigned and the rest not.
  std::vector<std::unique_ptr<redis_server>> nodes;
  for (int i = 0; i < 3; ++i) {
    redis_server::options o;
    o.args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
              "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"};
    nodes.push_back(std::make_unique<redis_server>(o));
  }
  for (int i = 1; i < 3; ++i) {
    redis_command_ok(nodes[0]->port(), {"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes[i]->port())});
  }
  redis_command_ok(nodes[0]->port(), {"CLUSTER", "ADDSLOTSRANGE", "0", "4999"});
  redis_command_ok(nodes[1]->port(), {"CLUSTER", "ADDSLOTSRANGE", "5000", "9999"});
  // Until every node knows the two owners.
  const auto give_up = steady::now() + std::chrono::seconds(10);
  for (;;) {
    bool agreed = true;
    for (auto& n : nodes) {
      const auto info = redis_command(n->port(), {"CLUSTER", "INFO"});
      agreed = agreed && info_field(info.str, "cluster_slots_assigned") == "10000" &&
               info_field(info.str, "cluster_known_nodes") == "3" &&
               info_field(info.str, "cluster_state") == "ok";
    }
    if (agreed) break;
    BOOST_TEST_REQUIRE((steady::now() < give_up), "the nodes did not agree on the slots");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    const auto deadline = std::chrono::milliseconds(600);
    auto cfg = failover_config(redis::parse_url(cluster_url({nodes[2]->port()})).value(), deadline);
    auto c = std::make_shared<redis::cluster>(ioc.get_executor(), cfg);
    c->async_run(asio::detached);
    redis_store store(c);
    // A key in a covered slot works; one in an uncovered slot fails in time, saying why.
    std::string covered, uncovered;
    for (int i = 0; covered.empty() || uncovered.empty(); ++i) {
      const std::string k = "tt:{" + std::to_string(i) + "}k";
      (redis::hash_slot(k) < 10000 ? covered : uncovered) = k;
    }
    auto ok = co_await store.insert(covered, store_write{"v", std::chrono::seconds(60), ""});
    BOOST_TEST(ok.has_value(), (ok ? "" : ok.error().message()) << "; " << c->last_error_message());
    const auto start = steady::now();
    auto r = co_await store.insert(uncovered, store_write{"v", std::chrono::seconds(60), ""});
    BOOST_TEST(!r.has_value());
    if (!r) BOOST_TEST((r.error() == error::store_unavailable), r.error().message());
    BOOST_TEST((steady::now() - start < deadline + std::chrono::milliseconds(500)));
    BOOST_TEST((c->last_error() == redis::client_error::slots_uncovered), c->last_error_message());
    BOOST_TEST(c->status().covered_slots == 10000u);
    c->cancel();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_sentinel_store)

// The sentinels' failover during 200 concurrent updaters, by SENTINEL FAILOVER and by kill -9 of
// the master: the store follows to the new master, every update ends within its deadline, and
// with WAIT 1 no acknowledged increment is lost.
void failover_during_traffic(bool kill) {
  redis_sentinel_group group;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        const auto request_timeout = std::chrono::seconds(4);
        auto cfg = failover_config(redis::parse_url(sentinel_url(group)).value(), request_timeout);
        auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
        conn->async_run(asio::detached);
        redis_store_options so;
        so.wait_replicas = 1;
        so.wait_timeout = std::chrono::milliseconds(500);
        redis_manager mgr(ioc.get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                          redis_store(conn, so), test_opts());
        traffic t;
        co_await t.start(mgr, 200);
        const std::uint16_t old_master = group.master_port_now();
        BOOST_TEST(conn->server_address().port == old_master);
        co_await sleep_for(std::chrono::milliseconds(1000));
        const auto started = steady::now();
        std::uint16_t new_master = 0;
        if (kill) {
          group.kill_data(group.data_index(old_master));
          co_await off_loop([&] { new_master = group.wait_master_change(old_master, std::chrono::seconds(20)); });
        } else {
          co_await off_loop([&] {
            group.failover(std::chrono::seconds(20));
            new_master = group.wait_master_change(old_master, std::chrono::seconds(20));
          });
        }
        const auto switched = steady::now() - started;
        BOOST_TEST_REQUIRE(new_master != old_master);
        if (kill) {
          // Back as a replica of the new master, so that WAIT 1 can be met again (on this
          // thread: see master_killed_during_200_updaters).
          group.start_data(group.data_index(old_master));
        }
        co_await sleep_for(std::chrono::milliseconds(3000));
        co_await t.finish();
        // The master now: about 1 s after a failover the sentinels sometimes fail over a second
        // time, back to the old master once it is a good replica again (see
        // redis_sentinel_group::options::down_after_ms); the store must follow that too. Off the
        // loop: the connection keeps running meanwhile.
        std::uint16_t settled = 0;
        co_await off_loop([&] { settled = group.wait_settled_master(std::chrono::seconds(10)); });
        BOOST_TEST_REQUIRE(settled != 0, "the sentinels did not settle on a master:\n"
                                             << group.describe());
        // It connects to the sentinels' master only (never to a stale one): within a request
        // timeout of the sentinels settling, it is connected to that node.
        const auto follow_by = steady::now() + request_timeout;
        while (!(conn->connected() && conn->server_address().port == settled) &&
               steady::now() < follow_by) {
          co_await sleep_for(std::chrono::milliseconds(10));
        }
        const auto recovered = t.recovery(started);
        BOOST_TEST_MESSAGE("sentinel " << (kill ? "kill -9" : "SENTINEL FAILOVER")
                                       << ": sentinels switched after "
                                       << std::chrono::duration_cast<std::chrono::milliseconds>(switched).count()
                                       << " ms; longest a session went without an update "
                                       << recovered.count() << " ms; " << t.total_acked()
                                       << " updates acknowledged, " << t.total_failed()
                                       << " failed (" << t.error_summary() << "); longest update "
                                       << std::chrono::duration_cast<std::chrono::milliseconds>(t.longest).count()
                                       << " ms; " << conn->connect_count() << " connects"
                                       << (settled == new_master
                                               ? std::string()
                                               : "; the sentinels then failed over again, to " +
                                                     std::to_string(settled)));
        BOOST_TEST(conn->connected());
        BOOST_TEST(conn->server_address().port == settled);
        // Otherwise the sentinels failed over again, to the only other data node.
        if (settled != new_master) BOOST_TEST(settled == old_master);
        BOOST_TEST((t.longest < 3 * request_timeout));
        BOOST_TEST((recovered < std::chrono::seconds(20)));
        BOOST_TEST(t.total_acked() > 1000);
        co_await t.verify(mgr);
        conn->cancel();
      },
      std::chrono::seconds(90));
}

// Writes through `store` until one succeeds while `conn` is connected to `port`, for at most
// `limit`: whether that happened.
asio::awaitable<bool> writes_reach(redis_store& store, const redis::connection& conn,
                                   std::uint16_t port, const std::string& prefix,
                                   std::chrono::milliseconds limit) {
  const auto give_up = steady::now() + limit;
  for (int n = 0; steady::now() < give_up; ++n) {
    const std::string key = "tt:{ab}" + prefix + std::to_string(n);
    const store_write w{"v", std::chrono::seconds(60), ""};
    auto r = co_await store.insert(key, w);
    if (r && conn.connected() && conn.server_address().port == port) co_return true;
    co_await sleep_for(std::chrono::milliseconds(20));
  }
  co_return false;
}

BOOST_AUTO_TEST_CASE(sentinel_failover_during_200_updaters) { failover_during_traffic(false); }

// SENTINEL FAILOVER to the replica and then back again (what the sentinels sometimes do on their
// own right after a kill -9): the connection follows both times, the second time to the very
// address it left, which must not count as stale for good.
BOOST_AUTO_TEST_CASE(follows_a_failover_there_and_back) {
  // down-after-milliseconds above Sentinel's 1 s PING period: no spurious third failover (see
  // redis_sentinel_group::options::down_after_ms). Only SENTINEL FAILOVER moves the master here.
  redis_sentinel_group::options o;
  o.down_after_ms = 3000;
  redis_sentinel_group group(o);
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        const auto request_timeout = std::chrono::seconds(2);
        auto cfg = failover_config(redis::parse_url(sentinel_url(group)).value(), request_timeout);
        auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
        conn->async_run(asio::detached);
        redis_store store(conn);
        const std::uint16_t first = group.master_port_now();
        const bool on_first = co_await writes_reach(store, *conn, first, "a", request_timeout);
        BOOST_TEST_REQUIRE(on_first, conn->last_error_message());
        std::uint16_t second = 0;
        co_await off_loop([&] {
          group.failover(std::chrono::seconds(20));
          second = group.wait_master_change(first, std::chrono::seconds(20));
        });
        BOOST_TEST_REQUIRE((second != 0 && second != first));
        const bool on_second = co_await writes_reach(store, *conn, second, "b", 2 * request_timeout);
        BOOST_TEST(on_second, conn->last_error_message());
        std::uint16_t third = 0;
        bool ready = false;
        co_await off_loop([&] {
          // The sentinels must see the demoted master as a good replica first.
          ready = group.wait_ready(std::chrono::seconds(20));
          if (!ready) return;
          group.failover(std::chrono::seconds(20));
          third = group.wait_master_change(second, std::chrono::seconds(20));
        });
        BOOST_TEST_REQUIRE(ready, group.last_problem());
        BOOST_TEST_REQUIRE(third == first);
        const bool back = co_await writes_reach(store, *conn, first, "c", 2 * request_timeout);
        BOOST_TEST(back, conn->last_error_message());
        BOOST_TEST(conn->connect_count() >= 3u);
        conn->cancel();
      },
      std::chrono::seconds(90));
}

BOOST_AUTO_TEST_CASE(master_killed_during_200_updaters) { failover_during_traffic(true); }

// A master name the sentinels do not know, and sentinels that are all down: clear errors within
// the request deadline, no crash, no hang.
BOOST_AUTO_TEST_CASE(bad_sentinel_setups_fail_clearly) {
  redis_sentinel_group group;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    const auto deadline = std::chrono::milliseconds(600);
    struct attempt {
      std::string url;
      redis::client_error expected;
    };
    std::string unknown = sentinel_url(group);
    unknown = unknown.substr(0, unknown.find('#')) + "#no-such-master";
    const std::string down = "redis-sentinel://127.0.0.1:" + std::to_string(free_port()) +
                             ",127.0.0.1:" + std::to_string(free_port()) + "#" + group.master_name();
    const std::vector<attempt> attempts{{unknown, redis::client_error::unknown_master},
                                        {down, redis::client_error::no_sentinel}};
    for (const attempt& a : attempts) {
      auto cfg = failover_config(redis::parse_url(a.url).value(), deadline);
      auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
      conn->async_run(asio::detached);
      redis_store store(conn);
      const auto start = steady::now();
      auto r = co_await store.load("tt:{abc}x");
      BOOST_TEST(!r.has_value(), a.url);
      if (!r) BOOST_TEST((r.error() == error::store_unavailable), r.error().message());
      BOOST_TEST((steady::now() - start < deadline + std::chrono::milliseconds(500)));
      BOOST_TEST((conn->last_error() == a.expected), a.url << ": " << conn->last_error_message());
      conn->cancel();
    }
  });
}

BOOST_AUTO_TEST_SUITE_END()
