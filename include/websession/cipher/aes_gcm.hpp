// SPDX-License-Identifier: BSL-1.0
// AES-256-GCM sealing of stored session values with a rotating keyring: a store dump cannot be
// read, and a stored value cannot be forged, edited, or moved under another session's key.
#pragma once

#include <websession/concepts.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/error.hpp>

#include <boost/system/error_code.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession {

namespace detail {

// A derived AES-256 key. `serial` is unique in the process and never reused, so a thread-local
// EVP context can tell whether its loaded key schedule is this key without comparing key bytes,
// and a key destroyed and another allocated at the same address cannot be mistaken for it.
struct gcm_key {
  std::uint8_t id = 0;
  std::uint64_t serial = 0;
  std::array<unsigned char, 32> bytes{};
  // Seal attempts under this key in this process (each draws a random nonce). Relaxed atomic
  // increments: a counter for monitoring, ordering nothing.
  mutable std::atomic<std::uint64_t> seals{0};

  gcm_key() = default;
  gcm_key(const gcm_key&) = delete;
  gcm_key& operator=(const gcm_key&) = delete;
  ~gcm_key() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

inline std::uint64_t next_gcm_key_serial() noexcept {
  // Starts at 1: serial 0 means "no key loaded" in a thread context.
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// HKDF-SHA256(secret, salt, info) -> out.size() bytes. Throws std::runtime_error if OpenSSL
// cannot provide HKDF (`out` is then wiped).
inline void hkdf_sha256(std::string_view secret, std::string_view salt, std::string_view info,
                        std::span<unsigned char> out) {
  struct kdf_deleter {
    void operator()(EVP_KDF* k) const noexcept { EVP_KDF_free(k); }
    void operator()(EVP_KDF_CTX* c) const noexcept { EVP_KDF_CTX_free(c); }
  };
  std::unique_ptr<EVP_KDF, kdf_deleter> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
  if (!kdf) throw std::runtime_error("websession: OpenSSL provides no HKDF");
  std::unique_ptr<EVP_KDF_CTX, kdf_deleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) throw std::runtime_error("websession: cannot create an HKDF context");

  // OSSL_PARAM takes non-const pointers but HKDF only reads these buffers.
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    throw std::runtime_error("websession: HKDF key derivation failed");
  }
}

inline constexpr std::string_view gcm_hkdf_salt = "websession/aes-256-gcm/salt/v1";

// HKDF-SHA256(secret, fixed salt, info = label || key id) -> 32 bytes. The id is in the info so
// one secret reused under two ids still gives two unrelated keys. Throws std::runtime_error if
// OpenSSL cannot provide HKDF.
inline void derive_gcm_key(std::string_view secret, std::uint8_t id,
                           std::array<unsigned char, 32>& out) {
  static constexpr std::string_view label = "websession/aes-256-gcm/key-id:";
  std::array<char, label.size() + 1> info{};  // the label, then the id byte
  std::copy(label.begin(), label.end(), info.begin());
  info.back() = static_cast<char>(id);
  hkdf_sha256(secret, gcm_hkdf_salt, std::string_view(info.data(), info.size()), out);
}

// The key of the user hash (websession::user_hash): HKDF-SHA256 of the secret under a label of
// its own, so it is unrelated to every sealing key derived from the same secret.
struct user_hash_key_holder {
  std::array<unsigned char, 32> bytes{};

  explicit user_hash_key_holder(std::string_view secret) {
    hkdf_sha256(secret, gcm_hkdf_salt, "websession/user-index/hmac-sha256/v1", bytes);
  }
  user_hash_key_holder(const user_hash_key_holder&) = delete;
  user_hash_key_holder& operator=(const user_hash_key_holder&) = delete;
  ~user_hash_key_holder() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// The immutable keyring shared by copies of one aes_gcm_cipher.
class gcm_keyring {
 public:
  struct entry {
    std::uint8_t id;
    std::string_view secret;
  };

