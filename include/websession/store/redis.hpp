// redis_store: the session_store for production, on one multiplexed Redis connection. Versioned
// writes, rotation and per-user revocation run as Lua scripts so each is atomic in Redis.
#pragma once

#include <websession/concepts.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/detail/sha256.hpp>
#include <websession/error.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/sha.h>

#include <charconv>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace websession {

namespace detail {

// Every stored value is "<version>:<user length>:<user tag><sealed bytes>": Redis itself can
// then check versions and keep the per-user index right without being able to read the session.
// The user tag is a hash of the user id (redis_user_tag below).
//
// The user index is a sorted set "<index prefix><user tag>" of storage keys scored by expiry
// (milliseconds, Redis server time), pruned of expired members whenever it is written or read.
// Storage keys are prefix + 43 base64url characters, which contain no ':', so index keys
// cannot collide with them.
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

// KEYS[1] key; ARGV[1] sealed, ARGV[2] ttl ms, ARGV[3] user, ARGV[4] index prefix.
inline constexpr std::string_view redis_lua_insert = R"lua(
if not redis.call('SET', KEYS[1], value(1, ARGV[3], ARGV[1]), 'NX', 'PX', ARGV[2]) then return -2 end
if ARGV[3] ~= '' then index_add(ARGV[4] .. ARGV[3], KEYS[1], ARGV[2]) end
return 1
)lua";

// KEYS[1] key; ARGV[1] sealed, ARGV[2] ttl ms, ARGV[3] user, ARGV[4] index prefix,
// ARGV[5] expected version. Returns the new version, -1 not found, -2 conflict, -3 malformed.
inline constexpr std::string_view redis_lua_replace = R"lua(
local ver, old_user = current(KEYS[1], ARGV[5])
if not ver then return old_user end  -- then it holds the error code
local nv = ver + 1
redis.call('SET', KEYS[1], value(nv, ARGV[3], ARGV[1]), 'PX', ARGV[2])
if old_user ~= ARGV[3] and old_user ~= '' then redis.call('ZREM', ARGV[4] .. old_user, KEYS[1]) end
if ARGV[3] ~= '' then index_add(ARGV[4] .. ARGV[3], KEYS[1], ARGV[2]) end
return nv
)lua";

// KEYS[1] old key, KEYS[2] new key; ARGV as replace.
inline constexpr std::string_view redis_lua_rotate = R"lua(
local ver, old_user = current(KEYS[1], ARGV[5])
if not ver then return old_user end  -- then it holds the error code
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local nv = ver + 1
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], value(nv, ARGV[3], ARGV[1]), 'PX', ARGV[2])
if old_user ~= '' then redis.call('ZREM', ARGV[4] .. old_user, KEYS[1]) end
if ARGV[3] ~= '' then index_add(ARGV[4] .. ARGV[3], KEYS[2], ARGV[2]) end
return nv
)lua";

// KEYS[1] key; ARGV[1] index prefix. Returns 1 if a value was erased.
inline constexpr std::string_view redis_lua_erase = R"lua(
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
redis.call('DEL', KEYS[1])
local ver, user = parse(cur)
if user and user ~= '' then redis.call('ZREM', ARGV[1] .. user, KEYS[1]) end
return 1
)lua";

// ARGV[1] index key, ARGV[2] user. Erases the user's live sessions; returns their keys.
inline constexpr std::string_view redis_lua_erase_user = R"lua(
local out = {}
for _, k in ipairs(redis.call('ZRANGE', ARGV[1], 0, -1)) do
  local cur = redis.call('GET', k)
  if cur then
    local ver, user = parse(cur)
    if user == ARGV[2] then
      redis.call('DEL', k)
      table.insert(out, k)
    end
  end
end
redis.call('DEL', ARGV[1])
return out
)lua";

// ARGV[1] index key. Prunes expired members; returns the rest.
inline constexpr std::string_view redis_lua_list_user = R"lua(
redis.call('ZREMRANGEBYSCORE', ARGV[1], '-inf', now_ms())
return redis.call('ZRANGE', ARGV[1], 0, -1)
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
  redis_script insert{redis_lua_insert};
  redis_script replace{redis_lua_replace};
  redis_script rotate{redis_lua_rotate};
  redis_script erase{redis_lua_erase};
  redis_script erase_user{redis_lua_erase_user};
  redis_script list_user{redis_lua_list_user};

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

