// SPDX-License-Identifier: BSL-1.0
// The smallest complete program with websession: create a session, store data in it, load it
// back by its cookie value, rotate its id at login, and destroy it at logout.
//
//   WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) ./quickstart
//   ./quickstart --dev-secret     # a random secret for this run only, with a warning
//
// Without either it exits 2: there is no built-in secret to fall back to.
#include <websession/websession.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

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
}

int main(int argc, char** argv) {
  const std::string_view usage = "usage: quickstart [--dev-secret]\n";
  bool dev_secret = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--dev-secret") {
      dev_secret = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "quickstart: unknown argument \"" << arg << "\"\n" << usage;
      return 2;
    }
  }

  // In production the secret comes from your secret store (at least 32 bytes), never from the
  // program: a secret in the source is a secret everyone has.
  std::string key;
  if (const char* secret = std::getenv("WEBSESSION_SECRET"); secret && *secret) {
    key = secret;
    if (dev_secret) std::cerr << "quickstart: --dev-secret ignored: WEBSESSION_SECRET is set\n";
  } else if (dev_secret) {
    key.assign(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32) != 1) {
      std::cerr << "quickstart: RAND_bytes failed\n";
      return 1;
    }
    std::cerr << "quickstart: WARNING: --dev-secret: using a random secret for this run only; "
                 "nothing encrypted with it can be read after the process exits. Set "
                 "WEBSESSION_SECRET for anything real.\n";
  } else {
    std::cerr << "quickstart: WEBSESSION_SECRET is not set. Give it at least 32 random bytes, "
                 "e.g.\n  WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) "
              << argv[0] << "\nor pass --dev-secret for a throwaway secret for this run.\n";
    return 2;
  }

  asio::io_context ioc;
  std::optional<websession::session_manager> manager;
  try {
    websession::aes_gcm_cipher cipher(key);
    OPENSSL_cleanse(key.data(), key.size());
    manager.emplace(ioc.get_executor(), std::move(cipher), websession::options::from_env());
  } catch (const std::invalid_argument& e) {  // a short secret, a bad WEBSESSION_* option
    OPENSSL_cleanse(key.data(), key.size());
    std::cerr << "quickstart: " << e.what() << "\n";
    return 2;
  }
  websession::session_manager& sessions = *manager;
  asio::co_spawn(ioc, demo(sessions), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc.run();
  auto st = sessions.stats();
  std::cout << "stats    created=" << st.created << " loaded=" << st.loaded
            << " misses=" << st.misses << " malformed=" << st.malformed << "\n";
}
