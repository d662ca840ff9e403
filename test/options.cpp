// SPDX-License-Identifier: BSL-1.0
// options: defaults validate, from_env parses every variable, and bad values name the variable.
#include <websession/http/cookie.hpp>
#include <websession/id.hpp>
#include <websession/options.hpp>

#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <vector>

using namespace websession;
using namespace std::chrono_literals;

namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

std::string env_error(std::map<std::string, std::string> vars) {
  try {
    options::from_env(fake_env(std::move(vars)));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

std::string validate_error(const options& o) {
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool set_cookie_throws(const cookie_options& c) {
  try {
    (void)http::make_set_cookie(c, "v", std::chrono::seconds(60));
    (void)http::make_set_cookie(c, "v", std::nullopt);
    (void)http::make_delete_cookie(c);
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(options_suite)

BOOST_AUTO_TEST_CASE(defaults_are_secure_and_valid) {
  options o;
  BOOST_CHECK_NO_THROW(o.validate());
  BOOST_TEST(o.cookie.secure);
  BOOST_TEST(o.cookie.http_only);
  BOOST_TEST((o.cookie.same_site == same_site::lax));
  BOOST_TEST(o.cookie.name.starts_with("__Host-"));
  BOOST_TEST(o.idle_timeout.count() == std::chrono::milliseconds(30min).count());
  BOOST_TEST(o.absolute_timeout.count() == std::chrono::milliseconds(8h).count());
}

BOOST_AUTO_TEST_CASE(from_env_reads_every_variable) {
  options o = options::from_env(fake_env({
      {"WEBSESSION_IDLE_TIMEOUT", "15m"},
      {"WEBSESSION_ABSOLUTE_TIMEOUT", "2d"},
      {"WEBSESSION_TOUCH_INTERVAL", "1500ms"},
      {"WEBSESSION_KEY_PREFIX", "app1:"},
      {"WEBSESSION_MAX_VALUE_BYTES", "64k"},
      {"WEBSESSION_MAX_UPDATE_ATTEMPTS", "5"},
      {"WEBSESSION_COOKIE_NAME", "sid"},
      {"WEBSESSION_COOKIE_PATH", "/app"},
      {"WEBSESSION_COOKIE_DOMAIN", "example.com"},
      {"WEBSESSION_COOKIE_SECURE", "true"},
      {"WEBSESSION_COOKIE_HTTP_ONLY", "off"},
      {"WEBSESSION_COOKIE_SAMESITE", "strict"},
      {"WEBSESSION_COOKIE_PERSISTENT", "false"},
      {"WEBSESSION_ANONYMOUS_IDLE_TIMEOUT", "2m"},
      {"WEBSESSION_MAX_SESSIONS_PER_USER", "8"},
  }));
  BOOST_TEST(o.anonymous_idle_timeout.count() == 2 * 60 * 1000);
  BOOST_TEST(o.max_sessions_per_user == 8u);
  BOOST_TEST(options{}.anonymous_idle_timeout.count() == 5 * 60 * 1000);
  BOOST_TEST(options{}.max_sessions_per_user == 64u);
  BOOST_TEST(!o.cookie.persistent);
  BOOST_TEST(options{}.cookie.persistent);
  BOOST_TEST(options::from_env(fake_env({{"WEBSESSION_COOKIE_PERSISTENT", "yes"}})).cookie.persistent);
  BOOST_TEST(o.idle_timeout.count() == 15 * 60 * 1000);
  BOOST_TEST(o.absolute_timeout.count() == 2 * 86400 * 1000);
  BOOST_TEST(o.touch_interval.count() == 1500);
  BOOST_TEST(o.key_prefix == "app1:");
  BOOST_TEST(o.max_value_bytes == 65536u);
  BOOST_TEST(o.max_update_attempts == 5u);
  BOOST_TEST(o.cookie.name == "sid");
  BOOST_TEST(o.cookie.path == "/app");
  BOOST_TEST(o.cookie.domain == "example.com");
  BOOST_TEST(!o.cookie.http_only);
  BOOST_TEST((o.cookie.same_site == same_site::strict));
  // Bare numbers are seconds.
  BOOST_TEST(options::from_env(fake_env({{"WEBSESSION_IDLE_TIMEOUT", "90"}})).idle_timeout.count() ==
             90000);
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_variable) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"WEBSESSION_IDLE_TIMEOUT", "soon"},
      {"WEBSESSION_IDLE_TIMEOUT", "10y"},
      {"WEBSESSION_IDLE_TIMEOUT", "-5s"},
      {"WEBSESSION_IDLE_TIMEOUT", ""},
      {"WEBSESSION_ABSOLUTE_TIMEOUT", "99999999999999999999h"},
      {"WEBSESSION_TOUCH_INTERVAL", "1.5s"},
      {"WEBSESSION_ANONYMOUS_IDLE_TIMEOUT", "401d"},
      {"WEBSESSION_MAX_SESSIONS_PER_USER", "many"},
      {"WEBSESSION_MAX_VALUE_BYTES", "lots"},
      {"WEBSESSION_MAX_UPDATE_ATTEMPTS", "99999999999"},
      {"WEBSESSION_COOKIE_SECURE", "maybe"},
      {"WEBSESSION_COOKIE_PERSISTENT", "session"},
      {"WEBSESSION_COOKIE_SAMESITE", "sometimes"},
  };
  for (auto& [name, value] : bad) {
    std::string what = env_error({{name, value}});
    BOOST_TEST(what.find(name) != std::string::npos, name << "=" << value << " -> " << what);
  }
}

BOOST_AUTO_TEST_CASE(inconsistent_options_are_refused) {
  BOOST_TEST(env_error({{"WEBSESSION_TOUCH_INTERVAL", "2h"}}).find("touch_interval") !=
             std::string::npos);
  // SameSite=None without Secure, and a __Host- cookie with a Domain, are refused.
  BOOST_TEST(!env_error({{"WEBSESSION_COOKIE_SAMESITE", "none"},
                         {"WEBSESSION_COOKIE_SECURE", "false"},
                         {"WEBSESSION_COOKIE_NAME", "sid"}})
                  .empty());
  BOOST_TEST(!env_error({{"WEBSESSION_COOKIE_DOMAIN", "example.com"}}).empty());
  BOOST_TEST(!env_error({{"WEBSESSION_IDLE_TIMEOUT", "0"}}).empty());
}

// Two applications on one store with nested prefixes, P and P + "user:": P's user index names
// have the shape of the other's session keys (is_storage_key), so the other's administrative
// async_destroy_key would delete P's indexes. Such a prefix is refused, from the code and from
// the environment; other prefixes, nested or not, are not.
BOOST_AUTO_TEST_CASE(key_prefixes_that_nest_index_names_are_refused) {
  // Why: the index name of a user under "app:" is a storage key for "app:user:", and for
  // "app:user:{tag}" once the tag is taken off.
  const std::string index = user_index_key("app:", "alice");
  BOOST_TEST(is_storage_key(index, "app:user:"));
  const std::string tag = index.substr(std::string("app:user:").size(), 5);
  BOOST_TEST(is_storage_key(index, "app:user:" + tag));
  BOOST_TEST(!is_storage_key(index, "app:"));

  for (const std::string& prefix :
       {std::string("user:"), std::string("app:user:"), std::string("app:user:{abc}"),
        "app:user:" + tag, std::string("a:b:user:")}) {
    options o;
    o.key_prefix = prefix;
    const std::string what = validate_error(o);
    BOOST_TEST(what.find("key_prefix") != std::string::npos, prefix << " -> " << what);
    BOOST_TEST(options::nests_index_names(prefix), prefix);
    BOOST_TEST(env_error({{"WEBSESSION_KEY_PREFIX", prefix}}).find("key_prefix") !=
                   std::string::npos,
               prefix);
  }
  for (const std::string& prefix :
       {std::string("websession:"), std::string("app:"), std::string("app:users:"),
        std::string("app:user:x:"), std::string("app:user"), std::string("user"),
        std::string("wsc:{1.2}:"), std::string("app:user:{abc}:"), std::string("app:{x}"),
        std::string()}) {
    options o;
    o.key_prefix = prefix;
    BOOST_TEST(validate_error(o).empty(), prefix);
    BOOST_TEST(!options::nests_index_names(prefix), prefix);
  }
}

// Every cookie setting make_set_cookie refuses is refused by validate() at construction, with a
// message naming the problem (before, these validated and then made every response a 500).
BOOST_AUTO_TEST_CASE(cookie_settings_make_set_cookie_refuses_are_refused) {
  struct bad_case {
    const char* what;     // expected in the message
    cookie_options c;
  };
  auto with = [](auto change) {
    cookie_options c;
    c.name = "sid";
    change(c);
    return c;
  };
  const std::vector<bad_case> bad = {
      {"__Host-", with([](cookie_options& c) { c.name = "__host-sid"; c.secure = false; })},
      {"__Host-", with([](cookie_options& c) { c.name = "__HOST-sid"; c.path = "/app"; })},
      {"__Host-", with([](cookie_options& c) { c.name = "__Host-sid"; c.path.clear(); })},
      {"__Host-", with([](cookie_options& c) { c.name = "__hOsT-sid"; c.domain = "example.com"; })},
      {"__Secure-", with([](cookie_options& c) { c.name = "__secure-sid"; c.secure = false; })},
      {"__Secure-", with([](cookie_options& c) { c.name = "__SECURE-sid"; c.secure = false; })},
      {"cookie.name", with([](cookie_options& c) { c.name = ""; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "my session"; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "a;b"; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "a=b"; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "a\tb"; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "caf\xc3\xa9"; })},
      {"cookie.name", with([](cookie_options& c) { c.name = "a(b)"; })},
      {"cookie.path", with([](cookie_options& c) { c.path = "app"; })},
      {"cookie.path", with([](cookie_options& c) { c.path = "/a;b"; })},
      {"cookie.path", with([](cookie_options& c) { c.path = "/a\nb"; })},
      {"cookie.path", with([](cookie_options& c) { c.path = "/a\x7f"; })},
      {"cookie.path", with([](cookie_options& c) { c.path = "/caf\xc3\xa9"; })},
      {"cookie.domain", with([](cookie_options& c) { c.domain = "exa mple.com"; })},
      {"cookie.domain", with([](cookie_options& c) { c.domain = "example.com;x"; })},
      {"cookie.domain", with([](cookie_options& c) { c.domain = "example.com/"; })},
      {"cookie.domain", with([](cookie_options& c) { c.domain = "ex\xc3\xa9.com"; })},
      {"cookie.domain", with([](cookie_options& c) { c.domain = std::string(254, 'a'); })},
  };
  for (const bad_case& b : bad) {
    options o;
    o.cookie = b.c;
    const std::string what = validate_error(o);
    BOOST_TEST(what.find(b.what) != std::string::npos,
               "name=" << b.c.name << " path=" << b.c.path << " domain=" << b.c.domain
                       << " -> \"" << what << "\"");
    BOOST_TEST(set_cookie_throws(b.c), "make_set_cookie accepts name=" << b.c.name);
  }
}

// Property: every combination validate() accepts, make_set_cookie and make_delete_cookie accept.
BOOST_AUTO_TEST_CASE(whatever_validates_makes_a_set_cookie) {
  const std::vector<std::string> names = {"sid", "__Host-sid", "__host-sid", "__Secure-sid",
                                          "__SECURE-sid", "a b", "a;b", "", "!#$%&'*+-.^_`|~"};
  const std::vector<std::string> paths = {"/", "", "/app", "app", "/a;b", "/a\x01"};
  const std::vector<std::string> domains = {"", "example.com", "ex ample.com", "a.b-c.d"};
  const same_site sites[] = {same_site::strict, same_site::lax, same_site::none};
  int accepted = 0;
  for (const auto& n : names)
    for (const auto& p : paths)
      for (const auto& d : domains)
        for (bool secure : {false, true})
          for (same_site ss : sites) {
            options o;
            o.cookie.name = n;
            o.cookie.path = p;
            o.cookie.domain = d;
            o.cookie.secure = secure;
            o.cookie.same_site = ss;
            if (!validate_error(o).empty()) continue;
            ++accepted;
            BOOST_TEST(!set_cookie_throws(o.cookie),
                       "validated but refused: " << n << " " << p << " " << d << " " << secure);
          }
  BOOST_TEST(accepted > 50);
}

// Durations are bounded (400 days, the browsers' cookie cap), so `now + d` in the nanosecond
// time_point of system_clock stays far from overflow.
BOOST_AUTO_TEST_CASE(durations_are_bounded) {
  const auto limit = std::chrono::milliseconds(std::chrono::hours(24 * 400));
  BOOST_TEST(options::max_duration.count() == limit.count());
  {
    options o;
    o.idle_timeout = o.absolute_timeout = o.anonymous_idle_timeout = o.touch_interval = limit;
    BOOST_TEST(validate_error(o).empty(), validate_error(o));
  }
  using ms = std::chrono::milliseconds;
  for (const ms too_long : {limit + ms(1), ms(std::chrono::hours(24 * 99999)), ms::max()}) {
    options o;
    o.idle_timeout = too_long;
    BOOST_TEST(validate_error(o).find("idle_timeout") != std::string::npos, validate_error(o));
    BOOST_TEST(validate_error(o).find("400 days") != std::string::npos, validate_error(o));
    o = options{};
    o.absolute_timeout = too_long;
    BOOST_TEST(validate_error(o).find("absolute_timeout") != std::string::npos, validate_error(o));
    o = options{};
    o.anonymous_idle_timeout = too_long;
    BOOST_TEST(validate_error(o).find("anonymous_idle_timeout") != std::string::npos,
               validate_error(o));
    o = options{};
    o.touch_interval = too_long;
    BOOST_TEST(validate_error(o).find("touch_interval must be between 0 and 400 days") !=
                   std::string::npos,
               validate_error(o));
  }
  options o;
  o.absolute_timeout = ms::min();
  BOOST_TEST(validate_error(o).find("absolute_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(env_durations_are_bounded) {
  for (const char* v : {"99999d", "401d", "9601h", "34560001s", "34560000001ms",
                        "9223372036854775807ms", "9223372036854775808ms", "9223372036854776s",
                        "106751991167301d", "18446744073709551615", "18446744073709551616"}) {
    for (const char* name : {"WEBSESSION_IDLE_TIMEOUT", "WEBSESSION_ABSOLUTE_TIMEOUT",
                             "WEBSESSION_TOUCH_INTERVAL"}) {
      const std::string what = env_error({{name, v}});
      BOOST_TEST(what.find(name) != std::string::npos, name << "=" << v << " -> " << what);
    }
  }
  options o = options::from_env(fake_env({{"WEBSESSION_IDLE_TIMEOUT", "400d"},
                                          {"WEBSESSION_ABSOLUTE_TIMEOUT", "9600h"}}));
  BOOST_TEST(o.idle_timeout.count() == 400LL * 86400 * 1000);
  BOOST_TEST(o.absolute_timeout.count() == 400LL * 86400 * 1000);
}

// A field of a finer duration type than milliseconds must not wrap when it is read.
BOOST_AUTO_TEST_CASE(env_duration_does_not_wrap_finer_types) {
  std::chrono::nanoseconds ns{5};
  BOOST_CHECK_THROW(detail::env_duration(fake_env({{"X", "106751d"}}), "X", ns),
                    std::invalid_argument);
  BOOST_TEST(ns.count() == 5);
  detail::env_duration(fake_env({{"X", "400d"}}), "X", ns);
  BOOST_TEST(ns.count() == 400LL * 86400 * 1000'000'000);
}

BOOST_AUTO_TEST_SUITE_END()