// What Redis sees of a user id: base64url(SHA-256(user)), so neither the value headers nor the
// index key names give away who is logged in. Empty stays empty (no user bound).
inline std::string redis_user_tag(std::string_view user) {
  if (user.empty()) return {};
  unsigned char digest[sha256_size];
  if (!sha256(user.data(), user.size(), digest)) throw std::runtime_error("websession: SHA-256 failed");
  std::string out;
  base64url_encode(digest, sizeof digest, out);
  return out;
}

}  // namespace detail

/// Settings of redis_store beyond the connection's.
struct redis_store_options {
  /// Prefix of the per-user index keys ("<index_prefix><hash of the user>"). Keep it under the
  /// manager's key prefix so one prefix covers everything an application stores.
  std::string index_prefix = "websession:user:";
};

/// The Redis session store, a model of session_store.
///
/// Keys are the manager's storage keys (prefix + hashed id). Values carry a version and a hash
/// of the bound user in a small clear header before the sealed bytes (see detail above); the
/// session data stays sealed, and nothing Redis holds names a session id or a user. Create is SET NX PX, load one GET, and every conditional write one EVALSHA
/// (falling back to EVAL when Redis answers NOSCRIPT, after a restart or SCRIPT FLUSH).
///
/// A store is a cheap handle sharing one connection. Errors: every operation may complete with
/// error::store_unavailable (refused, dropped, or a Redis error reply) or error::timeout.
class redis_store {
 public:
  /// Uses `conn`, which the caller runs (connection::async_run) and keeps alive.
  explicit redis_store(std::shared_ptr<redis::connection> conn, redis_store_options opts = {})
      : conn_(std::move(conn)), opts_(std::make_shared<redis_store_options>(std::move(opts))) {}

  redis::connection& connection() noexcept { return *conn_; }

