// SPDX-License-Identifier: BSL-1.0
// A plain Boost.Beast coroutine HTTP server of the example server's shape, without sessions:
// the compile-time baseline a websession TU is compared with.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <string>
namespace asio = boost::asio; namespace beast = boost::beast; namespace http = beast::http;
using tcp = asio::ip::tcp;
asio::awaitable<void> serve(tcp::socket sock) {
  beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    co_await http::async_read(sock, buf, req, asio::use_awaitable);
    boost::json::object o; o["views"] = req.target().size();
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = boost::json::serialize(o); res.prepare_payload();
    co_await http::async_write(sock, res, asio::use_awaitable);
    if (!req.keep_alive()) break;
  }
}
asio::awaitable<void> listen(tcp::acceptor acc) {
  for (;;) asio::co_spawn(acc.get_executor(), serve(co_await acc.async_accept(asio::use_awaitable)), asio::detached);
}
int main() {
  asio::io_context ioc;
  asio::co_spawn(ioc, listen(tcp::acceptor(ioc, {tcp::v4(), 8080})), asio::detached);
  ioc.run();
}
