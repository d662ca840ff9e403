// SPDX-License-Identifier: BSL-1.0
// Fuzz target: decoding stored session values (websession/serializer/json.hpp).
// Invariants: deserialize never throws past bad input (error::malformed, the outputs untouched);
// whatever it accepts, serialize accepts too ("a session that was saved can always be loaded"
// and the converse), and decode -> encode -> decode gives the same metadata and data, and the
// second encoding equals the first (encode is canonical for what it wrote).
#include "fuzz.hpp"

#include <websession/serializer/json.hpp>

#include <boost/json/object.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

using namespace websession;

namespace {

// Equal, except that doubles may differ in their last bit or two: Boost.JSON 1.81 parses some
// numbers one ulp away from the nearest double (it has no precise mode), and
// serializes the shortest spelling that a correct parser reads back, so a double can move by an
// ulp on a load/save cycle (1.8466700001673973760e19 is written as 1.8466700001673974E19, which
// 1.81 reads as ...977856). A known limitation, not checked here.
bool near(double a, double b) {
  return a == b || std::nextafter(a, b) == b || std::nextafter(std::nextafter(a, b), b) == b;
}

bool near_equal(const boost::json::value& a, const boost::json::value& b);

bool near_equal(const boost::json::object& a, const boost::json::object& b) {
  if (a.size() != b.size()) return false;
  for (const auto& kv : a) {
    const boost::json::value* v = b.if_contains(kv.key());
    if (!v || !near_equal(kv.value(), *v)) return false;
  }
  return true;
}

bool near_equal(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) return near(a.get_double(), b.get_double());
  if (a.is_array() && b.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!near_equal(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) return near_equal(a.get_object(), b.get_object());
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  const json_serializer ser;

  session_metadata meta;
  meta.version = 42;
  meta.user = "untouched";
  boost::json::object obj;
  obj["untouched"] = true;
  const boost::system::error_code ec = ser.deserialize(input, meta, obj);
  if (ec) {
    WS_FUZZ_CHECK(ec == error::malformed);
    WS_FUZZ_CHECK(meta.user == "untouched" && meta.version == 42 && obj.size() == 1);
    return 0;
  }
  WS_FUZZ_CHECK(meta.version == 42);  // the store's, not the encoding's

  std::string encoded;
  const boost::system::error_code sec = ser.serialize(meta, obj, encoded);
  WS_FUZZ_CHECK(!sec);

  session_metadata meta2;
  meta2.version = 42;
  boost::json::object obj2;
  WS_FUZZ_CHECK(!ser.deserialize(encoded, meta2, obj2));
  WS_FUZZ_CHECK(meta2 == meta);
  WS_FUZZ_CHECK(near_equal(obj2, obj));

  std::string encoded2;
  WS_FUZZ_CHECK(!ser.serialize(meta2, obj2, encoded2));
  if (obj2 == obj) WS_FUZZ_CHECK(encoded2 == encoded);
  return 0;
}