  // Throws std::invalid_argument for an empty ring, a short secret or a duplicate id.
  explicit gcm_keyring(const std::vector<entry>& entries) {
    if (entries.empty()) {
      throw std::invalid_argument("websession::aes_gcm_cipher: the keyring is empty");
    }
    index_.fill(-1);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const entry& e = entries[i];
      if (e.secret.size() < min_secret_size) {
        throw std::invalid_argument("websession::aes_gcm_cipher: the secret of key id " +
                                    std::to_string(e.id) + " is " +
                                    std::to_string(e.secret.size()) + " bytes; at least " +
                                    std::to_string(min_secret_size) + " are required");
      }
      if (index_[e.id] != -1) {
        throw std::invalid_argument("websession::aes_gcm_cipher: key id " +
                                    std::to_string(e.id) + " appears twice in the keyring");
      }
      index_[e.id] = static_cast<std::int16_t>(i);
    }
    size_ = entries.size();
    keys_ = std::make_unique<gcm_key[]>(size_);
    for (std::size_t i = 0; i < size_; ++i) {
      keys_[i].id = entries[i].id;
      keys_[i].serial = next_gcm_key_serial();
      derive_gcm_key(entries[i].secret, entries[i].id, keys_[i].bytes);
    }
  }

  const gcm_key& current() const noexcept { return keys_[0]; }

  // The key with `id`, or nullptr if the ring has none.
  const gcm_key* find(std::uint8_t id) const noexcept {
    const std::int16_t i = index_[id];
    return i < 0 ? nullptr : &keys_[static_cast<std::size_t>(i)];
  }

  static constexpr std::size_t min_secret_size = 32;

 private:
  std::unique_ptr<gcm_key[]> keys_;
  std::size_t size_ = 0;
  std::array<std::int16_t, 256> index_{};  // key id -> position in keys_, -1 if absent
};

// AES-256-GCM fetched once: an implicit fetch on every full init costs more than sealing 1 KB.
// Never freed: thread-local contexts reference it until their threads end.
inline const EVP_CIPHER* aes_256_gcm() noexcept {
  static const EVP_CIPHER* const c = []() -> const EVP_CIPHER* {
    if (EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)) return fetched;
    return EVP_aes_256_gcm();  // a non-default provider setup: let OpenSSL fetch implicitly
  }();
  return c;
}

// One EVP context per thread and direction, reused across calls: allocating a context and running
// the AES key schedule would otherwise dominate the cost of sealing a small session.
struct gcm_thread_context {
  EVP_CIPHER_CTX* ctx = nullptr;
  // serial of the gcm_key whose schedule `ctx` holds; 0 when none is (or its state is unknown).
  std::uint64_t loaded_serial = 0;

  gcm_thread_context() = default;
  gcm_thread_context(const gcm_thread_context&) = delete;
  gcm_thread_context& operator=(const gcm_thread_context&) = delete;
  ~gcm_thread_context() { EVP_CIPHER_CTX_free(ctx); }  // also cleanses the key schedule

  // Starts one operation with `key` and the 12-byte `iv`. Runs the key schedule only if `ctx`
  // does not hold this key already. False if OpenSSL fails.
  bool begin(const gcm_key& key, const unsigned char* iv, bool encrypt) noexcept {
    const int enc = encrypt ? 1 : 0;
    if (ctx != nullptr && loaded_serial == key.serial) {
      // A null cipher and key keep the loaded schedule; only the IV (and GCM state) is reset.
      if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, enc) == 1) return true;
    }
    loaded_serial = 0;
    if (ctx == nullptr && (ctx = EVP_CIPHER_CTX_new()) == nullptr) return false;
    const EVP_CIPHER* cipher = aes_256_gcm();
    // GCM's default IV length is 12 bytes, the nonce size used here, so no SET_IVLEN is needed.
    if (cipher == nullptr ||
        EVP_CipherInit_ex(ctx, cipher, nullptr, key.bytes.data(), iv, enc) != 1) {
      return false;
    }
    loaded_serial = key.serial;
    return true;
  }

  // Feeds `n` bytes: associated data when `out` is null, else en/decrypts into `out`.
  bool update(unsigned char* out, const void* in, std::size_t n) noexcept {
    constexpr std::size_t chunk = std::size_t{1} << 30;  // EVP lengths are int
    const auto* src = static_cast<const unsigned char*>(in);
    while (n > 0) {
      const std::size_t step = std::min(n, chunk);
      int written = 0;
      if (EVP_CipherUpdate(ctx, out, &written, src, static_cast<int>(step)) != 1) return false;
      if (out != nullptr) {
        if (static_cast<std::size_t>(written) != step) return false;
        out += step;
      }
      src += step;
      n -= step;
    }
    return true;
  }
};

