// SPDX-License-Identifier: BSL-1.0
// Tests of websession/session.hpp: what a default session is, the data accessors and their
// dirty tracking, and the id, key and flags a session shows through its life with a manager.
#include "support/run.hpp"

#include <websession/session.hpp>
#include <websession/websession.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using websession::error;
using websession::session;
using websession::test::ec;
using websession::test::run_on;
using websession::test::tuple_token;

// A user type that converts through Boost.JSON's tag_invoke, as get_as/set document.
struct point {
  int x = 0;
  int y = 0;
  friend bool operator==(const point&, const point&) = default;
};
void tag_invoke(const json::value_from_tag&, json::value& v, const point& p) {
  v = json::array{p.x, p.y};
}
point tag_invoke(const json::value_to_tag<point>&, const json::value& v) {
  const json::array& a = v.as_array();
  return point{static_cast<int>(a.at(0).as_int64()), static_cast<int>(a.at(1).as_int64())};
}

using manager_type = websession::basic_session_manager<websession::json_serializer,
                                                       websession::aes_gcm_cipher,
                                                       websession::basic_memory_store<websession::manual_clock>,
                                                       websession::manual_clock>;

// A manager over a memory store on a manual clock.
struct env {
  env() : store(ioc.get_executor(), {}, clock), mgr(make_manager()) {}
  manager_type make_manager() {
    websession::options o;
    o.key_prefix = "st:";
    return manager_type(ioc.get_executor(), websession::aes_gcm_cipher(std::string(32, 'k')), store,
                        o, {}, clock);
  }

  session create() {
    auto [e, s] = run_on(ioc, mgr.async_create(tuple_token));
    BOOST_TEST_REQUIRE(!e, e.message());
    return std::move(s);
  }
  session load(const std::string& id) {
    auto [e, s] = run_on(ioc, mgr.async_load(id, tuple_token));
    BOOST_TEST_REQUIRE(!e, e.message());
    return std::move(s);
  }

