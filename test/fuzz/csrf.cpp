// SPDX-License-Identifier: BSL-1.0
// Fuzz target: CSRF token verification (websession/csrf.hpp).
// Invariants: verify_csrf never throws and accepts exactly the tokens an independent
// recomputation of the MAC accepts; a token made with a salt taken from the input verifies, and
// every one-character change of it, another session's secret, or no secret, does not.
#include "fuzz.hpp"

#include <websession/cipher/plaintext.hpp>
#include <websession/csrf.hpp>
#include <websession/defaults.hpp>
#include <websession/detail/base64url.hpp>

#include <boost/asio/io_context.hpp>

#include <openssl/hmac.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

using namespace websession;

namespace {

// Sessions as the application gets them (each with its own random CSRF secret), from a manager
// that is never run: new_session() does no I/O.
session new_session() {
  static boost::asio::io_context ioc;
  static session_manager_for<memory_store, plaintext_cipher> mgr(ioc.get_executor(),
                                                                 plaintext_cipher());
  return mgr.new_session();
}

const session& main_session() {
  static const session s = new_session();
  return s;
}

// HMAC-SHA256(secret, label || salt), computed here without the library's helper.
std::string mac_of(std::string_view secret, std::string_view salt) {
  std::string msg = "websession-csrf-v1";
  msg.append(salt);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  const session& s = main_session();
  const std::string& secret = s.metadata().csrf_secret;

  // Arbitrary input: accepted exactly when it is base64url of salt || MAC(salt).
  bool expected = false;
  if (input.size() == csrf_token_size) {
    std::string raw;
    if (detail::base64url_decode(input, raw) && raw.size() == 48)
      expected = raw.substr(16) == mac_of(secret, std::string_view(raw).substr(0, 16));
  }
  WS_FUZZ_CHECK(verify_csrf(s, input) == expected);
  WS_FUZZ_CHECK(!verify_csrf(session{}, input));

  // A token with the input's first 16 bytes as salt.
  std::string salt(16, '\0');
  std::memcpy(salt.data(), input.data(), std::min<std::size_t>(16, input.size()));
  const std::string raw = salt + mac_of(secret, salt);
  std::string token;
  detail::base64url_encode(raw.data(), raw.size(), token);
  WS_FUZZ_CHECK(token.size() == csrf_token_size);
  WS_FUZZ_CHECK(verify_csrf(s, token));
  static const session other = new_session();
  WS_FUZZ_CHECK(!verify_csrf(other, token));

  // Any one-character change breaks it (64 characters carry 48 bytes: no unused bits).
  const std::size_t pos = size > 16 ? static_cast<unsigned char>(input[16]) % token.size() : 0;
  std::string changed = token;
  const char* alphabet = detail::base64url_alphabet;
  const std::size_t shift = size > 17 ? 1 + static_cast<unsigned char>(input[17]) % 63 : 1;
  changed[pos] = alphabet[(detail::base64url_values[static_cast<unsigned char>(changed[pos])] +
                           shift) % 64];
  WS_FUZZ_CHECK(changed != token);
  WS_FUZZ_CHECK(!verify_csrf(s, changed));
  WS_FUZZ_CHECK(!verify_csrf(s, token.substr(0, token.size() - 1)));
  WS_FUZZ_CHECK(!verify_csrf(s, token + "A"));
  return 0;
}
