// SPDX-License-Identifier: BSL-1.0
// The four policies of basic_session_manager, as C++20 concepts, with the value types they
// exchange. Each concept lists its requirements; websession/testing/archetypes.hpp holds a
// minimal model of each, and every shipped model static_asserts its concept next to its
// definition. A store's whole contract is checked by websession/testing/store_conformance.hpp
// (docs/writing-a-store.md walks through writing one).
#pragma once

#include <websession/clock.hpp>
#include <websession/result.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/fwd.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace websession {

// Declared, not included (session.hpp defines it, <boost/json/fwd.hpp> declares json::object):
// the serializer concept takes both by reference only, so a cipher or a store that includes
// this header does not pay for Boost.JSON. A serializer includes session.hpp itself.
struct session_metadata;

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

// Optional (record_codec::open_envelope uses it when present, else deserialize and drops the
// data): the metadata alone, for listings of sessions.
// | expression                      | type       | semantics                                  |
// |---------------------------------|------------|--------------------------------------------|
// | s.deserialize_metadata(bytes,   | error_code | as deserialize's `meta`, without decoding  |
// |                        meta)    |            | the data where the format allows; the same |
// |                                 |            | errors for what is not a valid encoding    |
// Models: json_serializer.
template <class S>
concept envelope_reading_serializer =
    serializer<S> && requires(const S& s, std::string_view in, session_metadata& meta) {
      { s.deserialize_metadata(in, meta) } -> std::same_as<boost::system::error_code>;
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
//
// Versions. insert stores version 1; every successful replace or rotate returns the value's
// new version, different from every version the key held before while it existed (counting up
// is the simple way). 0 is never a stored version. The version is kept beside the value, not
// in it. A key that is erased (or expires) and inserted again starts at 1 again: storage keys
// are random, so no session meets its own key again.
//
// TTL. Every write (insert, replace, rotate) sets the value's time to live to w.ttl, counted
// from the write; once it has passed the value is gone for every operation: load gives
// not_found (or expired, if the store still knows the value was there), replace and rotate
// not_found, insert may take the key again, erase gives false, list_user leaves the key out.
// w.ttl may be as long as milliseconds::max() ("never"): saturate, never overflow. Expired
// values may be removed lazily or swept; that is the store's business.
//
// Errors each operation may complete with (besides what the table names, any operation may
// fail with error::store_unavailable (the store could not be reached, or answered with a
// failure) or error::timeout, the two errors of condition::store_unreachable; fallback_store
// treats exactly these as "unreachable", so a store maps its transport failures to them, and
// never to not_found: absence must be proven):
// | load        | not_found, expired                                                         |
// | insert      | conflict (the key holds a live value), capacity (no room)                  |
// | replace     | not_found, conflict (another version), capacity                            |
// | rotate      | not_found (old key), conflict (another version, or new key taken), capacity|
// | erase       | none of its own: false when there was nothing to erase                     |
// | erase_bound | none of its own: false when absent or bound to another user                |
// | erase_user  | none of its own                                                            |
// | list_user   | none of its own                                                            |
// | ping        | the unreachable errors only                                                |
// A failed write changes nothing. Expected failures are returned, never thrown; an exception
// that escapes an operation (bad_alloc) is caught by the manager and reported as
// error::internal. Keys, user names and values are byte strings the store does not interpret
// (values are sealed, binary, up to options::max_value_bytes; no pattern matching on keys).
//
// Atomicity: what must hold even when operations on the same key race.
// - insert: create-if-absent in one step: of concurrent inserts of one key exactly one wins.
// - replace: compare-and-set on the version in one step (value, TTL, user binding together):
//   of concurrent replaces naming one version exactly one wins.
// - rotate: as one step: check the version at `old`, check `new` is free, erase `old`, store
//   at `new`. Of concurrent rotations of one version exactly one wins; after it succeeds `old`
//   no longer loads; when it fails both keys are as they were. A store that cannot do this in
//   one step (redis_store across cluster slots) writes `new` first, then erases `old` only if
//   it still holds `version`, and takes `new` back if not: no two winners, nothing lost.
// - erase_bound: the binding check and the erase in one step (a key rebound to another user
//   meanwhile is never erased on the old user's behalf).
// - erase_user: per key, as erase_bound; not one step over all keys (a key bound during the
//   call may stay).
// - list_user, load_many: no snapshot across keys.
//
// Cancellation. The operations are awaited in the caller's coroutine, under its cancellation
// slot. A store may support cancellation (redis_store: a cancelled request completes with
// boost::asio::error::operation_aborted and its reply is dropped) or ignore it (a store that
// never suspends finishes first). A cancelled write may or may not have happened, as with
// timeout: the caller reloads. The store stays usable after a cancellation.
//
// Threads. A store object is a cheap handle: copies share the same stored data, and the
// manager copies it freely. All operations, on one handle or on copies, may run at the same
// time from several threads and from coroutines on different io_contexts; an operation must
// not assume it runs on the executor the store was made with. The awaitable completes on the
// awaiting coroutine's executor (as any awaitable does).
//
// Arguments passed by view must stay valid until the awaitable completes (the manager
// co_awaits at once).
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