inline gcm_thread_context& gcm_seal_context() noexcept {
  thread_local gcm_thread_context c;
  return c;
}

inline gcm_thread_context& gcm_open_context() noexcept {
  thread_local gcm_thread_context c;
  return c;
}

// Whether `v` views into the characters of `s` (then resizing `s` would invalidate `v`).
inline bool views_into(std::string_view v, const std::string& s) noexcept {
  if (v.empty() || s.empty()) return false;
  const std::less<const char*> less;
  return !less(v.data(), s.data()) && less(v.data(), s.data() + s.size());
}

}  // namespace detail

/// Authenticated encryption of stored session values with AES-256-GCM and a keyring.
///
/// Sealed format: byte 0 = format version (1), byte 1 = key id, then a 12-byte random nonce, the
/// ciphertext (as long as the plaintext), and a 16-byte tag. The tag covers the two header bytes
/// followed by the caller's `aad` (the storage key), so a value copied under another storage key,
/// or relabelled with another key id, fails to open.
///
/// Keys: each secret is stretched with HKDF-SHA256 (fixed salt, info naming the key id) into a
/// 256-bit AES key. The first entry of the ring seals; every entry opens. To rotate: put the new
/// secret first and keep the old ones after it until every value sealed with them has expired.
///
/// Nonce limit: nonces are 96 random bits, and NIST SP 800-38D (section 8.3) allows at most 2^32
/// invocations of GCM with random nonces per key (beyond that, the chance of a repeated nonce,
/// which breaks both confidentiality and authenticity, exceeds 2^-32). Every save of a session
/// is one seal. seal_count() counts the seals of the current key (seal_count(id): any key of
/// the ring) since this keyring was built, in this process only: the limit applies to the sum
/// over every process (and every separately built cipher) using the key, so multiply by the
/// number of processes, and add the seals before each restart. Rotate well before 2^32 in
/// total, e.g. at 2^30 (about a billion saves); at 1,000 saves per second across a deployment
/// that is after about 12 days, so busy deployments rotate keys on a schedule.
/// A further key, derived under a label of its own, keys the user hash (user_hash_key).
///
/// A cheap copyable handle: copies share one immutable keyring, freed (and wiped) with the last
/// copy. seal and open are const, never throw, and may run on any number of threads at once.
/// Each thread keeps one EVP context for sealing and one for opening (freed at thread exit); the
/// context holds the expanded schedule of the last key it used, so a wiped keyring's schedule can
/// linger in a thread's context until that thread uses another key or exits.
class aes_gcm_cipher {
 public:
  /// One secret of the keyring and the id written into values it seals.
  struct key_secret {
    std::uint8_t id;
    std::string secret;
  };

  static constexpr std::uint8_t format_version = 1;
  static constexpr std::size_t header_size = 2;
  static constexpr std::size_t nonce_size = 12;
  static constexpr std::size_t tag_size = 16;
  /// Bytes a sealed value has beyond its plaintext.
  static constexpr std::size_t overhead = header_size + nonce_size + tag_size;
  /// The shortest secret accepted, in bytes. Use random bytes (e.g. 32 from a CSPRNG); a
  /// human-chosen passphrase of this length does not carry 256 bits of entropy.
  static constexpr std::size_t min_secret_size = detail::gcm_keyring::min_secret_size;

  /// A ring of one key, id 1. Throws std::invalid_argument if `secret` is shorter than 32 bytes,
  /// std::runtime_error if OpenSSL cannot derive the key.
  explicit aes_gcm_cipher(std::string_view secret)
      : user_key_(std::make_shared<const detail::user_hash_key_holder>(secret)),
        ring_(std::make_shared<const detail::gcm_keyring>(
            std::vector<detail::gcm_keyring::entry>{{1, secret}})) {}

  /// A ring of several keys: the first seals, all open (rotation, like express-session's secret
  /// array). Throws std::invalid_argument if `keyring` is empty, a secret is shorter than 32
  /// bytes, or two entries share an id; std::runtime_error if OpenSSL cannot derive a key. The
  /// secrets in `keyring` (taken by value) are wiped before the constructor returns.
  ///
  /// The user hash key (user_hash_key) comes from the secret of the smallest key id in the
  /// ring: when rotating, give new keys larger ids (so the first secret, id 1, keeps deciding
  /// it), and when the first secret finally leaves the ring pass it as `index_secret` to the
  /// constructor below. If the user hash key changes, the per-user indexes written before are
  /// no longer found: "log out everywhere" misses the sessions bound before the change.
  explicit aes_gcm_cipher(std::vector<key_secret> keyring)
      : user_key_(make_user_key(keyring, {})), ring_(make_ring(keyring)) {}

