// SPDX-License-Identifier: BSL-1.0
// The session object a handler works with: its data (a JSON object with dirty tracking) and its
// metadata (times, deadlines, bound user, CSRF secret, version). It does no I/O; the manager
// loads, saves, rotates and destroys it.
#pragma once

#include <websession/clock.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace websession {

namespace detail {
struct session_access;
}

/// What the manager keeps beside the data, sealed together with it.
struct session_metadata {
  time_point created{};
  time_point last_seen{};
  /// last_seen + idle timeout, never later than absolute_deadline.
  time_point idle_deadline{};
  /// created + absolute lifetime; no activity extends it.
  time_point absolute_deadline{};
  /// The bound user id; empty when no user is bound.
  std::string user;
  /// 32 random bytes from which CSRF tokens are derived; renewed when the id rotates.
  std::string csrf_secret;
  /// Optional client fingerprint (a hash of chosen request headers); empty when unused.
  std::string fingerprint;
  /// The store's version of the value this session was loaded from (0: never stored). It is
  /// kept by the store, not inside the sealed value.
  std::uint64_t version = 0;

  friend bool operator==(const session_metadata&, const session_metadata&) = default;
};

/// A server-side session. Obtained from a manager (`async_create`, `async_load`,
/// `new_session`); a default-constructed session is not valid and every manager operation on it
/// fails with error::invalid_session.
///
/// Not thread-safe: one request owns a session object at a time. Concurrent requests for the
/// same session each load their own object; the store's versions keep their saves apart.
class session {
 public:
  session() = default;

  /// True for a session that came from a manager and has not been destroyed.
  bool valid() const noexcept { return !id_.empty() && !destroyed_; }
  explicit operator bool() const noexcept { return valid(); }

  /// The session id as it goes into the cookie (43 characters of base64url, '.' and a 3
  /// character slot tag; see session_id). Secret.
  const std::string& id() const noexcept { return id_; }
  /// The key the store keeps this session under: prefix{tag} + base64url(SHA-256(id)). Not
  /// secret.
  const std::string& storage_key() const noexcept { return key_; }

  const session_metadata& metadata() const noexcept { return meta_; }
  /// The bound user, empty if none.
  const std::string& user() const noexcept { return meta_.user; }

  /// The data; read-only. Use set/erase/clear or mutable_data to change it.
  const boost::json::object& data() const noexcept { return data_; }

  /// The value under `key`, or nullptr.
  const boost::json::value* get(std::string_view key) const noexcept { return data_.if_contains(key); }

  /// The value under `key` converted to T (Boost.JSON value_to, so user types plug in with
  /// tag_invoke); nullopt if absent or not convertible.
  template <class T>
  std::optional<T> get_as(std::string_view key) const {
    const boost::json::value* v = get(key);
    if (!v) return std::nullopt;
    auto r = boost::json::try_value_to<T>(*v);
    if (!r) return std::nullopt;
    return std::move(*r);
  }

  /// Stores `value` under `key` (converted with Boost.JSON value_from) and marks the session dirty.
  template <class T>
  void set(std::string_view key, T&& value) {
    data_[key] = boost::json::value_from(std::forward<T>(value));
    dirty_ = true;
  }

  /// Removes `key`; returns whether it was there. Marks the session dirty only if it was.
  bool erase(std::string_view key) {
    bool erased = data_.erase(key) != 0;
    dirty_ = dirty_ || erased;
    return erased;
  }

  /// Removes all data (metadata stays) and marks the session dirty.
  void clear() {
    data_.clear();
    dirty_ = true;
  }

  /// Direct access to the data; marks the session dirty because the caller may change it.
  boost::json::object& mutable_data() noexcept {
    dirty_ = true;
    return data_;
  }

  /// Marks the session dirty so the next save writes it.
  void mark_dirty() noexcept { dirty_ = true; }

  /// Tells the HTTP glue (async_apply_session, with_session) not to store this session and not
  /// to send its cookie in this response: for a handler whose work failed half-way (a login
  /// whose rotation failed, say), so that nothing it changed is written. A plain async_save
  /// still saves. Destroying the session still deletes the cookie.
  void skip_save() noexcept { skip_save_ = true; }
  /// True after skip_save().
  bool save_skipped() const noexcept { return skip_save_; }

  /// True when the data or metadata changed since the last load or save.
  bool dirty() const noexcept { return dirty_; }
  /// True until the session has been written to the store for the first time.
  bool is_new() const noexcept { return meta_.version == 0; }
  /// True when the id changed in this request (created or rotated): the cookie must be sent.
  bool id_changed() const noexcept { return id_changed_; }
  /// True after the manager destroyed this session: the cookie must be deleted.
  bool destroyed() const noexcept { return destroyed_; }

 private:
  // The manager reaches the private state through this one door.
  friend struct detail::session_access;

  std::string id_;
  std::string key_;
  session_metadata meta_;
  boost::json::object data_;
  // The user bound in the store (as last loaded or written): a save that would change it
  // without an id change is refused (see error::rotation_required).
  std::string stored_user_;
  bool dirty_ = false;
  bool id_changed_ = false;
  bool destroyed_ = false;
  bool skip_save_ = false;
};

}  // namespace websession
