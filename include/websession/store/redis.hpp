// SPDX-License-Identifier: BSL-1.0
// redis_store: the session_store for production, on a Redis client (one server, a Sentinel-
// managed master, or a Cluster). Versioned writes, rotation and per-user revocation are Lua
// scripts that declare every key they touch, so each is atomic in Redis and runs on a cluster.
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>
#include <websession/redis/client.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace websession {

namespace detail {

// Every stored value is "<version>:<user length>:<user><sealed bytes>": Redis itself can then
// check versions and keep the per-user index right without being able to read the session.
// <user> is the name of the user's index (store_write::user: the key prefix, a hash tag and a
// hash of the user id), or empty.
//
// A user's index is a sorted set under that name, of storage keys scored by expiry
// (milliseconds, Redis server time), pruned of expired members whenever it is written or read.
// Members of sessions that were erased, or bound to another user since, stay until they expire
// or erase_user meets them: readers check the value's user.
//
// Every key a script touches is in KEYS. On a cluster the keys of one script must share a slot:
// a user's sessions carry the user's hash tag, so the index and the session are together; when
// they are not (an anonymous session bound without rotating, an id made before slot tags), the
// store takes the single-slot steps described at redis_store.
inline constexpr std::string_view redis_lua_prelude = R"lua(
local function parse(v)
  local a = string.find(v, ':', 1, true)
  local b = a and string.find(v, ':', a + 1, true)
  if not b then return nil end
  local n = tonumber(string.sub(v, a + 1, b - 1))
  return tonumber(string.sub(v, 1, a - 1)), string.sub(v, b + 1, b + n)
end
-- The version and user of the value at `key` if its version is `expected`, else nil and the
-- script's error code: -1 not found, -2 conflict, -3 malformed.
local function current(key, expected)
  local cur = redis.call('GET', key)
  if not cur then return nil, -1 end
  local ver, user = parse(cur)
  if not ver then return nil, -3 end
  if ver ~= tonumber(expected) then return nil, -2 end
  return ver, user
end
local function value(ver, user, sealed)
  return string.format('%d', ver) .. ':' .. #user .. ':' .. user .. sealed
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function index_add(idx, key, ttl)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  redis.call('ZADD', idx, now + tonumber(ttl), key)
  if redis.call('PTTL', idx) < tonumber(ttl) then redis.call('PEXPIRE', idx, ttl) end
end
)lua";

// KEYS[1] key, KEYS[2] index; ARGV[1] sealed, ARGV[2] ttl ms, ARGV[3] version. Stores a new key
// bound to the user of that index. Returns the version, or -2 if the key exists.
inline constexpr std::string_view redis_lua_create = R"lua(
if not redis.call('SET', KEYS[1], value(ARGV[3], KEYS[2], ARGV[1]), 'NX', 'PX', ARGV[2]) then return -2 end
index_add(KEYS[2], KEYS[1], ARGV[2])
return tonumber(ARGV[3])
)lua";

// KEYS[1] index; ARGV[1] key, ARGV[2] ttl ms. The index step of a write whose key is in
// another slot; it runs first, so a bound session is never missing from its index.
inline constexpr std::string_view redis_lua_index_add = R"lua(
index_add(KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS[1] key, KEYS[2] the user's index if it shares the key's slot (else absent); ARGV[1]
// sealed, ARGV[2] ttl ms, ARGV[3] user (index name or ''), ARGV[4] expected version. Returns
// the new version, -1 not found, -2 conflict, -3 malformed.
inline constexpr std::string_view redis_lua_replace = R"lua(
local ver, old_user = current(KEYS[1], ARGV[4])
if not ver then return old_user end  -- then it holds the error code
local nv = ver + 1
redis.call('SET', KEYS[1], value(nv, ARGV[3], ARGV[1]), 'PX', ARGV[2])
if KEYS[2] then index_add(KEYS[2], KEYS[1], ARGV[2]) end
return nv
)lua";

// KEYS[1] old key, KEYS[2] new key, KEYS[3] the user's index if bound (all in one slot);
// ARGV as replace.
inline constexpr std::string_view redis_lua_rotate = R"lua(
local ver, old_user = current(KEYS[1], ARGV[4])
if not ver then return old_user end  -- then it holds the error code
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local nv = ver + 1
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], value(nv, ARGV[3], ARGV[1]), 'PX', ARGV[2])
if KEYS[3] then
  if old_user == KEYS[3] then redis.call('ZREM', KEYS[3], KEYS[1]) end
  index_add(KEYS[3], KEYS[2], ARGV[2])