  /// A keyring, and the secret the user hash key is derived from (at least 32 bytes; it need
  /// not be in the ring and is never used to seal: keep the same one across rotations).
  aes_gcm_cipher(std::vector<key_secret> keyring, std::string_view index_secret)
      : user_key_(make_user_key(keyring, index_secret)), ring_(make_ring(keyring)) {}

  /// The 32-byte key of websession::user_hash (HMAC-SHA256): HKDF-SHA256 of the index secret
  /// under a label of its own. The manager names the per-user index with it, so the names in
  /// the store cannot be reversed with a dictionary of user ids. Stable across key rotation
  /// (see the keyring constructors).
  std::string_view user_hash_key() const noexcept {
    return {reinterpret_cast<const char*>(user_key_->bytes.data()), user_key_->bytes.size()};
  }

  /// Id of the key that seals (the first of the ring).
  std::uint8_t current_key_id() const noexcept { return ring_->current().id; }

  /// Seals attempted under the current key by this process (all copies of this cipher share the
  /// count) since the keyring was built. Compare the total over all processes with the 2^32
  /// random-nonce limit of the class comment.
  std::uint64_t seal_count() const noexcept {
    return ring_->current().seals.load(std::memory_order_relaxed);
  }

  /// Seals attempted under key `id` of the ring, counted as seal_count() counts them; nullopt if
  /// the ring has no key `id`. Only the first key of a ring seals, so the others stay at 0; a
  /// rebuilt cipher starts from 0, so add the count read from the cipher it replaces.
  std::optional<std::uint64_t> seal_count(std::uint8_t id) const noexcept {
    const detail::gcm_key* key = ring_->find(id);
    if (key == nullptr) return std::nullopt;
    return key->seals.load(std::memory_order_relaxed);
  }

  /// Replaces `out` with `plain` sealed under the current key and bound to `aad`. Fails only if
  /// OpenSSL (or the CSPRNG, or an allocation) fails: error::internal, with `out` emptied.
  /// `plain` and `aad` may view into `out`.
  boost::system::error_code seal(std::string_view plain, std::string_view aad,
                                 std::string& out) const noexcept {
    try {
      if (detail::views_into(plain, out) || detail::views_into(aad, out)) {
        std::string tmp;
        const boost::system::error_code ec = seal_into(plain, aad, tmp);
        // `out` held the plaintext: wipe it rather than free it with the plaintext inside.
        OPENSSL_cleanse(out.data(), out.size());
        out = std::move(tmp);
        return ec;
      }
      return seal_into(plain, aad, out);
    } catch (...) {
      out.clear();
      return error::internal;
    }
  }

  /// Replaces `out` with the plaintext of `sealed`, which must have been sealed with `aad`.
  /// error::tampered, with `out` wiped and emptied, if `sealed` is shorter than the overhead,
  /// has another format version, names a key id not in the ring, has any byte modified, or was
  /// sealed with another `aad`. error::internal if OpenSSL or an allocation fails.
  /// `sealed` and `aad` may view into `out`.
  boost::system::error_code open(std::string_view sealed, std::string_view aad,
                                 std::string& out) const noexcept {
    try {
      if (detail::views_into(sealed, out) || detail::views_into(aad, out)) {
        std::string tmp;
        const boost::system::error_code ec = open_into(sealed, aad, tmp);
        out = std::move(tmp);
        return ec;
      }
      return open_into(sealed, aad, out);
    } catch (...) {
      out.clear();
      return error::internal;
    }
  }

 private:
  static std::shared_ptr<const detail::user_hash_key_holder> make_user_key(
      const std::vector<key_secret>& keyring, std::string_view index_secret) {
    if (index_secret.empty()) {
      const auto smallest = std::min_element(
          keyring.begin(), keyring.end(),
          [](const key_secret& a, const key_secret& b) { return a.id < b.id; });
      // An empty ring: make_ring reports it.
      if (smallest == keyring.end()) return nullptr;
      index_secret = smallest->secret;
    } else if (index_secret.size() < min_secret_size) {
      throw std::invalid_argument("websession::aes_gcm_cipher: the index secret is " +
                                  std::to_string(index_secret.size()) + " bytes; at least " +
                                  std::to_string(min_secret_size) + " are required");
    }
    return std::make_shared<const detail::user_hash_key_holder>(index_secret);
  }

