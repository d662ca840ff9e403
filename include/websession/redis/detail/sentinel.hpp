// SPDX-License-Identifier: BSL-1.0
// Finding the master through Redis Sentinel: which sentinel to ask next, what their answers
// add up to (the first answer, or a quorum of agreeing sentinels), and what a +switch-master
// announcement changes; pure. Plus one coroutine that asks them over a side channel.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/sentinel_protocol.hpp>
#include <websession/redis/detail/side_channel.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace websession::redis::detail {

/// The pure part of Sentinel support, for one connection. Not thread safe (the connection's
/// strand).
///
/// A round asks the sentinels in order, starting with the one that answered last time. With
/// quorum 1 the first sentinel that names a master decides. With quorum N, the round goes on
/// until N sentinels named the same master (that master wins; the first of them is asked first
/// next time), and fails with client_error::no_quorum when the sentinels are exhausted first.
class sentinel_resolver {
 public:
  using error_code = boost::system::error_code;
  using outcome = std::pair<error_code, std::string>;

  explicit sentinel_resolver(const sentinel_config& sc);

  /// AUTH (when the sentinels have a password), then SENTINEL get-master-addr-by-name.
  request query() const;
  /// AUTH (as above), then SUBSCRIBE +switch-master; and how many replies come before the
  /// messages (AUTH's +OK and the subscribe confirmation).
  request subscription() const;
  std::size_t subscription_acks() const noexcept { return auths() + 1; }

  /// Starts a round of asking.
  void begin_round();
  /// The sentinel to ask next in this round; nullopt when every one was asked (or decided).
  std::optional<std::size_t> next();
  /// The replies of query() from sentinel `i`; true when the round is decided (master()).
  bool on_answer(std::size_t i, const std::vector<reply>& replies);
  /// Sentinel `i` could not be asked (connect, TLS, read failure): `message` says why.
  void on_failure(std::size_t i, const std::string& message);
  /// The attempt's time ran out while sentinel `i` was asked: it is asked last next time, and
  /// the round ends.
  void on_expired(std::size_t i);
  /// The decided master.
  const address& master() const noexcept { return master_; }
  /// Why the round ended without a master (no_sentinel, unknown_master or no_quorum).
  outcome failure() const;

  /// A sentinel announced a failover: followed when the next connection is made (see settle).
  void announce(const master_switch& s) { announced_ = s; }
  /// The master to connect to, given the one the sentinels named. A sentinel that has not
  /// caught up with an announced failover names the master it left, which may still say ROLE
  /// master: the announcement wins, unless a quorum is required (then only sentinels decide).
  address settle(const address& named);
  /// A connect to `target` failed: an announcement naming it is forgotten (it may have been
  /// demoted since, by a failover whose announcement we missed).
  void connect_failed(const address& target);
  /// The announcement still pending once connected (to compare with the master reached).
  std::optional<master_switch> take_announcement();
  bool has_announcement() const noexcept { return announced_.has_value(); }

  /// The sentinel the watcher should try for its `k`-th attempt.
  const address& watch_target(std::size_t k) const;
  std::size_t size() const noexcept { return sc_.sentinels.size(); }
  const address& sentinel(std::size_t i) const { return sc_.sentinels.at(i); }
  std::string name(std::size_t i) const;

 private:
  std::size_t auths() const noexcept { return sc_.password.empty() ? 0 : 1; }
  request authenticated() const;  // AUTH for the sentinels, or nothing
  void fail(const std::string& message);

  const sentinel_config& sc_;
  std::size_t quorum_;
  std::size_t first_ = 0;  // the sentinel to ask first
  std::size_t asked_ = 0;  // in this round
  bool decided_ = false;
  bool ended_ = false;
  bool unknown_ = false;
  address master_;
  std::vector<std::pair<address, std::vector<std::size_t>>> votes_;
  std::string failures_;
  std::optional<master_switch> announced_;
};

/// One round of asking over `ch`: the master (resolver.master()) or the round's failure.
/// `give_up()` is checked after each sentinel (stopped); `expired()` says the attempt's timer
/// closed the channel.
boost::asio::awaitable<sentinel_resolver::outcome> ask_sentinels(side_channel& ch,
                                                                 sentinel_resolver& r,
                                                                 std::function<bool()> give_up,
                                                                 std::function<bool()> expired);

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/sentinel.ipp>
#endif
