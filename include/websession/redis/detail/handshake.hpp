// SPDX-License-Identifier: BSL-1.0
// The set-up of every connection (AUTH, SELECT, CLIENT SETNAME, and for Sentinel ROLE): the
// requests and the checks of their replies, pure; and one coroutine that runs them over a
// stream.
//
// With Sentinel, the server the sentinels named is asked ROLE before anything else, so a server
// that is not a master is refused before it receives the data credentials. Redis answers ROLE
// only to an authenticated client when the default user needs a password (NOAUTH): then, and
// only then, AUTH goes first and ROLE right behind it, as without the probe.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/stream.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <utility>
#include <vector>

namespace websession::redis::detail {

/// The requests and checks of one connection's set-up.
class handshake {
 public:
  using error_code = boost::system::error_code;
  using outcome = std::pair<error_code, std::string>;

  /// What the ROLE probe (Sentinel) said.
  enum class probe_result : unsigned char {
    master,      // go on with the credentials (no second ROLE)
    needs_auth,  // NOAUTH: credentials first, ROLE behind them
    refused,     // not a master, or an error: nothing more is sent
  };

  /// `check_role`: a Sentinel deployment (the server must say ROLE master).
  handshake(const config& cfg, bool check_role) : cfg_(cfg), check_role_(check_role) {}

  /// Whether a ROLE probe goes first (Sentinel).
  bool probes() const noexcept { return check_role_; }
  /// `ROLE`, alone.
  static request probe_request();
  /// The verdict on the probe's reply; `where` names the server in the message.
  std::pair<probe_result, outcome> check_probe(const reply& r, const std::string& where) const;

  /// The commands replayed on every connect: AUTH, SELECT, CLIENT SETNAME as configured, ROLE
  /// when the role is still to be checked. Never empty unless the probe already proved a
  /// master and there is nothing to set up: with nothing to set up, a PING proves the server
  /// answers (and does not want a password) before the connection is declared up.
  request hello_request(bool role_checked) const;
  /// Maps the first error reply of hello_request(role_checked) to its command.
  outcome check_hello(const std::vector<reply>& replies, bool role_checked,
                      const std::string& where) const;

 private:
  const config& cfg_;
  bool check_role_;
};

/// Runs the set-up over a connected stream, reading with `rd` (at a reply boundary after
/// success) through `buf`. Errors: the stream's, the parser's, or the handshake's checks.
boost::asio::awaitable<handshake::outcome> run_handshake(stream& s, reader& rd,
                                                         std::vector<char>& buf,
                                                         const handshake& h,
                                                         const std::string& where);

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/handshake.ipp>
#endif
