// SPDX-License-Identifier: BSL-1.0
// websession/record_codec.hpp, I/O-free: seal and open with the size caps, the errors told apart
// (too_large, malformed unopened, tampered, malformed after opening), the envelope read without
// the data, and a value sealed by an earlier version of the library still opening.
#include <websession/cipher/aes_gcm.hpp>
#include <websession/record_codec.hpp>
#include <websession/serializer/json.hpp>
#include <websession/testing/archetypes.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <string>

using namespace websession;
using boost::system::error_code;

namespace {

const std::string secret(48, 'k');
const std::string key = "test:{abc}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

time_point at_ms(std::int64_t ms) { return time_point{std::chrono::milliseconds(ms)}; }

session_metadata sample_meta() {
  session_metadata m;
  m.created = at_ms(1767225600000);
  m.last_seen = at_ms(1767225660000);
  m.idle_deadline = at_ms(1767227460000);
  m.absolute_deadline = at_ms(1767254400000);
  m.user = "alice";
  m.csrf_secret = std::string(32, '\x01');
  m.fingerprint = "fp";
  return m;
}

boost::json::object sample_data() {
  boost::json::object d;
  d["views"] = 3;
  d["name"] = "caf\xc3\xa9";
  return d;
}

using json_codec = record_codec<json_serializer, aes_gcm_cipher>;

json_codec make_codec(std::size_t max = 4096) { return json_codec({}, aes_gcm_cipher(secret), max); }

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// Sealed by the library before the record codec existed (commit 3566f4a: json_serializer then
// aes_gcm_cipher under `key`, secret 48 x 'k'), from sample_meta() and sample_data().
const std::string sealed_by_3566f4a = unhex(
    "0101a8832d625cafacdadc3cccbb92336fd029ac8931b72a551d83fd00af88c93cc24e0b0928fd697c8612582"
    "89bce1d5a9ba3d0e02f0fd316c2f0e37410d4ed02cdf22545ff8399c9a82e591bc30ed389db267c1bc6874ec"
    "bf5b6272a126f667bce2dfb06d83db140cb3ef5104e8bed1183de405b4533cce5eb1baf24c10951906825612"
    "098d3cd1da398b8c26eb6ef148d27d21a92d28ba31368662bf2bbcc9eb027fee915bf278c9a3907de9a96051"
    "4665c70b8df77722ed7d0935e323e73357f42aaa55f01853f5daf6dd457986cafcc42");

}  // namespace

BOOST_AUTO_TEST_SUITE(record_codec_tests)

BOOST_AUTO_TEST_CASE(seal_then_open_gives_the_session_and_the_store_version) {
  const json_codec codec = make_codec();
  std::string sealed;
  BOOST_TEST_REQUIRE(!codec.seal(sample_meta(), sample_data(), key, sealed));
  session_metadata meta;
  boost::json::object data;
  BOOST_TEST_REQUIRE(!codec.open(store_record{sealed, 7}, key, meta, data));
  session_metadata expected = sample_meta();
  expected.version = 7;
  BOOST_TEST((meta == expected));
  BOOST_TEST(data == sample_data());
}

BOOST_AUTO_TEST_CASE(a_value_sealed_by_an_earlier_version_still_opens) {
  const json_codec codec = make_codec();
  session_metadata meta;
  boost::json::object data;
  const error_code ec = codec.open(store_record{sealed_by_3566f4a, 2}, key, meta, data);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  session_metadata expected = sample_meta();
  expected.version = 2;
  BOOST_TEST((meta == expected));
  BOOST_TEST(data == sample_data());
  session_metadata envelope;
  BOOST_TEST(!codec.open_envelope(store_record{sealed_by_3566f4a, 2}, key, envelope));
  BOOST_TEST((envelope == expected));
}

BOOST_AUTO_TEST_CASE(size_caps) {
  const json_codec codec = make_codec(256);
  boost::json::object big;
  big["x"] = std::string(300, 'a');
  std::string sealed = "untouched";
  BOOST_TEST(codec.seal(sample_meta(), big, key, sealed) == error::too_large);
  // Just under the cap seals and opens.
  boost::json::object fits;
  std::string plain;
  BOOST_TEST_REQUIRE(!json_serializer{}.serialize(sample_meta(), {}, plain));
  fits["x"] = std::string(256 - plain.size() - 8, 'a');
  BOOST_TEST_REQUIRE(!codec.seal(sample_meta(), fits, key, sealed));
  session_metadata meta;
  boost::json::object data;
  BOOST_TEST(!codec.open(store_record{sealed, 1}, key, meta, data));
  // A stored value beyond the cap plus the sealing overhead is refused unopened: random bytes
  // that were opened would be `tampered`, these are `malformed`.
  const std::string huge(256 + json_codec::seal_overhead_limit + 1, '\x01');
  BOOST_TEST(codec.open(store_record{huge, 1}, key, meta, data) == error::malformed);
  BOOST_TEST(codec.open_envelope(store_record{huge, 1}, key, meta) == error::malformed);
  const std::string at_limit(256 + json_codec::seal_overhead_limit, '\x01');
  BOOST_TEST(codec.open(store_record{at_limit, 1}, key, meta, data) == error::tampered);
}

