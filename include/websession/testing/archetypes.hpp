// SPDX-License-Identifier: BSL-1.0
// Minimal models of the four policy concepts: the exemplars a user writing a policy starts
// from, and proof that basic_session_manager asks for nothing beyond the concepts. Part of the
// conformance kit (see store_conformance.hpp): no Boost.Test here, only the models.
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace websession::testing {

/// Serializer archetype: a JSON array [created, last_seen, idle, absolute, user, csrf, fp, data].
struct archetype_serializer {
  static std::int64_t ms(time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }
  static time_point from_ms(std::int64_t v) {
    return time_point{std::chrono::milliseconds(v)};
  }
  // JSON strings must be UTF-8; the CSRF secret is raw bytes, so it travels as hex.
  static std::string hex(std::string_view in) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : in) {
      out += digits[c >> 4];
      out += digits[c & 15];
    }
    return out;
  }
  static bool unhex(std::string_view in, std::string& out) {
    auto nibble = [](char c) { return c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - '0'; };
    if (in.size() % 2) return false;
    for (char c : in)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    out.clear();
    for (std::size_t i = 0; i < in.size(); i += 2)
      out += static_cast<char>(nibble(in[i]) * 16 + nibble(in[i + 1]));
    return true;
  }
  // Accepts exactly what deserialize accepts back, the simplest way: by trying to read it.
  boost::system::error_code serialize(const session_metadata& m, const boost::json::object& d,
                                      std::string& out) const {
    boost::json::array a{ms(m.created), ms(m.last_seen), ms(m.idle_deadline),
                         ms(m.absolute_deadline), m.user, hex(m.csrf_secret), m.fingerprint, d};
    out = boost::json::serialize(a);
    session_metadata m2;
    boost::json::object d2;
    if (deserialize(out, m2, d2)) {
      out.clear();
      return error::invalid_data;
    }
    return {};
  }
  boost::system::error_code deserialize(std::string_view in, session_metadata& m,
                                        boost::json::object& d) const {
    boost::system::error_code ec;
    auto v = boost::json::parse(boost::json::string_view(in.data(), in.size()), ec);
    const boost::json::array* a = ec ? nullptr : v.if_array();
    if (!a || a->size() != 8) return error::malformed;
    for (int i = 0; i < 4; ++i)
      if (!(*a)[i].is_int64()) return error::malformed;
    for (int i = 4; i < 7; ++i)
      if (!(*a)[i].is_string()) return error::malformed;
    if (!(*a)[7].is_object()) return error::malformed;
    m.created = from_ms((*a)[0].get_int64());
    m.last_seen = from_ms((*a)[1].get_int64());
    m.idle_deadline = from_ms((*a)[2].get_int64());
    m.absolute_deadline = from_ms((*a)[3].get_int64());
    m.user = (*a)[4].get_string();
    if (!unhex((*a)[5].get_string(), m.csrf_secret)) return error::malformed;
    m.fingerprint = (*a)[6].get_string();
    d = (*a)[7].get_object();
    return {};
  }
};
static_assert(serializer<archetype_serializer>);

/// Cipher archetype: no secrecy, but an integrity check that binds the value to its key:
/// "<plain><16 hex digits of FNV-1a over aad and plain>".
struct archetype_cipher {
  static std::string check(std::string_view in, std::string_view aad) {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : aad) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (char c : in) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
  boost::system::error_code seal(std::string_view in, std::string_view aad, std::string& out) const {
    out.assign(in);
    out += check(in, aad);
    return {};
  }
  boost::system::error_code open(std::string_view in, std::string_view aad, std::string& out) const {
    if (in.size() < 16) return error::tampered;
    std::string_view body = in.substr(0, in.size() - 16);
    if (in.substr(in.size() - 16) != check(body, aad)) return error::tampered;
    out.assign(body);
    return {};
  }
};
static_assert(cipher<archetype_cipher>);

/// Clock archetype: a fixed instant.
struct archetype_clock {
  time_point now() const { return time_point{std::chrono::hours(24 * 365 * 56)}; }
};
static_assert(clock<archetype_clock>);

/// Store archetype: one mutex, one map, no TTL; counts loads so tests can prove a call never
/// reached the store.
class archetype_store {
 public:
  struct entry {
    std::string value;
    std::uint64_t version;
    std::string user;
  };
  struct state {
    std::mutex m;
    std::map<std::string, entry, std::less<>> map;
    std::size_t loads = 0;
  };

  awaitable<result<store_record>> load(std::string_view key) {
    std::lock_guard lk(s_->m);
    ++s_->loads;
    auto it = s_->map.find(key);
    if (it == s_->map.end()) co_return make_error_code(error::not_found);
    co_return store_record{it->second.value, it->second.version};
  }
  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    std::lock_guard lk(s_->m);
    if (s_->map.count(key)) co_return make_error_code(error::conflict);
    s_->map.emplace(std::string(key), entry{std::string(w.value), 1, std::string(w.user)});
    co_return std::uint64_t{1};
  }
  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w, std::uint64_t v) {
    std::lock_guard lk(s_->m);
    auto it = s_->map.find(key);
    if (it == s_->map.end()) co_return make_error_code(error::not_found);
    if (it->second.version != v) co_return make_error_code(error::conflict);
    it->second = entry{std::string(w.value), v + 1, std::string(w.user)};
    co_return v + 1;
  }
  awaitable<result<std::uint64_t>> rotate(std::string_view from, std::string_view to,
                                          store_write w, std::uint64_t v) {
    std::lock_guard lk(s_->m);
    auto it = s_->map.find(from);
    if (it == s_->map.end()) co_return make_error_code(error::not_found);
    if (it->second.version != v) co_return make_error_code(error::conflict);
    if (s_->map.count(to)) co_return make_error_code(error::conflict);
    s_->map.erase(it);
    s_->map.emplace(std::string(to), entry{std::string(w.value), v + 1, std::string(w.user)});
    co_return v + 1;
  }
  awaitable<result<bool>> erase(std::string_view key) {
    std::lock_guard lk(s_->m);
    auto it = s_->map.find(key);
    if (it == s_->map.end()) co_return false;
    s_->map.erase(it);
    co_return true;
  }
  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    std::lock_guard lk(s_->m);
    auto it = s_->map.find(key);
    if (it == s_->map.end() || it->second.user != user) co_return false;
    s_->map.erase(it);
    co_return true;
  }
  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    std::lock_guard lk(s_->m);
    std::vector<std::string> keys;
    for (auto it = s_->map.begin(); it != s_->map.end();) {
      if (it->second.user == user) {
        keys.push_back(it->first);
        it = s_->map.erase(it);
      } else {
        ++it;
      }
    }
    co_return keys;
  }
  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    std::lock_guard lk(s_->m);
    std::vector<std::string> keys;
    for (auto& [k, e] : s_->map)
      if (e.user == user) keys.push_back(k);
    co_return keys;
  }
  awaitable<boost::system::error_code> ping() { co_return boost::system::error_code{}; }

  state& inspect() { return *s_; }

 private:
  std::shared_ptr<state> s_ = std::make_shared<state>();
};
static_assert(session_store<archetype_store>);

}  // namespace websession::testing
