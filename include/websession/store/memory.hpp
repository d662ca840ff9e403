// SPDX-License-Identifier: BSL-1.0
// The embedded default session store: in-process, sharded, with TTL expiry, hard bounds on
// sessions and bytes, and a per-user index for "log out everywhere".
#pragma once

#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace websession {

/// Configuration of basic_memory_store. A plain struct; every field has a usable default.
struct memory_store_options {
  /// Number of independently locked partitions. Any value >= 1 (a power of two is not needed);
  /// 0 makes the constructor throw std::invalid_argument.
  std::size_t shards = 16;
  /// Upper bound on stored entries (live, plus expired ones not yet swept).
  std::size_t max_sessions = 1'000'000;
  /// Upper bound on accounted bytes: key + value + user + a fixed per-entry overhead
  /// (basic_memory_store::entry_overhead) for each entry.
  std::size_t max_bytes = std::size_t{1} << 30;
  /// Upper bound on anonymous entries (stored without a user, store_write::user empty), which
  /// anyone can create without logging in. Unset: max_sessions - max_sessions / 4 (3/4 of
  /// max_sessions, rounded up), so at least a quarter of the room stays for logged-in users.
  /// Must be <= max_sessions, else the constructor throws std::invalid_argument; 0 refuses
  /// every anonymous write with error::capacity.
  ///
  /// When a write needs room, the least recently used anonymous entries are evicted for it
  /// (see basic_memory_store); entries bound to a user are never evicted.
  std::optional<std::size_t> max_anonymous_sessions;
  /// Called with the key of each live anonymous entry evicted to make room, once per entry,
  /// after the store has released its locks, on the thread of the write that evicted it (so
  /// possibly from several threads at once). Must not throw (an exception is caught and
  /// ignored) and should be cheap: the write that evicted completes only after it returns.
  /// Empty: no call.
  std::function<void(std::string_view key)> on_evict;
};

namespace detail {

// Transparent hashing, so lookups by string_view do not build a std::string.
struct memory_store_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

struct memory_store_entry {
  std::string value;
  std::uint64_t version = 0;
  time_point expires{};
  // The map key. Map nodes never move, so it stays valid until the entry is erased.
  const std::string* key = nullptr;
  // Bound entries: their user's name, which is the key of that user's node in the per-user
  // index (shared by the user's entries: the node lives while an entry is bound to it). Null
  // for anonymous entries.
  const std::string* user_name = nullptr;
  // The neighbours in one of two lists, newest first. Anonymous entries: the shard's recency
  // list (guarded by the shard mutex). Bound entries: their user's list in the per-user index
  // (guarded by the index mutex), so the index needs no allocation per entry.
  memory_store_entry* newer = nullptr;
  memory_store_entry* older = nullptr;

  std::string_view user() const noexcept {
    return user_name != nullptr ? std::string_view(*user_name) : std::string_view();
  }
};

// A periodic sweep (basic_memory_store::start_sweep). It lives apart from the data: the pending
// handler and the user's memory_store_sweep handle own it (so the timer outlives the data if it
// must), and it sees the data only through a weak_ptr.
struct memory_store_sweeper {
  memory_store_sweeper(const boost::asio::any_io_executor& ex, std::chrono::milliseconds every)
      : timer(ex), interval(every) {}

  // Guards `timer` and `stopped`: the timer is touched from the handler's thread and from the
  // thread that drops the last store handle.
  std::mutex mutex;
  bool stopped = false;
  boost::asio::steady_timer timer;
  std::chrono::milliseconds interval;

  void stop() {
    std::lock_guard lock(mutex);
    stopped = true;
    timer.cancel();
  }
};

// The shared data behind every copy of a basic_memory_store handle.
//
// Lock order: a user lock (at most one: the stripe of the user a write binds the entry to, or
// of the user erase_user erases), then a shard mutex (two shard mutexes in increasing index
// order for rotate), then the index mutex. Nothing takes a user lock while holding a shard or
// the index mutex, and nothing takes a shard mutex while holding the index mutex.
//
// Anonymous entries (no user) of a shard form a recency list, most recently loaded or written
// first. A write that lacks room (max_sessions, max_bytes, or the anonymous budget) evicts
// the least recently used anonymous entry of the shard it writes to (of the two shards, for a
// rotate), until it has room; if that shard has none left, it evicts from the other shards in
// turn, one entry per lock. The room of an evicted entry passes straight to the write that
// evicted it (the counters are not lowered and raised again), so concurrent writers cannot
// take it in between.
template <class Clock>
class memory_store_impl {
 public:
  // Approximate cost of a map node, the entry's string headers and the index node, so that a
  // flood of tiny sessions cannot slip past max_bytes.
  static constexpr std::size_t entry_overhead = 160;

  memory_store_impl(const memory_store_options& opts, Clock clock)
      : opts_(opts), clock_(std::move(clock)) {
    if (opts_.shards == 0) {
      throw std::invalid_argument("websession::memory_store_options::shards must be >= 1");
    }
    max_anonymous_ =
        opts_.max_anonymous_sessions.value_or(opts_.max_sessions - opts_.max_sessions / 4);
    if (max_anonymous_ > opts_.max_sessions) {
      throw std::invalid_argument(
          "websession::memory_store_options::max_anonymous_sessions must be <= max_sessions");
    }
    shards_ = std::make_unique<shard[]>(opts_.shards);
    user_locks_ = std::make_unique<std::mutex[]>(opts_.shards);
  }

  memory_store_impl(const memory_store_impl&) = delete;
  memory_store_impl& operator=(const memory_store_impl&) = delete;

  ~memory_store_impl() {
    if (sweeper_) sweeper_->stop();
  }

