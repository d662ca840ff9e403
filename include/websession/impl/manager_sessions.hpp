// SPDX-License-Identifier: BSL-1.0
// basic_session_manager, one session at a time: new sessions and their ids, load (open, then
// admit: deadlines, client binding), save (or touch), rotate, destroy. The only user of
// detail::session_access: the manager's door to a session's private state.
// Included at the end of websession/manager.hpp; include that header, not this one.
#pragma once

#include <websession/manager.hpp>

#include <websession/detail/base64url.hpp>
#include <websession/detail/session_access.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace websession {

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
session basic_session_manager<Serializer, Cipher, Store, Clock>::new_session() const {
  using access = detail::session_access;
  session s;
  assign_new_id(s);
  const time_point now = now_ms();
  session_metadata& m = access::meta(s);
  m.created = now;
  m.absolute_deadline = now + opts_.absolute_timeout;
  m.last_seen = now;
  m.idle_deadline = std::min(now + idle_timeout_for(m), m.absolute_deadline);
  access::set_dirty(s, true);
  return s;
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
session basic_session_manager<Serializer, Cipher, Store, Clock>::new_lazy_session(
    std::string fingerprint) const {
  using access = detail::session_access;
  session s = new_session();
  access::meta(s).fingerprint = std::move(fingerprint);
  access::set_dirty(s, false);
  return s;
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
void basic_session_manager<Serializer, Cipher, Store, Clock>::bind_user(
    session& s, std::string user) const {
  using access = detail::session_access;
  access::meta(s).user = std::move(user);
  access::set_dirty(s, true);
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
void basic_session_manager<Serializer, Cipher, Store, Clock>::set_fingerprint(
    session& s, std::string fingerprint) const {
  using access = detail::session_access;
  access::meta(s).fingerprint = std::move(fingerprint);
  access::set_dirty(s, true);
}

// A bound session's id carries its user's slot tag, so that on a Redis Cluster it lives in
// the slot of the user's index; an anonymous one keeps the tag it has (its rotation then stays
// in one slot), and a new one gets a random tag (see session_id).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
void basic_session_manager<Serializer, Cipher, Store, Clock>::assign_new_id(session& s) const {
  using access = detail::session_access;
  const std::string& user = s.user();
  const std::string& old = s.id();
  std::string tag;
  if (!user.empty()) {
    tag = user_tag(user);
  } else if (old.size() == session_id::tagged_size) {
    tag = old.substr(session_id::encoded_size + 1);
  }
  session_id id = tag.empty() ? session_id::generate() : session_id::generate(tag);
  access::assign_id(s, id.to_string(), id.storage_key(opts_.key_prefix), true);
  access::meta(s).csrf_secret = detail::random_bytes(32);
}

// Seals `meta` + `data` under `key` into `sealed`; `meta` gets the new last_seen and idle
// deadline (a write is an access).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
boost::system::error_code basic_session_manager<Serializer, Cipher, Store, Clock>::seal_for_write(
    session_metadata& meta, const boost::json::object& data, std::string_view key, time_point now,
    std::string& sealed) const {
  meta.last_seen = now;
  meta.idle_deadline = std::min(now + idle_timeout_for(meta), meta.absolute_deadline);
  return codec_.seal(meta, data, key, sealed);
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<session>> basic_session_manager<Serializer, Cipher, Store, Clock>::create_impl() {
  session s = new_session();
  if (auto ec = co_await save_impl(s)) co_return ec;
  co_return s;
}

// The session `id` (a well-formed cookie value) stored under `key` (its storage key), for the
// client `fingerprint` (empty: not checked).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<session>> basic_session_manager<Serializer, Cipher, Store, Clock>::load_impl(
    std::string id, std::string key, std::string_view fingerprint) {
  using access = detail::session_access;
  session s;
  access::assign_id(s, std::move(id), std::move(key), false);
  const std::string& k = s.storage_key();

  result<store_record> rec = co_await store_.load(k);
  if (!rec) {
    const boost::system::error_code ec = rec.error();
    if (ec == error::not_found) {
      bump<&session_stats::misses>();
    } else if (ec == error::expired) {
      bump<&session_stats::expired>();
      notify(session_event_kind::expired, k, {});
    } else {
      count_store_error(ec);
    }
    co_return ec;
  }
  session_metadata& meta = access::meta(s);
  if (auto ec = codec_.open(*rec, k, meta, access::data(s))) {
    if (ec == error::tampered) {
      bump<&session_stats::tampered>();
      notify(session_event_kind::tampered, k, {});
    } else {
      bump<&session_stats::malformed>();
    }
    co_return ec;
  }
  access::mark_stored(s);

  if (auto ec = detail::check_live(meta, clock_.now(), state_->valid_after)) {
    if (ec == error::expired) {
      bump<&session_stats::expired>();
      notify(session_event_kind::expired, k, meta.user);
    } else {
      bump<&session_stats::revoked>();
    }
    // Best effort: an expired value's TTL removes it anyway; a revoked one never loads again.
    (void)co_await store_.erase(k);
    co_return ec;
  }
  if (auto ec = check_client(s, fingerprint)) co_return ec;
  bump<&session_stats::loaded>();
  co_return s;
}

// Client binding (admission.hpp): a session stored without a fingerprint takes `fingerprint`
// (and is written with it next); one stored with another is treated as stolen.
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
boost::system::error_code basic_session_manager<Serializer, Cipher, Store, Clock>::check_client(
    session& s, std::string_view fingerprint) {
  using access = detail::session_access;
  switch (detail::check_binding(access::meta(s).fingerprint, fingerprint)) {
    case detail::binding::adopted: access::set_dirty(s, true); break;
    case detail::binding::mismatch:
      bump<&session_stats::tampered>();
      notify(session_event_kind::tampered, s.storage_key(), s.user());
      return error::tampered;
    case detail::binding::match: break;
  }
  return {};
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<boost::system::error_code>
basic_session_manager<Serializer, Cipher, Store, Clock>::save_impl(session& s) {
  using access = detail::session_access;
  if (!s.valid()) co_return make_error_code(error::invalid_session);
  const time_point now = now_ms();
  const bool is_new = s.is_new();
  const bool was_dirty = s.dirty();
  const session_metadata& current = s.metadata();
  if (!is_new && !was_dirty && now - current.last_seen < opts_.touch_interval)
    co_return boost::system::error_code{};
  if (now >= current.absolute_deadline) co_return make_error_code(error::expired);
  // A stored id must not change hands: binding a user to it (a planted id, or a login whose
  // rotation failed) would hand that user's session to whoever knows the id. Unbinding is a
  // loss of privilege and needs no new id.
  if (!is_new && current.user != access::stored_user(s) && !current.user.empty())
    co_return make_error_code(error::rotation_required);

  session_metadata meta = current;
  std::string sealed;
  if (auto ec = seal_for_write(meta, s.data(), s.storage_key(), now, sealed)) co_return ec;
  const std::string index = user_index(meta.user);
  const store_write w{sealed, ttl_until(meta.idle_deadline, now), index};

  result<std::uint64_t> r = make_error_code(error::internal);
  if (is_new) {
    r = co_await store_.insert(s.storage_key(), w);
  } else {
    r = co_await store_.replace(s.storage_key(), w, current.version);
  }
  if (!r) {
    const boost::system::error_code ec = r.error();
    if (ec == error::conflict) {
      if (!is_new && !was_dirty) co_return boost::system::error_code{};
      bump<&session_stats::conflicts>();
    }
    count_store_error(ec);
    co_return ec;
  }
  meta.version = *r;
  access::meta(s) = std::move(meta);
  access::mark_stored(s);
  if (is_new) {
    bump<&session_stats::created>();
    notify(session_event_kind::created, s.storage_key(), s.user());
  } else if (was_dirty) {
    bump<&session_stats::saved>();
  } else {
    bump<&session_stats::touched>();
  }
  // A new session stored already bound (bind_user before its first save) is a login too.
  if (is_new && !s.user().empty()) co_await enforce_user_limit(s.user(), s.storage_key());
  co_return boost::system::error_code{};
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<boost::system::error_code>
basic_session_manager<Serializer, Cipher, Store, Clock>::rotate_impl(session& s) {
  using access = detail::session_access;
  if (!s.valid()) co_return make_error_code(error::invalid_session);
  const time_point now = now_ms();
  if (now >= s.metadata().absolute_deadline) co_return make_error_code(error::expired);

  session next = s;  // the rotated state; `s` changes only on success
  assign_new_id(next);
  if (s.is_new()) {
    // Never stored: nothing to move, the new id is simply the one that will be written.
    s = std::move(next);
    co_return boost::system::error_code{};
  }
  session_metadata& meta = access::meta(next);
  std::string sealed;
  if (auto ec = seal_for_write(meta, next.data(), next.storage_key(), now, sealed)) co_return ec;
  const std::string index = user_index(meta.user);
  const store_write w{sealed, ttl_until(meta.idle_deadline, now), index};
  result<std::uint64_t> r =
      co_await store_.rotate(s.storage_key(), next.storage_key(), w, s.metadata().version);
  if (!r) {
    if (r.error() == error::conflict) bump<&session_stats::conflicts>();
    count_store_error(r.error());
    co_return r.error();
  }
  meta.version = *r;
  const bool login = !meta.user.empty() && meta.user != access::stored_user(s);
  access::mark_stored(next);
  bump<&session_stats::rotated>();
  notify(session_event_kind::rotated, next.storage_key(), next.user(), s.storage_key());
  s = std::move(next);
  if (login) co_await enforce_user_limit(s.user(), s.storage_key());
  co_return boost::system::error_code{};
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<boost::system::error_code>
basic_session_manager<Serializer, Cipher, Store, Clock>::destroy_impl(session& s) {
  using access = detail::session_access;
  if (s.id().empty()) co_return make_error_code(error::invalid_session);
  if (!s.destroyed() && !s.is_new()) {
    result<bool> r = co_await store_.erase(s.storage_key());
    if (!r) {
      count_store_error(r.error());
      co_return r.error();
    }
    if (*r) {
      bump<&session_stats::destroyed>();
      notify(session_event_kind::destroyed, s.storage_key(), s.user());
    }
  }
  access::mark_destroyed(s);
  co_return boost::system::error_code{};
}

}  // namespace websession
