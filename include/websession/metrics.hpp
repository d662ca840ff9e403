// SPDX-License-Identifier: BSL-1.0
// A session manager's counters, described once (Boost.Describe) so that JSON output
// (boost::json::value_from), the example's /healthz and exporters enumerate them instead of
// copying their names; and the storage the manager counts in, separate from the snapshot type so
// that it can be replaced (per-thread counters) without touching either the manager or its users.
#pragma once

#include <boost/describe/class.hpp>
#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace websession {

/// Counters of a manager since its construction; a snapshot from basic_session_manager::stats().
/// Every member is described (BOOST_DESCRIBE_STRUCT below): enumerate them with
/// boost::describe::describe_members<session_stats, boost::describe::mod_public>, or turn a
/// snapshot into a JSON object with boost::json::value_from (one member per counter, by name).
struct session_stats {
  std::uint64_t created = 0;       ///< sessions first written to the store
  std::uint64_t loaded = 0;        ///< loads that found a live session (hits)
  std::uint64_t misses = 0;        ///< loads of an id the store does not hold
  std::uint64_t expired = 0;       ///< loads of a session past a deadline
  std::uint64_t tampered = 0;      ///< stored values that failed authentication
  std::uint64_t malformed = 0;     ///< malformed cookie values or stored values
  std::uint64_t saved = 0;         ///< writes of changed sessions
  std::uint64_t touched = 0;       ///< writes that only refreshed the idle deadline
  std::uint64_t conflicts = 0;     ///< saves refused because another save won
  std::uint64_t rotated = 0;       ///< id rotations
  std::uint64_t destroyed = 0;     ///< sessions destroyed (one by one or per user)
  std::uint64_t store_errors = 0;  ///< store failures (unavailable, timeout, capacity)
  std::uint64_t evicted = 0;       ///< sessions destroyed by max_sessions_per_user
  std::uint64_t revoked = 0;       ///< loads refused: sealed before the user's valid-after time

  friend bool operator==(const session_stats&, const session_stats&) = default;
};

BOOST_DESCRIBE_STRUCT(session_stats, (),
                      (created, loaded, misses, expired, tampered, malformed, saved, touched,
                       conflicts, rotated, destroyed, store_errors, evicted, revoked))

namespace detail {

// The described public members of Stats, in order.
template <class Stats>
using stats_members = boost::describe::describe_members<Stats, boost::describe::mod_public>;

// The position of `Member` among Stats's described members (compile time).
template <class Stats, auto Member>
constexpr std::size_t stats_index() {
  std::size_t index = 0;
  std::size_t found = boost::mp11::mp_size<stats_members<Stats>>::value;
  boost::mp11::mp_for_each<stats_members<Stats>>([&](auto d) {
    if constexpr (std::is_same_v<std::remove_const_t<decltype(d.pointer)>, decltype(Member)>) {
      if (d.pointer == Member) found = index;
    }
    ++index;
  });
  return found;
}

/// The live counters behind a Stats snapshot (a described struct of std::uint64_t members):
/// one relaxed atomic per member. add<&Stats::x>() from any thread; snapshot() reads each
/// counter once (the snapshot is not atomic across counters). This is the storage a manager
/// counts in; another storage (per-thread cells summed by snapshot()) fits behind the same two
/// calls.
template <class Stats>
class atomic_counters {
 public:
  static constexpr std::size_t size = boost::mp11::mp_size<stats_members<Stats>>::value;

  template <auto Member>
  void add(std::uint64_t n = 1) noexcept {
    constexpr std::size_t i = stats_index<Stats, Member>();
    static_assert(i < size, "not a described member of the stats struct");
    cells_[i].fetch_add(n, std::memory_order_relaxed);
  }

  Stats snapshot() const noexcept {
    Stats s{};
    std::size_t i = 0;
    boost::mp11::mp_for_each<stats_members<Stats>>([&](auto d) {
      static_assert(std::is_same_v<std::remove_cvref_t<decltype(s.*d.pointer)>, std::uint64_t>,
                    "every described member of a stats struct is a std::uint64_t counter");
      s.*d.pointer = cells_[i++].load(std::memory_order_relaxed);
    });
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, size> cells_{};
};

}  // namespace detail
}  // namespace websession