  // Stops the running sweep, if any, and starts one every `interval` on `ex`.
  std::shared_ptr<memory_store_sweeper> start_sweeper(
      const boost::asio::any_io_executor& ex, std::chrono::milliseconds interval,
      const std::weak_ptr<memory_store_impl>& self) {
    auto next = std::make_shared<memory_store_sweeper>(ex, interval);
    std::shared_ptr<memory_store_sweeper> previous;
    {
      std::lock_guard lock(sweeper_mutex_);
      previous = std::exchange(sweeper_, next);
      std::lock_guard sweeper_lock(next->mutex);
      arm(next, self);
    }
    if (previous) previous->stop();
    return next;
  }

  result<store_record> load(std::string_view key) {
    auto& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(key);
    if (it == s.map.end()) return make_error_code(error::not_found);
    if (is_expired(it->second, clock_.now())) {
      drop(s, it);
      return make_error_code(error::expired);
    }
    if (it->second.user_name == nullptr) touch(s, it->second);
    return store_record{it->second.value, it->second.version};
  }

  result<std::uint64_t> insert(std::string_view key, const store_write& w) {
    const std::size_t cost = entry_cost(key.size(), w.value.size(), w.user.size());
    // Declared before the user lock: evicted keys are reported after every lock is released.
    claim c(*this, room{1, cost, w.user.empty() ? std::size_t{1} : 0});
    auto user_lock = lock_user(w.user);
    const std::size_t home = shard_index(key);
    for (bool swept = false;;) {
      {
        auto& s = shards_[home];
        std::lock_guard lock(s.mutex);
        const time_point now = clock_.now();
        if (!swept) sweep_some(s, now);
        auto it = s.map.find(key);
        if (it != s.map.end()) {
          if (!is_expired(it->second, now)) return make_error_code(error::conflict);
          drop(s, it);
        }
        if (make_room(c, s, nullptr, nullptr, now)) {
          emplace_indexed(s, key, w, 1, deadline(now, w.ttl));
          c.commit();
          return std::uint64_t{1};
        }
      }
      // Never with a shard lock held.
      if (evict_elsewhere(c, home, home)) continue;
      if (swept || !c.possible()) return make_error_code(error::capacity);
      sweep();  // expired entries may be holding the room
      swept = true;
    }
  }

  result<std::uint64_t> replace(std::string_view key, const store_write& w,
                                std::uint64_t expected) {
    const std::size_t new_cost = entry_cost(key.size(), w.value.size(), w.user.size());
    // Built before locking so the allocation happens outside the critical section; after the
    // swap below it holds the old value, which is then freed outside it too.
    std::string value(w.value);
    claim c(*this, room{});
    auto user_lock = lock_user(w.user);
    const std::size_t home = shard_index(key);
    for (bool swept = false;;) {
      {
        auto& s = shards_[home];
        std::lock_guard lock(s.mutex);
        const time_point now = clock_.now();
        auto it = s.map.find(key);
        if (it == s.map.end()) return make_error_code(error::not_found);
        auto& e = it->second;
        if (is_expired(e, now)) {
          drop(s, it);
          return make_error_code(error::not_found);
        }
        if (e.version != expected) return make_error_code(error::conflict);
        const std::size_t old_cost = entry_cost(key.size(), e.value.size(), e.user().size());
        const bool was_anonymous = e.user_name == nullptr;
        const bool anonymous = w.user.empty();
        c.set_need(room{0, new_cost > old_cost ? new_cost - old_cost : 0,
                        anonymous && !was_anonymous ? std::size_t{1} : 0});
        if (make_room(c, s, nullptr, &e, now)) {
          if (e.user() != w.user) {
            std::lock_guard index_lock(index_mutex_);
            // May throw: nothing changed yet.
            const auto target = anonymous ? index_.end() : index_node(w.user);
            if (was_anonymous) {
              unlist(s, e, old_cost);
            } else {
              index_unlink(e);
            }
            if (!anonymous) index_link(target, e);
          } else if (was_anonymous) {
            unlist(s, e, old_cost);  // listed again below, as the newest, at its new cost
          }
          e.value.swap(value);
          e.version += 1;
          e.expires = deadline(now, w.ttl);
          if (anonymous) enlist(s, e, new_cost);
          c.commit();
          if (old_cost > new_cost) bytes_.fetch_sub(old_cost - new_cost, std::memory_order_acq_rel);
          if (was_anonymous && !anonymous) anonymous_.fetch_sub(1, std::memory_order_acq_rel);
          return e.version;
        }
      }
      if (evict_elsewhere(c, home, home)) continue;
      if (swept || !c.possible()) return make_error_code(error::capacity);
      sweep();
      swept = true;
    }
  }

