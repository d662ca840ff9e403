// The four policies of basic_session_manager, as C++20 concepts, with the value types they
// exchange. Each concept lists its requirements; websession/testing/archetypes.hpp holds a minimal model of
// each, and every shipped model static_asserts its concept next to its definition.
#pragma once

#include <websession/clock.hpp>
#include <websession/session.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace websession {

/// A value that is either a T or an error_code (boost::system::result).
template <class T>
using result = boost::system::result<T, boost::system::error_code>;

/// Coroutine-returning store operations: `co_await store.load(key)`.
template <class T>
using awaitable = boost::asio::awaitable<T>;

// ---------------------------------------------------------------------------------------------
// clock
//
// | expression | type                      | semantics                                  |
// |------------|---------------------------|--------------------------------------------|
// | c.now()    | convertible to time_point | current wall-clock time; callable on const |
//
// Models: std::chrono::system_clock (the default), manual_clock (tests).
template <class C>
concept clock = std::copy_constructible<C> && requires(const C& c) {
  { c.now() } -> std::convertible_to<time_point>;
};

// ---------------------------------------------------------------------------------------------
// serializer: session metadata + data <-> bytes.
//
// | expression                      | type       | semantics                                  |
// |---------------------------------|------------|--------------------------------------------|
// | s.serialize(meta, data, out)    | error_code | replaces `out` with the encoding of both;  |
// |                                 |            | metadata.version is not encoded. Refuses   |
// |                                 |            | with error::invalid_data (`out` emptied)   |
// |                                 |            | whatever deserialize would not accept back |
// |                                 |            | (e.g. invalid UTF-8, nesting too deep):    |
// |                                 |            | everything it accepts must load            |
// | s.deserialize(bytes, meta, data)| error_code | decodes; any input that is not a valid     |
// |                                 |            | encoding gives error::malformed, never an  |
// |                                 |            | exception or a crash                       |
//
// serialize and deserialize must accept the same sessions: a refusal on save is an error the
// application sees; an encoding refused on load would silently log the user out.
//
// Both are const and may be called from several threads at once.
// Models: json_serializer.
template <class S>
concept serializer = requires(const S& s, const session_metadata& cmeta,
                              const boost::json::object& cdata, std::string& out,
                              std::string_view in, session_metadata& meta,
                              boost::json::object& data) {
  { s.serialize(cmeta, cdata, out) } -> std::same_as<boost::system::error_code>;
  { s.deserialize(in, meta, data) } -> std::same_as<boost::system::error_code>;
};

// ---------------------------------------------------------------------------------------------
// cipher: authenticated encryption of serialized sessions, bound to the storage key.
//
// | expression              | type       | semantics                                         |
// |-------------------------|------------|---------------------------------------------------|
// | c.seal(plain, aad, out) | error_code | replaces `out` with the sealed form of `plain`,   |
// |                         |            | authenticated together with `aad` (the key)       |
// | c.open(sealed, aad, out)| error_code | replaces `out` with the plaintext; a value that   |
// |                         |            | was modified, sealed under a key not in the ring, |
// |                         |            | or sealed with another `aad`: error::tampered     |
//
// Both are const and may be called from several threads at once.
// Models: aes_gcm_cipher, plaintext_cipher (no protection; an explicit opt-out).
template <class C>
concept cipher = requires(const C& c, std::string_view in, std::string_view aad,
                          std::string& out) {
  { c.seal(in, aad, out) } -> std::same_as<boost::system::error_code>;
  { c.open(in, aad, out) } -> std::same_as<boost::system::error_code>;
};

// ---------------------------------------------------------------------------------------------
// session_store: where sealed values live, under storage keys, with versions and TTLs.

/// A stored value and the version the store gave it.
struct store_record {
  std::string value;
  std::uint64_t version = 0;
};

