// Tests of session ids (id.hpp) and the base64url / CSPRNG helpers beneath them.
#include <websession/detail/base64url.hpp>
#include <websession/id.hpp>

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

using websession::session_id;
namespace detail = websession::detail;

std::string encode(std::string_view bytes) {
  std::string out;
  detail::base64url_encode(bytes.data(), bytes.size(), out);
  return out;
}

// A value of the alphabet whose low bits are set, to build non-canonical spellings.
char digit(unsigned value) { return detail::base64url_alphabet[value & 63]; }

unsigned digit_value(char c) { return detail::base64url_values[static_cast<unsigned char>(c)]; }

}  // namespace

BOOST_AUTO_TEST_SUITE(base64url)

BOOST_AUTO_TEST_CASE(rfc4648_vectors) {
  // RFC 4648 §10 test vectors without padding, plus the two characters that differ from base64.
  BOOST_TEST(encode("") == "");
  BOOST_TEST(encode("f") == "Zg");
  BOOST_TEST(encode("fo") == "Zm8");
  BOOST_TEST(encode("foo") == "Zm9v");
  BOOST_TEST(encode("foob") == "Zm9vYg");
  BOOST_TEST(encode("fooba") == "Zm9vYmE");
  BOOST_TEST(encode("foobar") == "Zm9vYmFy");
  BOOST_TEST(encode(std::string_view("\xfb\xff", 2)) == "-_8");
  BOOST_TEST(encode(std::string_view("\xfb\xef\xbe", 3)) == "----");
  BOOST_TEST(encode(std::string_view("\xff\xff\xff", 3)) == "____");

  std::string out;
  BOOST_TEST(detail::base64url_decode("Zm9vYmFy", out));
  BOOST_TEST(out == "foobar");
  out.clear();
  BOOST_TEST(detail::base64url_decode("-_8", out));
  BOOST_TEST(out == std::string_view("\xfb\xff", 2));
}

BOOST_AUTO_TEST_CASE(appends) {
  std::string out = "prefix:";
  detail::base64url_encode("foo", 3, out);
  BOOST_TEST(out == "prefix:Zm9v");
  std::string bytes = "x";
  BOOST_TEST(detail::base64url_decode("Zm9v", bytes));
  BOOST_TEST(bytes == "xfoo");
}

BOOST_AUTO_TEST_CASE(round_trip_lengths_0_to_64) {
  for (std::size_t n = 0; n <= 64; ++n) {
    const std::string bytes = detail::random_bytes(n);
    const std::string text = encode(bytes);
    BOOST_TEST(text.size() == detail::base64url_encoded_size(n));
    BOOST_TEST(text.find_first_of("=+/") == std::string::npos);
    std::string back;
    BOOST_TEST(detail::base64url_decode(text, back), "length " << n);
    BOOST_TEST(back == bytes, "length " << n);
  }
  // Every byte value survives, in every position of a 3-byte group.
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::string bytes = std::string(shift, 'a') + all;
    std::string back;
    BOOST_TEST(detail::base64url_decode(encode(bytes), back));
    BOOST_TEST(back == bytes);
  }
}

BOOST_AUTO_TEST_CASE(rejects_padding_and_foreign_characters) {
  for (std::string_view bad : {"Zg==", "Zm8=", "Zg=", "Zm9v====", "Zm+v", "Zm/v", "Zm9 ", " Zm9",
                               "Zm9\n", "Zm.v", "Z\x80v", "Zm\xffv"}) {
    std::string out;
    BOOST_TEST(!detail::base64url_decode(bad, out), "accepted " << bad);
  }
  // An embedded NUL is not in the alphabet either.
  std::string out;
  BOOST_TEST(!detail::base64url_decode(std::string_view("Zm\0v", 4), out));
}

BOOST_AUTO_TEST_CASE(rejects_impossible_lengths) {
  for (std::string_view bad : {"Z", "Zm9vY", "Zm9vYmFyZ"}) {
    std::string out;
    BOOST_TEST(!detail::base64url_decode(bad, out), "accepted " << bad);
  }
}

BOOST_AUTO_TEST_CASE(rejects_non_canonical_trailing_bits) {
  // "Zg" is canonical for "f"; "Zh".."Zv" spell the same byte with nonzero unused bits.
  std::string out;
  BOOST_TEST(detail::base64url_decode("Zg", out));
  for (unsigned low = 1; low < 16; ++low) {
    const std::string bad = std::string("Z") + digit(digit_value('g') | low);
    out.clear();
    BOOST_TEST(!detail::base64url_decode(bad, out), "accepted " << bad);
  }
  // "Zm8" is canonical for "fo"; two unused bits.
  for (unsigned low = 1; low < 4; ++low) {
    const std::string bad = std::string("Zm") + digit(digit_value('8') | low);
    out.clear();
    BOOST_TEST(!detail::base64url_decode(bad, out), "accepted " << bad);
  }
}