  result<std::uint64_t> rotate(std::string_view old_key, std::string_view new_key,
                               const store_write& w, std::uint64_t expected) {
    if (old_key == new_key) return replace(old_key, w, expected);
    const std::size_t new_cost = entry_cost(new_key.size(), w.value.size(), w.user.size());
    const std::size_t ia = shard_index(old_key);
    const std::size_t ib = shard_index(new_key);
    shard& a = shards_[ia];
    shard& b = shards_[ib];
    claim c(*this, room{});
    auto user_lock = lock_user(w.user);
    for (bool swept = false;;) {
      {
        // Increasing index order, so two rotates crossing the same pair of shards cannot
        // deadlock.
        std::unique_lock<std::mutex> first(shards_[std::min(ia, ib)].mutex);
        std::unique_lock<std::mutex> second;
        if (ia != ib) second = std::unique_lock<std::mutex>(shards_[std::max(ia, ib)].mutex);
        const time_point now = clock_.now();
        if (!swept) sweep_some(b, now);

        auto old_it = a.map.find(old_key);
        if (old_it == a.map.end()) return make_error_code(error::not_found);
        if (is_expired(old_it->second, now)) {
          drop(a, old_it);
          return make_error_code(error::not_found);
        }
        if (old_it->second.version != expected) return make_error_code(error::conflict);
        if (auto new_it = b.map.find(new_key); new_it != b.map.end()) {
          if (!is_expired(new_it->second, now)) return make_error_code(error::conflict);
          drop(b, new_it);  // erasing leaves old_it valid
        }
        // A reference: map nodes do not move when b's map rehashes (iterators may be
        // invalidated, references are not).
        memory_store_entry& old_entry = old_it->second;
        const std::uint64_t version = old_entry.version + 1;
        const std::size_t old_cost =
            entry_cost(old_key.size(), old_entry.value.size(), old_entry.user().size());
        const bool was_anonymous = old_entry.user_name == nullptr;
        const bool anonymous = w.user.empty();
        // One entry leaves and one arrives: the count does not change.
        c.set_need(room{0, new_cost > old_cost ? new_cost - old_cost : 0,
                        anonymous && !was_anonymous ? std::size_t{1} : 0});
        if (make_room(c, b, ia != ib ? &a : nullptr, &old_entry, now)) {
          emplace_indexed(b, new_key, w, version, deadline(now, w.ttl));
          // Inserting into b may have rehashed a (when a is b): look the old entry up again.
          old_it = a.map.find(old_key);
          if (was_anonymous) {
            unlist(a, old_entry, old_cost);
          } else {
            std::lock_guard index_lock(index_mutex_);
            index_unlink(old_entry);
          }
          a.map.erase(old_it);
          c.commit();
          if (old_cost > new_cost) bytes_.fetch_sub(old_cost - new_cost, std::memory_order_acq_rel);
          if (was_anonymous && !anonymous) anonymous_.fetch_sub(1, std::memory_order_acq_rel);
          return version;
        }
      }
      if (evict_elsewhere(c, ia, ib)) continue;
      if (swept || !c.possible()) return make_error_code(error::capacity);
      sweep();
      swept = true;
    }
  }

  bool erase(std::string_view key) {
    auto& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(key);
    if (it == s.map.end()) return false;
    const bool live = !is_expired(it->second, clock_.now());
    drop(s, it);
    return live;
  }

  bool erase_bound(std::string_view key, std::string_view user) {
    auto& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(key);
    if (it == s.map.end() || it->second.user() != user) return false;
    const bool live = !is_expired(it->second, clock_.now());
    drop(s, it);
    return live;
  }

  std::vector<std::string> erase_user(std::string_view user) {
    std::vector<std::string> erased;
    if (user.empty()) return erased;  // anonymous entries are in no index
    // Held throughout: no write can bind an entry to `user` (insert, replace, or rotate onto
    // a new key) between the snapshot below and the erasures, so none escapes.
    auto user_lock = lock_user(user);
    for (auto& key : keys_of(user)) {
      auto& s = shard_for(key);
      std::lock_guard lock(s.mutex);
      auto it = s.map.find(key);
      // Unbinding needs no user lock, so the snapshot may still be stale: only erase what is
      // still bound to this user.
      if (it == s.map.end() || it->second.user() != user) continue;
      const bool live = !is_expired(it->second, clock_.now());
      drop(s, it);
      if (live) erased.push_back(std::move(key));
    }
    std::sort(erased.begin(), erased.end());
    return erased;
  }

  std::vector<std::string> list_user(std::string_view user) {
    std::vector<std::string> live;
    for (auto& key : keys_of(user)) {
      auto& s = shard_for(key);
      std::lock_guard lock(s.mutex);
      auto it = s.map.find(key);
      if (it == s.map.end() || it->second.user() != user) continue;
      if (is_expired(it->second, clock_.now())) {
        drop(s, it);
        continue;
      }
      live.push_back(std::move(key));
    }
    std::sort(live.begin(), live.end());
    return live;
  }

  std::size_t sweep() {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < opts_.shards; ++i) {
      auto& s = shards_[i];
      std::lock_guard lock(s.mutex);
      const time_point now = clock_.now();
      for (auto it = s.map.begin(); it != s.map.end();) {
        if (is_expired(it->second, now)) {
          it = drop(s, it);
          ++removed;
        } else {
          ++it;
        }
      }
    }
    return removed;
  }