end
return nv
)lua";

// KEYS[1] key; ARGV[1] expected version. The last step of a rotation across slots: erases the
// old key if it still holds the version that was copied. Returns 1, -1, -2 or -3.
inline constexpr std::string_view redis_lua_erase_version = R"lua(
local ver, user = current(KEYS[1], ARGV[1])
if not ver then return user end
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS[1] index; ARGV[1] how many, ARGV[2] from which rank. Prunes expired members; returns
// ARGV[1] of the rest from rank ARGV[2] on, soonest expiry first.
inline constexpr std::string_view redis_lua_index_range = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local from = tonumber(ARGV[2])
return redis.call('ZRANGE', KEYS[1], from, from + tonumber(ARGV[1]) - 1)
)lua";

// KEYS: session keys of one slot, then (if ARGV[2] is '1') their index last; ARGV[1] the user.
// Erases each key still bound to that user and takes every one of them off the index. Returns
// the keys erased.
inline constexpr std::string_view redis_lua_erase_members = R"lua(
local out = {}
local n = #KEYS
local idx = nil
if ARGV[2] == '1' then idx = KEYS[n]; n = n - 1 end
for i = 1, n do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    local ver, user = parse(cur)
    if user == ARGV[1] then
      redis.call('DEL', KEYS[i])
      table.insert(out, KEYS[i])
    end
  end
  if idx then redis.call('ZREM', idx, KEYS[i]) end
end
return out
)lua";

// A Lua script and its SHA-1, for EVALSHA.
struct redis_script {
  std::string body;
  std::string sha1;

  explicit redis_script(std::string_view script) : body(redis_lua_prelude) {
    body += script;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char c : digest) {
      sha1 += hex[c >> 4];
      sha1 += hex[c & 15];
    }
  }
};

struct redis_scripts {
  redis_script create{redis_lua_create};
  redis_script index_add{redis_lua_index_add};
  redis_script replace{redis_lua_replace};
  redis_script rotate{redis_lua_rotate};
  redis_script erase_version{redis_lua_erase_version};
  redis_script index_range{redis_lua_index_range};
  redis_script erase_members{redis_lua_erase_members};

  static const redis_scripts& get() {
    static const redis_scripts scripts;
    return scripts;
  }
};

// Splits "<version>:<user length>:<user><sealed>"; false if the header is not of that shape.
inline bool parse_redis_value(std::string_view v, std::uint64_t& version, std::size_t& sealed_at) {
  auto a = v.find(':');
  if (a == std::string_view::npos || a == 0) return false;
  auto b = v.find(':', a + 1);
  if (b == std::string_view::npos) return false;
  auto r1 = std::from_chars(v.data(), v.data() + a, version);
  std::size_t user_len = 0;
  auto r2 = std::from_chars(v.data() + a + 1, v.data() + b, user_len);
  if (r1.ec != std::errc{} || r1.ptr != v.data() + a || r2.ec != std::errc{} ||
      r2.ptr != v.data() + b || user_len > v.size() - b - 1)
    return false;
  sealed_at = b + 1 + user_len;
  return true;
}

// A value's header and sealed bytes: what the store writes without a script.
inline std::string redis_value(std::uint64_t version, std::string_view user, std::string_view sealed) {
  std::string v = std::to_string(version);
  v += ':';
  v += std::to_string(user.size());
  v += ':';
  v += user;
  v += sealed;
  return v;
}

// Before slot tags, an index was "<prefix>user:<hash>" and values named their user by <hash>.
// For an index "<prefix>user:{tag}<hash>", that older index and user, so that revoking and
// listing still reach sessions bound before (until they expire); empty if `index` is not of
// that form.
inline std::pair<std::string, std::string> redis_legacy_index(std::string_view index) {
  const auto open = index.find("user:{");
  if (open == std::string_view::npos) return {};
  const auto close = index.find('}', open + 6);
  if (close == std::string_view::npos || close + 1 >= index.size()) return {};
  std::string legacy(index.substr(0, open + 5));
  const std::string_view hash = index.substr(close + 1);
  legacy += hash;
  return {std::move(legacy), std::string(hash)};
}

// The clients of a redis_store made with one client per io_context, and the execution context
// each one's executor belongs to (same order).
struct redis_client_set {
  std::vector<redis::client> clients;
  std::vector<const boost::asio::execution_context*> contexts;
};

}  // namespace detail

