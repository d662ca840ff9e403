// SPDX-License-Identifier: BSL-1.0
// One waiting line per key, for the manager's async_update: the updates of one session in this
// process take turns instead of colliding on the store's version check and retrying with
// backoff against each other (which under contention costs round trips, and a tail of backoff
// sleeps). Other processes (and plain async_save) are still caught by the version check.
// A holder that saved hands the saved state to those still waiting (hand_over), so that one
// which loaded the session before that save need not load it again, and the lanes remember the
// last saved version of recent keys, so that one which loaded it before a save and came when the
// lane was free again reloads at once instead of failing its save on the version check.
#pragma once

#include <websession/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace websession::detail {

using boost::system::error_code;

/// Thread-safe. A key's lane exists while someone holds it; those who come meanwhile wait in
/// arrival order, and leaving hands the lane to the first of them (posted to its executor).
/// `State` is what a holder may leave for the next ones (the manager's session).
template <class State>
class lanes {
 public:
  lanes() = default;
  lanes(const lanes&) = delete;
  lanes& operator=(const lanes&) = delete;

  /// Takes the lane of `key`: at once, without suspending, if nobody holds it; otherwise when
  /// those before have left. Completes with operation_aborted if the caller's cancellation
  /// slot fires (any type) while it waits: it then does not hold the lane.
  boost::asio::awaitable<error_code> enter(const std::string& key) {
    {
      std::lock_guard lock(mutex_);
      if (lines_.try_emplace(key).second) co_return error_code{};
    }
    error_code ec;
    auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
    co_await boost::asio::async_initiate<decltype(token), void(error_code)>(
        [this, &key](auto handler) { this->wait(key, std::move(handler)); }, token);
    co_return ec;
  }

  /// What the holder of the lane of `key` learns of saves since it loaded version `version`.
  struct newer_state {
    /// The state a previous holder saved and handed over (hand_over), if newer than `version`.
    std::shared_ptr<const State> state;
    /// Whether a newer version was saved (handed over or not): true with `state` null when the
    /// holder that saved it left while nobody waited, so the caller must reload.
    bool stale = false;
  };

  /// One look under the lock at what a previous holder saved of `key`: the state it handed
  /// over while the lane was busy, or the last version recorded for the key (a few hundred
  /// recent keys are remembered, in slots shared by hash). Only for the holder of the lane.
  newer_state newer_than(const std::string& key, std::uint64_t version) const {
    std::lock_guard lock(mutex_);
    auto it = lines_.find(key);
    if (it != lines_.end() && it->second.latest && it->second.latest_version > version)
      return {it->second.latest, true};
    const recent_slot& r = slot(key);
    return {nullptr, r.key == key && r.version > version};
  }

  /// Records that the holder of the lane of `key` saved version `version` of it, and leaves
  /// `make()` (a State: what was saved) for the holders after this one if anyone waits; nothing
  /// is made while nobody does.
  template <class Make>
  void hand_over(const std::string& key, std::uint64_t version, Make&& make) {
    bool waiting = false;
    {
      std::lock_guard lock(mutex_);
      recent_slot& r = slot(key);
      r.key = key;
      r.version = version;
      auto it = lines_.find(key);
      waiting = it != lines_.end() && !it->second.waiting.empty();
    }
    if (!waiting) return;
    auto state = std::make_shared<const State>(std::forward<Make>(make)());  // outside the lock
    std::lock_guard lock(mutex_);
    auto it = lines_.find(key);
    if (it == lines_.end()) return;
    it->second.latest.swap(state);  // the older one dies after unlock
    it->second.latest_version = version;
  }

  /// Gives up the lane of `key`, taken with a successful enter. The state handed over goes
  /// with the lane to the next holder, and is dropped when nobody waits.
  void leave(const std::string& key) noexcept {
    std::shared_ptr<waiter> next;
    std::shared_ptr<const State> dropped;  // destroyed after the lock is released
    {
      std::lock_guard lock(mutex_);
      auto it = lines_.find(key);
      if (it == lines_.end()) return;
      if (it->second.waiting.empty()) {
        dropped = std::move(it->second.latest);
        lines_.erase(it);
        return;
      }
      next = std::move(it->second.waiting.front());  // the lane passes to it: the entry stays
      it->second.waiting.pop_front();
    }
    finish(*next, {});
  }