  std::size_t size() const noexcept { return count_.load(std::memory_order_acquire); }
  std::size_t bytes() const noexcept { return bytes_.load(std::memory_order_acquire); }
  std::size_t anonymous() const noexcept { return anonymous_.load(std::memory_order_acquire); }
  std::size_t max_anonymous() const noexcept { return max_anonymous_; }
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_acquire); }

  std::size_t user_bindings() const {
    std::lock_guard index_lock(index_mutex_);
    std::size_t n = 0;
    for (const auto& [user, list] : index_) n += list.size;
    return n;
  }

 private:
  using map_type =
      std::unordered_map<std::string, memory_store_entry, memory_store_hash, std::equal_to<>>;
  using node_type = typename map_type::node_type;
  // A user's entries in the per-user index: a list through the entries themselves.
  struct user_list {
    memory_store_entry* newest = nullptr;
    std::size_t size = 0;
  };
  using index_type = std::unordered_map<std::string, user_list, memory_store_hash, std::equal_to<>>;

  struct shard {
    std::mutex mutex;
    map_type map;
    // The next bucket sweep_some examines.
    std::size_t sweep_cursor = 0;
    // The recency list of the anonymous entries of this shard.
    memory_store_entry* newest = nullptr;
    memory_store_entry* oldest = nullptr;
  };

  // Amounts on the three bounded counters: count_, bytes_, anonymous_.
  struct room {
    std::size_t count = 0;
    std::size_t bytes = 0;
    std::size_t anonymous = 0;
  };

  // The room one write holds in the counters: taken from them, or passed on by the entries it
  // evicted (which the counters still include). Unless committed, the destructor gives it all
  // back, so a write that fails (or throws) leaves the accounting right. After commit, what it
  // holds beyond its need is given back. Then it reports the live entries it evicted; it must
  // be destroyed after every lock is released.
  class claim {
   public:
    claim(memory_store_impl& impl, room need) : impl_(impl), need_(need) {}
    claim(const claim&) = delete;
    claim& operator=(const claim&) = delete;
    ~claim() {
      if (committed_) {
        release(held_.count - std::min(held_.count, need_.count),
                held_.bytes - std::min(held_.bytes, need_.bytes),
                held_.anonymous - std::min(held_.anonymous, need_.anonymous));
      } else {
        release(held_.count, held_.bytes, held_.anonymous);
      }
      if (impl_.opts_.on_evict) {
        for (auto& [node, live] : evicted_) {
          if (!live) continue;
          try {
            impl_.opts_.on_evict(node.key());
          } catch (...) {
          }
        }
      }
    }

    void set_need(room need) noexcept { need_ = need; }

    // Takes from the counters what is held short of the need; true if the need is now held.
    // On false, short() tells which counters lacked room (and what was taken stays held).
    bool fill() noexcept {
      short_ = room{};
      fill_one(impl_.count_, held_.count, need_.count, impl_.opts_.max_sessions, short_.count);
      fill_one(impl_.anonymous_, held_.anonymous, need_.anonymous, impl_.max_anonymous_,
               short_.anonymous);
      fill_one(impl_.bytes_, held_.bytes, need_.bytes, impl_.opts_.max_bytes, short_.bytes);
      return short_.count == 0 && short_.anonymous == 0 && short_.bytes == 0;
    }

    // False if the need exceeds a bound by itself, so that no eviction can help.
    bool possible() const noexcept {
      return need_.count <= impl_.opts_.max_sessions && need_.bytes <= impl_.opts_.max_bytes &&
             need_.anonymous <= impl_.max_anonymous_;
    }

    // Whether evicting an anonymous entry could let the last fill() succeed: false if the
    // need is impossible, or if bytes are short and even the bytes of all the anonymous
    // entries (an estimate, under concurrency) would not cover them.
    bool worth_evicting() const noexcept {
      if (!possible()) return false;
      if (short_.bytes == 0) return true;
      const std::size_t total = impl_.bytes_.load(std::memory_order_acquire);
      const std::size_t anon = impl_.anonymous_bytes_.load(std::memory_order_acquire);
      const std::size_t others = total - std::min(total, anon + held_.bytes);
      return others <= impl_.opts_.max_bytes - need_.bytes;
    }

    void add(node_type node, std::size_t cost, bool live) {
      held_.count += 1;
      held_.bytes += cost;
      held_.anonymous += 1;
      evicted_.emplace_back(std::move(node), live);  // on bad_alloc the node dies here
    }

    void commit() noexcept { committed_ = true; }

   private:
    // fetch_add then roll back: concurrent writers can never together pass `max`.
    static void fill_one(std::atomic<std::size_t>& counter, std::size_t& held, std::size_t need,
                         std::size_t max, std::size_t& lacking) noexcept {
      if (held >= need) return;
      const std::size_t n = need - held;
      if (n > max) {
        lacking = n;
        return;
      }
      const std::size_t before = counter.fetch_add(n, std::memory_order_acq_rel);
      if (before > max - n) {
        counter.fetch_sub(n, std::memory_order_acq_rel);
        lacking = n;
        return;
      }
      held = need;
    }

    void release(std::size_t count, std::size_t bytes, std::size_t anonymous) noexcept {
      if (count != 0) impl_.count_.fetch_sub(count, std::memory_order_acq_rel);
      if (bytes != 0) impl_.bytes_.fetch_sub(bytes, std::memory_order_acq_rel);
      if (anonymous != 0) impl_.anonymous_.fetch_sub(anonymous, std::memory_order_acq_rel);
    }

    memory_store_impl& impl_;
    room need_;
    room held_;
    room short_;
    bool committed_ = false;
    std::vector<std::pair<node_type, bool>> evicted_;
  };

  static std::size_t entry_cost(std::size_t key, std::size_t value, std::size_t user) noexcept {
    return key + value + user + entry_overhead;
  }

  static bool is_expired(const memory_store_entry& e, time_point now) noexcept {
    return now >= e.expires;
  }

  // now + ttl, saturating instead of overflowing for huge TTLs; a TTL <= 0 is already due.
  static time_point deadline(time_point now, std::chrono::milliseconds ttl) noexcept {
    using duration = time_point::duration;
    constexpr auto max_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(duration::max());
    if (ttl <= std::chrono::milliseconds::zero()) return now;
    if (ttl >= max_ttl) return time_point::max();
    const auto d = std::chrono::duration_cast<duration>(ttl);
    if (now > time_point::max() - d) return time_point::max();
    return now + d;
  }

  std::size_t mix(std::string_view s) const noexcept {
    // Mix the hash so the shard does not correlate with the bucket inside the shard's map.
    const std::uint64_t h =
        static_cast<std::uint64_t>(memory_store_hash{}(s)) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>((h >> 32) % opts_.shards);
  }

  std::size_t shard_index(std::string_view key) const noexcept { return mix(key); }

  shard& shard_for(std::string_view key) noexcept { return shards_[shard_index(key)]; }

  // The lock of the stripe of `user`; none (an empty lock) for anonymous writes.
  std::unique_lock<std::mutex> lock_user(std::string_view user) {
    if (user.empty()) return {};
    return std::unique_lock<std::mutex>(user_locks_[mix(user)]);
  }

  // Caller holds s.mutex. Makes `e` (anonymous) the most recently used.
  void enlist(shard& s, memory_store_entry& e, std::size_t cost) noexcept {
    link_newest(s, e);
    anonymous_bytes_.fetch_add(cost, std::memory_order_acq_rel);
  }

  // Caller holds s.mutex. Takes `e` (anonymous, costing `cost`) out of the recency list.
  void unlist(shard& s, memory_store_entry& e, std::size_t cost) noexcept {
    unlink(s, e);
    anonymous_bytes_.fetch_sub(cost, std::memory_order_acq_rel);
  }

  static void link_newest(shard& s, memory_store_entry& e) noexcept {
    e.newer = nullptr;
    e.older = s.newest;
    if (s.newest != nullptr) {
      s.newest->newer = &e;
    } else {
      s.oldest = &e;
    }
    s.newest = &e;
  }

  static void unlink(shard& s, memory_store_entry& e) noexcept {
    if (e.newer != nullptr) {
      e.newer->older = e.older;
    } else {
      s.newest = e.older;
    }
    if (e.older != nullptr) {
      e.older->newer = e.newer;
    } else {
      s.oldest = e.newer;
    }
    e.newer = e.older = nullptr;
  }

  // Caller holds s.mutex; `e` is anonymous.
  static void touch(shard& s, memory_store_entry& e) noexcept {
    if (s.newest == &e) return;
    unlink(s, e);
    link_newest(s, e);
  }

  // Caller holds s.mutex. Evicts the least recently used anonymous entry of `s` other than
  // `keep` (the entry being written), passing its room to `c`. False if there is none.
  bool evict_oldest(shard& s, const memory_store_entry* keep, claim& c, time_point now) {
    memory_store_entry* victim = s.oldest;
    if (victim == keep && victim != nullptr) victim = victim->newer;
    if (victim == nullptr) return false;
    auto it = s.map.find(*victim->key);
    const std::size_t cost = entry_cost(it->first.size(), victim->value.size(), 0);
    const bool live = !is_expired(*victim, now);
    unlist(s, *victim, cost);
    if (live) evictions_.fetch_add(1, std::memory_order_acq_rel);
    c.add(s.map.extract(it), cost, live);
    return true;
  }

  // Caller holds the locks of `s` and `other` (if not null). Fills `c`, evicting from `s` and
  // then `other` while that could help.
  bool make_room(claim& c, shard& s, shard* other, const memory_store_entry* keep,
                 time_point now) {
    for (;;) {
      if (c.fill()) return true;
      if (!c.worth_evicting()) return false;
      if (evict_oldest(s, keep, c, now)) continue;
      if (other != nullptr && evict_oldest(*other, keep, c, now)) continue;
      return false;
    }
  }

  // Called with no shard lock held, after make_room failed in shards `skip1` and `skip2`.
  // Evicts one anonymous entry from another shard, trying each in turn from a moving start;
  // false if no eviction could help or no other shard has an anonymous entry.
  bool evict_elsewhere(claim& c, std::size_t skip1, std::size_t skip2) {
    if (!c.worth_evicting() || anonymous_.load(std::memory_order_acquire) == 0) return false;
    const std::size_t n = opts_.shards;
    const std::size_t start = next_victim_shard_.fetch_add(1, std::memory_order_relaxed) % n;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t j = (start + i) % n;
      if (j == skip1 || j == skip2) continue;
      auto& s = shards_[j];
      std::lock_guard lock(s.mutex);
      if (evict_oldest(s, nullptr, c, clock_.now())) return true;
    }
    return false;
  }

  // Buckets examined per write that adds an entry (see sweep_some).
  static constexpr std::size_t lazy_sweep_buckets = 2;

  // Caller holds s.mutex. Drops the expired entries of the next lazy_sweep_buckets buckets of
  // `s` (a cursor going round the table). With the map's load factor at most 1 there are at
  // least as many buckets as entries, so a shard is examined whole within every
  // bucket_count / lazy_sweep_buckets writes that add to it: expired entries cannot pile up
  // beyond about half the shard's largest size, without a timer and at O(1) cost per write.
  void sweep_some(shard& s, time_point now) noexcept {
    const std::size_t buckets = s.map.bucket_count();
    for (std::size_t n = 0; n < lazy_sweep_buckets; ++n) {
      const std::size_t b = s.sweep_cursor++ % buckets;
      // Buckets hold one or two entries; after a drop the bucket is walked again from its start
      // (the drop invalidates local iterators).
      for (bool dropped = true; dropped;) {
        dropped = false;
        for (auto it = s.map.begin(b); it != s.map.end(b); ++it) {
          if (!is_expired(it->second, now)) continue;
          drop(s, s.map.find(it->first));
          dropped = true;
          break;
        }
      }
    }
  }

  // Caller holds s.mutex. Stores the entry and indexes it (or lists it, if anonymous); on an
  // exception nothing is left. Accounting is the caller's.
  void emplace_indexed(shard& s, std::string_view key, const store_write& w,
                       std::uint64_t version, time_point expires) {
    auto [it, inserted] = s.map.try_emplace(
        std::string(key), memory_store_entry{std::string(w.value), version, expires});
    (void)inserted;  // callers checked the key is absent, under the same lock
    it->second.key = &it->first;
    if (w.user.empty()) {
      enlist(s, it->second, entry_cost(key.size(), w.value.size(), 0));
      return;
    }
    try {
      std::lock_guard index_lock(index_mutex_);
      index_link(index_node(w.user), it->second);
    } catch (...) {
      s.map.erase(it);
      throw;
    }
  }

  // Caller holds s.mutex. Removes the entry, its index binding or recency link, and its
  // accounting.
  typename map_type::iterator drop(shard& s, typename map_type::iterator it) noexcept {
    auto& e = it->second;
    const std::size_t cost = entry_cost(it->first.size(), e.value.size(), e.user().size());
    if (e.user_name == nullptr) {
      unlist(s, e, cost);
      anonymous_.fetch_sub(1, std::memory_order_acq_rel);
    } else {
      std::lock_guard index_lock(index_mutex_);
      index_unlink(e);
    }
    count_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(cost, std::memory_order_acq_rel);
    return s.map.erase(it);
  }

  // Caller holds index_mutex_. The index node of `user`, added (empty) if absent; may throw.
  typename index_type::iterator index_node(std::string_view user) {
    auto it = index_.find(user);
    if (it == index_.end()) it = index_.emplace(std::string(user), user_list{}).first;
    return it;
  }

  // Caller holds index_mutex_ and the lock of the shard of `e`, which is in no list (stored
  // just now, or taken out of the recency list or another user's list). Binds it to the user
  // of `node`.
  static void index_link(typename index_type::iterator node, memory_store_entry& e) noexcept {
    user_list& list = node->second;
    e.user_name = &node->first;
    e.newer = nullptr;
    e.older = list.newest;
    if (list.newest != nullptr) list.newest->newer = &e;
    list.newest = &e;
    list.size += 1;
  }

  // Caller holds index_mutex_ and the lock of the shard of `e`, which is bound. Unbinds it,
  // and drops its user's index node if it was the user's last entry.
  void index_unlink(memory_store_entry& e) noexcept {
    auto node = index_.find(*e.user_name);  // present while `e` is bound to it
    user_list& list = node->second;
    if (e.newer != nullptr) {
      e.newer->older = e.older;
    } else {
      list.newest = e.older;
    }
    if (e.older != nullptr) e.older->newer = e.newer;
    e.newer = e.older = nullptr;
    e.user_name = nullptr;
    if (--list.size == 0) index_.erase(node);
  }

  // A snapshot, so the index lock is not held while shard locks are taken. The keys are read
  // under the index lock alone: an entry is unlinked (under it) before it is erased.
  std::vector<std::string> keys_of(std::string_view user) {
    std::lock_guard index_lock(index_mutex_);
    auto it = index_.find(user);
    if (it == index_.end()) return {};
    std::vector<std::string> keys;
    keys.reserve(it->second.size);
    for (const memory_store_entry* e = it->second.newest; e != nullptr; e = e->older)
      keys.emplace_back(*e->key);
    return keys;
  }

  // Caller holds s->mutex.
  static void arm(const std::shared_ptr<memory_store_sweeper>& s,
                  const std::weak_ptr<memory_store_impl>& data) {
    s->timer.expires_after(s->interval);
    s->timer.async_wait([s, data](const boost::system::error_code& ec) { tick(s, data, ec); });
  }

  static void tick(const std::shared_ptr<memory_store_sweeper>& s,
                   const std::weak_ptr<memory_store_impl>& data,
                   const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: the store is gone or stopped
    // Declared before the lock below, so it is released after it: if this was the last owner,
    // ~memory_store_impl locks s->mutex, which must not be held then.
    auto self = data.lock();
    if (!self) return;
    self->sweep();
    std::lock_guard lock(s->mutex);
    if (!s->stopped) arm(s, data);
  }

  memory_store_options opts_;
  std::size_t max_anonymous_ = 0;
  [[no_unique_address]] Clock clock_;
  std::unique_ptr<shard[]> shards_;
  // Stripes of per-user locks, by hash of the user: erase_user against writes binding a user.
  std::unique_ptr<std::mutex[]> user_locks_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> bytes_{0};
  std::atomic<std::size_t> anonymous_{0};
  // Accounted bytes of the anonymous entries; only an estimate for worth_evicting().
  std::atomic<std::size_t> anonymous_bytes_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::size_t> next_victim_shard_{0};
  mutable std::mutex index_mutex_;
  index_type index_;
  // The running sweep (start_sweep), stopped when another starts or the data is destroyed.
  std::mutex sweeper_mutex_;
  std::shared_ptr<memory_store_sweeper> sweeper_;
};

}  // namespace detail