/// Settings of redis_store beyond the client's.
struct redis_store_options {
  /// Acknowledge a write only when `WAIT wait_replicas wait_timeout`, sent after it on the same
  /// connection, says that many replicas have it, so that an acknowledged write survives a
  /// failover (Redis replicates asynchronously: without WAIT, a write acknowledged by a master
  /// that dies before its replica got it is lost when the replica takes over). One WAIT covers
  /// all the writes sent before it (group commit). 0 (the default) sends no WAIT.
  int wait_replicas = 0;
  /// How long WAIT may block (it holds up the connection's other replies meanwhile): keep it
  /// short, and below the connection's request_timeout and health_check_interval.
  std::chrono::milliseconds wait_timeout = std::chrono::milliseconds(100);
  /// Index members read and erased per script call by erase_user and list_user, and keys per
  /// MGET of load_many (each call is short, so no single Redis command runs long however many
  /// sessions a user has).
  std::size_t erase_batch = 256;
};

/// The Redis session store, a model of session_store.
///
/// Keys are the manager's storage keys (`prefix{tag}hash`); values carry a version and the name
/// of the bound user's index in a small clear header before the sealed bytes; the session data
/// stays sealed, and nothing Redis holds names a session id or a user. Load is one GET, create
/// one SET NX PX, and every conditional write one EVALSHA (EVAL when Redis answers NOSCRIPT,
/// after a restart or SCRIPT FLUSH).
///
/// On every deployment (one server, Sentinel, Cluster), each operation is either one atomic
/// Redis command or script, or a sequence of such steps, each on one hash slot:
///
/// | operation   | atomic when                                  | otherwise (cluster only)      |
/// |-------------|----------------------------------------------|-------------------------------|
/// | load        | always (GET)                                 |                               |
/// | insert      | anonymous, or key and user index share a slot| index first, then SET NX      |
/// | replace     | anonymous, or key and user index share a slot| index first, then the CAS     |
/// | rotate      | old key, new key and index share a slot      | index, create new key, erase  |
/// |             |                                              | old key if unchanged (else    |
/// |             |                                              | the new key is erased again)  |
/// | erase       | always (DEL; the index entry is dropped when | |
/// |             | it expires or erase_user meets it)           |                               |
/// | erase_user  | per batch of erase_batch sessions (a login   | per slot within a batch       |
/// |             | made during the revocation may survive it)   |                               |
/// | list_user   | the index read is one script                 |                               |
///
/// The manager gives a bound session its user's slot tag when the id rotates at login, so on a
/// cluster a user's sessions and index share a slot and all of the above is atomic for them.
/// Between the steps of a rotation across slots, both ids load the session; a save through the
/// old id in between makes the rotation fail with conflict, and the new key is erased again.
///
/// A store is a cheap handle sharing one client (or, made with one client per io_context, those
/// clients: see the constructor taking a vector). Errors: every operation may complete with
/// error::store_unavailable (refused, dropped, or a Redis error reply) or error::timeout (also
/// when fewer than wait_replicas replicas confirmed a write within wait_timeout: the write is on
/// the master and may or may not survive a failover); session_error() says which client error
/// becomes which. With wait_replicas, every write request
/// is durable (redis::request::wait_for_replicas): the connection follows the writes of a
/// moment with one WAIT and acknowledges them when it answers.
class redis_store {
 public:
  /// Uses `client`, which the caller runs (client::async_run) and keeps running. Throws
  /// std::invalid_argument for wait_replicas < 0, or, with wait_replicas > 0, a wait_timeout
  /// that is not positive or not below the client's request_timeout and health_check_interval.
  explicit redis_store(redis::client client, redis_store_options opts = {})
      : client_(std::move(client)),
        opts_(std::make_shared<const redis_store_options>(std::move(opts))) {
    validate(*opts_, client_.get_config());
  }

  /// One client per io_context, for a manager shared by threads that each run an io_context of
  /// their own: each operation runs on the client whose executor belongs to the execution
  /// context (asio::execution::context) of the coroutine calling it, so that its requests and
  /// replies stay on that thread; a caller on none of them (another io_context, a thread pool)
  /// uses the first client. The caller runs every client (client::async_run, each on its own
  /// io_context) and keeps them running. The clients must reach the same deployment (the same
  /// server, Sentinel master or Cluster, and database): a session written through one is read
  /// through another. count() and the Lua scripts work as with one client (each connection
  /// loads a script into Redis's cache on its first NOSCRIPT); ping() asks every client.
  /// Throws std::invalid_argument for an empty vector, a mix of cluster and non-cluster
  /// clients, and as the single-client constructor for `opts` with any client's config.
  explicit redis_store(std::vector<redis::client> clients, redis_store_options opts = {})
      : client_(first_of(clients)),
        opts_(std::make_shared<const redis_store_options>(std::move(opts))) {
    for (const redis::client& c : clients) {
      if (c.is_cluster() != client_.is_cluster())
        throw std::invalid_argument("websession::redis_store: clients of different deployments");
      validate(*opts_, c.get_config());
    }
    if (clients.size() > 1) {
      auto set = std::make_shared<detail::redis_client_set>();
      for (const redis::client& c : clients)
        set->contexts.push_back(&boost::asio::query(c.get_executor(), boost::asio::execution::context));
      set->clients = std::move(clients);
      clients_ = std::move(set);
    }
  }

