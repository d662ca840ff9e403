// SPDX-License-Identifier: BSL-1.0
// The example server: a JSON API over HTTP/1.1 (Boost.Beast, C++20 coroutines) with
// server-side sessions from websession. Visits counted exactly under concurrency, login with id
// rotation, CSRF-protected logout and "log out everywhere", a health check, an audit log, and a
// graceful stop on SIGINT/SIGTERM. `server --help` lists the options.
//
//   WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) ./server --port 8080 --insecure-cookies
//   curl -c jar -b jar localhost:8080/visits
//
// The pieces: server/config.hpp (flags and environment), server/http_server.hpp (connections),
// server/session_api.hpp (the endpoints, for any manager type), server/audit_log.hpp. This file
// chooses the store and wires them together; a store is plugged in by building its manager and
// calling serve() (see run_redis).
#include "server/audit_log.hpp"
#include "server/config.hpp"
#include "server/http_server.hpp"
#include "server/io_pool.hpp"
#include "server/passwords.hpp"
#include "server/session_api.hpp"

#include <websession/websession.hpp>

#if __has_include(<websession/store/redis.hpp>) && defined(WEBSESSION_WITH_REDIS)
#include <websession/store/fallback.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/detached.hpp>
#endif

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr int exit_config = 2;
constexpr int exit_runtime = 1;

// What every store shares: validated before any store is chosen.
struct prepared {
  example::server_config cfg;
  websession::options opts;
  asio::ip::address address;
  std::string secret;
  /// From --users; null: the demo login.
  std::shared_ptr<const example::user_table> users;
};

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  const std::string port = std::to_string(ep.port());
  return ep.address().is_v6() ? "[" + host + "]:" + port : host + ":" + port;
}

const char* healthz_text(example::healthz_details d) {
  switch (d) {
    case example::healthz_details::loopback: return "loopback";
    case example::healthz_details::always: return "always";
    case example::healthz_details::never: return "never";
  }
  return "?";
}

// Every connection is a descriptor: raises the soft RLIMIT_NOFILE (up to the hard one) so that
// --max-connections, not the descriptor limit, is what refuses connections. Short of that,
// accept fails with EMFILE and further connections wait in the listen queue: warn.
void fit_descriptor_limit(std::size_t max_connections) {
  constexpr rlim_t spare = 64;  // stdio, the acceptor, the audit log, Redis connections
  const rlim_t needed = static_cast<rlim_t>(max_connections) + spare;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed)
    return;
  rlimit raised = rl;
  raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? needed : std::min(needed, rl.rlim_max);
  if (raised.rlim_cur > rl.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  if (rl.rlim_cur < needed)
    std::cerr << "server: WARNING: --max-connections " << max_connections << " but only "
              << rl.rlim_cur << " file descriptors (ulimit -n); beyond about "
              << (rl.rlim_cur > spare ? rl.rlim_cur - spare : 0)
              << " connections, new ones wait in the listen queue" << std::endl;
}

// Session options the manager (or the cipher) refuses: a configuration error, reported before
// the server listens. Only the construction is covered, so that an invalid_argument thrown
// later, while serving, stays a runtime failure.
int invalid_configuration(const std::invalid_argument& e) {
  std::cerr << "server: invalid configuration: " << e.what() << std::endl;
  return exit_config;
}

