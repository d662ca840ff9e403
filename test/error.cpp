// SPDX-License-Identifier: BSL-1.0
// websession/error.hpp: every error belongs to exactly the condition docs/reference.md lists,
// codes compare with conditions both ways, foreign codes belong to none, and the categories
// (made by the one template, detail/error_category.hpp; the Redis client's three too) keep their
// names, ids and messages.
#include <websession/error.hpp>
#include <websession/redis/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace websession;
using boost::system::error_code;

namespace {

// The table of docs/reference.md ("Conditions"), written out independently of error.hpp.
const std::vector<std::pair<error, condition>> expected_conditions = {
    {error::not_found, condition::session_gone},
    {error::expired, condition::session_gone},
    {error::tampered, condition::client_input},
    {error::malformed, condition::client_input},
    {error::conflict, condition::conflict},
    {error::capacity, condition::store_full},
    {error::store_unavailable, condition::store_unreachable},
    {error::timeout, condition::store_unreachable},
    {error::too_large, condition::invalid_use},
    {error::invalid_session, condition::invalid_use},
    {error::internal, condition::internal},
    {error::invalid_data, condition::invalid_use},
    {error::rotation_required, condition::invalid_use},
    {error::invalid_argument, condition::invalid_use},
    {error::revoked, condition::session_gone},
};

const std::vector<condition> all_conditions = {
    condition::session_gone,  condition::client_input, condition::store_unreachable,
    condition::store_full,    condition::conflict,     condition::invalid_use,
    condition::internal,
};

}  // namespace

BOOST_AUTO_TEST_SUITE(error_conditions)

BOOST_AUTO_TEST_CASE(every_error_belongs_to_exactly_its_condition) {
  // Every enumerator, by value: a new error without a row here fails the count below.
  BOOST_TEST(expected_conditions.size() == static_cast<std::size_t>(error::revoked));
  for (const auto& [e, expected] : expected_conditions) {
    const error_code code = e;
    BOOST_TEST_CONTEXT(code.message()) {
      BOOST_TEST((code.default_error_condition() == make_error_condition(expected)));
      for (condition c : all_conditions) {
        BOOST_TEST((code == c) == (c == expected), "condition " << c);
        BOOST_TEST((c == code) == (c == expected));  // both orders
        BOOST_TEST((code != c) == (c != expected));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(foreign_codes_belong_to_no_condition) {
  const std::vector<error_code> foreign = {
      boost::asio::error::operation_aborted,
      make_error_code(boost::system::errc::timed_out),
      make_error_code(boost::system::errc::connection_refused),
      error_code(),
      error_code(0, error_category()),   // never made, but must not pass for a condition
      error_code(99, error_category()),  // a value outside the enum
  };
  for (const error_code& code : foreign)
    for (condition c : all_conditions) BOOST_TEST(code != c, code.message() << " vs " << c);
}

BOOST_AUTO_TEST_CASE(categories_have_fixed_names_and_distinct_messages) {
  BOOST_TEST(std::string(error_category().name()) == "websession");
  BOOST_TEST(std::string(condition_category().name()) == "websession.condition");
  BOOST_TEST(&make_error_code(error::timeout).category() == &error_category());
  BOOST_TEST(&make_error_condition(condition::conflict).category() == &condition_category());
  // Fixed ids: a copy of the category in another shared object compares equal.
  BOOST_TEST((error_category() != condition_category()));
  std::set<std::string> texts;
  for (const auto& [e, c] : expected_conditions) texts.insert(make_error_code(e).message());
  BOOST_TEST(texts.size() == expected_conditions.size());
  std::set<std::string> condition_texts;
  for (condition c : all_conditions) condition_texts.insert(make_error_condition(c).message());
  BOOST_TEST(condition_texts.size() == all_conditions.size());
  BOOST_TEST(error_code(99, error_category()).message() == "unknown websession error");
  // The char-buffer overload gives the same text without allocating.
  char buf[8];
  BOOST_TEST(std::string(error_category().message(static_cast<int>(error::expired), buf, sizeof buf)) ==
             "session expired");
}

BOOST_AUTO_TEST_SUITE_END()

// The Redis client's categories come from the same template (websession/redis/error.hpp); their
// names and messages are what they were when they were written by hand.
BOOST_AUTO_TEST_SUITE(redis_error_categories)

BOOST_AUTO_TEST_CASE(names_messages_and_no_condition) {
  BOOST_TEST(std::string(redis::error_category().name()) == "websession.redis");
  BOOST_TEST(std::string(redis::url_error_category().name()) == "websession.redis.url");
  BOOST_TEST(std::string(redis::client_error_category().name()) == "websession.redis.client");
  BOOST_TEST(make_error_code(redis::error::timeout).message() == "redis request timed out");
  BOOST_TEST(make_error_code(redis::url_error::bad_port).message() ==
             "redis URL port is not a number in 1..65535");
  BOOST_TEST(make_error_code(redis::client_error::auth_failed).message() ==
             "redis AUTH failed (wrong user or password?)");
  BOOST_TEST(error_code(77, redis::error_category()).message() == "unknown redis error");
  // Each code is its own condition (the client knows nothing of sessions; redis_store
  // translates them before the session layer classifies).
  const error_code t = redis::error::timeout;
  BOOST_TEST((t.default_error_condition() == boost::system::error_condition(
                                                static_cast<int>(redis::error::timeout),
                                                redis::error_category())));
  BOOST_TEST(t != condition::store_unreachable);
  BOOST_TEST((redis::error_category() != redis::client_error_category()));
}

BOOST_AUTO_TEST_SUITE_END()
