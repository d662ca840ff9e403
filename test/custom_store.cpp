// SPDX-License-Identifier: BSL-1.0
// The store that docs/writing-a-store.md walks through: a std::map behind one mutex, with
// explicit version checks and TTLs read from a clock, and the conformance kit run on it.
// Small on purpose; not a replacement for memory_store (no capacity bounds, no sweep, no
// per-user index: the per-user operations scan the whole map).
#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/error.hpp>
#include <websession/testing/store_conformance.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace example {

using websession::awaitable;
using websession::error;
using websession::result;
using websession::store_record;
using websession::store_write;

template <websession::clock Clock = std::chrono::system_clock>
class map_store {
 public:
  explicit map_store(Clock clock = {}) : state_(std::make_shared<state>(std::move(clock))) {}

  // ---- one key --------------------------------------------------------------------------

  awaitable<result<store_record>> load(std::string_view key) {
    std::lock_guard lock(state_->mutex);
    const entry* e = state_->find_live(key);
    if (!e) co_return make_error_code(error::not_found);
    co_return store_record{e->value, e->version};
  }

  awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    std::lock_guard lock(state_->mutex);
    if (state_->find_live(key)) co_return make_error_code(error::conflict);
    state_->entries.insert_or_assign(std::string(key), state_->make_entry(w, 1));
    co_return std::uint64_t{1};
  }

  awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                           std::uint64_t version) {
    std::lock_guard lock(state_->mutex);
    entry* e = state_->find_live(key);
    if (!e) co_return make_error_code(error::not_found);
    if (e->version != version) co_return make_error_code(error::conflict);
    *e = state_->make_entry(w, version + 1);
    co_return version + 1;
  }

  // Every check comes before the first change, all under one lock: the rotation happens
  // entirely or not at all, and nobody sees the value under both keys or under neither.
  awaitable<result<std::uint64_t>> rotate(std::string_view old_key, std::string_view new_key,
                                          store_write w, std::uint64_t version) {
    std::lock_guard lock(state_->mutex);
    entry* e = state_->find_live(old_key);
    if (!e) co_return make_error_code(error::not_found);
    if (e->version != version) co_return make_error_code(error::conflict);
    if (state_->find_live(new_key)) co_return make_error_code(error::conflict);
    state_->entries.erase(state_->entries.find(old_key));
    state_->entries.insert_or_assign(std::string(new_key), state_->make_entry(w, version + 1));
    co_return version + 1;
  }

  awaitable<result<bool>> erase(std::string_view key) {
    std::lock_guard lock(state_->mutex);
    if (!state_->find_live(key)) co_return false;
    state_->entries.erase(state_->entries.find(key));
    co_return true;
  }

  // The binding is checked and the key erased under the same lock: a key that is rebound to
  // someone else meanwhile is never erased on the old user's behalf.
  awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    std::lock_guard lock(state_->mutex);
    const entry* e = state_->find_live(key);
    if (!e || e->user != user) co_return false;
    state_->entries.erase(state_->entries.find(key));
    co_return true;
  }

  // ---- one user -------------------------------------------------------------------------

  awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    std::lock_guard lock(state_->mutex);
    std::vector<std::string> erased;
    const auto now = state_->clock.now();
    for (auto it = state_->entries.begin(); it != state_->entries.end();) {
      const bool live = it->second.expires > now;
      if (live && it->second.user == user) erased.push_back(it->first);
      if (!live || it->second.user == user) it = state_->entries.erase(it);
      else ++it;
    }
    co_return erased;
  }

  awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    std::lock_guard lock(state_->mutex);
    std::vector<std::string> keys;
    const auto now = state_->clock.now();
    for (const auto& [key, e] : state_->entries)
      if (e.expires > now && e.user == user) keys.push_back(key);
    co_return keys;
  }

  awaitable<boost::system::error_code> ping() { co_return boost::system::error_code{}; }

 private:
  struct entry {
    std::string value;
    std::uint64_t version = 0;
    std::string user;
    websession::time_point expires;
  };

  struct state {
    explicit state(Clock c) : clock(std::move(c)) {}

    std::mutex mutex;
    Clock clock;
    std::map<std::string, entry, std::less<>> entries;

    // The entry under `key` if it has not expired (an expired one is dropped here: to every
    // caller it is as good as gone), else nullptr. Called with the mutex held.
    entry* find_live(std::string_view key) {
      auto it = entries.find(key);
      if (it == entries.end()) return nullptr;
      if (it->second.expires <= clock.now()) {
        entries.erase(it);
        return nullptr;
      }
      return &it->second;
    }

    entry make_entry(const store_write& w, std::uint64_t version) const {
      const websession::time_point now = clock.now();
      // A TTL too long for the clock's range (milliseconds::max()) means "never".
      const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(
          websession::time_point::max() - now);
      const websession::time_point expires =
          w.ttl >= room ? websession::time_point::max() : now + w.ttl;
      return entry{std::string(w.value), version, std::string(w.user), expires};
    }
  };

  // Copies of the store share one state: a store object is a handle.
  std::shared_ptr<state> state_;
};

static_assert(websession::session_store<map_store<>>);

}  // namespace example

// The kit gets a fresh store per case; the store reads time from the kit's manual clock, so
// the TTL cases move the clock instead of sleeping.
namespace {

struct map_store_traits {
  using store_type = example::map_store<websession::manual_clock>;
  static store_type make_store(boost::asio::any_io_executor, websession::manual_clock clock) {
    return store_type(clock);
  }
};

}  // namespace

WEBSESSION_STORE_CONFORMANCE_TESTS(map_store_conformance, map_store_traits)