// Runs the server on `mgr` until SIGINT or SIGTERM; returns the exit status. Works with any
// basic_session_manager; `on_stop` stops the store's background work (sweep timer, connection)
// so that the io_contexts run out of work once the connections are closed. One io_context per
// thread, each accepting and serving its own connections; the manager is shared by all of
// them (built on io_context 0, where its background work runs), and each request's session
// operations complete on the io_context of its connection.
template <class Manager>
int serve(example::io_context_pool& pool, const prepared& p, example::audit_log& audit,
          Manager& mgr, std::string store_name, std::function<void()> on_stop) {
  mgr.set_observer([&audit](const websession::session_event& e) { audit.on_session_event(e); });
  // Password checks run on threads of their own (as many as serve requests), off the I/O ones.
  std::optional<example::password_checker> passwords;
  if (p.users) passwords.emplace(p.users, p.cfg.threads);
  example::identity_options identity;
  identity.passwords = passwords ? &*passwords : nullptr;
  identity.recent_auth = p.cfg.recent_auth;
  example::session_api<Manager> api(mgr, audit, store_name, p.cfg.healthz, identity);
  example::http_limits limits;
  limits.shutdown_grace = p.cfg.shutdown_grace;
  limits.max_connections = p.cfg.max_connections;
  limits.max_connections_per_client = p.cfg.max_connections_per_client;
  example::http_server<example::session_api<Manager>> server(
      pool, tcp::endpoint(p.address, p.cfg.port), api, limits, std::move(on_stop));

  asio::signal_set signals(pool[0], SIGINT, SIGTERM);
  signals.async_wait([&server](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    std::cerr << "server: signal " << sig << ", shutting down" << std::endl;
    server.stop();
  });
  server.start();

  // Before the port is announced, so that whoever waits for it finds these lines written.
  if (p.users)
    std::cerr << "server: login checks passwords (" << p.users->size()
              << (p.users->size() == 1 ? " user" : " users") << " in --users)" << std::endl;
  else
    std::cerr << "server: demo login: any user name, no password (pass --users FILE to check "
                 "passwords)"
              << std::endl;
  // TODO(issue 27): the window is used once the manager has requires_recent_auth.
  std::cerr << "server: recent_auth=" << p.cfg.recent_auth.count() << "s" << std::endl;

  // The first and only line on stdout, for scripts and tests that started us on port 0.
  std::printf("listening on %s\n", endpoint_text(server.local_endpoint()).c_str());
  std::fflush(stdout);
  const websession::cookie_options& co = mgr.get_options().cookie;
  std::cerr << "server: store=" << store_name << " threads=" << p.cfg.threads
            << " cookie=" << co.name << (co.secure ? " (Secure)" : " (not Secure: local use only)")
            << " audit=" << (p.cfg.audit_log.empty() ? "stderr" : p.cfg.audit_log)
            << " max_connections=" << p.cfg.max_connections
            << " max_connections_per_client="
            << (limits.max_connections_per_client != 0
                    ? std::to_string(limits.max_connections_per_client)
                    : std::to_string(limits.share()) + " (loopback: no limit)")
            << " healthz_details=" << healthz_text(p.cfg.healthz) << std::endl;

  pool.run();
  std::cerr << "server: stopped (connections per thread:";
  for (const std::uint64_t n : server.connections_per_thread()) std::cerr << ' ' << n;
  std::cerr << ")" << std::endl;
  return 0;
}

int run_memory(prepared& p, example::audit_log& audit) {
  // Declared first, destroyed last: the store and its sweep must go before their io_context.
  example::io_context_pool pool(p.cfg.threads);
  std::optional<websession::session_manager> mgr;
  try {
    websession::aes_gcm_cipher cipher(p.secret);
    OPENSSL_cleanse(p.secret.data(), p.secret.size());
    // One manager and one store for every thread; the sweep runs on io_context 0.
    mgr.emplace(pool[0].get_executor(), std::move(cipher), p.opts);
  } catch (const std::invalid_argument& e) {
    return invalid_configuration(e);
  }
  // Expired sessions are dropped as new ones are written anyway; the sweep also gives their
  // memory back while the server is quiet. It is work for io_context 0 until stopped.
  websession::memory_store_sweep sweeping = mgr->get_store().start_sweep(std::chrono::minutes(1));
  return serve(pool, p, audit, *mgr, "memory", [&sweeping] { sweeping.stop(); });
}

#if __has_include(<websession/store/redis.hpp>) && defined(WEBSESSION_WITH_REDIS)
// Serves from a manager over `store` (the Redis store, alone or inside a fallback store); the
// stop cancels the `clients` after `stop_store`.
template <class Store>
int serve_redis(example::io_context_pool& pool, prepared& p, example::audit_log& audit,
                std::vector<websession::redis::client> clients, Store store,
                std::function<void()> stop_store) {
  using manager_type =
      websession::basic_session_manager<websession::json_serializer, websession::aes_gcm_cipher,
                                        Store, std::chrono::system_clock>;
  std::optional<manager_type> mgr;
  try {
    websession::aes_gcm_cipher cipher(p.secret);
    OPENSSL_cleanse(p.secret.data(), p.secret.size());
    mgr.emplace(pool[0].get_executor(), std::move(cipher), std::move(store), p.opts);
  } catch (const std::invalid_argument& e) {
    for (auto& c : clients) c.cancel();  // their run loops hold io_contexts never run now
    return invalid_configuration(e);
  }
  return serve(pool, p, audit, *mgr, "redis",
               [stop = std::move(stop_store), cs = std::move(clients)]() mutable {
                 stop();
                 for (auto& c : cs) c.cancel();
               });
}
#endif

