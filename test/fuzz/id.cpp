// SPDX-License-Identifier: BSL-1.0
// Fuzz target: session id decoding (websession/id.hpp) and strict base64url
// (websession/detail/base64url.hpp).
// Invariants: an id is accepted exactly when an independent check of the grammar says so
// (43 canonical base64url characters, optionally '.' and a 3-character tag); an accepted id
// spells itself (decode -> encode == input) and its storage key has the storage key shape;
// base64url decode -> encode == input whenever decoding succeeds, and decoding succeeds exactly
// for canonical unpadded base64url.
#include "fuzz.hpp"

#include <websession/detail/base64url.hpp>
#include <websession/id.hpp>

#include <cstdint>
#include <string>
#include <string_view>

using namespace websession;

namespace {

bool in_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '-' ? 62 : 63;
}

// Canonical unpadded base64url, checked the slow way.
bool canonical_base64url(std::string_view s) {
  if (s.size() % 4 == 1) return false;
  for (char c : s)
    if (!in_alphabet(c)) return false;
  if (s.empty()) return true;
  const int last = digit(s.back());
  if (s.size() % 4 == 2) return (last & 0x0F) == 0;
  if (s.size() % 4 == 3) return (last & 0x03) == 0;
  return true;
}

bool expected_id(std::string_view s) {
  if (s.size() == session_id::tagged_size) {
    if (s[session_id::encoded_size] != '.') return false;
    for (char c : s.substr(session_id::encoded_size + 1))
      if (!in_alphabet(c)) return false;
    s = s.substr(0, session_id::encoded_size);
  }
  return s.size() == session_id::encoded_size && canonical_base64url(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);

  const auto id = session_id::parse(input);
  WS_FUZZ_CHECK(id.has_value() == expected_id(input));
  if (id) {
    WS_FUZZ_CHECK(id->to_string() == input);
    const auto again = session_id::parse(id->to_string());
    WS_FUZZ_CHECK(again && *again == *id);
    WS_FUZZ_CHECK(id->tag().size() == (input.size() == session_id::tagged_size ? 3u : 0u));
    const std::string key = id->storage_key("ws:");
    WS_FUZZ_CHECK(is_storage_key(key, "ws:"));
    WS_FUZZ_CHECK(!is_storage_key(key, "other:"));
    if (!id->tag().empty()) WS_FUZZ_CHECK(key.substr(3, 5) == "{" + std::string(id->tag()) + "}");
  }
  // Arbitrary keys: no crash, and only storage-key shapes are accepted.
  if (is_storage_key(input, "p:")) {
    const std::string_view rest = input.substr(2);
    WS_FUZZ_CHECK(rest.size() == 43 || (rest.size() == 48 && rest[0] == '{' && rest[4] == '}'));
  }

  std::string decoded;
  const bool ok = detail::base64url_decode(input, decoded);
  WS_FUZZ_CHECK(ok == canonical_base64url(input));
  if (ok) {
    WS_FUZZ_CHECK(decoded.size() == detail::base64url_decoded_size(input.size()));
    std::string encoded;
    detail::base64url_encode(decoded.data(), decoded.size(), encoded);
    WS_FUZZ_CHECK(encoded == input);
  }
  return 0;
}