  /// Uses one connection (standalone or Sentinel), as redis_store(redis::client(conn)).
  explicit redis_store(std::shared_ptr<redis::connection> conn, redis_store_options opts = {})
      : redis_store(redis::client(std::move(conn)), std::move(opts)) {}

  /// Uses a cluster client, as redis_store(redis::client(c)).
  explicit redis_store(std::shared_ptr<redis::cluster> c, redis_store_options opts = {})
      : redis_store(redis::client(std::move(c)), std::move(opts)) {}

  /// The client (a handle: copies share its connections); with one client per io_context, the
  /// first.
  redis::client& client() noexcept { return client_; }

  /// How many clients the store has (1, or one per io_context).
  std::size_t client_count() const noexcept { return clients_ ? clients_->clients.size() : 1; }

  /// The `i`-th client given to the constructor (i < client_count()).
  redis::client& client(std::size_t i) { return clients_ ? clients_->clients.at(i) : client_; }

  /// The client the operations of a coroutine running on `ex` use: the one whose executor
  /// belongs to the same execution context, else the first.
  redis::client& client_for(const boost::asio::any_io_executor& ex) {
    if (!clients_) return client_;
    const boost::asio::execution_context* ctx =
        &boost::asio::query(ex, boost::asio::execution::context);
    for (std::size_t i = 0; i < clients_->contexts.size(); ++i) {
      if (clients_->contexts[i] == ctx) return clients_->clients[i];
    }
    return client_;
  }

  /// The connection of a standalone or Sentinel client (the first, with several); throws
  /// std::logic_error on a cluster.
  redis::connection& connection() {
    if (!client_.connection()) throw std::logic_error("websession::redis_store: a cluster has no single connection");
    return *client_.connection();
  }

  const redis_store_options& options() const noexcept { return *opts_; }

  /// The session error the store reports for an error of its Redis client (the one place where
  /// client errors become session errors): redis::error::not_connected, connection_lost and
  /// too_many_redirects are error::store_unavailable; redis::error::timeout and
  /// replicas_not_confirmed are error::timeout; redis::error::internal is error::internal. Any
  /// other code (operation_aborted after a cancellation) is returned unchanged.
  static boost::system::error_code session_error(const boost::system::error_code& ec) noexcept {
    if (ec.category() != redis::error_category()) return ec;
    switch (static_cast<redis::error>(ec.value())) {
      case redis::error::timeout:
      case redis::error::replicas_not_confirmed: return make_error_code(error::timeout);
      case redis::error::internal: return make_error_code(error::internal);
      case redis::error::not_connected:
      case redis::error::connection_lost:
      case redis::error::too_many_redirects: break;
    }
    return make_error_code(error::store_unavailable);
  }

  awaitable<result<store_record>> load(std::string_view key) {
    redis::request req(true);
    req.push("GET", key).route(key);
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    co_return record((*replies)[0]);
  }