int run_redis(prepared& p, example::audit_log& audit) {
#if __has_include(<websession/store/redis.hpp>) && defined(WEBSESSION_WITH_REDIS)
  auto cfg = websession::redis::parse_url(p.cfg.redis_url);
  if (!cfg) {
    std::cerr << "server: --redis-url / WEBSESSION_REDIS_URL: " << cfg.error().message()
              << std::endl;
    return exit_config;
  }
  // The password: from WEBSESSION_REDIS_PASSWORD or a file rather than the URL, which other
  // users see in the process list when it is given as --redis-url. Either replaces the URL's
  // password; the URL's user name stays (AUTH user password).
  if (p.cfg.redis_url_from_command_line && !cfg->password.empty())
    std::cerr << "server: WARNING: --redis-url holds a password, which other users can read in "
                 "the process list; use WEBSESSION_REDIS_PASSWORD or --redis-password-file"
              << std::endl;
  std::string password = p.cfg.redis_password;
  const char* password_source = "WEBSESSION_REDIS_PASSWORD";
  if (!p.cfg.redis_password_file.empty()) {
    password_source = "--redis-password-file";
    std::string warning;
    try {
      password = example::read_password_file(password_source, p.cfg.redis_password_file, warning);
    } catch (const example::usage_error& e) {
      std::cerr << "server: " << e.what() << std::endl;
      return exit_config;
    }
    if (!warning.empty()) std::cerr << "server: WARNING: " << warning << std::endl;
  }
  if (!password.empty()) {
    if (!cfg->password.empty())
      std::cerr << "server: the password in the Redis URL is replaced by the one from "
                << password_source << std::endl;
    cfg->password = std::move(password);
  }
  OPENSSL_cleanse(password.data(), password.size());
  OPENSSL_cleanse(p.cfg.redis_password.data(), p.cfg.redis_password.size());

  // With the memory fallback, requests fail at once while Redis is known to be down, so that
  // the fallback answers without waiting out the request timeout. Without it they wait for the
  // reconnection (up to the request timeout), which rides out a short restart.
  cfg->fail_fast_when_down = p.cfg.fallback == example::redis_fallback::memory;
  // Declared first, destroyed last: the connection and the sweep timer go before it.
  example::io_context_pool pool(p.cfg.threads);
  // One server, a Sentinel-managed master or a Cluster, as the URL says: one client (one
  // connection, or one per master) per io_context, behind one store, so that a request's Redis
  // round trip stays on its own thread (see docs/deployment.md for the measurements).
  std::vector<websession::redis::client> clients;
  try {
    for (std::size_t i = 0; i < pool.size(); ++i) clients.emplace_back(pool[i].get_executor(), *cfg);
  } catch (const std::exception& e) {
    std::cerr << "server: --redis-url / WEBSESSION_REDIS_URL: " << e.what() << std::endl;
    return exit_config;
  }
  for (auto& c : clients) {
    c.set_error_handler([&audit](const boost::system::error_code& ec, std::string_view what) {
      boost::json::object extra;
      extra["error"] = what.empty() ? ec.message() : std::string(what);
      audit.write("redis_error", {}, {}, std::move(extra));
    });
    c.async_run(asio::detached);
  }

  websession::redis_store_options ro;
  ro.wait_replicas = p.cfg.redis_wait_replicas;
  websession::redis_store redis(clients, ro);
  if (p.cfg.fallback == example::redis_fallback::none)
    return serve_redis(pool, p, audit, std::move(clients), std::move(redis), [] {});

  // Sessions survive a Redis outage in process memory (see fallback_store for what users see).
  using store_type = websession::fallback_store<websession::redis_store, websession::memory_store>;
  store_type store(std::move(redis), websession::memory_store(pool[0].get_executor()));
  store.set_observer([&audit](bool degraded, const boost::system::error_code& ec) {
    boost::json::object extra;
    if (ec) extra["error"] = ec.message();
    audit.write(degraded ? "store_degraded" : "store_recovered", {}, {}, std::move(extra));
  });
  websession::memory_store_sweep sweeping = store.secondary().start_sweep(std::chrono::minutes(1));
  return serve_redis(pool, p, audit, std::move(clients), store,
                     [&sweeping] { sweeping.stop(); });
#else
  std::cerr << "server: redis store not available in this build (it needs hiredis and "
               "WEBSESSION_WITH_REDIS); use --store memory"
            << std::endl;
  (void)p;
  (void)audit;
  return exit_config;
#endif
}

