// SPDX-License-Identifier: BSL-1.0
// What a cluster client believes of its topology (redis/detail/cluster_trust.hpp), without a
// server: the allow-list (names and CIDR blocks), which maps may be installed, which
// redirections are followed.
#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_trust.hpp>

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using boost::system::error_code;
using redis::address;

rd::cluster_shard shard(address master, std::vector<address> replicas = {}) {
  rd::cluster_shard s;
  s.master = std::move(master);
  s.replicas = std::move(replicas);
  s.slots.push_back({0, 100});
  return s;
}

rd::redirect moved(std::uint16_t slot, address to) {
  rd::redirect r;
  r.slot = slot;
  r.to = std::move(to);
  return r;
}

error_code code(redis::client_error e) { return make_error_code(e); }

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_cluster_trust)

BOOST_AUTO_TEST_CASE(allow_list) {
  const rd::host_filter any({});
  BOOST_TEST(any.empty());
  BOOST_TEST(any.allows("anything.example"));
  const rd::host_filter f({"Cache.Internal", "10.1.0.0/16", "127.0.0.1/32", "fd00::/8"});
  BOOST_TEST(f.allows("cache.internal"));
  BOOST_TEST(!f.allows("cache.internal.evil"));
  BOOST_TEST(f.allows("10.1.255.3"));
  BOOST_TEST(!f.allows("10.2.0.1"));
  BOOST_TEST(f.allows("127.0.0.1"));
  BOOST_TEST(!f.allows("127.0.0.2"));
  BOOST_TEST(f.allows("fd12::1"));
  BOOST_TEST(!f.allows("fe80::1"));
  BOOST_TEST(!f.allows("10.1.0.1.nip.io"));  // a name never matches a block
  const rd::host_filter odd({"192.168.1.128/25"});
  BOOST_TEST(odd.allows("192.168.1.200"));
  BOOST_TEST(!odd.allows("192.168.1.100"));
  const rd::host_filter all_v4({"0.0.0.0/0"});
  BOOST_TEST(all_v4.allows("8.8.8.8"));
  BOOST_TEST(!all_v4.allows("::1"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "x/8", "10.0.0.0/8x", "::/129"}) {
    BOOST_CHECK_THROW(rd::host_filter({bad}), std::invalid_argument);
  }
}

BOOST_AUTO_TEST_CASE(map_installation_rule) {
  const address seed{"10.0.0.1", 7000}, known{"10.0.0.2", 7000}, fresh{"10.0.0.3", 7000};
  const std::vector<address> seeds{seed};
  const std::vector<address> current{seed, known};
  const rd::host_filter any({});
  const std::vector<rd::cluster_shard> same{shard(seed, {known})};
  const std::vector<rd::cluster_shard> adds{shard(known, {fresh})};
  // From a seed: new hosts are fine.
  BOOST_TEST(!rd::check_map(adds, true, seeds, current, any, 1000).ec);
  // From a node learned later: only hosts the seeds introduced.
  BOOST_TEST(!rd::check_map(same, false, seeds, current, any, 1000).ec);
  const auto v = rd::check_map(adds, false, seeds, current, any, 1000);
  BOOST_TEST(v.ec == code(redis::client_error::no_cluster_map));
  BOOST_TEST(v.message.find("10.0.0.3:7000") != std::string::npos);
  // The node cap and the allow-list hold for the seeds too.
  BOOST_TEST(rd::check_map(adds, true, seeds, current, any, 1).ec ==
             code(redis::client_error::too_many_nodes));
  BOOST_TEST(!rd::check_map(adds, true, seeds, current, any, 2).ec);
  const rd::host_filter only({"10.0.0.1", "10.0.0.2"});
  BOOST_TEST(rd::check_map(adds, true, seeds, current, only, 1000).ec ==
             code(redis::client_error::host_not_allowed));
  BOOST_TEST(rd::map_nodes(adds).size() == 2u);
}

BOOST_AUTO_TEST_CASE(redirections) {
  const rd::host_filter any({});
  const rd::host_filter only({"127.0.0.1"});
  const address mapped{"127.0.0.1", 7001}, stranger{"127.0.0.2", 7102};
  BOOST_TEST((rd::check_redirect(moved(7629, mapped), 7629, true, any) ==
              rd::redirect_verdict::follow));
  // A host the map does not name: refresh from the seeds first.
  BOOST_TEST((rd::check_redirect(moved(7629, stranger), 7629, false, any) ==
              rd::redirect_verdict::refresh));
  // Another slot than the request's: refused, wherever it points.
  BOOST_TEST((rd::check_redirect(moved(1, mapped), 7629, true, any) ==
              rd::redirect_verdict::bad_slot));
  BOOST_TEST((rd::check_redirect(moved(7629, stranger), 7629, false, only) ==
              rd::redirect_verdict::not_allowed));
  BOOST_TEST((rd::check_redirect(moved(7629, address{"", 7001}), 7629, false, any) ==
              rd::redirect_verdict::refresh));
  // A request without a route: any slot may come back.
  BOOST_TEST((rd::check_redirect(moved(5, mapped), -1, true, any) ==
              rd::redirect_verdict::follow));
}

BOOST_AUTO_TEST_CASE(url_form_of_the_allow_list) {
  const auto c = redis::parse_url("redis-cluster://10.1.0.5:7000,10.1.0.6?allow=10.1.0.0/16,cache%2Dinternal");
  BOOST_TEST_REQUIRE(c.has_value());
  BOOST_TEST(c->cluster.seeds.size() == 2u);
  BOOST_TEST((c->cluster.allowed_hosts == std::vector<std::string>{"10.1.0.0/16", "cache-internal"}));
  const auto db = redis::parse_url("redis-cluster://h/0?allow=h");
  BOOST_TEST_REQUIRE(db.has_value());
  BOOST_TEST(db->cluster.allowed_hosts.size() == 1u);
  for (const char* bad : {"redis-cluster://h?allow=", "redis-cluster://h?allow=a,,b",
                          "redis-cluster://h?x=1", "redis-cluster://h?allow=a&x=1",
                          "redis://h?allow=h", "redis-sentinel://h?allow=h#m"}) {
    BOOST_TEST(!redis::parse_url(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()
