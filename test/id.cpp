// SPDX-License-Identifier: BSL-1.0
// Tests of session ids (id.hpp) and the base64url / CSPRNG helpers beneath them.
#include <websession/detail/base64url.hpp>
#include <websession/cipher/aes_gcm.hpp>
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
    if (text.size() != session_id::tagged_size) ++bad_length;
    const auto parsed = session_id::parse(text);
    if (!parsed || !(*parsed == id) || parsed->bytes() != id.bytes()) ++bad_parse;
    seen.insert(std::move(text));
  }
  BOOST_TEST(bad_length == 0u);
  BOOST_TEST(bad_parse == 0u);
  BOOST_TEST(seen.size() == count);
}

BOOST_AUTO_TEST_CASE(to_string_is_base64url_of_the_bytes_dot_tag) {
  const session_id id = session_id::generate();
  const auto& b = id.bytes();
  const std::string text = id.to_string();
  BOOST_TEST(text.substr(0, session_id::encoded_size) ==
             encode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())));
  BOOST_TEST(text[session_id::encoded_size] == '.');
  BOOST_TEST(text.substr(session_id::encoded_size + 1) == id.tag());
  BOOST_TEST(session_id::valid_tag(id.tag()));
  BOOST_TEST(!(id == session_id::generate()));
}

// The random part alone, as every id was before slot tags.
std::string untagged(const session_id& id) { return id.to_string().substr(0, session_id::encoded_size); }

BOOST_AUTO_TEST_CASE(untagged_ids_still_parse_and_keep_their_key) {
  const session_id id = session_id::generate();
  const auto legacy = session_id::parse(untagged(id));
  BOOST_TEST_REQUIRE(legacy.has_value());
  BOOST_TEST(legacy->bytes() == id.bytes());
  BOOST_TEST(legacy->tag().empty());
  BOOST_TEST(legacy->to_string() == untagged(id));
  BOOST_TEST(!(*legacy == id));
  // The storage key of an untagged id is prefix + hash, as it always was; a tag goes in braces.
  BOOST_TEST(legacy->storage_key("ws:").size() == 3 + 43u);
  BOOST_TEST(id.storage_key("ws:") == "ws:{" + std::string(id.tag()) + "}" +
                                          legacy->storage_key("ws:").substr(3));
}

BOOST_AUTO_TEST_CASE(tags_are_validated_and_chosen) {
  BOOST_TEST(session_id::valid_tag("abc"));
  BOOST_TEST(session_id::valid_tag("-_9"));
  for (const char* bad : {"", "ab", "abcd", "a}c", "{bc", "a.c", "a c", "ab=", "\xff\xff\xff"}) {
    BOOST_TEST(!session_id::valid_tag(bad), bad);
  }
  BOOST_CHECK_THROW(session_id::generate("a}b"), std::invalid_argument);
  BOOST_TEST(session_id::generate("xyz").tag() == "xyz");
  const std::string good = session_id::generate().to_string();
  const std::string base = good.substr(0, session_id::tagged_size - session_id::tag_size);
  // Whatever the cookie says must not reach the key unvalidated: no braces, no separators.
  for (const char* tag : {"a}c", "{}{", "ab:", "ab.", "ab=", "ab "}) {
    BOOST_TEST(!session_id::parse(base + tag).has_value(), tag);
  }
  std::string no_dot = good;
  no_dot[session_id::encoded_size] = 'A';
  BOOST_TEST(!session_id::parse(no_dot).has_value());
  // Random tags cover the alphabet (18 bits: every hash slot of a cluster gets used).
  std::unordered_set<std::string> tags;
  for (int i = 0; i < 2000; ++i) tags.insert(std::string(session_id::generate().tag()));
  BOOST_TEST(tags.size() > 1900u);
}

BOOST_AUTO_TEST_CASE(a_keyed_user_hash_needs_the_key) {
  const std::string k1(32, 'a'), k2(32, 'b');
  const std::string h1 = websession::user_hash("ada@example.com", k1);
  BOOST_TEST(h1.size() == 43u);
  BOOST_TEST(h1 != websession::user_hash("ada@example.com"));  // not the dictionary-able one
  BOOST_TEST(h1 != websession::user_hash("ada@example.com", k2));
  BOOST_TEST(h1 == websession::user_hash("ada@example.com", k1));
  BOOST_TEST(websession::user_slot_tag("ada@example.com", k1) == h1.substr(0, 3));
  BOOST_TEST(websession::user_index_key("ws:", "ada@example.com", k1) ==
             "ws:user:{" + h1.substr(0, 3) + "}" + h1);
}

// The user hash key comes from its own HKDF label, and stays the same when the keyring
// rotates (new keys get larger ids), or comes from an explicit index secret.
BOOST_AUTO_TEST_CASE(the_user_hash_key_survives_key_rotation) {
  using websession::aes_gcm_cipher;
  const std::string first(32, '1'), second(32, '2');
  const aes_gcm_cipher before(first);
  const std::string key(before.user_hash_key());
  BOOST_TEST(key.size() == 32u);
  BOOST_TEST(key != first);
  const aes_gcm_cipher rotated(std::vector<aes_gcm_cipher::key_secret>{{2, second}, {1, first}});
  BOOST_TEST(std::string(rotated.user_hash_key()) == key);
  const aes_gcm_cipher after(std::vector<aes_gcm_cipher::key_secret>{{2, second}}, first);
  BOOST_TEST(std::string(after.user_hash_key()) == key);
  const aes_gcm_cipher other(second);
  BOOST_TEST(std::string(other.user_hash_key()) != key);
  BOOST_CHECK_THROW(aes_gcm_cipher(std::vector<aes_gcm_cipher::key_secret>{{2, second}}, "short"),
                    std::invalid_argument);
  // Sealing does not use it: a value sealed before the rotation opens after it.
  std::string sealed, plain;
  BOOST_TEST_REQUIRE(!before.seal("hello", "k", sealed));
  BOOST_TEST(!rotated.open(sealed, "k", plain));
  BOOST_TEST(plain == "hello");
}

