// SPDX-License-Identifier: BSL-1.0
// CSRF tokens (websession/csrf.hpp): the right token passes, every wrong, damaged or foreign
// one fails without throwing, and rotation retires old tokens.
#include "manager_fixture.hpp"

#include <websession/csrf.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <set>
#include <string>

namespace asio = boost::asio;
using namespace websession;
using namespace websession::test;
using boost::system::error_code;

namespace {

using fixture = manager_fixture<memory_stack>;

session create(fixture& f) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_create(tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
}

session load(fixture& f, const std::string& id) {
  return f.run([&]() -> awaitable<session> {
    auto [ec, s] = co_await f.mgr->async_load(id, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return s;
  });
}

void rotate(fixture& f, session& s) {
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_rotate(s, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
}

bool is_base64url(const std::string& s) {
  std::string out;
  return detail::base64url_decode(s, out);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(csrf)

BOOST_AUTO_TEST_CASE(issued_tokens_verify) {
  fixture f;
  session s = create(f);
  const std::string t = csrf_token(s);
  BOOST_TEST(t.size() == csrf_token_size);
  BOOST_TEST(csrf_token_size == 64u);
  BOOST_TEST(is_base64url(t));
  BOOST_TEST(verify_csrf(s, t));
  // The stored secret is the same after a round trip through the store.
  BOOST_TEST(verify_csrf(load(f, s.id()), t));
}

BOOST_AUTO_TEST_CASE(tokens_differ_per_call_and_all_verify) {
  fixture f;
  session s = create(f);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    const std::string t = csrf_token(s);
    BOOST_TEST(verify_csrf(s, t));
    seen.insert(t);
  }
  BOOST_TEST(seen.size() == 50u);  // salted: nothing for BREACH to recover
}

BOOST_AUTO_TEST_CASE(format_is_salt_then_hmac_of_label_and_salt) {
  fixture f;
  session s = create(f);
  const std::string t = csrf_token(s);
  std::string raw;
  BOOST_TEST_REQUIRE(detail::base64url_decode(t, raw));
  BOOST_TEST_REQUIRE(raw.size() == 48u);
  const std::string msg = "websession-csrf-v1" + raw.substr(0, 16);
  const std::string& key = s.metadata().csrf_secret;
  unsigned char mac[32];
  unsigned int len = 0;
  BOOST_TEST_REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                          reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac,
                          &len) != nullptr);
  BOOST_TEST((raw.substr(16) == std::string(reinterpret_cast<char*>(mac), len)));
}

BOOST_AUTO_TEST_CASE(wrong_tokens_fail) {
  fixture f;
  session s = create(f);
  const std::string t = csrf_token(s);
  BOOST_TEST(!verify_csrf(s, ""));
  BOOST_TEST(!verify_csrf(s, t.substr(0, t.size() - 1)));  // truncated
  BOOST_TEST(!verify_csrf(s, t.substr(0, 43)));             // the length of a fixed HMAC
  BOOST_TEST(!verify_csrf(s, t + "A"));                     // one too long
  BOOST_TEST(!verify_csrf(s, t + t));
  BOOST_TEST(!verify_csrf(s, std::string(64, 'A')));
  BOOST_TEST(!verify_csrf(s, s.id()));                      // the session id is not a token
  // Any single changed character, in the salt or in the MAC.
  for (std::size_t i = 0; i < t.size(); ++i) {
    std::string bad = t;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    BOOST_TEST(!verify_csrf(s, bad), "position " << i);
  }
  // Not base64url, or not canonical: never an exception, always false.
  for (char c : {'+', '/', '=', ' ', '.', '\0', '\xff'}) {
    std::string bad = t;
    bad[10] = c;
    BOOST_TEST(!verify_csrf(s, bad), "byte " << int(static_cast<unsigned char>(c)));
  }
}

BOOST_AUTO_TEST_CASE(other_sessions_tokens_fail) {
  fixture f;
  session a = create(f);
  session b = create(f);
  BOOST_TEST(!verify_csrf(b, csrf_token(a)));
  BOOST_TEST(!verify_csrf(a, csrf_token(b)));
}

BOOST_AUTO_TEST_CASE(rotation_retires_old_tokens) {
  fixture f;
  session s = create(f);
  s.set("user", std::string("ada"));
  const std::string before = csrf_token(s);
  rotate(f, s);
  BOOST_TEST(!verify_csrf(s, before));
  const std::string after = csrf_token(s);
  BOOST_TEST(verify_csrf(s, after));
  BOOST_TEST(verify_csrf(load(f, s.id()), after));
  BOOST_TEST(!verify_csrf(load(f, s.id()), before));
}

BOOST_AUTO_TEST_CASE(unsaved_session_tokens_verify_after_its_first_save) {
  fixture f;
  session s = f.mgr->new_session();
  const std::string t = csrf_token(s);
  BOOST_TEST(verify_csrf(s, t));
  f.run([&]() -> awaitable<void> {
    auto [ec] = co_await f.mgr->async_save(s, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  });
  BOOST_TEST(verify_csrf(load(f, s.id()), t));
}

BOOST_AUTO_TEST_CASE(sessions_without_a_secret) {
  const session none;
  BOOST_TEST(!verify_csrf(none, ""));
  BOOST_TEST(!verify_csrf(none, std::string(64, 'A')));
  BOOST_CHECK_THROW(csrf_token(none), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