  asio::io_context ioc;
  websession::manual_clock clock;
  websession::basic_memory_store<websession::manual_clock> store;
  manager_type mgr;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(session_object)

BOOST_AUTO_TEST_CASE(a_default_session_is_empty_and_not_valid) {
  const session s;
  BOOST_TEST(!s.valid());
  BOOST_TEST(!static_cast<bool>(s));
  BOOST_TEST(s.id().empty());
  BOOST_TEST(s.storage_key().empty());
  BOOST_TEST(s.user().empty());
  BOOST_TEST(s.data().empty());
  BOOST_TEST((s.metadata() == websession::session_metadata{}));
  BOOST_TEST(s.get("anything") == nullptr);
  BOOST_TEST(!s.get_as<int>("anything").has_value());
  BOOST_TEST(!s.dirty());
  BOOST_TEST(s.is_new());
  BOOST_TEST(!s.id_changed());
  BOOST_TEST(!s.destroyed());
  BOOST_TEST(!s.save_skipped());
}

BOOST_AUTO_TEST_CASE(data_accessors_and_conversions) {
  session s;
  s.set("n", 42);
  s.set("name", std::string("ada"));
  s.set("list", std::vector<int>{1, 2, 3});
  s.set("p", point{3, 4});
  BOOST_TEST(s.data().size() == 4u);
  BOOST_TEST_REQUIRE(s.get("n") != nullptr);
  BOOST_TEST(s.get("n")->as_int64() == 42);
  BOOST_TEST(s.get_as<int>("n").value_or(0) == 42);
  BOOST_TEST(s.get_as<std::string>("name").value_or("") == "ada");
  BOOST_TEST((s.get_as<std::vector<int>>("list").value_or(std::vector<int>{}) ==
              std::vector<int>{1, 2, 3}));
  BOOST_TEST((s.get_as<point>("p") == std::optional<point>(point{3, 4})));
  // Not convertible: nullopt, not an exception.
  BOOST_TEST(!s.get_as<int>("name").has_value());
  BOOST_TEST(!s.get_as<std::string>("n").has_value());
  BOOST_TEST(!s.get_as<std::vector<int>>("name").has_value());
  // Overwriting replaces the value and its type.
  s.set("n", "text");
  BOOST_TEST(s.get_as<std::string>("n").value_or("") == "text");
  BOOST_TEST(!s.get_as<int>("n").has_value());
}

BOOST_AUTO_TEST_CASE(dirty_tracking) {
  env e;
  const session created = e.create();
  {  // A loaded session is clean; reading keeps it clean.
    session s = e.load(created.id());
    BOOST_TEST(!s.dirty());
    (void)s.get("x");
    (void)s.get_as<int>("x");
    (void)s.data();
    (void)s.metadata();
    BOOST_TEST(!s.dirty());
    // Erasing what is not there changes nothing.
    BOOST_TEST(!s.erase("x"));
    BOOST_TEST(!s.dirty());
  }
  {
    session s = e.load(created.id());
    s.set("x", 1);
    BOOST_TEST(s.dirty());
  }
  // Each mutator marks the session dirty.
  auto check = [&](const char* what, auto&& change) {
    session s = e.load(created.id());
    BOOST_TEST_REQUIRE(!s.dirty());
    change(s);
    BOOST_TEST(s.dirty(), what);
  };
  check("clear", [](session& s) { s.clear(); });
  check("mutable_data", [](session& s) { (void)s.mutable_data(); });
  check("mark_dirty", [](session& s) { s.mark_dirty(); });
  {
    session s = e.load(created.id());
    s.set("gone", 1);
    auto [e1] = run_on(e.ioc, e.mgr.async_save(s, tuple_token));
    BOOST_TEST_REQUIRE(!e1, e1.message());
    BOOST_TEST(!s.dirty());  // a save leaves it clean
    BOOST_TEST(s.erase("gone"));
    BOOST_TEST(s.dirty());
    BOOST_TEST(s.get("gone") == nullptr);
  }
  {  // clear keeps the metadata.
    session s = e.load(created.id());
    const websession::session_metadata before = s.metadata();
    s.clear();
    BOOST_TEST(s.data().empty());
    BOOST_TEST((s.metadata() == before));
  }
}

BOOST_AUTO_TEST_CASE(id_key_and_flags_through_a_life) {
  env e;
  session s = e.create();
  BOOST_TEST(s.valid());
  BOOST_TEST(static_cast<bool>(s));
  // 43 characters of base64url, '.', a 3 character slot tag.
  BOOST_TEST(s.id().size() == 47u);
  BOOST_TEST(s.id()[43] == '.');
  // The key is derived from the id, never the id itself.
  BOOST_TEST(s.storage_key().rfind("st:", 0) == 0u);
  BOOST_TEST(s.storage_key().find(s.id().substr(0, 43)) == std::string::npos);
  BOOST_TEST(s.id_changed());  // a new id: the cookie must be sent
  BOOST_TEST(!s.is_new());     // async_create stores it
  BOOST_TEST(s.metadata().version != 0u);
  BOOST_TEST(s.metadata().csrf_secret.size() == 32u);
  BOOST_TEST((s.metadata().created == e.clock.now()));
  BOOST_TEST((s.metadata().idle_deadline > s.metadata().created));
  BOOST_TEST((s.metadata().absolute_deadline >= s.metadata().idle_deadline));
  BOOST_TEST(s.user().empty());

  // new_session: not stored until the first save.
  session fresh = e.mgr.new_session();
  BOOST_TEST(fresh.valid());
  BOOST_TEST(fresh.is_new());
  BOOST_TEST(fresh.id_changed());
  auto [e0] = run_on(e.ioc, e.mgr.async_save(fresh, tuple_token));
  BOOST_TEST_REQUIRE(!e0, e0.message());
  BOOST_TEST(!fresh.is_new());

  // Loaded: same id and key, no id change to announce.
  session l = e.load(s.id());
  BOOST_TEST(l.id() == s.id());
  BOOST_TEST(l.storage_key() == s.storage_key());
  BOOST_TEST(!l.id_changed());
  BOOST_TEST(l.metadata().version == s.metadata().version);

  // A login: bound user, new id and key, new CSRF secret.
  const std::string old_id = l.id(), old_key = l.storage_key(),
                    old_secret = l.metadata().csrf_secret;
  e.mgr.bind_user(l, "alice");
  BOOST_TEST(l.user() == "alice");
  auto [e1] = run_on(e.ioc, e.mgr.async_rotate(l, tuple_token));
  BOOST_TEST_REQUIRE(!e1, e1.message());
  BOOST_TEST(l.id() != old_id);
  BOOST_TEST(l.storage_key() != old_key);
  BOOST_TEST(l.metadata().csrf_secret != old_secret);
  BOOST_TEST(l.id_changed());
  BOOST_TEST(l.metadata().user == "alice");

  // skip_save is only a flag for the HTTP glue.
  l.skip_save();
  BOOST_TEST(l.save_skipped());
  BOOST_TEST(l.valid());

  // Destroyed: not valid any more, flagged for the cookie's deletion; operations refuse it.
  auto [e2] = run_on(e.ioc, e.mgr.async_destroy(l, tuple_token));
  BOOST_TEST_REQUIRE(!e2, e2.message());
  BOOST_TEST(l.destroyed());
  BOOST_TEST(!l.valid());
  auto [e3] = run_on(e.ioc, e.mgr.async_save(l, tuple_token));
  BOOST_TEST(e3 == ec(error::invalid_session));
  session none;
  auto [e4] = run_on(e.ioc, e.mgr.async_save(none, tuple_token));
  BOOST_TEST(e4 == ec(error::invalid_session));
}

BOOST_AUTO_TEST_SUITE_END()
