// The JSON serializer: round trips and every kind of malformed input as error::malformed.
#include <websession/error.hpp>
#include <websession/serializer/json.hpp>

#include <boost/test/unit_test.hpp>

using namespace websession;
using namespace std::chrono_literals;

namespace {

session_metadata sample_meta() {
  session_metadata m;
  m.created = time_point{1767225600123ms};
  m.last_seen = m.created + 5s;
  m.idle_deadline = m.last_seen + 30min;
  m.absolute_deadline = m.created + 8h;
  m.user = "alice \"quoted\" \xc3\xa9";
  m.csrf_secret = std::string(32, '\x07');
  m.fingerprint = "fp";
  return m;
}

boost::system::error_code decode(std::string_view in) {
  session_metadata m;
  boost::json::object d;
  return json_serializer{}.deserialize(in, m, d);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(serializer)

BOOST_AUTO_TEST_CASE(round_trip_keeps_metadata_and_data) {
  session_metadata m = sample_meta();
  m.version = 9;
  boost::json::object d{{"n", 1}, {"s", "x"}, {"nested", {{"a", {1, 2, 3}}}}, {"f", 1.5}};
  std::string bytes;
  json_serializer{}.serialize(m, d, bytes);

  session_metadata m2;
  m2.version = 4;  // the store's version is kept, not taken from the bytes
  boost::json::object d2;
  BOOST_TEST_REQUIRE(!json_serializer{}.deserialize(bytes, m2, d2));
  BOOST_TEST(d2 == d);
  BOOST_TEST(m2.version == 4u);
  m2.version = m.version;
  BOOST_TEST((m2 == m));
  BOOST_TEST(bytes.find("\"v\":1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_optional_fields_are_left_out) {
  session_metadata m = sample_meta();
  m.user.clear();
  m.fingerprint.clear();
  std::string bytes;
  json_serializer{}.serialize(m, {}, bytes);
  BOOST_TEST(bytes.find("\"u\"") == std::string::npos);
  BOOST_TEST(bytes.find("\"f\"") == std::string::npos);
  session_metadata m2;
  boost::json::object d2;
  BOOST_TEST_REQUIRE(!json_serializer{}.deserialize(bytes, m2, d2));
  BOOST_TEST((m2 == m));
  BOOST_TEST(d2.empty());
}

BOOST_AUTO_TEST_CASE(large_data_round_trips) {
  boost::json::object d;
  for (int i = 0; i < 2000; ++i) d["key" + std::to_string(i)] = std::string(100, 'a' + i % 26);
  std::string bytes;
  json_serializer{}.serialize(sample_meta(), d, bytes);
  BOOST_TEST(bytes.size() > 200000u);
  session_metadata m2;
  boost::json::object d2;
  BOOST_TEST_REQUIRE(!json_serializer{}.deserialize(bytes, m2, d2));
  BOOST_TEST(d2 == d);
}

BOOST_AUTO_TEST_CASE(malformed_inputs) {
  std::string good;
  json_serializer{}.serialize(sample_meta(), {{"k", 1}}, good);
  const std::string t = "\"c\":1,\"s\":1,\"i\":1,\"a\":1";
  const std::vector<std::string> bad = {
      "",
      "{",
      "null",
      "[]",
      "\"string\"",
      good.substr(0, good.size() - 1),                         // truncated
      good + "x",                                              // trailing garbage
      "{\"v\":2," + t + ",\"d\":{}}",                          // unknown version
      "{\"v\":\"1\"," + t + ",\"d\":{}}",                      // version of the wrong type
      "{" + t + ",\"d\":{}}",                                  // no version
      "{\"v\":1,\"c\":1,\"s\":1,\"i\":1,\"d\":{}}",            // missing deadline
      "{\"v\":1,\"c\":\"1\",\"s\":1,\"i\":1,\"a\":1,\"d\":{}}",  // time as string
      "{\"v\":1,\"c\":-5,\"s\":1,\"i\":1,\"a\":1,\"d\":{}}",   // negative time
      "{\"v\":1,\"c\":9223372036854775807,\"s\":1,\"i\":1,\"a\":1,\"d\":{}}",  // overflow
      "{\"v\":1,\"c\":1.5,\"s\":1,\"i\":1,\"a\":1,\"d\":{}}",  // fractional time
      "{\"v\":1," + t + "}",                                   // no data
      "{\"v\":1," + t + ",\"d\":[]}",                          // data not an object
      "{\"v\":1," + t + ",\"d\":{},\"u\":5}",                  // user not a string
      "{\"v\":1," + t + ",\"d\":{},\"x\":\"***\"}",            // csrf not base64url
      "{\"v\":1," + t + ",\"d\":{},\"f\":[]}",                 // fingerprint not a string
      "{\"v\":1," + t + ",\"d\":" + std::string(100, '[') + std::string(100, ']') + "}",  // deep
      std::string("\xff\xfe\x00\x01", 4),                      // binary
  };
  for (const std::string& b : bad) {
    BOOST_TEST(decode(b) == error::malformed, "input: " << b.substr(0, 80));
  }
  BOOST_TEST(!decode(good));
}

BOOST_AUTO_TEST_CASE(unknown_members_are_ignored) {
  BOOST_TEST(!decode("{\"v\":1,\"c\":1,\"s\":1,\"i\":1,\"a\":1,\"d\":{},\"future\":true}"));
}

BOOST_AUTO_TEST_SUITE_END()