template <clock Clock>
class basic_memory_store;

/// A running periodic sweep of a memory store, from basic_memory_store::start_sweep. The sweep
/// stops when this handle is destroyed (or stop() is called, or another start_sweep on the same
/// store replaces it, or the store's data is destroyed); its pending timer wait is then
/// cancelled, so it no longer keeps `io_context::run()` from returning. Movable, not copyable;
/// a default-constructed or moved-from handle runs nothing. stop() and the destructor may be
/// called from any thread. Destroy it before the io_context whose executor runs the sweep.
class memory_store_sweep {
 public:
  memory_store_sweep() noexcept = default;
  memory_store_sweep(memory_store_sweep&&) noexcept = default;
  memory_store_sweep& operator=(memory_store_sweep&& other) noexcept {
    if (this != &other) {
      stop();
      sweeper_ = std::move(other.sweeper_);
    }
    return *this;
  }
  memory_store_sweep(const memory_store_sweep&) = delete;
  memory_store_sweep& operator=(const memory_store_sweep&) = delete;
  ~memory_store_sweep() { stop(); }

  /// Stops the sweep (idempotent). The cancelled wait completes on the sweep's executor.
  void stop() noexcept {
    if (auto s = std::exchange(sweeper_, nullptr)) s->stop();
  }