BOOST_AUTO_TEST_CASE(tampered_moved_and_foreign_values) {
  const json_codec codec = make_codec();
  std::string sealed;
  BOOST_TEST_REQUIRE(!codec.seal(sample_meta(), sample_data(), key, sealed));
  session_metadata meta;
  boost::json::object data;
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 0x04;
  BOOST_TEST(codec.open(store_record{flipped, 1}, key, meta, data) == error::tampered);
  BOOST_TEST(codec.open_envelope(store_record{flipped, 1}, key, meta) == error::tampered);
  // Under another storage key (the key is the associated data).
  const std::string other = "test:{abc}BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  BOOST_TEST(codec.open(store_record{sealed, 1}, other, meta, data) == error::tampered);
  // Sealed under another secret.
  const json_codec stranger({}, aes_gcm_cipher(std::string(48, 'z')), 4096);
  BOOST_TEST(stranger.open(store_record{sealed, 1}, key, meta, data) == error::tampered);
  BOOST_TEST(codec.open(store_record{"", 1}, key, meta, data) == error::tampered);
}

BOOST_AUTO_TEST_CASE(authentic_bytes_that_are_no_session_are_malformed) {
  const json_codec codec = make_codec();
  const aes_gcm_cipher cipher(secret);
  session_metadata meta;
  boost::json::object data;
  for (const std::string& plain : {std::string("not json"), std::string("{\"v\":2}"),
                                  std::string("[]"), std::string()}) {
    std::string sealed;
    BOOST_TEST_REQUIRE(!cipher.seal(plain, key, sealed));
    BOOST_TEST(codec.open(store_record{sealed, 1}, key, meta, data) == error::malformed, plain);
    BOOST_TEST(codec.open_envelope(store_record{sealed, 1}, key, meta) == error::malformed, plain);
  }
}

BOOST_AUTO_TEST_CASE(the_envelope_is_read_without_the_data) {
  const json_codec codec = make_codec();
  const aes_gcm_cipher cipher(secret);
  // As serialize() writes it, but with data that does not parse: open refuses it, the envelope
  // alone still reads (the data is skipped, not decoded).
  std::string plain;
  BOOST_TEST_REQUIRE(!json_serializer{}.serialize(sample_meta(), {}, plain));
  const std::size_t d = plain.rfind("{}");
  BOOST_TEST_REQUIRE(d != std::string::npos);
  plain.replace(d, 2, "{\"a\":[1,2");
  std::string sealed;
  BOOST_TEST_REQUIRE(!cipher.seal(plain, key, sealed));
  session_metadata meta;
  boost::json::object data;
  BOOST_TEST(codec.open(store_record{sealed, 5}, key, meta, data) == error::malformed);
  session_metadata envelope;
  BOOST_TEST_REQUIRE(!codec.open_envelope(store_record{sealed, 5}, key, envelope));
  session_metadata expected = sample_meta();
  expected.version = 5;
  BOOST_TEST((envelope == expected));

  // Another layout (whitespace) is parsed whole, and refused whole when the data is bad.
  std::string spaced;
  BOOST_TEST_REQUIRE(!json_serializer{}.serialize(sample_meta(), sample_data(), spaced));
  spaced.insert(1, " ");
  BOOST_TEST_REQUIRE(!cipher.seal(spaced, key, sealed));
  BOOST_TEST_REQUIRE(!codec.open_envelope(store_record{sealed, 5}, key, envelope));
  BOOST_TEST((envelope == expected));
  spaced.insert(spaced.size() - 2, "x");
  BOOST_TEST_REQUIRE(!cipher.seal(spaced, key, sealed));
  BOOST_TEST(codec.open_envelope(store_record{sealed, 5}, key, envelope) == error::malformed);
}

BOOST_AUTO_TEST_CASE(a_serializer_without_an_envelope_reader_decodes_and_drops_the_data) {
  static_assert(!envelope_reading_serializer<testing::archetype_serializer>);
  const record_codec<testing::archetype_serializer, testing::archetype_cipher> codec({}, {}, 4096);
  std::string sealed;
  BOOST_TEST_REQUIRE(!codec.seal(sample_meta(), sample_data(), key, sealed));
  session_metadata envelope;
  BOOST_TEST_REQUIRE(!codec.open_envelope(store_record{sealed, 3}, key, envelope));
  BOOST_TEST(envelope.user == "alice");
  BOOST_TEST(envelope.version == 3u);
  BOOST_TEST((envelope.absolute_deadline == sample_meta().absolute_deadline));
}

BOOST_AUTO_TEST_SUITE_END()
