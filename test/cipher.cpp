// SPDX-License-Identifier: BSL-1.0
// Tests of the ciphers (cipher/aes_gcm.hpp, cipher/plaintext.hpp): round trips, tamper
// detection, key rotation, and the thread-local context cache.
#include <websession/cipher/aes_gcm.hpp>
#include <websession/cipher/plaintext.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/error.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using websession::aes_gcm_cipher;
using websession::error;

// error_code compared with error_code: Boost.Test can print both sides.
const boost::system::error_code tampered = websession::make_error_code(error::tampered);

const std::string secret_old = websession::detail::random_bytes(32);
const std::string secret_new = websession::detail::random_bytes(48);
constexpr std::string_view aad = "ws:2fG0cM3l6zq1sVqHkq8cWl3o9sA4gkq5b1yYbZ3H6xE";

std::string seal(const aes_gcm_cipher& c, std::string_view plain, std::string_view ad = aad) {
  std::string out;
  const auto ec = c.seal(plain, ad, out);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return out;
}

// The plaintext, or the error's message prefixed with "!" so a BOOST_TEST shows both.
std::string open(const aes_gcm_cipher& c, std::string_view sealed, std::string_view ad = aad) {
  std::string out;
  const auto ec = c.open(sealed, ad, out);
  if (ec) return "!" + ec.message();
  return out;
}

boost::system::error_code open_ec(const aes_gcm_cipher& c, std::string_view sealed,
                                  std::string_view ad = aad) {
  std::string out = "previous content";
  const auto ec = c.open(sealed, ad, out);
  // On failure no unauthenticated plaintext (nor stale content) is left behind.
  if (ec) BOOST_TEST(out.empty());
  return ec;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cipher_aes_gcm)

BOOST_AUTO_TEST_CASE(round_trip_sizes) {
  const aes_gcm_cipher c(secret_old);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16},
                        std::size_t{17}, std::size_t{1024}, std::size_t{1024 * 1024}}) {
    const std::string plain = websession::detail::random_bytes(n);
    const std::string sealed = seal(c, plain);
    BOOST_TEST(sealed.size() == n + aes_gcm_cipher::overhead);
    BOOST_TEST(static_cast<unsigned char>(sealed[0]) == aes_gcm_cipher::format_version);
    BOOST_TEST(static_cast<unsigned char>(sealed[1]) == 1u);
    if (n >= 16) {
      // Encrypted: the plaintext does not appear in the sealed bytes.
      BOOST_TEST(sealed.find(plain.substr(0, 16)) == std::string::npos);
    }
    std::string out = "stale";
    BOOST_TEST(!c.open(sealed, aad, out));
    BOOST_TEST(out.size() == n);
    BOOST_TEST((out == plain), "size " << n);
  }
}

BOOST_AUTO_TEST_CASE(empty_aad) {
  const aes_gcm_cipher c(secret_old);
  const std::string sealed = seal(c, "hello", "");
  BOOST_TEST(open(c, sealed, "") == "hello");
  BOOST_TEST(open_ec(c, sealed, "x") == tampered);
}

BOOST_AUTO_TEST_CASE(nonce_makes_seals_differ) {
  const aes_gcm_cipher c(secret_old);
  const std::string a = seal(c, "same plaintext");
  const std::string b = seal(c, "same plaintext");
  BOOST_TEST(a != b);
  BOOST_TEST(a.substr(2, 12) != b.substr(2, 12));
  BOOST_TEST(open(c, a) == "same plaintext");
  BOOST_TEST(open(c, b) == "same plaintext");
}

