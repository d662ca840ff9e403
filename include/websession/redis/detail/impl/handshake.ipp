// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/handshake.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_HANDSHAKE_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_HANDSHAKE_IPP

#include <websession/redis/detail/handshake.hpp>
#include <websession/redis/detail/sentinel_protocol.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string_view>

namespace websession::redis::detail {

WEBSESSION_DECL request handshake::probe_request() {
  request r;
  r.push("ROLE");
  return r;
}

WEBSESSION_DECL std::pair<handshake::probe_result, handshake::outcome> handshake::check_probe(
    const reply& r, const std::string& where) const {
  if (r.is_error()) {
    const std::string_view text(r.str);
    if (text.starts_with("NOAUTH")) return {probe_result::needs_auth, {}};
    return {probe_result::refused,
            {make_error_code(client_error::not_master), "ROLE failed: " + r.str}};
  }
  if (!role_is_master(r)) {
    return {probe_result::refused,
            {make_error_code(client_error::not_master),
             where + " is not a master (the sentinels will be asked again)"}};
  }
  return {probe_result::master, {}};
}

WEBSESSION_DECL request handshake::hello_request(bool role_checked) const {
  request r;
  if (!cfg_.password.empty()) {
    if (cfg_.username.empty()) {
      r.push("AUTH", cfg_.password);
    } else {
      r.push("AUTH", cfg_.username, cfg_.password);
    }
  }
  if (cfg_.database != 0) r.push("SELECT", cfg_.database);
  if (!cfg_.client_name.empty()) r.push("CLIENT", "SETNAME", cfg_.client_name);
  if (check_role_ && !role_checked) r.push("ROLE");
  if (r.empty() && !role_checked) r.push("PING");
  return r;
}

WEBSESSION_DECL handshake::outcome handshake::check_hello(const std::vector<reply>& replies,
                                                          bool role_checked,
                                                          const std::string& where) const {
  std::size_t i = 0;
  const auto check = [&](client_error e, const char* what) -> outcome {
    const reply& r = replies.at(i++);
    if (!r.is_error()) return {};
    // Whatever command met it, a refused or missing password is an AUTH problem.
    const std::string_view text(r.str);
    if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS")) {
      e = client_error::auth_failed;
    }
    return {make_error_code(e), std::string(what) + ": " + r.str};
  };
  const bool setup = !cfg_.password.empty() || cfg_.database != 0 || !cfg_.client_name.empty();
  if (!cfg_.password.empty()) {
    if (auto bad = check(client_error::auth_failed, "AUTH failed"); bad.first) return bad;
  }
  if (cfg_.database != 0) {
    if (auto bad = check(client_error::select_failed, "SELECT failed"); bad.first) return bad;
  }
  if (!cfg_.client_name.empty()) {
    if (auto bad = check(client_error::setname_failed, "CLIENT SETNAME failed"); bad.first) {
      return bad;
    }
  }
  if (check_role_ && !role_checked) {
    if (auto bad = check(client_error::not_master, "ROLE failed"); bad.first) return bad;
    if (!role_is_master(replies.at(i - 1))) {
      return {make_error_code(client_error::not_master),
              where + " is not a master (the sentinels will be asked again)"};
    }
    return {};
  }
  if (!setup && !role_checked) {
    // The PING: an error here is typically NOAUTH (the server wants a password).
    if (auto bad = check(client_error::auth_failed, "PING failed"); bad.first) return bad;
  }
  return {};
}

namespace handshake_detail {

// Writes `req` and reads exactly its replies.
inline boost::asio::awaitable<std::pair<handshake::outcome, std::vector<reply>>> exchange(
    stream& s, reader& rd, std::vector<char>& buf, const request& req, const std::string& where) {
  namespace asio = boost::asio;
  using result = std::pair<handshake::outcome, std::vector<reply>>;
  boost::system::error_code ec;
  co_await s.async_write(asio::buffer(req.payload()),
                         asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return result{{ec, "write to " + where + ": " + ec.message()}, {}};
  std::vector<reply> replies;
  while (replies.size() < req.size()) {
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return result{{ec, "read from " + where + ": " + ec.message()}, {}};
    const boost::system::error_code parse_ec = rd.feed(buf.data(), n);
    for (;;) {
      auto next = rd.next();
      if (!next || !*next) break;
      if (replies.size() == req.size()) {
        co_return result{{make_error_code(client_error::unexpected_reply),
                          where + " sent more replies than asked for"},
                         {}};
      }
      replies.push_back(std::move(**next));
    }
    if (parse_ec) {
      co_return result{{parse_ec, std::string(parse_ec == client_error::reply_too_large
                                                  ? "redis reply refused from "
                                                  : "redis protocol error from ") +
                                      where + ": " + std::string(rd.error_message())},
                       {}};
    }
  }
  co_return result{{}, std::move(replies)};
}

}  // namespace handshake_detail

WEBSESSION_DECL boost::asio::awaitable<handshake::outcome> run_handshake(
    stream& s, reader& rd, std::vector<char>& buf, const handshake& h, const std::string& where) {
  bool role_checked = false;
  if (h.probes()) {
    const request probe = handshake::probe_request();
    auto [failed, replies] = co_await handshake_detail::exchange(s, rd, buf, probe, where);
    if (failed.first) co_return failed;
    auto [verdict, why] = h.check_probe(replies.front(), where);
    if (verdict == handshake::probe_result::refused) co_return why;
    role_checked = verdict == handshake::probe_result::master;
  }
  const request hello = h.hello_request(role_checked);
  if (hello.empty()) co_return handshake::outcome{};
  auto [failed, replies] = co_await handshake_detail::exchange(s, rd, buf, hello, where);
  if (failed.first) co_return failed;
  co_return h.check_hello(replies, role_checked, where);
}

}  // namespace websession::redis::detail

#endif
