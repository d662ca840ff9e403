// SPDX-License-Identifier: BSL-1.0
// basic_session_manager, its per-user index: listing a user's sessions from their envelopes,
// ending one or all of them, and the per-user cap (max_sessions_per_user) after a login.
// Included at the end of websession/manager.hpp; include that header, not this one.
#pragma once

#include <websession/manager.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession {

// After a login of `user` (whose session is stored under `keep`): destroys the user's least
// recently used sessions beyond max_sessions_per_user. The login has happened; a store failure
// here only leaves the user with more sessions, so it is counted, not reported.
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<void> basic_session_manager<Serializer, Cipher, Store, Clock>::enforce_user_limit(
    std::string user, std::string keep) {
  const std::size_t max = opts_.max_sessions_per_user;
  if (max == 0) co_return;
  result<std::vector<session_info>> live = co_await list_user_impl(user);
  if (!live) co_return;
  if (live->size() <= max) co_return;
  std::size_t excess = live->size() - max;
  // list_user_impl gives the least recently used first.
  for (const session_info& info : *live) {
    if (excess == 0) break;
    if (info.storage_key == keep) continue;
    result<bool> r = co_await erase_bound_to(info.storage_key, user);
    if (!r) {
      count_store_error(r.error());
      co_return;
    }
    if (*r) {
      --excess;
      bump<&session_stats::evicted>();
      notify(session_event_kind::evicted, info.storage_key, user);
    }
  }
}

// With `user`: only if bound to that user (also under its index from before keyed hashes).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<bool>> basic_session_manager<Serializer, Cipher, Store, Clock>::destroy_key_impl(
    std::string_view key, std::string_view user) {
  if (!is_storage_key(key, opts_.key_prefix))
    co_return result<bool>(boost::system::in_place_error, error::invalid_argument);
  result<bool> r(boost::system::in_place_error, error::internal);
  if (user.empty()) {
    r = co_await store_.erase(key);
  } else {
    r = co_await erase_bound_to(key, user);
  }
  if (!r) {
    count_store_error(r.error());
  } else if (*r) {
    bump<&session_stats::destroyed>();
    notify(session_event_kind::destroyed, key, user);
  }
  co_return r;
}

// The names of `user`'s indexes: the current one, and with a keyed user hash the unkeyed one of
// earlier versions (sessions bound before the upgrade stay revocable until they expire).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
std::vector<std::string> basic_session_manager<Serializer, Cipher, Store, Clock>::user_indexes(
    std::string_view user) const {
  std::vector<std::string> names{user_index(user)};
  if (!user_key_.empty()) names.push_back(user_index_key(opts_.key_prefix, user));
  return names;
}

// Erases `key` if it is bound to `user` under any of the user's index names (user_indexes).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<bool>> basic_session_manager<Serializer, Cipher, Store, Clock>::erase_bound_to(
    std::string_view key, std::string_view user) {
  result<bool> r(boost::system::in_place_error, error::internal);
  for (const std::string& index : user_indexes(user)) {
    r = co_await store_.erase_bound(key, index);
    if (!r || *r) break;
  }
  co_return r;
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<std::size_t>>
basic_session_manager<Serializer, Cipher, Store, Clock>::destroy_user_impl(std::string_view user) {
  std::size_t count = 0;
  for (const std::string& index : user_indexes(user)) {
    result<std::vector<std::string>> keys = co_await store_.erase_user(index);
    if (!keys) {
      count_store_error(keys.error());
      co_return keys.error();
    }
    for (const std::string& key : *keys) {
      bump<&session_stats::destroyed>();
      notify(session_event_kind::destroyed, key, user);
    }
    count += keys->size();
  }
  co_return count;
}

// One result per key: load_many where the store has it, else key by key.
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<std::vector<result<store_record>>>>
basic_session_manager<Serializer, Cipher, Store, Clock>::load_batch(
    const std::vector<std::string>& keys) {
  if constexpr (batch_loading_store<Store>) {
    co_return co_await store_.load_many(keys);
  } else {
    std::vector<result<store_record>> out;
    out.reserve(keys.size());
    for (const std::string& key : keys) out.push_back(co_await store_.load(key));
    co_return out;
  }
}

// The envelopes only (record_codec::open_envelope), in batches of 256 keys; what would not load
// (gone, unreadable, expired, revoked, bound to another user since) is left out.
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
awaitable<result<std::vector<session_info>>>
basic_session_manager<Serializer, Cipher, Store, Clock>::list_user_impl(std::string_view user) {
  std::vector<std::string> keys;
  for (const std::string& index : user_indexes(user)) {
    result<std::vector<std::string>> some = co_await store_.list_user(index);
    if (!some) {
      count_store_error(some.error());
      co_return some.error();
    }
    for (std::string& k : *some) keys.push_back(std::move(k));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  std::vector<session_info> out;
  const time_point now = clock_.now();
  constexpr std::size_t batch = 256;
  for (std::size_t from = 0; from < keys.size(); from += batch) {
    const std::vector<std::string> part(
        keys.begin() + static_cast<std::ptrdiff_t>(from),
        keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), from + batch)));
    result<std::vector<result<store_record>>> recs = co_await load_batch(part);
    if (!recs) {
      count_store_error(recs.error());
      co_return recs.error();
    }
    for (std::size_t i = 0; i < part.size(); ++i) {
      result<store_record>& rec = (*recs)[i];
      if (!rec) {
        // Gone meanwhile, or a value the store cannot read back: not a live session.
        if (rec.error() == condition::session_gone || rec.error() == condition::client_input)
          continue;
        count_store_error(rec.error());
        co_return rec.error();
      }
      session_info info;
      if (codec_.open_envelope(*rec, part[i], info.metadata)) continue;
      if (detail::check_live(info.metadata, now, state_->valid_after)) continue;
      // An index may still list a session that was bound to another user since (stores drop
      // such entries lazily).
      if (info.metadata.user != user) continue;
      // Secrets of the session, of no use to a "your devices" page.
      OPENSSL_cleanse(info.metadata.csrf_secret.data(), info.metadata.csrf_secret.size());
      info.metadata.csrf_secret.clear();
      info.metadata.fingerprint.clear();
      info.storage_key = part[i];
      out.push_back(std::move(info));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const session_info& a, const session_info& b) {
    return a.metadata.last_seen < b.metadata.last_seen;
  });
  co_return out;
}

}  // namespace websession