  static std::shared_ptr<const detail::gcm_keyring> make_ring(std::vector<key_secret>& keyring) {
    struct wipe {
      std::vector<key_secret>& ring;
      ~wipe() {
        for (key_secret& k : ring) OPENSSL_cleanse(k.secret.data(), k.secret.size());
      }
    } wipe_on_exit{keyring};
    std::vector<detail::gcm_keyring::entry> entries;
    entries.reserve(keyring.size());
    for (const key_secret& k : keyring) entries.push_back({k.id, k.secret});
    return std::make_shared<const detail::gcm_keyring>(entries);
  }

  // `out` is replaced; on failure it is emptied (and wiped if it held plaintext).
  boost::system::error_code seal_into(std::string_view plain, std::string_view aad,
                                      std::string& out) const {
    const detail::gcm_key& key = ring_->current();
    // Counted before the nonce is drawn: every attempt may have used one.
    key.seals.fetch_add(1, std::memory_order_relaxed);
    out.resize(overhead + plain.size());
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    p[0] = format_version;
    p[1] = key.id;
    unsigned char* nonce = p + header_size;
    unsigned char* body = nonce + nonce_size;
    unsigned char* tag = body + plain.size();

    detail::gcm_thread_context& tc = detail::gcm_seal_context();
    int final_len = 0;
    if (!detail::random_fill(nonce, nonce_size) || !tc.begin(key, nonce, true) ||
        !tc.update(nullptr, p, header_size) || !tc.update(nullptr, aad.data(), aad.size()) ||
        !tc.update(body, plain.data(), plain.size()) ||
        EVP_EncryptFinal_ex(tc.ctx, tag, &final_len) != 1 || final_len != 0 ||
        EVP_CIPHER_CTX_ctrl(tc.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), tag) != 1) {
      // The context may be mid-operation or half-initialised: force a full init next time.
      tc.loaded_serial = 0;
      out.clear();
      return error::internal;
    }
    return {};
  }

  boost::system::error_code open_into(std::string_view sealed, std::string_view aad,
                                      std::string& out) const {
    const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
    if (sealed.size() < overhead || p[0] != format_version) return fail_tampered(out);
    const detail::gcm_key* key = ring_->find(p[1]);
    if (key == nullptr) return fail_tampered(out);
    const unsigned char* nonce = p + header_size;
    const unsigned char* body = nonce + nonce_size;
    const std::size_t n = sealed.size() - overhead;
    const unsigned char* tag = body + n;

    out.resize(n);
    auto* plain = reinterpret_cast<unsigned char*>(out.data());
    detail::gcm_thread_context& tc = detail::gcm_open_context();
    if (!tc.begin(*key, nonce, false) || !tc.update(nullptr, p, header_size) ||
        !tc.update(nullptr, aad.data(), aad.size()) || !tc.update(plain, body, n) ||
        // OpenSSL copies the expected tag; the const_cast is only for the void* parameter.
        EVP_CIPHER_CTX_ctrl(tc.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size),
                            const_cast<unsigned char*>(tag)) != 1) {
      tc.loaded_serial = 0;
      OPENSSL_cleanse(out.data(), out.size());
      out.clear();
      return error::internal;
    }
    int final_len = 0;
    unsigned char unused[16];
    if (EVP_DecryptFinal_ex(tc.ctx, unused, &final_len) != 1) {
      // Tag mismatch. The key schedule is intact, so the context keeps it. The decrypted bytes
      // are unauthenticated and must not reach the caller.
      return fail_tampered(out);
    }
    return {};
  }

  static boost::system::error_code fail_tampered(std::string& out) noexcept {
    OPENSSL_cleanse(out.data(), out.size());
    out.clear();
    return error::tampered;
  }

  // Declared first: made from the secrets before make_ring wipes them.
  std::shared_ptr<const detail::user_hash_key_holder> user_key_;
  std::shared_ptr<const detail::gcm_keyring> ring_;
};

static_assert(cipher<aes_gcm_cipher>);

}  // namespace websession