  /// Whether this handle still controls a sweep (true until stop() or a move away). A sweep
  /// replaced by another start_sweep, or outlived by its store, stops while this stays true.
  bool active() const noexcept { return sweeper_ != nullptr; }

 private:
  template <clock Clock>
  friend class basic_memory_store;
  explicit memory_store_sweep(std::shared_ptr<detail::memory_store_sweeper> s) noexcept
      : sweeper_(std::move(s)) {}

  std::shared_ptr<detail::memory_store_sweeper> sweeper_;
};

/// The in-process session store: N shards, each a mutex and a hash map, with TTL expiry,
/// optimistic versions, a per-user index, and hard bounds on entries and bytes. Models
/// session_store.
///
/// A basic_memory_store is a handle: copies share the same data, and the data lives until the
/// last copy is destroyed. All operations may be called concurrently from several threads. The
/// operations never wait: each does its work under a shard lock when awaited and completes at
/// once.
///
/// Expiry needs no timer: an expired entry is dropped when it is touched (load, write, erase),
/// when a write needs room, and, because each write that adds an entry also examines a few
/// hash buckets of its shard (a cursor going round), within every bucket_count / 2 such writes
/// of its shard: expired entries cannot pile up beyond about half a shard's largest size, at
/// O(1) cost per write. sweep() drops them all at once. To drop them also while nothing is
/// written (to give the memory back during a quiet period), start a periodic sweep with
/// start_sweep().
///
/// Eviction: entries bound to a user are never evicted. Anonymous entries (stored with an
/// empty store_write::user) have their own bound, memory_store_options::max_anonymous_sessions,
/// and are evicted least recently used first (use = a load or a write) when a write lacks
/// room: an anonymous insert beyond that bound, or any write (bound or not) that would pass
/// max_sessions or max_bytes. So a flood of anonymous sessions can neither fill the room kept
/// for logged-in users nor make new anonymous sessions fail; it only shortens how long idle
/// anonymous sessions survive. A write fails with capacity only if no anonymous entry is left
/// to evict (and a sweep of expired entries does not help either), or if it alone exceeds a
/// bound.
///
/// The LRU order is kept per shard (an intrusive list, moved in O(1) under the shard lock on
/// every load and write; no global lock): a write evicts the least recently used anonymous
/// entry of its own shard, and only if that shard has none, of the other shards in turn. With
/// keys spread evenly over the shards (random session ids), each shard's oldest entry is
/// about as old as the store's oldest one, so the order is approximately a global LRU; with
/// one shard it is exact. The bounds themselves (max_sessions, max_bytes,
/// max_anonymous_sessions) are exact, also under concurrency. Each eviction of a live entry
/// counts in evictions() and is reported to memory_store_options::on_evict.
///
/// Users: erase_user(u) and every write that binds an entry to u (insert, replace, rotate)
/// exclude each other (a lock per stripe of users), so a session rotated to a new key while
/// erase_user runs is either erased by it or its rotation fails (not_found).
///
/// Lifetime: the store itself puts no work on its executor: an io_context whose only user is a
/// memory store (or a manager over one) returns from run() when the operations are done. A sweep
/// started with start_sweep() is work (a pending timer wait) until its memory_store_sweep handle
/// stops it: destroy the handle (or call stop()) to let `io_context::run()` return. Every store
/// handle, and every sweep handle, must be destroyed before the io_context of the executor
/// passed to the constructor is destroyed.
///
/// `Clock` gives the time used for TTLs; pass a manual_clock to move time in tests.
template <clock Clock = std::chrono::system_clock>
class basic_memory_store {
  using impl_type = detail::memory_store_impl<Clock>;