// Fills `p` from the command line and the environment; an exit status if the server must not
// start (bad configuration: 2; --help: 0).
std::optional<int> prepare(int argc, char** argv, prepared& p) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    p.cfg = example::parse_config(args);
  } catch (const example::usage_error& e) {
    std::cerr << "server: " << e.what() << "\n\n" << example::usage_text;
    return exit_config;
  }
  if (p.cfg.help) {
    std::cout << example::usage_text;
    return 0;
  }
  if (!p.cfg.hash_password_user.empty())
    return example::hash_password_command(p.cfg.hash_password_user, STDIN_FILENO, stdout,
                                          std::cerr, p.cfg.hash_iterations);
  if (!p.cfg.users_file.empty()) {
    std::string warning;
    try {
      p.users = std::make_shared<const example::user_table>(
          example::user_table::load(p.cfg.users_file, warning));
    } catch (const example::usage_error& e) {
      std::cerr << "server: " << e.what() << std::endl;
      return exit_config;
    }
    if (!warning.empty()) std::cerr << "server: WARNING: " << warning << std::endl;
  }

  try {
    p.opts = websession::options::from_env();
    if (p.cfg.insecure_cookies) {
      // Browsers and curl refuse __Host- and __Secure- cookies over plain http.
      std::string& name = p.opts.cookie.name;
      if (name.starts_with("__Host-")) name.erase(0, 7);
      else if (name.starts_with("__Secure-")) name.erase(0, 9);
      p.opts.cookie.secure = false;
      p.opts.validate();
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "server: " << e.what() << std::endl;
    return exit_config;
  }

  fit_descriptor_limit(p.cfg.max_connections);

  boost::system::error_code ec;
  p.address = asio::ip::make_address(p.cfg.address, ec);
  if (ec) {
    std::cerr << "server: --address \"" << p.cfg.address << "\" is not an IP address" << std::endl;
    return exit_config;
  }

  if (const char* s = std::getenv("WEBSESSION_SECRET"); s && *s) {
    p.secret = s;
    if (p.cfg.dev_secret)
      std::cerr << "server: --dev-secret ignored: WEBSESSION_SECRET is set" << std::endl;
  } else if (p.cfg.dev_secret) {
    p.secret.assign(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(p.secret.data()), 32) != 1) {
      std::cerr << "server: RAND_bytes failed" << std::endl;
      return exit_runtime;
    }
    std::cerr << "server: WARNING: --dev-secret: a random secret for this process only; its "
                 "sessions die with it and no other instance can read them. Set "
                 "WEBSESSION_SECRET in production."
              << std::endl;
  } else {
    std::cerr << "server: WEBSESSION_SECRET is not set (at least 32 random bytes, e.g. "
                 "$(head -c 32 /dev/urandom | base64)); for local use, pass --dev-secret"
              << std::endl;
    return exit_config;
  }
  if (p.secret.size() < websession::aes_gcm_cipher::min_secret_size) {
    std::cerr << "server: WEBSESSION_SECRET must be at least "
              << websession::aes_gcm_cipher::min_secret_size << " bytes" << std::endl;
    return exit_config;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that vanishes must be an error code on a socket, not a signal that kills us.
  std::signal(SIGPIPE, SIG_IGN);
  prepared p;
  if (const std::optional<int> status = prepare(argc, argv, p)) return *status;
  std::unique_ptr<example::audit_log> audit;
  try {
    audit = std::make_unique<example::audit_log>(p.cfg.audit_log);
  } catch (const std::exception& e) {
    std::cerr << "server: " << e.what() << std::endl;
    return exit_config;
  }
  try {
    switch (p.cfg.store) {
      case example::store_kind::memory: return run_memory(p, *audit);
      case example::store_kind::redis: return run_redis(p, *audit);
    }
  } catch (const boost::system::system_error& e) {
    // Typically bind: the address is in use or not ours.
    std::cerr << "server: " << e.what() << std::endl;
    return exit_runtime;
  } catch (const std::exception& e) {
    std::cerr << "server: " << e.what() << std::endl;
    return exit_runtime;
  }
  return exit_runtime;
}