BOOST_AUTO_TEST_CASE(random_bytes_are_random) {
  BOOST_TEST(detail::random_bytes(0).empty());
  const std::string a = detail::random_bytes(32);
  const std::string b = detail::random_bytes(32);
  BOOST_TEST(a.size() == 32u);
  BOOST_TEST(a != b);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(id)

BOOST_AUTO_TEST_CASE(generated_ids_are_distinct_and_parse_back) {
  constexpr std::size_t count = 100'000;
  std::unordered_set<std::string> seen;
  seen.reserve(count);
  std::size_t bad_length = 0, bad_parse = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const session_id id = session_id::generate();
    std::string text = id.to_string();
    if (text.size() != session_id::encoded_size) ++bad_length;
    const auto parsed = session_id::parse(text);
    if (!parsed || !(*parsed == id) || parsed->bytes() != id.bytes()) ++bad_parse;
    seen.insert(std::move(text));
  }
  BOOST_TEST(bad_length == 0u);
  BOOST_TEST(bad_parse == 0u);
  BOOST_TEST(seen.size() == count);
}

BOOST_AUTO_TEST_CASE(to_string_is_base64url_of_the_bytes) {
  const session_id id = session_id::generate();
  const auto& b = id.bytes();
  BOOST_TEST(id.to_string() ==
             encode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())));
  BOOST_TEST(!(id == session_id::generate()));
}

BOOST_AUTO_TEST_CASE(parse_rejects_wrong_lengths) {
  const std::string good = session_id::generate().to_string();
  BOOST_TEST(session_id::parse(good).has_value());
  BOOST_TEST(!session_id::parse("").has_value());
  BOOST_TEST(!session_id::parse(good.substr(0, 42)).has_value());
  BOOST_TEST(!session_id::parse(good + "A").has_value());
  BOOST_TEST(!session_id::parse(good.substr(0, 40)).has_value());
  BOOST_TEST(!session_id::parse(std::string(10 * 1024, 'A')).has_value());
  BOOST_TEST(!session_id::parse(good + std::string(10 * 1024 - good.size(), 'A')).has_value());
}

BOOST_AUTO_TEST_CASE(parse_rejects_foreign_characters) {
  const std::string good = session_id::generate().to_string();
  for (char bad : {'+', '/', '=', ' ', '.', '\0', '\x80', '\xff'}) {
    for (std::size_t pos : {std::size_t{0}, std::size_t{20}, std::size_t{42}}) {
      std::string text = good;
      text[pos] = bad;
      BOOST_TEST(!session_id::parse(text).has_value(),
                 "accepted char " << int(static_cast<unsigned char>(bad)) << " at " << pos);
    }
  }
  // A non-ASCII character spelled as UTF-8 (two bytes) in place of two characters.
  std::string text = good.substr(0, 41) + "\xc3\xa9";
  BOOST_TEST(text.size() == session_id::encoded_size);
  BOOST_TEST(!session_id::parse(text).has_value());
}

BOOST_AUTO_TEST_CASE(parse_rejects_non_canonical_trailing_bits) {
  // 43 characters carry 258 bits for 256: the last character's two low bits must be zero.
  const std::string good = session_id::generate().to_string();
  const unsigned last = digit_value(good.back());
  BOOST_TEST((last & 3u) == 0u);
  for (unsigned low = 1; low < 4; ++low) {
    std::string text = good;
    text.back() = digit(last | low);
    BOOST_TEST(!session_id::parse(text).has_value(), "accepted " << text);
  }
}

BOOST_AUTO_TEST_CASE(storage_key_is_prefix_plus_hash) {
  const session_id a = session_id::generate();
  const session_id b = session_id::generate();
  const std::string ka = a.storage_key("ws:");
  BOOST_TEST(ka.size() == 3 + 43u);
  BOOST_TEST(ka.substr(0, 3) == "ws:");
  BOOST_TEST(ka == a.storage_key("ws:"));
  BOOST_TEST(ka != b.storage_key("ws:"));
  BOOST_TEST(a.storage_key("").size() == 43u);
  BOOST_TEST(a.storage_key("") == ka.substr(3));
  BOOST_TEST(a.storage_key("") != a.to_string());
  BOOST_TEST(ka.find(a.to_string()) == std::string::npos);
  // The key is itself base64url of 32 bytes (a SHA-256 digest).
  std::string digest;
  BOOST_TEST(detail::base64url_decode(ka.substr(3), digest));
  BOOST_TEST(digest.size() == 32u);
  // The same bytes parsed from the cookie give the same key.
  BOOST_TEST(session_id::parse(a.to_string())->storage_key("ws:") == ka);
}

BOOST_AUTO_TEST_SUITE_END()
