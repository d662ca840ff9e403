// SPDX-License-Identifier: BSL-1.0
// Sentinel resolution (redis/detail/sentinel.hpp) without a server: which sentinel is asked
// next, what their answers add up to with and without a quorum, and what an announced failover
// changes.
#include <websession/redis/detail/sentinel.hpp>

#include "replies.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using boost::system::error_code;
using redis::address;

std::string master_at(std::string_view host, int port) {
  const std::string p = std::to_string(port);
  return "*2\r\n$" + std::to_string(host.size()) + "\r\n" + std::string(host) + "\r\n$" +
         std::to_string(p.size()) + "\r\n" + p + "\r\n";
}

redis::sentinel_config three(std::size_t quorum = 1) {
  redis::sentinel_config sc;
  sc.sentinels = {{"s0", 1}, {"s1", 2}, {"s2", 3}};
  sc.master_name = "m";
  sc.quorum = quorum;
  return sc;
}

error_code code(redis::client_error e) { return make_error_code(e); }

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_sentinel_resolver)

BOOST_AUTO_TEST_CASE(the_first_answer_decides_and_is_asked_first_next_time) {
  const auto sc = three();
  rd::sentinel_resolver r(sc);
  r.begin_round();
  BOOST_TEST(*r.next() == 0u);
  r.on_failure(0, "connection refused");
  BOOST_TEST(*r.next() == 1u);
  BOOST_TEST(r.on_answer(1, redis_test::parse_replies(master_at("10.0.0.1", 6379))));
  BOOST_TEST((r.master() == address{"10.0.0.1", 6379}));
  BOOST_TEST(!r.next().has_value());
  r.begin_round();
  BOOST_TEST(*r.next() == 1u);
  BOOST_TEST(*r.next() == 2u);
  BOOST_TEST(*r.next() == 0u);
  BOOST_TEST(!r.next().has_value());
}

BOOST_AUTO_TEST_CASE(failures_say_why) {
  auto sc = three();
  sc.password = "pw";
  rd::sentinel_resolver r(sc);
  redis::request want;
  want.push("AUTH", "pw");
  want.push("SENTINEL", "get-master-addr-by-name", "m");
  BOOST_TEST(r.query().payload() == want.payload());
  BOOST_TEST(r.subscription_acks() == 2u);
  r.begin_round();
  r.next();
  BOOST_TEST(!r.on_answer(0, redis_test::parse_replies("-WRONGPASS no\r\n" + master_at("h", 1))));
  r.next();
  BOOST_TEST(!r.on_answer(1, redis_test::parse_replies("+OK\r\n*-1\r\n")));
  r.next();
  r.on_failure(2, "timeout");
  BOOST_TEST(!r.next().has_value());
  const auto [ec, message] = r.failure();
  BOOST_TEST(ec == code(redis::client_error::unknown_master));
  BOOST_TEST(message.find("sentinel s0:1 refused AUTH: WRONGPASS no") != std::string::npos);
  BOOST_TEST(message.find("does not know master 'm'") != std::string::npos);
  rd::sentinel_resolver none(sc);
  none.begin_round();
  while (auto i = none.next()) none.on_failure(*i, "refused");
  BOOST_TEST(none.failure().first == code(redis::client_error::no_sentinel));
}

BOOST_AUTO_TEST_CASE(a_quorum_must_agree) {
  const auto sc = three(2);
  rd::sentinel_resolver r(sc);
  r.begin_round();
  BOOST_TEST(!r.on_answer(*r.next(), redis_test::parse_replies(master_at("evil", 1))));  // s0 alone
  BOOST_TEST(!r.on_answer(*r.next(), redis_test::parse_replies(master_at("good", 2))));  // s1
  BOOST_TEST(r.on_answer(*r.next(), redis_test::parse_replies(master_at("good", 2))));   // s2 agrees
  BOOST_TEST((r.master() == address{"good", 2}));
  r.begin_round();
  BOOST_TEST(*r.next() == 1u);  // the first of the agreeing ones
  // Only one sentinel names anything: no quorum, whatever it says.
  rd::sentinel_resolver lone(sc);
  lone.begin_round();
  BOOST_TEST(!lone.on_answer(*lone.next(), redis_test::parse_replies(master_at("evil", 1))));
  lone.on_failure(*lone.next(), "refused");
  lone.on_failure(*lone.next(), "refused");
  BOOST_TEST(!lone.next().has_value());
  BOOST_TEST(lone.failure().first == code(redis::client_error::no_quorum));
}

BOOST_AUTO_TEST_CASE(an_expired_attempt_moves_on_to_the_next_sentinel) {
  const auto sc = three();
  rd::sentinel_resolver r(sc);
  r.begin_round();
  const auto i = *r.next();
  r.on_expired(i);
  BOOST_TEST(!r.next().has_value());  // the round is over
  r.begin_round();
  BOOST_TEST(*r.next() == 1u);
}

BOOST_AUTO_TEST_CASE(announcements) {
  const address a{"a", 1}, b{"b", 2}, c{"c", 3};
  const auto sc = three();
  rd::sentinel_resolver r(sc);
  BOOST_TEST((r.settle(a) == a));
  r.announce({a, b});
  // A sentinel that has not caught up still names the old master: the announcement wins.
  BOOST_TEST((r.settle(a) == b));
  BOOST_TEST(r.has_announcement());
  // The sentinels moved on to a third one: the announcement is forgotten.
  BOOST_TEST((r.settle(c) == c));
  BOOST_TEST(!r.has_announcement());
  r.announce({a, b});
  r.connect_failed(b);  // the announced master did not work out
  BOOST_TEST(!r.has_announcement());
  r.announce({a, b});
  BOOST_TEST(r.take_announcement().has_value());
  BOOST_TEST(!r.take_announcement().has_value());
  // With a quorum, only the sentinels move the client.
  const auto q = three(2);
  rd::sentinel_resolver strict(q);
  strict.announce({a, b});
  BOOST_TEST((strict.settle(a) == a));
}

BOOST_AUTO_TEST_SUITE_END()
