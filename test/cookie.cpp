// SPDX-License-Identifier: BSL-1.0
// RFC 6265 Cookie header parsing and Set-Cookie building (websession/http/cookie.hpp): every
// malformed input the parser rejects, and the prefix and SameSite rules the builder enforces.
#include <websession/http/cookie.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace websession;
using namespace websession::http;
using namespace std::chrono_literals;

namespace {

std::vector<cookie_pair> parse(std::string_view header) {
  auto r = parse_cookie_header(header);
  BOOST_TEST_REQUIRE(r.has_value(), "header: " << header);
  return *r;
}

// "name=value" of each valid pair, so a whole parse compares in one assertion.
std::vector<std::string> valid_pairs(std::string_view header) {
  std::vector<std::string> out;
  for (const cookie_pair& p : parse(header))
    if (p.valid()) out.push_back(std::string(p.name) + "=" + std::string(p.value));
  return out;
}

std::vector<std::string> strings(std::initializer_list<const char*> l) {
  return std::vector<std::string>(l.begin(), l.end());
}

// The defect of the only pair in `header`.
cookie_defect defect_of(std::string_view header) {
  const std::vector<cookie_pair> pairs = parse(header);
  BOOST_TEST_REQUIRE(pairs.size() == 1u, "header: " << header);
  return pairs[0].defect;
}

const time_point new_year_2026{std::chrono::seconds{1767225600}};  // Thu, 01 Jan 2026 00:00:00

cookie_options plain_options() {
  cookie_options o;
  o.name = "sid";
  o.secure = false;
  o.http_only = false;
  o.same_site = same_site::lax;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cookie_parse)

BOOST_AUTO_TEST_CASE(pairs_in_order) {
  const std::vector<cookie_pair> pairs = parse("a=1; b=two; c=");
  BOOST_TEST_REQUIRE(pairs.size() == 3u);
  BOOST_TEST(pairs[0].name == "a");
  BOOST_TEST(pairs[0].value == "1");
  BOOST_TEST(pairs[1].name == "b");
  BOOST_TEST(pairs[1].value == "two");
  BOOST_TEST(pairs[2].name == "c");
  BOOST_TEST(pairs[2].value == "");
  for (const cookie_pair& p : pairs) BOOST_TEST(p.valid());
  BOOST_TEST(parse("").empty());
  BOOST_TEST(parse("   ").empty());
}

BOOST_AUTO_TEST_CASE(whitespace_variants) {
  const std::vector<std::string> ab = strings({"a=1", "b=2"});
  for (const char* h : {"a=1; b=2", "a=1;b=2", "a=1;   b=2", "a=1;\tb=2", " a=1 ; b=2 ",
                        "\ta=1\t;\tb=2\t", "a=1; b=2;", "a=1;; b=2", ";a=1;;;b=2;;", "a=1; ; b=2"}) {
    BOOST_TEST(valid_pairs(h) == ab, "header: [" << h << "]");
    // Empty segments are not pairs: nothing is reported for them.
    BOOST_TEST(parse(h).size() == 2u, "header: [" << h << "]");
  }
}

BOOST_AUTO_TEST_CASE(whitespace_around_equals_is_invalid) {
  BOOST_TEST((defect_of("a =1") == cookie_defect::bad_name));
  BOOST_TEST((defect_of("a= 1") == cookie_defect::bad_value));
  BOOST_TEST((defect_of("a=1 2") == cookie_defect::bad_value));
  BOOST_TEST((defect_of("a=1\t2") == cookie_defect::bad_value));
  BOOST_TEST((defect_of("a b=1") == cookie_defect::bad_name));
}

BOOST_AUTO_TEST_CASE(repeated_names_are_all_returned) {
  BOOST_TEST(valid_pairs("a=1; b=2; a=3; a=4") == strings({"a=1", "b=2", "a=3", "a=4"}));
  BOOST_TEST(find_cookie("a=1; b=2; a=3", "a").value_or("?") == "1");
}

BOOST_AUTO_TEST_CASE(quoted_values) {
  BOOST_TEST(valid_pairs(R"(a="xyz"; b=""; c="x=y")") == strings({"a=xyz", "b=", "c=x=y"}));
  BOOST_TEST(find_cookie(R"(a="xyz")", "a").value_or("?") == "xyz");
  BOOST_TEST((defect_of(R"(a="xyz)") == cookie_defect::unbalanced_quote));
  BOOST_TEST((defect_of(R"(a=xyz")") == cookie_defect::unbalanced_quote));
  BOOST_TEST((defect_of(R"(a=")") == cookie_defect::unbalanced_quote));
  BOOST_TEST((defect_of(R"(a="x"y")") == cookie_defect::bad_value));
  BOOST_TEST((defect_of(R"(a="x y")") == cookie_defect::bad_value));
  BOOST_TEST((defect_of(R"(a=x"y)") == cookie_defect::bad_value));
}

BOOST_AUTO_TEST_CASE(values_may_hold_equals_and_base64) {
  BOOST_TEST(valid_pairs("a=b=c; t=AZaz09-_.~!#$%&'()*+/:<=>?@[]^`{|}")
             == strings({"a=b=c", "t=AZaz09-_.~!#$%&'()*+/:<=>?@[]^`{|}"}));
}

BOOST_AUTO_TEST_CASE(invalid_value_bytes_invalidate_only_their_pair) {
  const std::vector<std::string> bad_values = {
      std::string("x\x01y"),  std::string("x\x1fy"), std::string("x\x7fy"),
      std::string("x\0y", 3), "x\"y",                "x,y",
      "x\\y",                 "caf\xc3\xa9",         "\x80",
      "x\xffy",
  };
  for (const std::string& v : bad_values) {
    const std::string header = "a=1; bad=" + v + "; b=2";
    const std::vector<cookie_pair> pairs = parse(header);
    BOOST_TEST_REQUIRE(pairs.size() == 3u);
    BOOST_TEST(pairs[0].valid());
    BOOST_TEST((pairs[1].defect == cookie_defect::bad_value), "value: " << v);
    BOOST_TEST(pairs[1].name == "bad");
    BOOST_TEST(pairs[2].valid());
    BOOST_TEST(!find_cookie(header, "bad").has_value());
    BOOST_TEST(find_cookie(header, "b").value_or("?") == "2");
  }
}

BOOST_AUTO_TEST_CASE(invalid_names) {
  BOOST_TEST((defect_of("=abc") == cookie_defect::empty_name));
  BOOST_TEST((defect_of("=") == cookie_defect::empty_name));
  BOOST_TEST((defect_of("abc") == cookie_defect::missing_equals));
  BOOST_TEST((defect_of("\"a\"=1") == cookie_defect::bad_name));
  for (const char* n : {"a@", "a(", "a)", "a<", "a>", "a,", "a:", "a\\", "a/", "a[", "a]", "a?",
                        "a{", "a}", "caf\xc3\xa9", "a\x01", "a\x7f"}) {
    BOOST_TEST((defect_of(std::string(n) + "=1") == cookie_defect::bad_name), "name: " << n);
  }
  BOOST_TEST(valid_pairs("!#$%&'*+-.^_`|~09AZaz=1") == strings({"!#$%&'*+-.^_`|~09AZaz=1"}));
  BOOST_TEST(is_cookie_name("__Host-session"));
  BOOST_TEST(!is_cookie_name(""));
  BOOST_TEST(!is_cookie_name("a b"));
  BOOST_TEST(is_cookie_value(""));
  BOOST_TEST(!is_cookie_value("a b"));
}

BOOST_AUTO_TEST_CASE(size_limit) {
  const std::string exact = "a=" + std::string(default_max_cookie_header - 2, 'x');
  BOOST_TEST_REQUIRE(exact.size() == 8192u);
  BOOST_TEST(parse_cookie_header(exact).has_value());
  BOOST_TEST(find_cookie(exact, "a").has_value());

  const std::string over = exact + "x";
  auto r = parse_cookie_header(over);
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error() == error::too_large);
  BOOST_TEST(!find_cookie(over, "a").has_value());

  BOOST_TEST(!parse_cookie_header("a=12345", 6).has_value());
  BOOST_TEST(parse_cookie_header("a=12345", 7).has_value());
  BOOST_TEST(!find_cookie("a=12345", "a", 6).has_value());
}

BOOST_AUTO_TEST_CASE(find_cookie_rules) {
  BOOST_TEST(find_cookie("a=bad\"; a=ok", "a").value_or("?") == "ok");
  BOOST_TEST(find_cookie("a=\"open; a=ok", "a").value_or("?") == "ok");
  BOOST_TEST(!find_cookie("b=1", "a").has_value());
  BOOST_TEST(!find_cookie("", "a").has_value());
  BOOST_TEST(!find_cookie("A=1", "a").has_value());  // names are case-sensitive
  BOOST_TEST(find_cookie("ab=1; a=2", "a").value_or("?") == "2");
  BOOST_TEST(find_cookie("xa=1; a=2", "a").value_or("?") == "2");
  BOOST_TEST(find_cookie("a=; a=2", "a").value_or("?") == "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(set_cookie)

BOOST_AUTO_TEST_CASE(http_dates) {
  BOOST_TEST(format_http_date(time_point{}) == "Thu, 01 Jan 1970 00:00:00 GMT");
  BOOST_TEST(format_http_date(time_point{std::chrono::seconds{784111777}}) ==
             "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  BOOST_TEST(format_http_date(new_year_2026 + 1500ms) == "Thu, 01 Jan 2026 00:00:01 GMT");
  BOOST_TEST(format_http_date(time_point{std::chrono::seconds{1709208000}}) ==
             "Thu, 29 Feb 2024 12:00:00 GMT");
  BOOST_TEST(format_http_date(time_point{std::chrono::seconds{4102444799}}) ==
             "Thu, 31 Dec 2099 23:59:59 GMT");
}

BOOST_AUTO_TEST_CASE(default_options_write_every_flag) {
  const cookie_options o;  // __Host-session, Path=/, Secure, HttpOnly, Lax
  BOOST_TEST(make_set_cookie(o, "abc", 3600s, new_year_2026) ==
             "__Host-session=abc; Path=/; Max-Age=3600; Expires=Thu, 01 Jan 2026 01:00:00 GMT; "
             "Secure; HttpOnly; SameSite=Lax");
  BOOST_TEST(make_set_cookie(o, "abc", std::nullopt, new_year_2026) ==
             "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax");
}

BOOST_AUTO_TEST_CASE(flags_follow_the_options) {
  cookie_options o = plain_options();
  BOOST_TEST(make_set_cookie(o, "v", std::nullopt) == "sid=v; Path=/; SameSite=Lax");
  o.same_site = same_site::strict;
  o.http_only = true;
  BOOST_TEST(make_set_cookie(o, "v", std::nullopt) == "sid=v; Path=/; HttpOnly; SameSite=Strict");
  o.path = "/app";
  o.domain = "example.com";
  o.secure = true;
  BOOST_TEST(make_set_cookie(o, "v", 60s, new_year_2026) ==
             "sid=v; Path=/app; Domain=example.com; Max-Age=60; "
             "Expires=Thu, 01 Jan 2026 00:01:00 GMT; Secure; HttpOnly; SameSite=Strict");
  o.path.clear();
  o.domain.clear();
  BOOST_TEST(make_set_cookie(o, "", std::nullopt) == "sid=; Secure; HttpOnly; SameSite=Strict");
}

BOOST_AUTO_TEST_CASE(same_site_none_forces_secure) {
  cookie_options o = plain_options();
  o.same_site = same_site::none;
  BOOST_TEST(make_set_cookie(o, "v", std::nullopt) == "sid=v; Path=/; Secure; SameSite=None");
  BOOST_TEST(make_delete_cookie(o).find("; Secure; SameSite=None") != std::string::npos);
  o.secure = true;
  BOOST_TEST(make_set_cookie(o, "v", std::nullopt) == "sid=v; Path=/; Secure; SameSite=None");
}

BOOST_AUTO_TEST_CASE(max_age_is_clamped) {
  const cookie_options o = plain_options();
  BOOST_TEST(make_set_cookie(o, "v", -5s, new_year_2026) ==
             "sid=v; Path=/; Max-Age=0; Expires=Thu, 01 Jan 2026 00:00:00 GMT; SameSite=Lax");
  BOOST_TEST(make_set_cookie(o, "v", std::chrono::seconds::max(), new_year_2026) ==
             "sid=v; Path=/; Max-Age=34560000; Expires=Fri, 05 Feb 2027 00:00:00 GMT; "
             "SameSite=Lax");
}

// persistent=false: a browser-session cookie, whatever max_age the caller passes; deletion still
// needs Max-Age=0, so make_delete_cookie is unchanged.
BOOST_AUTO_TEST_CASE(non_persistent_cookie_has_no_max_age_or_expires) {
  cookie_options o;
  BOOST_TEST(o.persistent);
  o.persistent = false;
  BOOST_TEST(make_set_cookie(o, "abc", 3600s, new_year_2026) ==
             "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax");
  BOOST_TEST(make_set_cookie(o, "abc", std::nullopt, new_year_2026) ==
             "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax");
  BOOST_TEST(make_delete_cookie(o) ==
             "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
             "Secure; HttpOnly; SameSite=Lax");
}

BOOST_AUTO_TEST_CASE(host_prefix_rules) {
  cookie_options ok;
  BOOST_CHECK_NO_THROW(make_set_cookie(ok, "v", std::nullopt));

  cookie_options insecure = ok;
  insecure.secure = false;
  cookie_options sub_path = ok;
  sub_path.path = "/app";
  cookie_options no_path = ok;
  no_path.path.clear();
  cookie_options domain = ok;
  domain.domain = "example.com";
  cookie_options lower = ok;
  lower.name = "__host-session";  // browsers match the prefix case-insensitively
  lower.domain = "example.com";
  for (const cookie_options& o : {insecure, sub_path, no_path, domain, lower}) {
    BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
    BOOST_CHECK_THROW(make_delete_cookie(o), std::invalid_argument);
  }
  // Insecure, but SameSite=None makes it Secure: what the browser sees obeys the rule.
  cookie_options none = insecure;
  none.same_site = same_site::none;
  BOOST_CHECK_NO_THROW(make_set_cookie(none, "v", std::nullopt));
}

BOOST_AUTO_TEST_CASE(secure_prefix_rules) {
  cookie_options o = plain_options();
  o.name = "__Secure-sid";
  BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
  BOOST_CHECK_THROW(make_delete_cookie(o), std::invalid_argument);
  o.name = "__SECURE-sid";
  BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
  o.secure = true;
  o.path = "/app";
  o.domain = "example.com";  // allowed with __Secure-, unlike __Host-
  BOOST_TEST(make_set_cookie(o, "v", std::nullopt) ==
             "__SECURE-sid=v; Path=/app; Domain=example.com; Secure; SameSite=Lax");
}

BOOST_AUTO_TEST_CASE(names_values_paths_domains_are_validated) {
  for (const char* name : {"", "a b", "a;b", "a=b", "a,b", "caf\xc3\xa9", "a\tb"}) {
    cookie_options o = plain_options();
    o.name = name;
    BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
    BOOST_CHECK_THROW(make_delete_cookie(o), std::invalid_argument);
  }
  for (const char* value : {"a b", "a;b", "a,b", "\"q\"", "a\\b", "caf\xc3\xa9", "a\nb"}) {
    BOOST_CHECK_THROW(make_set_cookie(plain_options(), value, std::nullopt),
                      std::invalid_argument);
  }
  for (const char* path : {"app", "/a;b", "/a\nb", "/caf\xc3\xa9"}) {
    cookie_options o = plain_options();
    o.path = path;
    BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
  }
  for (const char* domain : {"exa mple.com", "example.com;x", "example.com/", "ex\xc3\xa9.com"}) {
    cookie_options o = plain_options();
    o.domain = domain;
    BOOST_CHECK_THROW(make_set_cookie(o, "v", std::nullopt), std::invalid_argument);
  }
}

BOOST_AUTO_TEST_CASE(delete_cookie) {
  BOOST_TEST(make_delete_cookie(cookie_options{}) ==
             "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
             "Secure; HttpOnly; SameSite=Lax");
  cookie_options o = plain_options();
  o.path = "/app";
  o.domain = "example.com";
  BOOST_TEST(make_delete_cookie(o) ==
             "sid=; Path=/app; Domain=example.com; Max-Age=0; "
             "Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax");
}

BOOST_AUTO_TEST_CASE(what_is_set_parses_back) {
  const std::string value = "AZaz09-_AZaz09-_AZaz09-_AZaz09-_AZaz09-_abc";
  const std::string sc = make_set_cookie(cookie_options{}, value, 60s);
  const std::string pair = sc.substr(0, sc.find(';'));
  BOOST_TEST(find_cookie(pair, "__Host-session").value_or("?") == value);
}

BOOST_AUTO_TEST_SUITE_END()
