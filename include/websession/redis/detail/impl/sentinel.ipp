// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/sentinel.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_SENTINEL_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_SENTINEL_IPP

#include <websession/redis/detail/sentinel.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>

namespace websession::redis::detail {

WEBSESSION_DECL sentinel_resolver::sentinel_resolver(const sentinel_config& sc)
    : sc_(sc), quorum_(std::max<std::size_t>(sc.quorum, 1)) {}

WEBSESSION_DECL request sentinel_resolver::authenticated() const {
  request q;
  if (!sc_.password.empty()) {
    if (sc_.username.empty()) {
      q.push("AUTH", sc_.password);
    } else {
      q.push("AUTH", sc_.username, sc_.password);
    }
  }
  return q;
}

WEBSESSION_DECL request sentinel_resolver::query() const {
  request q = authenticated();
  q.push("SENTINEL", "get-master-addr-by-name", sc_.master_name);
  return q;
}

WEBSESSION_DECL request sentinel_resolver::subscription() const {
  request q = authenticated();
  q.push("SUBSCRIBE", "+switch-master");
  return q;
}

WEBSESSION_DECL std::string sentinel_resolver::name(std::size_t i) const {
  const address& at = sc_.sentinels.at(i);
  return "sentinel " + at.host + ":" + std::to_string(at.port);
}

WEBSESSION_DECL void sentinel_resolver::begin_round() {
  asked_ = 0;
  decided_ = ended_ = unknown_ = false;
  votes_.clear();
  failures_.clear();
}

WEBSESSION_DECL std::optional<std::size_t> sentinel_resolver::next() {
  if (decided_ || ended_ || asked_ >= sc_.sentinels.size()) return std::nullopt;
  return (first_ + asked_++) % sc_.sentinels.size();
}

WEBSESSION_DECL void sentinel_resolver::fail(const std::string& message) {
  failures_ += (failures_.empty() ? "" : "; ") + message;
}

WEBSESSION_DECL bool sentinel_resolver::on_answer(std::size_t i,
                                                  const std::vector<reply>& replies) {
  const std::string who = name(i);
  if (replies.size() != auths() + 1) {
    fail(who + " answered an unexpected number of replies");
    return false;
  }
  if (auths() > 0 && replies.front().is_error()) {
    fail(who + " refused AUTH: " + replies.front().str);
    return false;
  }
  const reply& r = replies.back();
  const sentinel_answer a = parse_master_addr(r);
  if (a.type == sentinel_answer::kind::unknown_name) {
    unknown_ = true;
    fail(who + " does not know master '" + sc_.master_name + "'");
    return false;
  }
  if (a.type != sentinel_answer::kind::master) {
    fail(who + " answered " + (r.is_error() ? r.str : "an unexpected reply"));
    return false;
  }
  auto it = std::find_if(votes_.begin(), votes_.end(),
                         [&](const auto& v) { return v.first == a.master; });
  if (it == votes_.end()) it = votes_.insert(votes_.end(), {a.master, {}});
  it->second.push_back(i);
  if (it->second.size() < quorum_) {
    fail(who + " names " + a.master.host + ":" + std::to_string(a.master.port));
    return false;
  }
  decided_ = true;
  master_ = a.master;
  first_ = it->second.front();
  return true;
}

WEBSESSION_DECL void sentinel_resolver::on_failure(std::size_t i, const std::string& message) {
  fail(name(i) + ": " + message);
}

WEBSESSION_DECL void sentinel_resolver::on_expired(std::size_t i) {
  // A sentinel that swallows packets ate the attempt: start with the next one next time.
  first_ = (i + 1) % sc_.sentinels.size();
  ended_ = true;
}

WEBSESSION_DECL sentinel_resolver::outcome sentinel_resolver::failure() const {
  if (quorum_ > 1 && !votes_.empty()) {
    return {make_error_code(client_error::no_quorum),
            "fewer than " + std::to_string(quorum_) + " sentinels agree on master '" +
                sc_.master_name + "': " + failures_};
  }
  if (unknown_) {
    return {make_error_code(client_error::unknown_master),
            "the sentinels do not know master '" + sc_.master_name + "': " + failures_};
  }
  return {make_error_code(client_error::no_sentinel),
          "no sentinel told the master's address: " + failures_};
}

WEBSESSION_DECL address sentinel_resolver::settle(const address& named) {
  if (!announced_) return named;
  if (quorum_ > 1) {
    announced_.reset();  // only a quorum of sentinels moves us
    return named;
  }
  if (named == announced_->from) return announced_->to;
  if (!(named == announced_->to)) announced_.reset();  // the sentinels have moved on since
  return named;
}

WEBSESSION_DECL void sentinel_resolver::connect_failed(const address& target) {
  if (announced_ && target == announced_->to) announced_.reset();
}

WEBSESSION_DECL std::optional<master_switch> sentinel_resolver::take_announcement() {
  auto s = std::move(announced_);
  announced_.reset();
  return s;
}

WEBSESSION_DECL const address& sentinel_resolver::watch_target(std::size_t k) const {
  return sc_.sentinels[(first_ + k) % sc_.sentinels.size()];
}

WEBSESSION_DECL boost::asio::awaitable<sentinel_resolver::outcome> ask_sentinels(
    side_channel& ch, sentinel_resolver& r, std::function<bool()> give_up,
    std::function<bool()> expired) {
  using outcome = sentinel_resolver::outcome;
  const request q = r.query();
  r.begin_round();
  const std::string no_name;  // not a braced temporary inside co_await (GCC 12)
  while (auto i = r.next()) {
    auto [ec, message] = co_await ch.connect(r.sentinel(*i), no_name);
    if (!ec) {
      auto [xec, replies] = co_await ch.exchange(q);
      if (xec) {
        r.on_failure(*i, xec.message());
      } else if (r.on_answer(*i, replies)) {
        ch.close();
        co_return outcome{};
      }
    } else {
      r.on_failure(*i, message);
    }
    ch.close();
    if (give_up()) co_return outcome{boost::asio::error::operation_aborted, "stopped"};
    if (expired()) r.on_expired(*i);
  }
  co_return r.failure();
}

}  // namespace websession::redis::detail

#endif
