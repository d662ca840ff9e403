// SPDX-License-Identifier: BSL-1.0
// The session manager's one door to a session's private state: giving it an id, filling in what
// a load opened, and recording what a write stored. Everyone else uses session's public members.
#pragma once

#include <websession/session.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <utility>

namespace websession::detail {

struct session_access {
  // `id` (the cookie value) and its storage key `key`; `sent` false for an id the client
  // already has (a load), true for a new one (the cookie must be sent).
  static void assign_id(session& s, std::string id, std::string key, bool sent) noexcept {
    s.id_ = std::move(id);
    s.key_ = std::move(key);
    s.id_changed_ = sent;
  }
  static session_metadata& meta(session& s) noexcept { return s.meta_; }
  static boost::json::object& data(session& s) noexcept { return s.data_; }
  static void set_dirty(session& s, bool dirty) noexcept { s.dirty_ = dirty; }
  // After a load or a write: clean, and bound in the store to the user its metadata names.
  static void mark_stored(session& s) {
    s.dirty_ = false;
    s.stored_user_ = s.meta_.user;
  }
  static void mark_destroyed(session& s) noexcept {
    s.destroyed_ = true;
    s.dirty_ = false;
  }
  // The user bound in the store (a save that changes it needs a rotation).
  static const std::string& stored_user(const session& s) noexcept { return s.stored_user_; }
};

}  // namespace websession::detail