  awaitable<result<store_record>> load(std::string_view key) {
    redis::request req(true);
    req.push("GET", key);
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    redis::reply& r = (*replies)[0];
    if (r.is_nil()) co_return make_error_code(error::not_found);
    if (r.type != redis::reply_type::string) co_return make_error_code(error::store_unavailable);
    std::uint64_t version = 0;
    std::size_t at = 0;
    if (!detail::parse_redis_value(r.str, version, at))
      co_return make_error_code(error::malformed);
    store_record rec;
    rec.version = version;
    // The reply's own buffer, minus the header: no second allocation and copy of the value.
    rec.value = std::move(r.str);
    rec.value.erase(0, at);
    co_return rec;
  }

  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    if (w.user.empty()) {
      // The common case needs no script: SET NX PX with the header of version 1.
      std::string value = "1:0:";
      value += w.value;
      redis::request req;
      req.push("SET", key, value, "NX", "PX", ttl_ms(w));
      auto replies = co_await exec(req);
      if (!replies) co_return replies.error();
      const redis::reply& r = (*replies)[0];
      if (r.is_nil()) co_return make_error_code(error::conflict);
      if (r.is_error()) co_return make_error_code(error::store_unavailable);
      co_return std::uint64_t{1};
    }
    const std::string ttl = std::to_string(ttl_ms(w));
    const std::string user = detail::redis_user_tag(w.user);
    const std::vector<std::string_view> keys{key};
    const std::vector<std::string_view> args{w.value, ttl, user, opts_->index_prefix};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().insert, keys, args);
    co_return version_reply(std::move(r));
  }

  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t expected_version) {
    const std::string ttl = std::to_string(ttl_ms(w));
    const std::string expected = std::to_string(expected_version);
    const std::string user = detail::redis_user_tag(w.user);
    const std::vector<std::string_view> keys{key};
    const std::vector<std::string_view> args{w.value, ttl, user, opts_->index_prefix, expected};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().replace, keys, args);
    co_return version_reply(std::move(r));
  }

  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t expected_version) {
    const std::string ttl = std::to_string(ttl_ms(w));
    const std::string expected = std::to_string(expected_version);
    const std::string user = detail::redis_user_tag(w.user);
    const std::vector<std::string_view> keys{old_key, new_key};
    const std::vector<std::string_view> args{w.value, ttl, user, opts_->index_prefix, expected};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().rotate, keys, args);
    co_return version_reply(std::move(r));
  }

  awaitable<result<bool>> erase(std::string_view key) {
    const std::vector<std::string_view> keys{key};
    const std::vector<std::string_view> args{opts_->index_prefix};
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().erase, keys, args);
    // result<bool> cannot be made implicitly from an error_code (which converts to bool).
    if (!r) co_return result<bool>(boost::system::in_place_error, r.error());
    if (r->type != redis::reply_type::integer)
      co_return result<bool>(boost::system::in_place_error, error::store_unavailable);
    co_return r->integer == 1;
  }

  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    const std::string tag = detail::redis_user_tag(user);
    const std::string index = opts_->index_prefix + tag;
    const std::vector<std::string_view> args{index, tag};
    const std::vector<std::string_view> no_keys;
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().erase_user, no_keys, args);
    co_return key_list(std::move(r));
  }

  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    const std::string index = opts_->index_prefix + detail::redis_user_tag(user);
    const std::vector<std::string_view> args{index};
    const std::vector<std::string_view> no_keys;
    result<redis::reply> r = co_await eval(detail::redis_scripts::get().list_user, no_keys, args);
    co_return key_list(std::move(r));
  }

  awaitable<boost::system::error_code> ping() {
    redis::request req(true);
    req.push("PING");
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    if ((*replies)[0].is_error()) co_return make_error_code(error::store_unavailable);
    co_return boost::system::error_code{};
  }

  /// How many session values are stored under `key_prefix`, counted with SCAN (never KEYS, which
  /// blocks Redis); index keys are not counted. A live count: concurrent writes may be missed.
  awaitable<result<std::size_t>> count(std::string_view key_prefix) {
    std::string cursor = "0";
    std::size_t n = 0;
    const std::string pattern = std::string(key_prefix) + "*";
    do {
      redis::request req(true);
      req.push("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
      auto replies = co_await exec(req);
      if (!replies) co_return replies.error();
      const redis::reply& r = (*replies)[0];
      if (r.type != redis::reply_type::array || r.elements.size() != 2)
        co_return make_error_code(error::store_unavailable);
      cursor = r.elements[0].str;
      for (const redis::reply& k : r.elements[1].elements)
        if (k.str.size() == key_prefix.size() + 43 &&
            k.str.find(':', key_prefix.size()) == std::string::npos)
          ++n;
    } while (cursor != "0");
    co_return n;
  }

 private:
  static long long ttl_ms(const store_write& w) {
    return std::max<long long>(1, w.ttl.count());
  }

  awaitable<result<std::vector<redis::reply>>> exec(const redis::request& req) {
    auto [ec, replies] = co_await conn_->async_exec(req, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return ec;
    if (replies.size() != req.size()) co_return make_error_code(error::store_unavailable);
    co_return std::move(replies);
  }

  // EVALSHA, and EVAL once if the script is not cached in Redis (restart, SCRIPT FLUSH).
  awaitable<result<redis::reply>> eval(const detail::redis_script& script,
                                       const std::vector<std::string_view>& keys,
                                       const std::vector<std::string_view>& args) {
    redis::request req;
    req.push("EVALSHA", script.sha1, keys.size(), keys, args);
    auto replies = co_await exec(req);
    if (!replies) co_return replies.error();
    redis::reply r = std::move((*replies)[0]);
    if (r.is_error() && std::string_view(r.str).starts_with("NOSCRIPT")) {
      redis::request full;
      full.push("EVAL", script.body, keys.size(), keys, args);
      replies = co_await exec(full);
      if (!replies) co_return replies.error();
      r = std::move((*replies)[0]);
    }
    if (r.is_error()) co_return make_error_code(error::store_unavailable);
    co_return r;
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

  std::shared_ptr<redis::connection> conn_;
  std::shared_ptr<const redis_store_options> opts_;
};

static_assert(session_store<redis_store>);

}  // namespace websession