  /// One result per key, in the order of `keys`, as load gives them: one MGET per batch of
  /// erase_batch keys (per slot on a cluster), so no single command grows with the number of
  /// keys. Errors: the first failing request's (then no result is returned).
  awaitable<result<std::vector<result<store_record>>>> load_many(
      const std::vector<std::string>& keys) {
    std::vector<result<store_record>> out(keys.size(), make_error_code(error::not_found));
    // Positions of the keys per slot (one group on a single server).
    std::map<int, std::vector<std::size_t>> by_slot;
    for (std::size_t i = 0; i < keys.size(); ++i)
      by_slot[client_.is_cluster() ? redis::hash_slot(keys[i]) : 0].push_back(i);
    for (auto& [slot, positions] : by_slot) {
      for (std::size_t from = 0; from < positions.size(); from += opts_->erase_batch) {
        const std::size_t to = std::min(positions.size(), from + opts_->erase_batch);
        std::vector<std::string_view> batch;
        batch.reserve(to - from);
        for (std::size_t j = from; j < to; ++j) batch.push_back(keys[positions[j]]);
        redis::request req(true);
        req.push("MGET", batch).route(batch.front());
        auto replies = co_await exec(req);
        if (!replies) co_return replies.error();
        redis::reply& r = (*replies)[0];
        if (r.type != redis::reply_type::array || r.elements.size() != batch.size())
          co_return make_error_code(error::store_unavailable);
        for (std::size_t j = from; j < to; ++j) out[positions[j]] = record(r.elements[j - from]);
      }
    }
    co_return out;
  }

  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    co_return co_await create(key, w, 1);
  }

  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t expected_version) {
    const bool together = w.user.empty() || client_.same_slot(key, w.user);
    if (!together) {
      if (auto ec = co_await index_add(w.user, key, w.ttl)) co_return ec;
    }
    const std::string ttl = std::to_string(ttl_ms(w));
    const std::string expected = std::to_string(expected_version);
    std::vector<std::string_view> keys{key};
    if (!w.user.empty() && together) keys.push_back(w.user);
    const std::vector<std::string_view> args{w.value, ttl, w.user, expected};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().replace, keys, args);
    co_return version_reply(std::move(r));
  }

  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t expected_version) {
    const bool together = client_.same_slot(old_key, new_key) &&
                          (w.user.empty() || client_.same_slot(new_key, w.user));
    if (!together) co_return co_await rotate_in_steps(old_key, new_key, w, expected_version);
    const std::string ttl = std::to_string(ttl_ms(w));
    const std::string expected = std::to_string(expected_version);
    std::vector<std::string_view> keys{old_key, new_key};
    if (!w.user.empty()) keys.push_back(w.user);
    const std::vector<std::string_view> args{w.value, ttl, w.user, expected};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().rotate, keys, args);
    co_return version_reply(std::move(r));
  }

  awaitable<result<bool>> erase(std::string_view key) {
    redis::request req;
    req.push("DEL", key).route(key);
    durable(req);
    auto replies = co_await exec(req);
    // result<bool> cannot be made implicitly from an error_code (which converts to bool).
    if (!replies) co_return result<bool>(boost::system::in_place_error, replies.error());
    const redis::reply& r = (*replies)[0];
    if (r.type != redis::reply_type::integer)
      co_return result<bool>(boost::system::in_place_error, error::store_unavailable);
    co_return r.integer == 1;
  }

  /// Erases `key` if its value is bound to the index `user`: one script (with the index entry,
  /// when the index shares the key's slot).
  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    const bool with_index = !user.empty() && client_.same_slot(key, user);
    std::vector<std::string_view> keys{key};
    if (with_index) keys.push_back(user);
    const std::vector<std::string_view> args{user, with_index ? "1" : "0"};
    result<std::vector<std::string>> gone =
        key_list(co_await eval(detail::redis_scripts::get().erase_members, keys, args));
    if (!gone) co_return result<bool>(boost::system::in_place_error, gone.error());
    co_return !gone->empty();
  }

  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    std::vector<std::string> erased;
    if (auto ec = co_await erase_indexed(user, user, erased)) co_return ec;
    // Sessions bound before slot tags existed, in the index of that time.
    const auto [legacy, legacy_user] = detail::redis_legacy_index(user);
    if (!legacy.empty()) {
      if (auto ec = co_await erase_indexed(legacy, legacy_user, erased)) co_return ec;
    }
    co_return erased;
  }

  /// The index's live members, soonest expiry (least recently written) first, read in pages of
  /// erase_batch members (one short script each), then those of the index from before slot
  /// tags.
  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    std::vector<std::string> keys;
    if (auto ec = co_await index_all(user, keys)) co_return ec;
    const auto [legacy, legacy_user] = detail::redis_legacy_index(user);
    if (!legacy.empty()) {
      if (auto ec = co_await index_all(legacy, keys)) co_return ec;
    }
    co_return keys;
  }

  /// A PING to the server, or to every master of a cluster; with one client per io_context,
  /// through every client.
  awaitable<boost::system::error_code> ping() {
    redis::request req(true);
    req.push("PING");
    for (std::size_t k = 0; k < client_count(); ++k) {
      redis::client& c = client(k);
      const std::size_t n = std::max<std::size_t>(c.master_count(), 1);
      for (std::size_t i = 0; i < n; ++i) {
        auto [ec, replies] =
            co_await c.async_exec_at(i, req, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) co_return session_error(ec);
        if (replies.size() != 1 || replies[0].is_error())
          co_return make_error_code(error::store_unavailable);
      }
    }
    co_return boost::system::error_code{};
  }

  /// How many session values are stored under `key_prefix` (on every master of a cluster),
  /// counted with SCAN (never KEYS, which blocks Redis); index keys are not counted. A live
  /// count: concurrent writes may be missed. On a cluster a count during which the master at
  /// one of the indexes changed (a failover, a slot that moved: the client read a new map)
  /// starts again, three times at most, then fails with store_unavailable: it never counts a
  /// master twice or skips one. With one client per io_context, the caller's client scans.
  awaitable<result<std::size_t>> count(std::string_view key_prefix) {
    const std::string pattern = std::string(key_prefix) + "*";
    // One client throughout (the caller's): a SCAN cursor and the master map are its own.
    const boost::asio::any_io_executor ex = co_await boost::asio::this_coro::executor;
    redis::client& c = client_for(ex);
    for (int attempt = 0; attempt < 3; ++attempt) {
      const std::size_t masters = c.master_count();
      if (masters == 0) co_return make_error_code(error::store_unavailable);
      // Whether the `m`-th master is still the one the count started on (`at`).
      const auto same_master = [&](std::size_t m, const std::optional<redis::address>& at) {
        return !c.is_cluster() ||
               (at && c.master_count() == masters && c.master_address(m) == at);
      };
      std::size_t n = 0;
      bool changed = false;
      for (std::size_t m = 0; m < masters && !changed; ++m) {
        const std::optional<redis::address> at = c.master_address(m);
        if (!same_master(m, at)) {
          changed = true;
          break;
        }
        std::string cursor = "0";
        do {
          redis::request req(true);
          req.push("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
          auto [ec, replies] = co_await c.async_exec_at(
              m, req, boost::asio::as_tuple(boost::asio::use_awaitable));
          if (ec) co_return session_error(ec);
          // The cursor is good only on the node that gave it.
          if (!same_master(m, at)) {
            changed = true;
            break;
          }
          if (replies.size() != 1) co_return make_error_code(error::store_unavailable);
          const redis::reply& r = replies[0];
          if (r.type != redis::reply_type::array || r.elements.size() != 2)
            co_return make_error_code(error::store_unavailable);
          cursor = r.elements[0].str;
          for (const redis::reply& k : r.elements[1].elements) {
            // prefix + hash (an id without a slot tag) or prefix{tag}hash; index names hold ':'.
            const std::size_t rest = k.str.size() - std::min(k.str.size(), key_prefix.size());
            if ((rest == 43 || rest == 48) && k.str.find(':', key_prefix.size()) == std::string::npos)
              ++n;
          }
        } while (cursor != "0");
      }
      if (!changed) co_return n;
    }
    co_return make_error_code(error::store_unavailable);
  }

 private:
  static void validate(const redis_store_options& o, const redis::config& c) {
    if (o.wait_replicas < 0)
      throw std::invalid_argument("websession::redis_store_options::wait_replicas must not be negative");
    if (o.erase_batch == 0)
      throw std::invalid_argument("websession::redis_store_options::erase_batch must be positive");
    if (o.wait_replicas == 0) return;
    if (o.wait_timeout <= std::chrono::milliseconds::zero() || o.wait_timeout >= c.request_timeout ||
        (c.health_check_interval > std::chrono::milliseconds::zero() &&
         o.wait_timeout >= c.health_check_interval))
      throw std::invalid_argument(
          "websession::redis_store_options::wait_timeout must be positive and below the "
          "client's request_timeout and health_check_interval");
  }

  static long long ttl_ms(const store_write& w) {
    return std::max<long long>(1, w.ttl.count());
  }

  // On the caller's client (see client_for): its requests and replies stay on the caller's
  // io_context. A store with one client skips the look-up.
  awaitable<result<std::vector<redis::reply>>> exec(const redis::request& req) {
    redis::client* c = &client_;
    if (clients_) {
      const boost::asio::any_io_executor ex = co_await boost::asio::this_coro::executor;
      c = &client_for(ex);
    }
    auto [ec, replies] = co_await c->async_exec(req, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return session_error(ec);
    if (replies.size() != req.size()) co_return make_error_code(error::store_unavailable);
    co_return std::move(replies);
  }

  // With wait_replicas: the request completes once that many replicas have it (see
  // redis::request::wait_for_replicas; the connection sends one WAIT for many writes).
  void durable(redis::request& req) const {
    if (opts_->wait_replicas > 0) req.wait_for_replicas(opts_->wait_replicas, opts_->wait_timeout);
  }

  // EVALSHA, and EVAL once if the script is not cached in Redis (restart, SCRIPT FLUSH). Routed
  // by the first key (the script's keys share its slot). `writes`: made durable.
  awaitable<result<redis::reply>> eval(const detail::redis_script& script,
                                       const std::vector<std::string_view>& keys,
                                       const std::vector<std::string_view>& args,
                                       bool writes = true) {
    redis::request req;
    req.push("EVALSHA", script.sha1, keys.size(), keys, args);
    if (!keys.empty()) req.route(keys.front());
    if (writes) durable(req);
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    redis::reply r = std::move((*replies)[0]);
    if (r.is_error() && std::string_view(r.str).starts_with("NOSCRIPT")) {
      redis::request full;
      full.push("EVAL", script.body, keys.size(), keys, args);
      if (!keys.empty()) full.route(keys.front());
      if (writes) durable(full);
      replies = co_await exec(full);
      if (!replies) co_return replies.error();
      r = std::move((*replies)[0]);
    }
    if (r.is_error()) co_return make_error_code(error::store_unavailable);
    co_return r;
  }

  // A new key at `version`: SET NX PX, or with a user the create script (its index shares the
  // key's slot) or the index step then SET NX PX.
  awaitable<result<std::uint64_t>> create(std::string_view key, const store_write& w,
                                          std::uint64_t version) {
    if (!w.user.empty() && client_.same_slot(key, w.user)) {
      const std::string ttl = std::to_string(ttl_ms(w));
      const std::string ver = std::to_string(version);
      const std::vector<std::string_view> keys{key, w.user};
      const std::vector<std::string_view> args{w.value, ttl, ver};
      result<redis::reply> r = co_await eval(detail::redis_scripts::get().create, keys, args);
      co_return version_reply(std::move(r));
    }
    if (!w.user.empty()) {
      if (auto ec = co_await index_add(w.user, key, w.ttl)) co_return ec;
    }
    const std::string value = detail::redis_value(version, w.user, w.value);
    redis::request req;
    req.push("SET", key, value, "NX", "PX", ttl_ms(w)).route(key);
    durable(req);
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    const redis::reply& r = (*replies)[0];
    if (r.is_nil()) co_return make_error_code(error::conflict);
    if (r.is_error()) co_return make_error_code(error::store_unavailable);
    co_return version;
  }

  awaitable<boost::system::error_code> index_add(std::string_view index, std::string_view key,
                                                 std::chrono::milliseconds ttl) {
    const std::string t = std::to_string(std::max<long long>(1, ttl.count()));
    const std::vector<std::string_view> keys{index};
    const std::vector<std::string_view> args{key, t};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().index_add, keys, args);
    if (!r) co_return r.error();
    co_return boost::system::error_code{};
  }

  // A rotation across slots: create the new key (after the index step), then erase the old one
  // if it still holds the version copied; if it does not, erase the new one again.
  awaitable<result<std::uint64_t>> rotate_in_steps(std::string_view old_key,
                                                   std::string_view new_key, const store_write& w,
                                                   std::uint64_t expected_version) {
    const std::uint64_t next = expected_version + 1;
    result<std::uint64_t> made = co_await create(new_key, w, next);
    if (!made) co_return made;
    const std::string expected = std::to_string(expected_version);
    const std::vector<std::string_view> keys{old_key};
    const std::vector<std::string_view> args{expected};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().erase_version, keys, args);
    result<std::uint64_t> gone = version_reply(std::move(r));
    if (!gone) {
      // Changed, gone, or unknown (the reply was lost): the rotation did not happen, so the
      // new key must not outlive it. Best effort: if this fails too, its TTL ends it.
      redis::request undo;
      undo.push("DEL", new_key).route(new_key);
      (void)co_await exec(undo);
      co_return gone.error();
    }
    co_return next;
  }

  // `n` live members of an index from rank `from` on.
  awaitable<result<std::vector<std::string>>> index_range(std::string_view index, long long n,
                                                          long long from = 0) {
    const std::string count = std::to_string(n);
    const std::string start = std::to_string(from);
    const std::vector<std::string_view> keys{index};
    const std::vector<std::string_view> args{count, start};
    result<redis::reply> r =
        co_await eval(detail::redis_scripts::get().index_range, keys, args, false);
    co_return key_list(std::move(r));
  }

  // Appends every live member of an index, page by page. Members added or removed meanwhile may
  // be missed or repeated (repeats are dropped); the caller checks each session anyway.
  awaitable<boost::system::error_code> index_all(std::string_view index,
                                                 std::vector<std::string>& out) {
    const long long page = static_cast<long long>(opts_->erase_batch);
    const std::size_t first = out.size();
    for (long long from = 0;; from += page) {
      result<std::vector<std::string>> members = co_await index_range(index, page, from);
      if (!members) co_return members.error();
      for (auto& k : *members) out.push_back(std::move(k));
      if (static_cast<long long>(members->size()) < page) break;
    }
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    out.erase(std::unique(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()), out.end());
    co_return boost::system::error_code{};
  }

  // Erases, batch by batch, the sessions an index lists that are still bound to `user`
  // (appended to `erased`), and empties the index.
  awaitable<boost::system::error_code> erase_indexed(std::string_view index, std::string_view user,
                                                     std::vector<std::string>& erased) {
    const long long batch = static_cast<long long>(opts_->erase_batch);
    // Each round takes its batch off the index; logins during the revocation add members, so
    // bound the rounds (a million sessions at the default batch).
    for (int round = 0; round < 4096; ++round) {
      result<std::vector<std::string>> members = co_await index_range(index, batch);
      if (!members) co_return members.error();
      if (members->empty()) break;
      // One script per slot (on one server: per batch).
      std::map<int, std::vector<std::string_view>> by_slot;
      for (const std::string& k : *members) {
        by_slot[client_.is_cluster() ? redis::hash_slot(k) : 0].push_back(k);
      }
      for (auto& [slot, keys] : by_slot) {
        const bool with_index = client_.same_slot(keys.front(), index);
        std::vector<std::string_view> script_keys = keys;
        if (with_index) script_keys.push_back(index);
        const std::vector<std::string_view> args{user, with_index ? "1" : "0"};
        result<redis::reply> r =
            co_await eval(detail::redis_scripts::get().erase_members, script_keys, args);
        result<std::vector<std::string>> gone = key_list(std::move(r));
        if (!gone) co_return gone.error();
        for (auto& k : *gone) erased.push_back(std::move(k));
        if (!with_index) {
          redis::request zrem;
          zrem.push("ZREM", index, keys).route(index);
          auto replies = co_await exec(zrem);
          if (!replies) co_return replies.error();
        }
      }
    }
    co_return boost::system::error_code{};
  }

  // A GET reply as load reports it: the version header taken off the sealed bytes.
  static result<store_record> record(redis::reply& r) {
    if (r.is_nil()) return make_error_code(error::not_found);
    if (r.type != redis::reply_type::string) return make_error_code(error::store_unavailable);
    std::uint64_t version = 0;
    std::size_t at = 0;
    if (!detail::parse_redis_value(r.str, version, at)) return make_error_code(error::malformed);
    store_record rec;
    rec.version = version;
    // The reply's own buffer, minus the header: no second allocation and copy of the value.
    rec.value = std::move(r.str);
    rec.value.erase(0, at);
    return rec;
  }

  static result<std::uint64_t> version_reply(result<redis::reply> r) {
    if (!r) return r.error();
    if (r->type != redis::reply_type::integer) return make_error_code(error::store_unavailable);
    switch (r->integer) {
      case -1: return make_error_code(error::not_found);
      case -2: return make_error_code(error::conflict);
      case -3: return make_error_code(error::malformed);
      default: break;
    }
    if (r->integer < 1) return make_error_code(error::store_unavailable);
    return static_cast<std::uint64_t>(r->integer);
  }

  static result<std::vector<std::string>> key_list(result<redis::reply> r) {
    if (!r) return r.error();
    if (r->type == redis::reply_type::nil) return std::vector<std::string>{};
    if (r->type != redis::reply_type::array) return make_error_code(error::store_unavailable);
    std::vector<std::string> keys;
    keys.reserve(r->elements.size());
    for (redis::reply& k : r->elements) keys.push_back(std::move(k.str));
    return keys;
  }

  static const redis::client& first_of(const std::vector<redis::client>& clients) {
    if (clients.empty()) throw std::invalid_argument("websession::redis_store: no client");
    return clients.front();
  }

  redis::client client_;  // the only client, or the first of clients_
  std::shared_ptr<const redis_store_options> opts_;
  // With one client per io_context (more than one client): all of them; null otherwise.
  std::shared_ptr<detail::redis_client_set> clients_;
};

static_assert(session_store<redis_store>);
static_assert(batch_loading_store<redis_store>);

}  // namespace websession
