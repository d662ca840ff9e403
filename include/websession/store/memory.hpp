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
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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
  /// Period of the background sweep that drops expired entries; zero or negative disables the
  /// timer (expired entries are then dropped on access, and when a write needs room).
  std::chrono::milliseconds sweep_interval = std::chrono::seconds(60);
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
  std::string user;
};

// The sweep timer lives apart from the data: its pending handler owns this state (so the timer
// outlives the data if it must) but sees the data only through a weak_ptr.
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
    shards_ = std::make_unique<shard[]>(opts_.shards);
    user_locks_ = std::make_unique<std::mutex[]>(opts_.shards);
  }

  memory_store_impl(const memory_store_impl&) = delete;
  memory_store_impl& operator=(const memory_store_impl&) = delete;

  ~memory_store_impl() {
    if (sweeper_) sweeper_->stop();
  }

  void start_sweeper(const boost::asio::any_io_executor& ex,
                     const std::weak_ptr<memory_store_impl>& self) {
    if (opts_.sweep_interval <= std::chrono::milliseconds::zero()) return;
    sweeper_ = std::make_shared<memory_store_sweeper>(ex, opts_.sweep_interval);
    std::lock_guard lock(sweeper_->mutex);
    arm(sweeper_, self);
  }

  void stop_sweeper() {
    if (sweeper_) sweeper_->stop();
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
    return store_record{it->second.value, it->second.version};
  }

  result<std::uint64_t> insert(std::string_view key, const store_write& w) {
    const std::size_t cost = entry_cost(key.size(), w.value.size(), w.user.size());
    auto user_lock = lock_user(w.user);
    for (int attempt = 0;; ++attempt) {
      {
        auto& s = shard_for(key);
        std::lock_guard lock(s.mutex);
        const time_point now = clock_.now();
        auto it = s.map.find(key);
        if (it != s.map.end()) {
          if (!is_expired(it->second, now)) return make_error_code(error::conflict);
          drop(s, it);
        }
        reservation r(*this, 1, cost);
        if (r.ok()) {
          emplace_indexed(s, key, w, 1, deadline(now, w.ttl));
          r.commit();
          return std::uint64_t{1};
        }
      }
      if (attempt == 1) return make_error_code(error::capacity);
      sweep();  // expired entries may be holding the room; never with a shard lock held
    }
  }

  result<std::uint64_t> replace(std::string_view key, const store_write& w,
                                std::uint64_t expected) {
    const std::size_t new_cost = entry_cost(key.size(), w.value.size(), w.user.size());
    // Built before locking so the allocation happens outside the critical section; after the
    // swap below they hold the old strings, which are then freed outside it too.
    std::string value(w.value);
    std::string user(w.user);
    auto user_lock = lock_user(w.user);
    for (int attempt = 0;; ++attempt) {
      {
        auto& s = shard_for(key);
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
        const std::size_t old_cost = entry_cost(key.size(), e.value.size(), e.user.size());
        reservation r(*this, 0, new_cost > old_cost ? new_cost - old_cost : 0);
        if (r.ok()) {
          if (e.user != user) {
            std::lock_guard index_lock(index_mutex_);
            if (!user.empty()) index_add(user, key);  // may throw: nothing changed yet
            if (!e.user.empty()) index_remove(e.user, key);
          }
          e.value.swap(value);
          e.user.swap(user);
          e.version += 1;
          e.expires = deadline(now, w.ttl);
          r.commit();
          if (old_cost > new_cost) bytes_.fetch_sub(old_cost - new_cost, std::memory_order_acq_rel);
          return e.version;
        }
      }
      if (attempt == 1) return make_error_code(error::capacity);
      sweep();
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
    auto user_lock = lock_user(w.user);
    for (int attempt = 0;; ++attempt) {
      {
        // Increasing index order, so two rotates crossing the same pair of shards cannot
        // deadlock.
        std::unique_lock<std::mutex> first(shards_[std::min(ia, ib)].mutex);
        std::unique_lock<std::mutex> second;
        if (ia != ib) second = std::unique_lock<std::mutex>(shards_[std::max(ia, ib)].mutex);
        const time_point now = clock_.now();

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
        const std::uint64_t version = old_it->second.version + 1;
        const std::size_t old_cost = entry_cost(old_key.size(), old_it->second.value.size(),
                                                old_it->second.user.size());
        // One entry leaves and one arrives: the count does not change.
        reservation r(*this, 0, new_cost > old_cost ? new_cost - old_cost : 0);
        if (r.ok()) {
          emplace_indexed(b, new_key, w, version, deadline(now, w.ttl));
          // Inserting into b may have rehashed a (when a is b): look the old entry up again.
          old_it = a.map.find(old_key);
          if (!old_it->second.user.empty()) {
            std::lock_guard index_lock(index_mutex_);
            index_remove(old_it->second.user, old_key);
          }
          a.map.erase(old_it);
          r.commit();
          if (old_cost > new_cost) bytes_.fetch_sub(old_cost - new_cost, std::memory_order_acq_rel);
          return version;
        }
      }
      if (attempt == 1) return make_error_code(error::capacity);
      sweep();
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
      if (it == s.map.end() || it->second.user != user) continue;
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
      if (it == s.map.end() || it->second.user != user) continue;
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

  std::size_t user_bindings() const {
    std::lock_guard index_lock(index_mutex_);
    std::size_t n = 0;
    for (const auto& [user, keys] : index_) n += keys.size();
    return n;
  }

 private:
  using map_type =
      std::unordered_map<std::string, memory_store_entry, memory_store_hash, std::equal_to<>>;
  using key_set = std::unordered_set<std::string, memory_store_hash, std::equal_to<>>;
  using index_type = std::unordered_map<std::string, key_set, memory_store_hash, std::equal_to<>>;

  struct shard {
    std::mutex mutex;
    map_type map;
  };

  // Holds room in the counters for a write; gives it back unless committed, so a write that
  // fails (or throws) leaves the accounting as it was.
  class reservation {
   public:
    reservation(memory_store_impl& impl, std::size_t count, std::size_t bytes)
        : impl_(impl), count_(count), bytes_(bytes) {
      if (count_ != 0 && !take(impl_.count_, count_, impl_.opts_.max_sessions)) {
        count_ = bytes_ = 0;
        return;
      }
      if (bytes_ != 0 && !take(impl_.bytes_, bytes_, impl_.opts_.max_bytes)) {
        if (count_ != 0) impl_.count_.fetch_sub(count_, std::memory_order_acq_rel);
        count_ = bytes_ = 0;
        return;
      }
      ok_ = true;
    }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation() {
      if (!ok_ || committed_) return;
      if (count_ != 0) impl_.count_.fetch_sub(count_, std::memory_order_acq_rel);
      if (bytes_ != 0) impl_.bytes_.fetch_sub(bytes_, std::memory_order_acq_rel);
    }
    bool ok() const noexcept { return ok_; }
    void commit() noexcept { committed_ = true; }

   private:
    // fetch_add then roll back: concurrent writers can never together pass `max`.
    static bool take(std::atomic<std::size_t>& counter, std::size_t n, std::size_t max) {
      if (n > max) return false;
      const std::size_t before = counter.fetch_add(n, std::memory_order_acq_rel);
      if (before > max - n) {
        counter.fetch_sub(n, std::memory_order_acq_rel);
        return false;
      }
      return true;
    }

    memory_store_impl& impl_;
    std::size_t count_;
    std::size_t bytes_;
    bool ok_ = false;
    bool committed_ = false;
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

  // Caller holds s.mutex. Stores the entry and indexes it; on an exception nothing is left.
  void emplace_indexed(shard& s, std::string_view key, const store_write& w,
                       std::uint64_t version, time_point expires) {
    auto [it, inserted] = s.map.try_emplace(
        std::string(key),
        memory_store_entry{std::string(w.value), version, expires, std::string(w.user)});
    (void)inserted;  // callers checked the key is absent, under the same lock
    if (w.user.empty()) return;
    try {
      std::lock_guard index_lock(index_mutex_);
      index_add(w.user, key);
    } catch (...) {
      s.map.erase(it);
      throw;
    }
  }

  // Caller holds s.mutex. Removes the entry, its index binding and its accounting.
  typename map_type::iterator drop(shard& s, typename map_type::iterator it) noexcept {
    const auto& e = it->second;
    if (!e.user.empty()) {
      std::lock_guard index_lock(index_mutex_);
      index_remove(e.user, it->first);
    }
    count_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(entry_cost(it->first.size(), e.value.size(), e.user.size()),
                     std::memory_order_acq_rel);
    return s.map.erase(it);
  }

  // Caller holds index_mutex_.
  void index_add(std::string_view user, std::string_view key) {
    auto it = index_.find(user);
    if (it == index_.end()) it = index_.emplace(std::string(user), key_set{}).first;
    if (!it->second.contains(key)) it->second.emplace(key);
  }

  // Caller holds index_mutex_.
  void index_remove(std::string_view user, std::string_view key) noexcept {
    auto it = index_.find(user);
    if (it == index_.end()) return;
    if (auto k = it->second.find(key); k != it->second.end()) it->second.erase(k);
    if (it->second.empty()) index_.erase(it);
  }

  // A snapshot, so the index lock is not held while shard locks are taken.
  std::vector<std::string> keys_of(std::string_view user) {
    std::lock_guard index_lock(index_mutex_);
    auto it = index_.find(user);
    if (it == index_.end()) return {};
    return std::vector<std::string>(it->second.begin(), it->second.end());
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
  [[no_unique_address]] Clock clock_;
  std::unique_ptr<shard[]> shards_;
  // Stripes of per-user locks, by hash of the user: erase_user against writes binding a user.
  std::unique_ptr<std::mutex[]> user_locks_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> bytes_{0};
  mutable std::mutex index_mutex_;
  index_type index_;
  std::shared_ptr<memory_store_sweeper> sweeper_;
};

}  // namespace detail

/// The in-process session store: N shards, each a mutex and a hash map, with TTL expiry,
/// optimistic versions, a per-user index, and hard bounds on entries and bytes. Models
/// session_store.
///
/// A basic_memory_store is a handle: copies share the same data, and the data lives until the
/// last copy is destroyed. All operations may be called concurrently from several threads. The
/// operations never wait: each does its work under a shard lock when awaited and completes at
/// once. Expired entries are dropped when touched, by a periodic sweep on a steady_timer, and
/// when a write needs room; live entries are never evicted.
///
/// Lifetime: while the sweep timer is enabled, a pending wait counts as work for the executor's
/// io_context, so `io_context::run()` does not return while a store handle is alive (call
/// stop_sweep(), or set sweep_interval to zero, to let it). Every handle must be destroyed
/// before the io_context of the executor passed to the constructor is destroyed.
///
/// `Clock` gives the time used for TTLs; pass a manual_clock to move time in tests.
template <clock Clock = std::chrono::system_clock>
class basic_memory_store {
  using impl_type = detail::memory_store_impl<Clock>;

 public:
  /// Bytes charged per entry on top of key, value and user sizes (for max_bytes).
  static constexpr std::size_t entry_overhead = impl_type::entry_overhead;

  /// Creates an empty store. `ex` runs the periodic sweep (unless opts.sweep_interval <= 0).
  /// Throws std::invalid_argument if opts.shards is 0; may throw std::bad_alloc.
  explicit basic_memory_store(boost::asio::any_io_executor ex, memory_store_options opts = {},
                              Clock clock = Clock())
      : impl_(std::make_shared<impl_type>(opts, std::move(clock))) {
    impl_->start_sweeper(ex, impl_);
  }

  /// The value and version stored under `key`.
  /// Errors: not_found if absent; expired if present but past its TTL (the entry is then
  /// erased, so a second load gives not_found).
  awaitable<result<store_record>> load(std::string_view key) { return load_op(impl_, key); }

  /// Stores `w` under a new `key` with version 1, expiring at now + w.ttl (a TTL <= 0 is due at
  /// once), bound to w.user if not empty. An expired entry under `key` is replaced.
  /// Errors: conflict if a live entry exists under `key`; capacity if max_sessions or
  /// max_bytes would be exceeded even after dropping expired entries.
  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    return insert_op(impl_, key, w);
  }

  /// Replaces the value under `key` if its version is `expected_version`; sets the TTL from
  /// w.ttl and the user binding from w.user (moving the key between users in the index).
  /// Returns the new version (expected_version + 1).
  /// Errors: not_found if absent or expired (an expired entry is erased); conflict if the
  /// stored version differs; capacity if a larger value would exceed max_bytes even after
  /// dropping expired entries.
  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t expected_version) {
    return replace_op(impl_, key, w, expected_version);
  }

  /// Atomically checks the version at `old_key`, erases it and stores `w` under `new_key` with
  /// the old version + 1, which it returns. Rotating a key onto itself is a replace.
  /// Errors: not_found if `old_key` is absent or expired; conflict if its version is not
  /// `expected_version` or a live entry exists under `new_key`; capacity if a larger entry
  /// would exceed max_bytes even after dropping expired entries. On error nothing changes
  /// (apart from expired entries being dropped).
  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t expected_version) {
    return rotate_op(impl_, old_key, new_key, w, expected_version);
  }

  /// Erases `key`. Completes with true if a live entry was erased, false if there was none
  /// (or only an expired one, which is dropped too). No error cases.
  awaitable<result<bool>> erase(std::string_view key) { return erase_op(impl_, key); }

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

  /// Drops every expired entry now; returns how many. Also run by the sweep timer.
  std::size_t sweep() { return impl_->sweep(); }

  /// Stops the periodic sweep for every handle (so the io_context can run out of work).
  /// Expired entries are still dropped on access and when a write needs room. Idempotent.
  void stop_sweep() { impl_->stop_sweeper(); }

  /// Number of stored entries: live ones plus expired ones not yet dropped.
  std::size_t size() const noexcept { return impl_->size(); }

  /// Accounted bytes of the stored entries (see memory_store_options::max_bytes).
  std::size_t bytes() const noexcept { return impl_->bytes(); }

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
  static awaitable<result<std::vector<std::string>>> erase_user_op(
      std::shared_ptr<impl_type> self, std::string_view user) {
    co_return self->erase_user(user);
  }
  static awaitable<result<std::vector<std::string>>> list_user_op(
      std::shared_ptr<impl_type> self, std::string_view user) {
    co_return self->list_user(user);
  }
  static awaitable<boost::system::error_code> ping_op() { co_return boost::system::error_code{}; }

  std::shared_ptr<impl_type> impl_;
};

/// The memory store on the system clock.
using memory_store = basic_memory_store<>;

static_assert(session_store<memory_store>);
static_assert(session_store<basic_memory_store<manual_clock>>);

}  // namespace websession
