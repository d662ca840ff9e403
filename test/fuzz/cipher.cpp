// SPDX-License-Identifier: BSL-1.0
// Fuzz target: opening sealed values (websession/cipher/aes_gcm.hpp, plaintext.hpp).
// Input: byte 0 = length L of the AAD (mod 64), the next L bytes = AAD, the rest = sealed bytes.
// Seeds are real values sealed with the fixed secret below (make_corpus.cpp writes them).
// Invariants: open never throws; it fails with error::tampered (never another code) and an empty
// output, unless the bytes are a value sealed with a key of the ring and that AAD; a value that
// opens does not open under another AAD, a ring without its key, or with any byte flipped; seal
// then open round-trips the input (also when the input views into the output); plaintext_cipher
// copies.
#include "fuzz.hpp"

#include <websession/cipher/aes_gcm.hpp>
#include <websession/cipher/plaintext.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace websession;

namespace {

// The ring the seeds were sealed with: id 1 seals, id 7 only opens.
const aes_gcm_cipher& ring() {
  static const aes_gcm_cipher c(std::vector<aes_gcm_cipher::key_secret>{
      {1, std::string("websession fuzz corpus secret #1 (fixed)")},
      {7, std::string("websession fuzz corpus secret #7 (fixed)")}});
  return c;
}

// Only key 7: values sealed with key 1 must not open here.
const aes_gcm_cipher& other_ring() {
  static const aes_gcm_cipher c(std::vector<aes_gcm_cipher::key_secret>{
      {7, std::string("websession fuzz corpus secret #7 (fixed)")}});
  return c;
}

// Checks what must hold for a value that opened to `plain` under `aad`.
void check_opened(const aes_gcm_cipher& c, std::string_view sealed, std::string_view aad,
                  std::string_view plain) {
  WS_FUZZ_CHECK(sealed.size() == plain.size() + aes_gcm_cipher::overhead);
  std::string out;
  const std::string other_aad = std::string(aad) + "!";
  WS_FUZZ_CHECK(c.open(sealed, other_aad, out) == error::tampered && out.empty());
  std::string flipped(sealed);
  flipped[fuzz::fnv1a(sealed) % flipped.size()] ^= 0x01;
  WS_FUZZ_CHECK(c.open(flipped, aad, out) == error::tampered && out.empty());
  if (static_cast<unsigned char>(sealed[1]) != 7)
    WS_FUZZ_CHECK(other_ring().open(sealed, aad, out) == error::tampered && out.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  std::string_view aad;
  std::string_view sealed;
  if (!input.empty()) {
    const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(input[0]) % 64,
                                                input.size() - 1);
    aad = input.substr(1, n);
    sealed = input.substr(1 + n);
  }
  const aes_gcm_cipher& c = ring();

  // Arbitrary sealed bytes.
  std::string out = "previous contents";
  const boost::system::error_code ec = c.open(sealed, aad, out);
  if (ec) {
    WS_FUZZ_CHECK(ec == error::tampered);
    WS_FUZZ_CHECK(out.empty());
  } else {
    check_opened(c, sealed, aad, out);
  }
  // The same, with the sealed bytes viewing into the output string.
  std::string alias(sealed);
  const boost::system::error_code ec2 = c.open(alias, aad, alias);
  WS_FUZZ_CHECK(ec2 == ec);
  if (!ec) WS_FUZZ_CHECK(alias == out);

  // Seal the sealed part as a plaintext: it opens to itself, under that AAD only.
  std::string sealed_again;
  WS_FUZZ_CHECK(!c.seal(sealed, aad, sealed_again));
  WS_FUZZ_CHECK(static_cast<unsigned char>(sealed_again[1]) == c.current_key_id());
  std::string opened;
  WS_FUZZ_CHECK(!c.open(sealed_again, aad, opened) && opened == sealed);
  check_opened(c, sealed_again, aad, opened);
  // Sealing in place (plain viewing into out).
  std::string in_place(sealed);
  WS_FUZZ_CHECK(!c.seal(in_place, aad, in_place));
  WS_FUZZ_CHECK(!c.open(in_place, aad, opened) && opened == sealed);

  // The plaintext cipher copies, whatever the bytes.
  const plaintext_cipher p;
  std::string copy = "x";
  WS_FUZZ_CHECK(!p.open(sealed, aad, copy) && copy == sealed);
  WS_FUZZ_CHECK(!p.seal(sealed, aad, copy) && copy == sealed);
  return 0;
}