BOOST_AUTO_TEST_CASE(every_byte_flip_is_tampered) {
  const aes_gcm_cipher c(secret_old);
  const std::string sealed = seal(c, "{\"user\":\"alice\",\"role\":\"admin\"}");
  BOOST_TEST(open(c, sealed) == "{\"user\":\"alice\",\"role\":\"admin\"}");
  for (std::size_t pos = 0; pos < sealed.size(); ++pos) {
    for (unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string bad = sealed;
      bad[pos] = static_cast<char>(static_cast<unsigned char>(bad[pos]) ^ mask);
      BOOST_TEST((open_ec(c, bad) == tampered),
                 "flip " << int(mask) << " at " << pos << " not detected");
    }
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_is_tampered) {
  const aes_gcm_cipher c(secret_old);
  const std::string sealed = seal(c, "a short session value");
  for (std::size_t len = 0; len < sealed.size(); ++len) {
    BOOST_TEST((open_ec(c, std::string_view(sealed).substr(0, len)) == tampered),
               "truncation to " << len << " not detected");
  }
  // Dropping bytes at the front, or appending, is no better.
  BOOST_TEST(open_ec(c, std::string_view(sealed).substr(1)) == tampered);
  BOOST_TEST(open_ec(c, sealed + '\0') == tampered);
  // An empty plaintext's sealed form is exactly the overhead; one byte less is tampered.
  const std::string empty = seal(c, "");
  BOOST_TEST(open(c, empty) == "");
  BOOST_TEST(open_ec(c, std::string_view(empty).substr(0, empty.size() - 1)) == tampered);
}

BOOST_AUTO_TEST_CASE(wrong_key_is_tampered) {
  const aes_gcm_cipher a(secret_old);
  const aes_gcm_cipher b(secret_new);  // same key id 1, other secret
  const std::string sealed = seal(a, "secret data");
  BOOST_TEST(open(a, sealed) == "secret data");
  BOOST_TEST(open_ec(b, sealed) == tampered);
  // A secret differing in its last byte only.
  std::string near = secret_old;
  near.back() = static_cast<char>(near.back() ^ 1);
  BOOST_TEST(open_ec(aes_gcm_cipher(near), sealed) == tampered);
  // The same secret under another id derives another key: relabelling the id does not help.
  const aes_gcm_cipher c(std::vector<aes_gcm_cipher::key_secret>{{2, secret_old}});
  std::string relabelled = sealed;
  relabelled[1] = 2;
  BOOST_TEST(open_ec(c, relabelled) == tampered);
}

BOOST_AUTO_TEST_CASE(other_aad_is_tampered) {
  const aes_gcm_cipher c(secret_old);
  const std::string sealed = seal(c, "bound to its key", "ws:key-A");
  BOOST_TEST(open(c, sealed, "ws:key-A") == "bound to its key");
  BOOST_TEST(open_ec(c, sealed, "ws:key-B") == tampered);
  BOOST_TEST(open_ec(c, sealed, "ws:key-A ") == tampered);
  BOOST_TEST(open_ec(c, sealed, "ws:key-") == tampered);
  BOOST_TEST(open_ec(c, sealed, "") == tampered);
}

BOOST_AUTO_TEST_CASE(unknown_version_and_key_id_are_tampered) {
  const aes_gcm_cipher c(secret_old);
  std::string sealed = seal(c, "value");
  sealed[0] = 2;
  BOOST_TEST(open_ec(c, sealed) == tampered);
  sealed[0] = 1;
  sealed[1] = 9;
  BOOST_TEST(open_ec(c, sealed) == tampered);
}

BOOST_AUTO_TEST_CASE(rotation) {
  const aes_gcm_cipher a(std::vector<aes_gcm_cipher::key_secret>{{7, secret_old}});
  const aes_gcm_cipher b(std::vector<aes_gcm_cipher::key_secret>{{8, secret_new}, {7, secret_old}});
  BOOST_TEST(a.current_key_id() == 7u);
  BOOST_TEST(b.current_key_id() == 8u);

  const std::string by_old = seal(a, "sealed before rotation");
  BOOST_TEST(static_cast<unsigned char>(by_old[1]) == 7u);
  BOOST_TEST(open(b, by_old) == "sealed before rotation");

  const std::string by_new = seal(b, "sealed after rotation");
  BOOST_TEST(static_cast<unsigned char>(by_new[1]) == 8u);
  BOOST_TEST(open(b, by_new) == "sealed after rotation");
  BOOST_TEST(open_ec(a, by_new) == tampered);

  // Dropping the old key retires its values.
  const aes_gcm_cipher c(std::vector<aes_gcm_cipher::key_secret>{{8, secret_new}});
  BOOST_TEST(open(c, by_new) == "sealed after rotation");
  BOOST_TEST(open_ec(c, by_old) == tampered);
}

// Seals are counted per key of the ring (for the 2^32 random-nonce limit); opens are not.
BOOST_AUTO_TEST_CASE(seals_are_counted_per_key) {
  const aes_gcm_cipher a(std::vector<aes_gcm_cipher::key_secret>{{8, secret_new}, {7, secret_old}});
  BOOST_TEST(a.seal_count() == 0u);
  std::string last;
  for (int i = 0; i < 5; ++i) last = seal(a, "value " + std::to_string(i));
  BOOST_TEST(a.seal_count() == 5u);
  BOOST_TEST(a.seal_count(8).value_or(99) == 5u);
  BOOST_TEST(a.seal_count(7).value_or(99) == 0u);
  BOOST_TEST(!a.seal_count(9).has_value());
  BOOST_TEST(open(a, last) == "value 4");
  BOOST_TEST(a.seal_count() == 5u);  // opening draws no nonce

  // Copies share the keyring and its counters; a cipher built anew starts from 0.
  const aes_gcm_cipher copy = a;
  seal(copy, "x");
  BOOST_TEST(a.seal_count() == 6u);
  const aes_gcm_cipher other(secret_new);
  BOOST_TEST(other.seal_count() == 0u);

  // A seal whose input views into its output is counted once.
  std::string buf = "in place";
  BOOST_TEST_REQUIRE(!a.seal(buf, aad, buf));
  BOOST_TEST(a.seal_count() == 7u);

  // Concurrent seals are all counted.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::string out;
      for (int i = 0; i < 1000; ++i) (void)a.seal("v", aad, out);
    });
  for (std::thread& t : threads) t.join();
  BOOST_TEST(a.seal_count() == 4007u);
}

