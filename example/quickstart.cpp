// The smallest complete program with websession: create a session, store data in it, load it
// back by its cookie value, rotate its id at login, and destroy it at logout.
#include <websession/websession.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <iostream>

namespace asio = boost::asio;

asio::awaitable<void> demo(websession::session_manager& sessions) {
  // A new visitor: a fresh session, stored encrypted in the in-process store.
  websession::session s = co_await sessions.async_create(asio::use_awaitable);
  s.set("cart", boost::json::array{"book", "pen"});
  co_await sessions.async_save(s, asio::use_awaitable);
  const std::string cookie = s.id();  // what goes into Set-Cookie
  std::cout << "created  " << cookie << " (stored as " << s.storage_key() << ")\n";

  // The next request brings the cookie back.
  websession::session again = co_await sessions.async_load(cookie, asio::use_awaitable);
  std::cout << "loaded   cart=" << boost::json::serialize(*again.get("cart")) << "\n";

  // Login: bind the user and rotate the id (the old cookie stops working at once).
  sessions.bind_user(again, "ada");
  co_await sessions.async_rotate(again, asio::use_awaitable);
  auto [old_ec, old_session] = co_await sessions.async_load(cookie, asio::as_tuple(asio::use_awaitable));
  std::cout << "rotated  old cookie -> " << old_ec.message() << ", user=" << again.user() << "\n";

  // Logout everywhere: every session of the user ends.
  auto ended = co_await sessions.async_destroy_user("ada", asio::use_awaitable);
  std::cout << "logout   " << ended << " session(s) of ada destroyed\n";

  // Garbage in the cookie is an error code, never a crash.
  auto [bad_ec, bad_session] =
      co_await sessions.async_load("not-a-session-id", asio::as_tuple(asio::use_awaitable));
  std::cout << "garbage  -> " << bad_ec.message() << "\n";

  sessions.store().stop_sweep();  // let io_context::run() return
}

int main() {
  // In production the secret comes from your secret store (at least 32 bytes).
  const char* secret = std::getenv("WEBSESSION_SECRET");
  std::string key = secret ? secret : "quickstart-only-secret-do-not-use-in-production!";

  asio::io_context ioc;
  websession::session_manager sessions(ioc.get_executor(), websession::aes_gcm_cipher(key),
                                       websession::options::from_env());
  asio::co_spawn(ioc, demo(sessions), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc.run();
  auto st = sessions.stats();
  std::cout << "stats    created=" << st.created << " loaded=" << st.loaded
            << " misses=" << st.misses << " malformed=" << st.malformed << "\n";
}
