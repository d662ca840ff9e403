// SPDX-License-Identifier: BSL-1.0
// websession/metrics.hpp: every counter of session_stats is described (so JSON output and
// exporters see all of them), and the counter storage counts each one exactly, from several
// threads.
#include <websession/metrics.hpp>

#include <boost/json/value_from.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace websession;

namespace {

// How an exporter enumerates the counters.
using counters = boost::describe::describe_members<session_stats, boost::describe::mod_public>;

std::vector<std::string> described_names() {
  std::vector<std::string> names;
  boost::mp11::mp_for_each<counters>([&](auto d) { names.emplace_back(d.name); });
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(every_counter_is_described) {
  const std::vector<std::string> expected = {
      "created", "loaded",  "misses",    "expired",   "tampered",     "malformed", "saved",
      "touched", "conflicts", "rotated", "destroyed", "store_errors", "evicted", "revoked"};
  BOOST_TEST(described_names() == expected, boost::test_tools::per_element());
  // A member added to the struct but not to BOOST_DESCRIBE_STRUCT would be missed by every
  // exporter: the struct holds exactly the described counters.
  BOOST_TEST(sizeof(session_stats) == described_names().size() * sizeof(std::uint64_t));
}

BOOST_AUTO_TEST_CASE(json_output_has_every_counter_by_name) {
  session_stats s;
  std::uint64_t n = 1;
  boost::mp11::mp_for_each<counters>([&](auto d) { s.*d.pointer = n++; });
  const boost::json::value v = boost::json::value_from(s);
  const boost::json::object& o = v.as_object();
  BOOST_TEST(o.size() == described_names().size());
  n = 1;
  for (const std::string& name : described_names()) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST_REQUIRE(o.contains(name));
      BOOST_TEST(o.at(name).to_number<std::uint64_t>() == n++);
    }
  }
  BOOST_TEST(o.at("evicted").to_number<std::uint64_t>() == s.evicted);
}

BOOST_AUTO_TEST_CASE(storage_counts_each_member) {
  detail::atomic_counters<session_stats> c;
  BOOST_TEST((c.snapshot() == session_stats{}));
  c.add<&session_stats::created>(3);
  c.add<&session_stats::evicted>();
  c.add<&session_stats::store_errors>();
  c.add<&session_stats::store_errors>();
  session_stats expected;
  expected.created = 3;
  expected.evicted = 1;
  expected.store_errors = 2;
  BOOST_TEST((c.snapshot() == expected));
}

BOOST_AUTO_TEST_CASE(storage_counts_exactly_from_several_threads) {
  detail::atomic_counters<session_stats> c;
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        c.add<&session_stats::loaded>();
        if (i % 2 == 0) c.add<&session_stats::saved>();
      }
    });
  }
  for (auto& t : pool) t.join();
  const session_stats s = c.snapshot();
  BOOST_TEST(s.loaded == std::uint64_t{threads} * per_thread);
  BOOST_TEST(s.saved == std::uint64_t{threads} * per_thread / 2);
  BOOST_TEST(s.created == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