BOOST_AUTO_TEST_CASE(invalid_keyrings_throw) {
  using ring = std::vector<aes_gcm_cipher::key_secret>;
  BOOST_CHECK_THROW(aes_gcm_cipher(std::string_view(secret_old).substr(0, 31)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(aes_gcm_cipher(""), std::invalid_argument);
  BOOST_CHECK_THROW(aes_gcm_cipher(ring{}), std::invalid_argument);
  BOOST_CHECK_THROW(aes_gcm_cipher(ring{{1, secret_new}, {2, secret_old.substr(0, 20)}}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(aes_gcm_cipher(ring{{3, secret_new}, {3, secret_old}}),
                    std::invalid_argument);
  BOOST_CHECK_NO_THROW(aes_gcm_cipher(std::string_view(secret_old).substr(0, 32)));
  BOOST_CHECK_NO_THROW(aes_gcm_cipher(ring{{0, secret_new}, {255, secret_old}}));
  try {
    aes_gcm_cipher bad(ring{{4, secret_new}, {4, secret_old}});
    BOOST_ERROR("duplicate ids accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string_view(e.what()).find("4") != std::string_view::npos);
  }
}

BOOST_AUTO_TEST_CASE(copies_share_the_keyring) {
  const aes_gcm_cipher a(secret_old);
  const aes_gcm_cipher copy = a;  // NOLINT(performance-unnecessary-copy-initialization)
  BOOST_TEST(open(copy, seal(a, "shared")) == "shared");
}

BOOST_AUTO_TEST_CASE(input_may_view_into_out) {
  const aes_gcm_cipher c(secret_old);
  std::string buf(300, 'x');
  BOOST_TEST(!c.seal(buf, aad, buf));
  BOOST_TEST(buf.size() == 300 + aes_gcm_cipher::overhead);
  BOOST_TEST(!c.open(buf, aad, buf));
  BOOST_TEST(buf == std::string(300, 'x'));
}

BOOST_AUTO_TEST_CASE(alternating_ciphers_on_one_thread) {
  // Each call switches keys, so the thread-local context must notice and reload the schedule.
  const aes_gcm_cipher a(secret_old);
  const aes_gcm_cipher b(secret_new);
  const aes_gcm_cipher r(std::vector<aes_gcm_cipher::key_secret>{{2, secret_new}, {1, secret_old}});
  std::size_t failures = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string plain = "value " + std::to_string(i);
    const std::string sa = seal(a, plain);
    const std::string sb = seal(b, plain);
    const std::string sr = seal(r, plain);
    if (open(a, sa) != plain || open(b, sb) != plain || open(r, sr) != plain) ++failures;
    if (open(r, sa) != plain) ++failures;  // ring r opens a's key 1
    if (!open(a, sb).starts_with("!") || !open(b, sa).starts_with("!")) ++failures;
    if (!open(a, sr).starts_with("!")) ++failures;
  }
  BOOST_TEST(failures == 0u);
}

BOOST_AUTO_TEST_CASE(many_ciphers_created_and_destroyed) {
  // A key destroyed and another created (possibly at the same address) must not be confused.
  std::size_t failures = 0;
  std::string previous;
  for (int i = 0; i < 50; ++i) {
    const std::string secret = websession::detail::random_bytes(32);
    const aes_gcm_cipher c(secret);
    const std::string sealed = seal(c, "x");
    if (open(c, sealed) != "x") ++failures;
    if (!previous.empty() && !open(c, previous).starts_with("!")) ++failures;
    previous = sealed;
  }
  BOOST_TEST(failures == 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_use_of_one_cipher) {
  const aes_gcm_cipher shared(secret_old);
  const aes_gcm_cipher other(secret_new);
  std::atomic<std::size_t> failures{0};
  auto work = [&](int thread) {
    std::string sealed, opened;
    for (int i = 0; i < 10'000; ++i) {
      const std::string plain = std::to_string(thread) + ":" + std::to_string(i) +
                                std::string(static_cast<std::size_t>(i % 200), 'p');
      // Interleave a second key now and then so each thread's context switches keys too.
      const aes_gcm_cipher& c = (i % 7 == 0) ? other : shared;
      if (c.seal(plain, aad, sealed) || c.open(sealed, aad, opened) || opened != plain) {
        failures.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread t1(work, 1);
  std::thread t2(work, 2);
  t1.join();
  t2.join();
  BOOST_TEST(failures.load() == 0u);
}

BOOST_AUTO_TEST_CASE(values_cross_threads) {
  // Sealed on one thread, opened on another (whose context never saw the key).
  const aes_gcm_cipher c(secret_old);
  std::vector<std::string> sealed(100);
  std::size_t failures = 0;
  // No Boost.Test assertion on the other thread: the framework is not thread-safe.
  std::thread([&] {
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      if (c.seal("v" + std::to_string(i), aad, sealed[i])) ++failures;
    }
  }).join();
  for (int i = 0; i < 100; ++i) {
    if (open(c, sealed[static_cast<std::size_t>(i)]) != "v" + std::to_string(i)) ++failures;
  }
  BOOST_TEST(failures == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cipher_plaintext)

BOOST_AUTO_TEST_CASE(round_trip_is_identity) {
  const websession::plaintext_cipher c;
  for (std::string plain : {std::string(), std::string("x"), std::string(1024, 'q')}) {
    std::string sealed = "stale", opened = "stale";
    BOOST_TEST(!c.seal(plain, aad, sealed));
    BOOST_TEST(sealed == plain);
    BOOST_TEST(!c.open(sealed, aad, opened));
    BOOST_TEST(opened == plain);
  }
  // No binding to aad and no integrity: that is the point of the name.
  std::string out;
  BOOST_TEST(!c.open("anything", "other key", out));
  BOOST_TEST(out == "anything");
}

BOOST_AUTO_TEST_SUITE_END()
