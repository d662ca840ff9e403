// SPDX-License-Identifier: BSL-1.0
// fallback_store: keeps sessions working when the primary store (Redis) is unreachable by
// sending new sessions to a secondary store (the in-process one) until the primary is back.
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace websession {

/// Counters and state of a fallback_store.
struct fallback_stats {
  bool degraded = false;                  ///< new sessions currently go to the secondary
  std::uint64_t primary_failures = 0;     ///< primary operations that failed unreachable
  std::uint64_t secondary_inserts = 0;    ///< sessions created in the secondary
  std::uint64_t secondary_hits = 0;       ///< operations answered by the secondary
  std::uint64_t degradations = 0;         ///< switches to the secondary
  std::uint64_t recoveries = 0;           ///< switches back to the primary
  std::uint64_t probes = 0;               ///< pings of the primary started while degraded
  std::uint64_t bound_refusals = 0;       ///< bound sessions refused by the secondary
  std::uint64_t migrations = 0;           ///< sessions moved to the primary at their login
};

/// Told of every switch: `degraded` true when new sessions start going to the secondary (with
/// the primary's error), false when they go to the primary again.
using fallback_observer = std::function<void(bool degraded, const boost::system::error_code&)>;

/// A session_store over two stores.
///
/// What a user sees during an outage of the primary (store_unavailable or timeout):
/// - New sessions are created in the secondary: logins and fresh visitors keep working.
/// - Sessions created in the secondary keep working (load, save, rotate, destroy) for as long as
///   they live there; they are not copied to the primary when it returns, so they end when
///   they expire or the process restarts (the secondary is in-process).
/// - Sessions that live in the primary cannot be read: their loads fail with the primary's
///   error (store_unavailable or timeout) rather than not_found, so a server answers 503 and the
///   user keeps the session for when the primary returns, instead of being logged out silently.
/// - destroy_user and list_user need both stores: they fail with the primary's error (the
///   secondary's sessions of that user are erased anyway).
/// - Only anonymous sessions live in the secondary. A write that binds a user (an insert,
///   replace or rotate whose store_write::user is not empty) never goes to the secondary: while
///   the primary cannot be reached it fails with the primary's error (store_unavailable or
///   timeout), so logins are refused during the outage (HTTP 503). A session in the secondary is
///   in one process's memory, where another instance's "log out everywhere" cannot reach it, and
///   the owning instance would keep serving it after the primary is back: a login kept there
///   would escape revocation. When the primary answers again, the login rotation of an
///   anonymous session living in the secondary moves it: the new key is created in the primary,
///   then the old key is taken out of the secondary if its version is still the one rotated
///   (else the new key is erased again and the rotation fails with conflict).
/// While degraded, the primary is probed (ping) in the background: the next insert once
/// probe_interval has passed since the last probe ended (or since the switch) starts one, at
/// most one runs at a time, and no request waits for it (that insert goes to the secondary, as
/// any insert before the primary has answered). When a probe is answered, new sessions go to
/// the primary again and the observer is told; a load, save, rotate or destroy that the
/// primary answers does the same. A probe runs on the executor of the insert that started it
/// and keeps its own copy of the primary (a handle) and of the switch state, so it may outlive
/// the store object (and then still call the observer); cancelling the primary's connection
/// ends it. How long the primary's failures take is the primary's business: with a
/// redis_store, set redis::config::fail_fast_when_down on its connection, so that while Redis
/// is known to be down the loads of sessions living there fail at once instead of after the
/// request timeout.
/// The switch is visible in stats(), degraded() and the observer.
template <session_store Primary, session_store Secondary>
class fallback_store {
 public:
  fallback_store(Primary primary, Secondary secondary,
                 std::chrono::milliseconds probe_interval = std::chrono::seconds(1))
      : primary_(std::move(primary)),
        secondary_(std::move(secondary)),
        state_(std::make_shared<state>()) {
    state_->probe_interval = probe_interval;
  }

  Primary& primary() noexcept { return primary_; }
  Secondary& secondary() noexcept { return secondary_; }

  /// Set before use; not synchronized with running operations.
  void set_observer(fallback_observer obs) { state_->observer = std::move(obs); }

  bool degraded() const noexcept { return state_->degraded.load(std::memory_order_acquire); }

  fallback_stats stats() const noexcept {
    fallback_stats s;
    s.degraded = degraded();
    s.primary_failures = state_->primary_failures.load(std::memory_order_relaxed);
    s.secondary_inserts = state_->secondary_inserts.load(std::memory_order_relaxed);
    s.secondary_hits = state_->secondary_hits.load(std::memory_order_relaxed);
    s.degradations = state_->degradations.load(std::memory_order_relaxed);
    s.recoveries = state_->recoveries.load(std::memory_order_relaxed);
    s.probes = state_->probes.load(std::memory_order_relaxed);
    s.bound_refusals = state_->bound_refusals.load(std::memory_order_relaxed);
    s.migrations = state_->migrations.load(std::memory_order_relaxed);
    return s;
  }

  awaitable<result<store_record>> load(std::string_view key) {
    return either<store_record>([key](auto& st) { return st.load(key); });
  }

  /// New sessions: the primary while it answers, the secondary while it does not.
  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    if (degraded()) co_await start_probe();
    if (!degraded()) {
      result<std::uint64_t> r = co_await primary_.insert(key, w);
      if (r || !unreachable(r.error())) {
        note_primary_ok(*state_);
        co_return r;
      }
      note_primary_failure(r.error());
    }
    if (!w.user.empty()) co_return refuse_bound();
    result<std::uint64_t> r = co_await secondary_.insert(key, w);
    if (r) state_->secondary_inserts.fetch_add(1, std::memory_order_relaxed);
    co_return r;
  }

  /// In the store that holds the session; a bound session only in the primary.
  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t version) {
    if (!w.user.empty()) {
      result<std::uint64_t> r = co_await primary_.replace(key, w, version);
      track_answer(r);
      co_return r;
    }
    co_return co_await either<std::uint64_t>(
        [key, w, version](auto& st) { return st.replace(key, w, version); });
  }

  /// An anonymous session stays in the store that holds it. A bound one is written to the
  /// primary only: moved there from the secondary when the primary answers, refused while it
  /// does not.
  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t version) {
    if (w.user.empty()) {
      co_return co_await either<std::uint64_t>([old_key, new_key, w, version](auto& st) {
        return st.rotate(old_key, new_key, w, version);
      });
    }
    result<std::uint64_t> r = co_await primary_.rotate(old_key, new_key, w, version);
    track_answer(r);
    if (r || r.error() != error::not_found) co_return r;
    co_return co_await migrate(old_key, new_key, w, version);
  }

  awaitable<result<bool>> erase(std::string_view key) {
    result<bool> s = co_await secondary_.erase(key);
    result<bool> p = co_await primary_.erase(key);
    track(p);
    if (!p) {
      if (s && *s) co_return true;
      co_return result<bool>(boost::system::in_place_error, p.error());
    }
    co_return *p || (s && *s);
  }

  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    result<bool> s = co_await secondary_.erase_bound(key, user);
    result<bool> p = co_await primary_.erase_bound(key, user);
    track(p);
    if (!p) {
      if (s && *s) co_return true;
      co_return result<bool>(boost::system::in_place_error, p.error());
    }
    co_return *p || (s && *s);
  }

  /// As load for each key: the primary's load_many, then the secondary for the keys the primary
  /// does not hold; key by key (as load) while degraded.
  awaitable<result<std::vector<result<store_record>>>> load_many(
      const std::vector<std::string>& keys)
    requires batch_loading_store<Primary>
  {
    if (!degraded()) {
      result<std::vector<result<store_record>>> p = co_await primary_.load_many(keys);
      track(p);
      if (p) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
          if ((*p)[i] || (*p)[i].error() != error::not_found) continue;
          result<store_record> s = co_await secondary_.load(keys[i]);
          if (s) {
            state_->secondary_hits.fetch_add(1, std::memory_order_relaxed);
            (*p)[i] = std::move(s);
          }
        }
        co_return p;
      }
      if (!unreachable(p.error())) co_return p;
    }
    std::vector<result<store_record>> out;
    out.reserve(keys.size());
    for (const std::string& key : keys) out.push_back(co_await load(key));
    co_return out;
  }

  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    result<std::vector<std::string>> s = co_await secondary_.erase_user(user);
    result<std::vector<std::string>> p = co_await primary_.erase_user(user);
    co_return merge(std::move(p), std::move(s));
  }

  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    result<std::vector<std::string>> s = co_await secondary_.list_user(user);
    result<std::vector<std::string>> p = co_await primary_.list_user(user);
    co_return merge(std::move(p), std::move(s));
  }

  /// Healthy when the primary answers, or when the secondary does while degraded (check
  /// degraded() or stats() to tell the two apart).
  awaitable<boost::system::error_code> ping() {
    boost::system::error_code ec = co_await primary_.ping();
    if (!ec) {
      note_primary_ok(*state_);
      co_return ec;
    }
    if (unreachable(ec)) note_primary_failure(ec);
    boost::system::error_code sec = co_await secondary_.ping();
    if (!sec && degraded()) co_return sec;
    co_return ec;
  }

 private:
  struct state {
    std::atomic<bool> degraded{false};
    std::atomic<std::uint64_t> primary_failures{0}, secondary_inserts{0}, secondary_hits{0},
        degradations{0}, recoveries{0}, probes{0}, bound_refusals{0}, migrations{0};
    std::chrono::milliseconds probe_interval{1000};
    std::mutex probe_mutex;
    std::chrono::steady_clock::time_point last_probe{};  // the switch, or the last probe's end
    bool probing = false;                                // a probe is running
    fallback_observer observer;
  };

  // A bound write the secondary must not take: the primary's absence, as the caller sees it.
  result<std::uint64_t> refuse_bound() {
    state_->bound_refusals.fetch_add(1, std::memory_order_relaxed);
    return make_error_code(error::store_unavailable);
  }

  // The login rotation of a session in the secondary, once the primary answers: the new key in
  // the primary, then the old one out of the secondary if it still holds `version` (moved to a
  // key of its own that is dropped at once: rotate is the secondary's only version-checked
  // removal); otherwise the new key goes again.
  awaitable<result<std::uint64_t>> migrate(std::string_view old_key, std::string_view new_key,
                                           const store_write& w, std::uint64_t version) {
    result<store_record> held = co_await secondary_.load(old_key);
    if (!held) co_return held.error();  // not there either: not_found (or expired)
    if (held->version != version) co_return make_error_code(error::conflict);
    result<std::uint64_t> made = co_await primary_.insert(new_key, w);
    track(made);
    if (!made) {
      if (unreachable(made.error())) co_return refuse_bound();
      co_return made;
    }
    const std::string moved = std::string(old_key) + "#moved";
    const store_write gone{{}, std::chrono::milliseconds(1), {}};
    result<std::uint64_t> out = co_await secondary_.rotate(old_key, moved, gone, version);
    if (!out) {
      (void)co_await primary_.erase(new_key);  // best effort: its TTL ends it otherwise
      co_return out.error();
    }
    (void)co_await secondary_.erase(moved);
    state_->migrations.fetch_add(1, std::memory_order_relaxed);
    co_return made;
  }

  static bool unreachable(const boost::system::error_code& ec) noexcept {
    return ec == condition::store_unreachable;
  }

  void note_primary_failure(const boost::system::error_code& ec) {
    state_->primary_failures.fetch_add(1, std::memory_order_relaxed);
    if (!state_->degraded.exchange(true, std::memory_order_acq_rel)) {
      state_->degradations.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard lk(state_->probe_mutex);
        state_->last_probe = std::chrono::steady_clock::now();
      }
      tell(*state_, true, ec);
    }
  }

  // Static, for the probe, which may outlive the store object.
  static void note_primary_ok(state& st) {
    if (st.degraded.exchange(false, std::memory_order_acq_rel)) {
      st.recoveries.fetch_add(1, std::memory_order_relaxed);
      tell(st, false, {});
    }
  }

  static void tell(state& st, bool degraded, const boost::system::error_code& ec) noexcept {
    if (!st.observer) return;
    try {
      st.observer(degraded, ec);
    } catch (...) {
      // An observer must not break the store.
    }
  }

  template <class T>
  void track(const result<T>& r) {
    if (r) note_primary_ok(*state_);
    else if (unreachable(r.error())) note_primary_failure(r.error());
  }

  // Starts a probe when one is due and none runs, whoever gets there first. Without
  // fail_fast_when_down, a ping of a Redis that is down takes up to request_timeout: the insert
  // that starts it must not wait for that.
  awaitable<void> start_probe() {
    {
      std::lock_guard lk(state_->probe_mutex);
      if (state_->probing ||
          std::chrono::steady_clock::now() - state_->last_probe < state_->probe_interval) {
        co_return;
      }
      state_->probing = true;
    }
    auto ex = co_await boost::asio::this_coro::executor;
    try {
      boost::asio::co_spawn(ex, probe(primary_, state_), boost::asio::detached);
    } catch (...) {
      // Not started (an allocation failure): a later insert may try again.
      std::lock_guard lk(state_->probe_mutex);
      state_->probing = false;
      throw;
    }
    state_->probes.fetch_add(1, std::memory_order_relaxed);
  }

  // By value: the probe keeps its own handle on the primary and on the state.
  static awaitable<void> probe(Primary primary, std::shared_ptr<state> st) {
    // Ends the probe however the coroutine ends: answered, thrown (an allocation failure), or
    // destroyed unfinished with its execution context.
    struct done_guard {
      state& s;
      ~done_guard() {
        std::lock_guard lk(s.probe_mutex);
        s.probing = false;
        s.last_probe = std::chrono::steady_clock::now();
      }
    } done{*st};
    const boost::system::error_code ec = co_await primary.ping();
    if (!ec) note_primary_ok(*st);
  }

  // Asks the store more likely to hold the key first (the secondary while degraded), the other
  // one if the first has no definite answer. Not found in one and unreachable in the other
  // gives the unreachable error: absence is not proven, so no caller may treat it as gone.
  template <class T, class Op>
  awaitable<result<T>> either(Op op) {
    const bool secondary_first = degraded();
    result<T> first = make_error_code(error::internal);
    if (secondary_first) {
      first = co_await op(secondary_);
    } else {
      first = co_await op(primary_);
      track_answer(first);
    }
    if (first) {
      if (secondary_first) state_->secondary_hits.fetch_add(1, std::memory_order_relaxed);
      co_return first;
    }
    if (!inconclusive(first.error())) co_return first;

    result<T> second = make_error_code(error::internal);
    if (secondary_first) {
      second = co_await op(primary_);
      track_answer(second);
    } else {
      second = co_await op(secondary_);
      if (second) state_->secondary_hits.fetch_add(1, std::memory_order_relaxed);
    }
    if (second || !inconclusive(second.error())) co_return second;
    if (unreachable(first.error())) co_return first;
    co_return second;  // not found in the first: the second's error (not found or unreachable)
  }

  static bool inconclusive(const boost::system::error_code& ec) noexcept {
    return ec == error::not_found || unreachable(ec);
  }

  // For operations about one key: a definite answer (found, not found, conflict) proves the
  // primary is reachable.
  template <class T>
  void track_answer(const result<T>& r) {
    if (!r && unreachable(r.error())) note_primary_failure(r.error());
    else note_primary_ok(*state_);
  }

  static result<std::vector<std::string>> merge(result<std::vector<std::string>> p,
                                                result<std::vector<std::string>> s) {
    if (!p) return p.error();
    if (!s) return s.error();
    std::vector<std::string> out = std::move(*p);
    out.insert(out.end(), std::make_move_iterator(s->begin()), std::make_move_iterator(s->end()));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  Primary primary_;
  Secondary secondary_;
  std::shared_ptr<state> state_;
};

}  // namespace websession
