// SPDX-License-Identifier: BSL-1.0
// basic_session_manager, async_update: the updates of one session through this manager take
// turns (detail::lanes, by storage key), hand the state they saved to the next in line, and
// retry a conflict with another process after a randomized pause.
// Included at the end of websession/manager.hpp; include that header, not this one.
#pragma once

#include <websession/manager.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace websession {
namespace detail {

// Full jitter: uniform in [0, min(1 s, 100 us * 2^attempt)]. The window must grow until the
// contenders spread out: with a store round trip of ~100 us, a thousand writers to one session
// need a window of hundreds of milliseconds.
inline std::chrono::microseconds update_backoff(unsigned attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const std::int64_t cap =
      std::min<std::int64_t>(1'000'000, std::int64_t{100} << std::min(attempt, 14u));
  return std::chrono::microseconds(std::uniform_int_distribution<std::int64_t>(0, cap)(rng));
}

// Contenders that collided would collide again if they retried in lockstep.
inline boost::asio::awaitable<void> update_retry_pause(unsigned attempt) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  timer.expires_after(update_backoff(attempt));
  boost::system::error_code wait_ec;
  co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, wait_ec));
}

}  // namespace detail

// This process's updates of the session take turns; the version check still catches the writes
// of other processes and of plain async_save, which the retries absorb. The lanes are keyed by
// storage key (`key`, derived once by the caller), so that they hold no session id (a bearer
// secret). Every load checks the client's `fingerprint` (client binding, on every attempt).
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
template <class Fn>
awaitable<result<session>> basic_session_manager<Serializer, Cipher, Store, Clock>::update_impl(
    std::string id, std::string key, std::string_view fingerprint, Fn fn) {
  const boost::system::error_code lane_ec = co_await state_->updates.enter(key);
  if (lane_ec) co_return lane_ec;
  const detail::lane_exit leave(state_->updates, key);
  for (unsigned attempt = 1;; ++attempt) {
    result<session> s = co_await load_impl(id, key, fingerprint);
    if (!s) co_return s.error();
    fn(*s);
    const boost::system::error_code ec = co_await save_impl(*s);
    if (!ec) {
      state_->updates.hand_over(key, s->metadata().version, [&s] { return *s; });
      co_return std::move(*s);
    }
    if (ec != error::conflict || attempt >= opts_.max_update_attempts) co_return ec;
    co_await detail::update_retry_pause(attempt);
  }
}

template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
template <class Fn>
awaitable<boost::system::error_code>
basic_session_manager<Serializer, Cipher, Store, Clock>::update_loaded_impl(session& s, Fn& fn) {
  if (!s.valid()) co_return make_error_code(error::invalid_session);
  if (s.is_new()) {  // not stored: nobody else can be updating it
    fn(s);
    co_return co_await save_impl(s);
  }
  // The lane's key (as update_impl's), the id to reload with and the client the session is
  // bound to: `s` may be replaced below.
  const std::string lane = s.storage_key();
  const std::string id = s.id();
  const std::string fingerprint = s.metadata().fingerprint;
  const boost::system::error_code lane_ec = co_await state_->updates.enter(lane);
  if (lane_ec) co_return lane_ec;
  const detail::lane_exit leave(state_->updates, lane);
  // A turn before this one saved a newer state than the one `s` was loaded with: take the
  // state it handed over, or, if it left when nobody waited, load the session again. Either
  // must belong to the client `s` was loaded for (client binding, as a load checks it).
  const auto newer = state_->updates.newer_than(lane, s.metadata().version);
  if (newer.state) {
    session handed = *newer.state;
    if (auto ec = check_client(handed, fingerprint)) co_return ec;
    s = std::move(handed);
  } else if (newer.stale) {
    result<session> fresh = co_await load_impl(id, lane, fingerprint);
    if (!fresh) co_return fresh.error();
    s = std::move(*fresh);
  }
  for (unsigned attempt = 1;; ++attempt) {
    fn(s);
    const boost::system::error_code ec = co_await save_impl(s);
    if (!ec) {
      state_->updates.hand_over(lane, s.metadata().version, [&s] { return s; });
      co_return ec;
    }
    if (ec != error::conflict || attempt >= opts_.max_update_attempts) co_return ec;
    co_await detail::update_retry_pause(attempt);
    result<session> fresh = co_await load_impl(id, lane, fingerprint);
    if (!fresh) co_return fresh.error();
    s = std::move(*fresh);
  }
}

}  // namespace websession