/// What a write stores: the sealed value, its time to live, and the index of the user it is
/// bound to (empty if none).
///
/// `user` is the name of the user's index as the manager spells it (user_index_key: the key
/// prefix, a hash tag and a hash of the user id; never the user id itself). Stores treat it as
/// an opaque string: the name of the per-user index and the identity compared by erase_user.
struct store_write {
  std::string_view value;
  std::chrono::milliseconds ttl{0};
  std::string_view user;
};

// | expression                          | completes with         | semantics                    |
// |-------------------------------------|------------------------|------------------------------|
// | st.load(key)                        | result<store_record>   | not_found if absent; expired |
// |                                     |                        | if present but past its TTL  |
// | st.insert(key, w)                   | result<uint64_t>       | stores a new key with ttl;   |
// |                                     |                        | conflict if the key exists;  |
// |                                     |                        | capacity if full; version 1  |
// | st.replace(key, w, version)         | result<uint64_t>       | only if the stored version   |
// |                                     |                        | is `version` (else conflict; |
// |                                     |                        | not_found if gone); returns  |
// |                                     |                        | the new version              |
// | st.rotate(old, new, w, version)     | result<uint64_t>       | atomically: check `version`  |
// |                                     |                        | at `old`, erase `old`, store |
// |                                     |                        | `w` at `new`                 |
// | st.erase(key)                       | result<bool>           | whether a value was erased   |
// | st.erase_bound(key, user)           | result<bool>           | erases `key` only if it is   |
// |                                     |                        | bound to `user`, in one      |
// |                                     |                        | atomic step; whether it was  |
// | st.erase_user(user)                 | result<vector<string>> | erases every key bound to    |
// |                                     |                        | `user`; returns those keys   |
// | st.list_user(user)                  | result<vector<string>> | the live keys bound to user  |
// |                                     |                        | (may include keys bound to   |
// |                                     |                        | another user since: the      |
// |                                     |                        | manager checks each)         |
// | st.ping()                           | error_code             | a round trip (health check)  |
//
// Optional (the manager uses it when present, else one load per key):
// | st.load_many(keys)                  | result<vector<         | one result per key, in order |
// |                                     | result<store_record>>> | (as load), in few round trips|
//
// `user` is an index name from store_write::user (see there).
// Every operation returns awaitable<...> and must not throw for expected failures
// (store_unavailable, timeout, capacity...). Arguments passed by view must stay valid until the
// awaitable completes (the manager co_awaits at once). A store object is a cheap handle: copies
// share the same stored data. All operations may run concurrently from several threads.
// Models: memory_store, redis_store, fallback_store.
template <class St>
concept session_store =
    std::copy_constructible<St> &&
    requires(St& st, std::string_view key, std::string_view key2, store_write w,
             std::uint64_t version) {
      { st.load(key) } -> std::same_as<awaitable<result<store_record>>>;
      { st.insert(key, w) } -> std::same_as<awaitable<result<std::uint64_t>>>;
      { st.replace(key, w, version) } -> std::same_as<awaitable<result<std::uint64_t>>>;
      { st.rotate(key, key2, w, version) } -> std::same_as<awaitable<result<std::uint64_t>>>;
      { st.erase(key) } -> std::same_as<awaitable<result<bool>>>;
      { st.erase_bound(key, key2) } -> std::same_as<awaitable<result<bool>>>;
      { st.erase_user(key) } -> std::same_as<awaitable<result<std::vector<std::string>>>>;
      { st.list_user(key) } -> std::same_as<awaitable<result<std::vector<std::string>>>>;
      { st.ping() } -> std::same_as<awaitable<boost::system::error_code>>;
    };

/// Stores that load many keys in few round trips (redis_store: MGET per slot) model this too.
template <class St>
concept batch_loading_store =
    session_store<St> && requires(St& st, const std::vector<std::string>& keys) {
      { st.load_many(keys) } -> std::same_as<awaitable<result<std::vector<result<store_record>>>>>;
    };

}  // namespace websession
