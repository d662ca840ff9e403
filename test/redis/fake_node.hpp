// SPDX-License-Identifier: BSL-1.0
// A scripted Redis node for the trust tests: an acceptor on a loopback address of our choice
// (127.0.0.2 and friends are loopback too), answering each command with the bytes a script
// returns, and recording what it received and who connected. Also builders of the replies a
// cluster node or a sentinel sends.
#pragma once

#include "server_fixture.hpp"

#include <websession/redis/config.hpp>
#include <websession/redis/reader.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redis_test {

class fake_node {
 public:
  /// The reply bytes for one command (its name upper-cased, then its arguments).
  using script = std::function<std::string(const std::vector<std::string>& command)>;

  fake_node(asio::io_context& ioc, const std::string& ip, script s)
      : st_(std::make_shared<state>(ioc, ip, std::move(s))) {
    asio::co_spawn(ioc, accept_loop(st_), asio::detached);
  }
  fake_node(const fake_node&) = delete;
  fake_node& operator=(const fake_node&) = delete;
  ~fake_node() { stop(); }

  websession::redis::address addr() const {
    const auto ep = st_->acceptor.local_endpoint();
    return {ep.address().to_string(), ep.port()};
  }
  int accepted() const { return st_->accepted; }
  int closed_by_client() const { return st_->closed; }
  /// Connections open right now.
  int open() const { return st_->accepted - st_->ended; }
  const std::vector<std::vector<std::string>>& commands() const { return st_->commands; }
  /// How many commands named `name` (upper case) arrived.
  int count(std::string_view name) const {
    return static_cast<int>(std::count_if(st_->commands.begin(), st_->commands.end(),
                                          [&](const auto& c) { return c.at(0) == name; }));
  }
  void set_script(script s) { st_->answer = std::move(s); }

  void stop() {
    boost::system::error_code ignored;
    st_->acceptor.close(ignored);
    for (auto& w : st_->sockets) {
      if (auto s = w.lock()) s->close(ignored);
    }
    st_->sockets.clear();
  }

 private:
  using tcp = asio::ip::tcp;
  struct state {
    state(asio::io_context& ioc, const std::string& ip, script s)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address(ip), 0)), answer(std::move(s)) {}
    tcp::acceptor acceptor;
    script answer;
    std::vector<std::weak_ptr<tcp::socket>> sockets;
    std::vector<std::vector<std::string>> commands;
    int accepted = 0;
    int closed = 0;
    int ended = 0;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    for (;;) {
      auto [ec, sock] = co_await st->acceptor.async_accept(websession::test::tuple_token);
      if (ec) co_return;
      ++st->accepted;
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      st->sockets.push_back(s);
      asio::co_spawn(st->acceptor.get_executor(), serve(st, s), asio::detached);
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<state> st, std::shared_ptr<tcp::socket> s) {
    websession::redis::reader commands;
    std::vector<char> buf(16 * 1024);
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), websession::test::tuple_token);
      if (ec) {
        if (ec == asio::error::eof || ec == asio::error::connection_reset) ++st->closed;
        break;
      }
      if (commands.feed(buf.data(), n)) break;
      std::string out;
      for (;;) {
        auto next = commands.next();
        if (!next || !*next) break;
        std::vector<std::string> cmd;
        for (const auto& e : (**next).elements) cmd.push_back(e.str);
        if (cmd.empty()) continue;
        for (char& c : cmd[0]) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        st->commands.push_back(cmd);
        out += st->answer(cmd);
      }
      if (out.empty()) continue;
      auto [wec, wn] = co_await asio::async_write(*s, asio::buffer(out), websession::test::tuple_token);
      if (wec) break;
    }
    ++st->ended;
  }

  std::shared_ptr<state> st_;
};

inline std::string resp_bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

/// One node of a CLUSTER SHARDS reply (Redis 7.0's fields).
inline std::string shards_node(const websession::redis::address& a, bool master) {
  std::string out = "*14\r\n";
  out += resp_bulk("id") + resp_bulk(std::string(40, master ? 'a' : 'b'));
  out += resp_bulk("port") + ":" + std::to_string(a.port) + "\r\n";
  out += resp_bulk("ip") + resp_bulk(a.host);
  out += resp_bulk("endpoint") + resp_bulk(a.host);
  out += resp_bulk("role") + resp_bulk(master ? "master" : "replica");
  out += resp_bulk("replication-offset") + ":1\r\n";
  out += resp_bulk("health") + resp_bulk("online");
  return out;
}

/// A CLUSTER SHARDS reply: each shard a master (slots first..last), optionally replicas.
struct fake_shard {
  fake_shard(websession::redis::address m, int f = 0, int l = 16383,
             std::vector<websession::redis::address> r = {})
      : master(std::move(m)), first(f), last(l), replicas(std::move(r)) {}
  websession::redis::address master;
  int first;
  int last;
  std::vector<websession::redis::address> replicas;
};
inline std::string shards_reply(const std::vector<fake_shard>& shards) {
  std::string out = "*" + std::to_string(shards.size()) + "\r\n";
  for (const auto& s : shards) {
    out += "*4\r\n" + resp_bulk("slots") + "*2\r\n:" + std::to_string(s.first) + "\r\n:" +
           std::to_string(s.last) + "\r\n";
    out += resp_bulk("nodes") + "*" + std::to_string(1 + s.replicas.size()) + "\r\n";
    out += shards_node(s.master, true);
    for (const auto& r : s.replicas) out += shards_node(r, false);
  }
  return out;
}

/// A cluster node's answers: CLUSTER SHARDS from `map()`, +OK to the set-up commands, and
/// `data` for everything else.
inline fake_node::script cluster_script(std::function<std::string()> map,
                                        std::function<std::string(const std::vector<std::string>&)> data) {
  return [map = std::move(map), data = std::move(data)](const std::vector<std::string>& c) {
    if (c[0] == "CLUSTER") return map();
    if (c[0] == "AUTH" || c[0] == "CLIENT" || c[0] == "ASKING") return std::string("+OK\r\n");
    if (c[0] == "PING") return std::string("+PONG\r\n");
    return data(c);
  };
}

}  // namespace redis_test