 public:
  /// Bytes charged per entry on top of key, value and user sizes (for max_bytes).
  static constexpr std::size_t entry_overhead = impl_type::entry_overhead;

  /// Creates an empty store. `ex` runs the periodic sweep if start_sweep() is called; nothing
  /// else runs on it. Throws std::invalid_argument if opts.shards is 0 or
  /// opts.max_anonymous_sessions exceeds opts.max_sessions; may throw std::bad_alloc.
  explicit basic_memory_store(boost::asio::any_io_executor ex, memory_store_options opts = {},
                              Clock clock = Clock())
      : ex_(std::move(ex)), impl_(std::make_shared<impl_type>(opts, std::move(clock))) {}

  /// The executor given to the constructor, which runs the periodic sweep.
  boost::asio::any_io_executor get_executor() const noexcept { return ex_; }

  /// The value and version stored under `key`.
  /// Errors: not_found if absent; expired if present but past its TTL (the entry is then
  /// erased, so a second load gives not_found).
  awaitable<result<store_record>> load(std::string_view key) { return load_op(impl_, key); }

  /// Stores `w` under a new `key` with version 1, expiring at now + w.ttl (a TTL <= 0 is due at
  /// once), bound to w.user if not empty. An expired entry under `key` is replaced.
  /// Errors: conflict if a live entry exists under `key`; capacity if max_sessions or
  /// max_bytes (or, for an anonymous entry, max_anonymous_sessions) would be exceeded even
  /// after evicting anonymous entries and dropping expired ones (see the class comment).
  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    return insert_op(impl_, key, w);
  }

  /// Replaces the value under `key` if its version is `expected_version`; sets the TTL from
  /// w.ttl and the user binding from w.user (moving the key between users in the index).
  /// Returns the new version (expected_version + 1).
  /// Errors: not_found if absent or expired (an expired entry is erased); conflict if the
  /// stored version differs; capacity if a larger value (or a change from bound to anonymous)
  /// would exceed a bound even after evicting other anonymous entries and dropping expired
  /// ones.
  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t expected_version) {
    return replace_op(impl_, key, w, expected_version);
  }

  /// Atomically checks the version at `old_key`, erases it and stores `w` under `new_key` with
  /// the old version + 1, which it returns. Rotating a key onto itself is a replace.
  /// Errors: not_found if `old_key` is absent or expired; conflict if its version is not
  /// `expected_version` or a live entry exists under `new_key`; capacity if a larger entry
  /// (or a change from bound to anonymous) would exceed a bound even after evicting other
  /// anonymous entries and dropping expired ones. On error nothing changes (apart from expired
  /// entries being dropped and anonymous entries being evicted).
  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t expected_version) {
    return rotate_op(impl_, old_key, new_key, w, expected_version);
  }

  /// Erases `key`. Completes with true if a live entry was erased, false if there was none
  /// (or only an expired one, which is dropped too). No error cases.
  awaitable<result<bool>> erase(std::string_view key) { return erase_op(impl_, key); }

  /// Erases `key` if it is bound to `user` (checked under the same lock). Completes with true
  /// if a live entry was erased. No error cases.
  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    return erase_bound_op(impl_, key, user);
  }

  /// Erases every entry bound to `user`; completes with the keys of the live ones, sorted.
  /// Writes that bind an entry to `user` wait while this runs (and it waits for them), so no
  /// entry bound to `user` before it returns survives it, not even one rotated to a new key
  /// meanwhile. No error cases.
  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    return erase_user_op(impl_, user);
  }

  /// The keys of the live entries bound to `user`, sorted. No error cases.
  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    return list_user_op(impl_, user);
  }

  /// Always succeeds: the data is in this process.
  awaitable<boost::system::error_code> ping() { return ping_op(); }

  /// Drops every expired entry now; returns how many. Also run by the periodic sweep.
  std::size_t sweep() { return impl_->sweep(); }

  /// Starts a periodic sweep on get_executor(): every `interval`, sweep() (the first one an
  /// interval from now). It runs until the returned handle is destroyed or stopped; while it
  /// runs, `io_context::run()` does not run out of work. One sweep per store (shared by every
  /// copy of the handle): starting another stops the previous one. Not needed for bounded
  /// memory (see the class comment); it gives memory back during quiet periods. Typical:
  /// `auto sweeping = manager.get_store().start_sweep(std::chrono::minutes(1));` next to
  /// `ioc.run()`. Throws std::invalid_argument if `interval` is not positive; may throw
  /// std::bad_alloc.
  [[nodiscard]] memory_store_sweep start_sweep(std::chrono::milliseconds interval) {
    if (interval <= std::chrono::milliseconds::zero())
      throw std::invalid_argument("websession::basic_memory_store::start_sweep: the interval "
                                  "must be positive");
    return memory_store_sweep(impl_->start_sweeper(ex_, interval, impl_));
  }

  /// Number of stored entries: live ones plus expired ones not yet dropped.
  std::size_t size() const noexcept { return impl_->size(); }

  /// Accounted bytes of the stored entries (see memory_store_options::max_bytes).
  std::size_t bytes() const noexcept { return impl_->bytes(); }

  /// Number of stored anonymous entries (no user), live or expired not yet dropped.
  std::size_t anonymous() const noexcept { return impl_->anonymous(); }

  /// The bound on anonymous entries in effect (memory_store_options::max_anonymous_sessions,
  /// or its default).
  std::size_t max_anonymous() const noexcept { return impl_->max_anonymous(); }

  /// Number of live anonymous entries evicted to make room since the store was created.
  std::uint64_t evictions() const noexcept { return impl_->evictions(); }

  /// Number of (user, key) pairs in the per-user index: one per stored entry bound to a user,
  /// expired or not. Walks the index under its lock; meant for tests and metrics.
  std::size_t user_bindings() const { return impl_->user_bindings(); }

 private:
  // Static, taking the shared_ptr by value: the coroutine starts only when awaited, and must
  // not depend on this handle still existing then.
  static awaitable<result<store_record>> load_op(std::shared_ptr<impl_type> self,
                                                 std::string_view key) {
    co_return self->load(key);
  }
  static awaitable<result<std::uint64_t>> insert_op(std::shared_ptr<impl_type> self,
                                                    std::string_view key, store_write w) {
    co_return self->insert(key, w);
  }
  static awaitable<result<std::uint64_t>> replace_op(std::shared_ptr<impl_type> self,
                                                     std::string_view key, store_write w,
                                                     std::uint64_t expected) {
    co_return self->replace(key, w, expected);
  }
  static awaitable<result<std::uint64_t>> rotate_op(std::shared_ptr<impl_type> self,
                                                    std::string_view old_key,
                                                    std::string_view new_key, store_write w,
                                                    std::uint64_t expected) {
    co_return self->rotate(old_key, new_key, w, expected);
  }
  static awaitable<result<bool>> erase_op(std::shared_ptr<impl_type> self, std::string_view key) {
    co_return self->erase(key);
  }
  static awaitable<result<bool>> erase_bound_op(std::shared_ptr<impl_type> self,
                                                std::string_view key, std::string_view user) {
    co_return self->erase_bound(key, user);
  }
  static awaitable<result<std::vector<std::string>>> erase_user_op(
      std::shared_ptr<impl_type> self, std::string_view user) {
    co_return self->erase_user(user);
  }
  static awaitable<result<std::vector<std::string>>> list_user_op(
      std::shared_ptr<impl_type> self, std::string_view user) {
    co_return self->list_user(user);
  }
  static awaitable<boost::system::error_code> ping_op() { co_return boost::system::error_code{}; }

  boost::asio::any_io_executor ex_;
  std::shared_ptr<impl_type> impl_;
};

/// The memory store on the system clock.
using memory_store = basic_memory_store<>;

static_assert(session_store<memory_store>);
static_assert(session_store<basic_memory_store<manual_clock>>);

}  // namespace websession