 private:
  struct waiter {
    // The handler is only ever constructed in place: see exec_op in
    // redis/detail/connection_impl.hpp for any_completion_handler's move assignment.
    template <class Handler>
    explicit waiter(Handler&& h)
        : work(boost::asio::prefer(boost::asio::get_associated_executor(h),
                                   boost::asio::execution::outstanding_work.tracked)),
          handler(std::forward<Handler>(h)) {}

    boost::asio::cancellation_slot slot() const noexcept { return handler.get_cancellation_slot(); }

    // The handler's executor before type erasure (the erased one cannot be posted to), kept
    // busy while it waits.
    boost::asio::any_io_executor work;
    boost::asio::any_completion_handler<void(error_code)> handler;
  };

  template <class Handler>
  void wait(const std::string& key, Handler handler) {
    std::unique_lock lock(mutex_);
    auto [it, taken_now] = lines_.try_emplace(key);
    if (taken_now) {  // left between the first look and now
      lock.unlock();
      auto ex = boost::asio::get_associated_executor(handler);
      boost::asio::post(ex, [h = std::move(handler)]() mutable { std::move(h)(error_code{}); });
      return;
    }
    auto w = std::make_shared<waiter>(std::move(handler));
    // Before the waiter is in the line: once it is, another thread may hand it the lane, and
    // its handler (which clears the slot) may run before this function has returned.
    if (auto slot = w->slot(); slot.is_connected()) {
      slot.assign([this, key, weak = std::weak_ptr<waiter>(w)](boost::asio::cancellation_type) {
        drop(key, weak);
      });
    }
    it->second.waiting.push_back(std::move(w));
  }

  // A cancelled waiter leaves the line, unless the lane was handed to it already.
  void drop(const std::string& key, const std::weak_ptr<waiter>& weak) {
    std::shared_ptr<waiter> w = weak.lock();
    if (!w) return;
    {
      std::lock_guard lock(mutex_);
      auto it = lines_.find(key);
      if (it == lines_.end()) return;
      auto& queue = it->second.waiting;
      auto pos = std::find(queue.begin(), queue.end(), w);
      if (pos == queue.end()) return;
      queue.erase(pos);
    }
    finish(*w, boost::asio::error::operation_aborted);
  }

  // On the handler's own executor; the slot is cleared there (where it may be touched), so a
  // later signal finds no handler of ours.
  static void finish(waiter& w, error_code ec) {
    boost::asio::post(std::move(w.work), [slot = w.slot(), h = std::move(w.handler), ec]() mutable {
      if (slot.is_connected()) slot.clear();
      std::move(h)(ec);
    });
  }

  struct line {
    std::deque<std::shared_ptr<waiter>> waiting;
    std::shared_ptr<const State> latest;  // handed over, of version latest_version
    std::uint64_t latest_version = 0;
  };

  struct recent_slot {
    std::string key;
    std::uint64_t version = 0;
  };

  // The slot `key` shares by hash; under the lock.
  recent_slot& slot(const std::string& key) {
    return recent_[std::hash<std::string>{}(key) % recent_.size()];
  }
  const recent_slot& slot(const std::string& key) const {
    return recent_[std::hash<std::string>{}(key) % recent_.size()];
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, line> lines_;
  std::array<recent_slot, 256> recent_{};
};

/// Leaves a lane when the scope ends (the coroutine returns, throws or is destroyed).
template <class State>
class lane_exit {
 public:
  lane_exit(lanes<State>& l, const std::string& key) : lanes_(l), key_(key) {}
  lane_exit(const lane_exit&) = delete;
  lane_exit& operator=(const lane_exit&) = delete;
  ~lane_exit() { lanes_.leave(key_); }

 private:
  lanes<State>& lanes_;
  const std::string& key_;
};

}  // namespace websession::detail