BOOST_AUTO_TEST_CASE(storage_key_shapes) {
  const session_id id = session_id::generate();
  const std::string key = id.storage_key("ws:");
  BOOST_TEST(websession::is_storage_key(key, "ws:"));
  BOOST_TEST(websession::is_storage_key(session_id::parse(id.to_string().substr(0, 43))->storage_key("ws:"), "ws:"));
  BOOST_TEST(!websession::is_storage_key(key, "other:"));
  BOOST_TEST(!websession::is_storage_key(key + "A", "ws:"));
  BOOST_TEST(!websession::is_storage_key(key.substr(0, key.size() - 1), "ws:"));
  BOOST_TEST(!websession::is_storage_key(websession::user_index_key("ws:", "ada"), "ws:"));
  BOOST_TEST(!websession::is_storage_key("ws:", "ws:"));
  BOOST_TEST(!websession::is_storage_key("ws:{ab}" + std::string(44, 'A'), "ws:"));
  BOOST_TEST(!websession::is_storage_key("ws:{a=b}" + std::string(43, 'A'), "ws:"));
  BOOST_TEST(!websession::is_storage_key("ws:" + std::string(42, 'A') + "=", "ws:"));
  BOOST_TEST(!websession::is_storage_key("ws:" + std::string(42, 'A') + "B", "ws:"));  // non-canonical
  BOOST_TEST(!websession::is_storage_key(id.to_string(), ""));  // the cookie is not a key
}

BOOST_AUTO_TEST_CASE(a_user_tag_and_index_share_the_hash_tag) {
  const std::string h = websession::user_hash("ada");
  BOOST_TEST(h.size() == 43u);
  BOOST_TEST(h != websession::user_hash("bob"));
  BOOST_TEST(websession::user_slot_tag("ada") == h.substr(0, 3));
  const std::string index = websession::user_index_key("ws:", "ada");
  BOOST_TEST(index == "ws:user:{" + h.substr(0, 3) + "}" + h);
  BOOST_TEST(index.find("ada") == std::string::npos);
  BOOST_TEST(websession::user_index_key("ws:", "").empty());
  const session_id id = session_id::generate(websession::user_slot_tag("ada"));
  const std::string key = id.storage_key("ws:");
  // Same text between the braces: the same Redis Cluster slot.
  BOOST_TEST(key.substr(key.find('{'), 5) == index.substr(index.find('{'), 5));
}

BOOST_AUTO_TEST_CASE(parse_rejects_wrong_lengths) {
  const std::string good = session_id::generate().to_string();
  BOOST_TEST(session_id::parse(good.substr(0, 43)).has_value());
  BOOST_TEST(!session_id::parse(good.substr(0, 44)).has_value());
  BOOST_TEST(!session_id::parse(good.substr(0, 46)).has_value());
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
    for (std::size_t pos : {std::size_t{0}, std::size_t{20}, std::size_t{42}, std::size_t{44},
                            std::size_t{46}}) {
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
  // 43 characters carry 258 bits for 256: the 43rd character's two low bits must be zero,
  // with or without a tag after it.
  const std::string good = session_id::generate().to_string();
  const std::size_t at = session_id::encoded_size - 1;
  const unsigned last = digit_value(good[at]);
  BOOST_TEST((last & 3u) == 0u);
  for (unsigned low = 1; low < 4; ++low) {
    std::string text = good;
    text[at] = digit(last | low);
    BOOST_TEST(!session_id::parse(text).has_value(), "accepted " << text);
    BOOST_TEST(!session_id::parse(text.substr(0, at + 1)).has_value(), "accepted " << text);
  }
}

BOOST_AUTO_TEST_CASE(storage_key_is_prefix_plus_hash) {
  const session_id a = session_id::generate();
  const session_id b = session_id::generate();
  const std::string ka = a.storage_key("ws:");
  BOOST_TEST(ka.size() == 3 + 5 + 43u);
  BOOST_TEST(ka.substr(0, 8) == "ws:{" + std::string(a.tag()) + "}");
  BOOST_TEST(ka == a.storage_key("ws:"));
  BOOST_TEST(ka != b.storage_key("ws:"));
  BOOST_TEST(a.storage_key("").size() == 5 + 43u);
  BOOST_TEST(a.storage_key("") == ka.substr(3));
  BOOST_TEST(ka.find(a.to_string().substr(0, 43)) == std::string::npos);
  // After the tag, the key is base64url of 32 bytes (a SHA-256 digest).
  std::string digest;
  BOOST_TEST(detail::base64url_decode(ka.substr(8), digest));
  BOOST_TEST(digest.size() == 32u);
  // The same bytes parsed from the cookie give the same key.
  BOOST_TEST(session_id::parse(a.to_string())->storage_key("ws:") == ka);
}

BOOST_AUTO_TEST_SUITE_END()
