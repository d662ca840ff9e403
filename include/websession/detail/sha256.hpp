// SPDX-License-Identifier: BSL-1.0
// SHA-256 on a digest fetched once and a per-thread context: OpenSSL 3's one-shot SHA256()
// looks the algorithm up on every call, which costs more than hashing 32 bytes.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <memory>

namespace websession::detail {

inline constexpr std::size_t sha256_size = 32;

/// Writes SHA-256(data) to `out`; false only if OpenSSL fails. Thread-safe.
inline bool sha256(const void* data, std::size_t n, unsigned char (&out)[sha256_size]) noexcept {
  // Fetched once and kept for the life of the process (freeing it at exit would race with
  // threads still hashing).
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ctx_free {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, ctx_free> ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  return md && ctx && EVP_DigestInit_ex2(ctx.get(), md, nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), data, n) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out, &len) == 1 && len == sha256_size;
}

}  // namespace websession::detail
