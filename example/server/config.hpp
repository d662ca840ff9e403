// SPDX-License-Identifier: BSL-1.0
// Command line and environment of the example server: every flag has a WEBSESSION_* variable,
// the command line wins, and anything unparsable is a usage error (exit 2), never a guess.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace example {

/// Thrown for a bad flag or variable; main prints it with the usage and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class store_kind { memory, redis };

/// What serves sessions while Redis is down (--store redis).
enum class redis_fallback {
  memory,  ///< new visitors get sessions in process memory; logins and Redis sessions get 503
  none,    ///< every request that needs a session waits for Redis (up to its request
           ///< timeout), then gets 503: for several server processes behind one balancer,
           ///< where a session in one process's memory is unknown to the others
};

/// Who gets the details of /healthz (store latency and errors, Redis topology, counters);
/// everybody else gets {"status": ...} with the same 200 or 503.
enum class healthz_details {
  loopback,  ///< clients from a loopback address (127.0.0.0/8, ::1); behind a reverse proxy
             ///< on the same host that is every client: use never there
  always,    ///< every client
  never,     ///< nobody
};

/// Whether a client connecting from `peer` gets the details of /healthz under `mode`. An
/// IPv4-mapped IPv6 address (::ffff:127.0.0.1, from a dual-stack socket) counts as its IPv4.
inline bool shows_healthz_details(healthz_details mode, const boost::asio::ip::address& peer) {
  switch (mode) {
    case healthz_details::always: return true;
    case healthz_details::never: return false;
    case healthz_details::loopback:
      if (peer.is_v6() && peer.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, peer.to_v6())
            .is_loopback();
      return peer.is_loopback();
  }
  return false;
}

/// What the server is told to do. Session options (timeouts, cookie) come from
/// websession::options::from_env() and are not duplicated here.
struct server_config {
  std::string address = "127.0.0.1";
  /// 0: the kernel picks a free port; the first stdout line tells which.
  unsigned short port = 8080;
  /// Threads, each running an io_context of its own.
  unsigned threads = 1;
  store_kind store = store_kind::memory;
  std::string redis_url = "redis://127.0.0.1:6379";
  /// redis_url came from --redis-url (visible in the process list), not from the environment.
  bool redis_url_from_command_line = false;
  /// The Redis password from WEBSESSION_REDIS_PASSWORD (empty: not set).
  std::string redis_password;
  /// A file holding the Redis password (--redis-password-file); empty: none.
  std::string redis_password_file;
  /// redis_store_options::wait_replicas: acknowledge a write once this many replicas have it.
  int redis_wait_replicas = 0;
  redis_fallback fallback = redis_fallback::memory;
  /// Empty: audit lines go to stderr.
  std::string audit_log;
  /// Plain-http local use (curl): cookie without the __Host- prefix and without Secure.
  bool insecure_cookies = false;
  /// Generate a random secret for this process instead of requiring WEBSESSION_SECRET.
  bool dev_secret = false;
  /// On SIGINT/SIGTERM, how long requests in flight may take before the server stops anyway.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(5);
  /// Connections open at once; the next one is answered 503 and closed at once.
  std::size_t max_connections = 1024;
  /// Connections open at once from one client address (IPv6: a /64); 0: an eighth of
  /// max_connections, at least 16, loopback not limited (http_limits::max_connections_per_client).
  std::size_t max_connections_per_client = 0;
  healthz_details healthz = healthz_details::loopback;
  /// The users file (--users): one "name:hash" line per user (passwords.hpp). Empty: the demo
  /// login (any user name, no password).
  std::string users_file;
  /// How recent an authentication a sensitive action needs (--recent-auth).
  std::chrono::seconds recent_auth = std::chrono::minutes(10);
  /// `server --hash-password NAME`: print NAME's users-file line for a password read on stdin,
  /// then exit; empty: serve.
  std::string hash_password_user;
  /// PBKDF2 iterations of --hash-password (passwords.hpp: default_iterations; the users file
  /// takes min_iterations to max_iterations).
  std::uint32_t hash_iterations = 600'000;
  bool help = false;
};

inline constexpr std::string_view usage_text =
    R"(usage: server [options]

Serves a JSON API with server-side sessions (websession) over HTTP/1.1.

options (each also read from the environment variable shown; the command line wins):
  --address ADDR        listen address                     WEBSESSION_ADDRESS (127.0.0.1)
  --port P              listen port, 0 picks a free one    WEBSESSION_PORT (8080)
  --threads N           threads, an io_context each        WEBSESSION_THREADS (1)
  --store memory|redis  session store                      WEBSESSION_STORE (memory)
  --redis-url URL       Redis to use with --store redis    WEBSESSION_REDIS_URL
                        (redis://127.0.0.1:6379): redis://, rediss://, a Cluster as
                        redis-cluster://host:port[,host:port...], a Sentinel-managed
                        master as redis-sentinel://host:port[,...][/db]#master-name
  --redis-wait-replicas N                                  WEBSESSION_REDIS_WAIT_REPLICAS (0)
                        acknowledge a session write only once N replicas have it
                        (WAIT), so that it survives a failover
  --redis-fallback memory|none                             WEBSESSION_REDIS_FALLBACK (memory)
                        while Redis is down: memory serves new visitors from process
                        memory (logins and sessions in Redis get 503); none waits for
                        Redis up to its timeout, then answers 503 (several processes)
  --redis-password-file FILE                               WEBSESSION_REDIS_PASSWORD_FILE
                        the Redis password (one line); or set WEBSESSION_REDIS_PASSWORD.
                        Either replaces a password in the URL, whose user name is kept; a
                        password inside --redis-url is visible in the process list
  --audit-log FILE      append audit events (JSON lines)   WEBSESSION_AUDIT_LOG (stderr)
  --insecure-cookies    cookie for plain http: no __Host-  WEBSESSION_INSECURE_COOKIES (false)
                        prefix, no Secure (local use only)
  --shutdown-grace T    time requests in flight get on a   WEBSESSION_SHUTDOWN_GRACE (5s)
                        stop (500ms, 5s; bare: seconds)
  --max-connections N   connections open at once; more     WEBSESSION_MAX_CONNECTIONS (1024)
                        are answered 503 and closed at once
  --max-connections-per-client N                           WEBSESSION_MAX_CONNECTIONS_PER_CLIENT
                        of those, open at once from one client address (IPv6: a /64);
                        0 (default): an eighth of --max-connections, at least 16,
                        loopback clients not limited; N: every address
  --healthz-details loopback|always|never                  WEBSESSION_HEALTHZ_DETAILS (loopback)
                        who gets the store, topology and counters in /healthz; the
                        others get only {"status"} with the same 200 or 503
  --users FILE          users and password hashes, one     WEBSESSION_USERS
                        name:hash line each (from --hash-password): /login and /reauth
                        check passwords. Without it, a demo login: any name, no password
  --recent-auth SECONDS how recent a login or /reauth a    WEBSESSION_RECENT_AUTH (600)
                        sensitive action needs (1 to 86400)
  --dev-secret          random secret for this process (sessions die with it)
  --hash-password NAME  read a password on stdin (one line, 1 to 1024 bytes; not echoed on a
                        terminal), print NAME's line for --users and exit
  --hash-iterations N   PBKDF2 iterations of --hash-password (600000; 100000 to 10000000)
  --help                this text

WEBSESSION_SECRET (at least 32 bytes) keys the session encryption; it is required unless
--dev-secret is given, and is read from the environment only, never from the command line
(which other users can see in the process list). Session options (WEBSESSION_IDLE_TIMEOUT,
WEBSESSION_COOKIE_*, ...) are read as websession::options::from_env() documents.

The first line on stdout is "listening on ADDRESS:PORT". SIGINT or SIGTERM stop the server:
it stops accepting, closes idle connections, lets requests in flight finish (for the shutdown
grace at most) and exits 0.
Exit status 2: bad configuration; 1: a runtime failure (e.g. the port is taken).
)";

namespace detail {

template <class Int>
Int parse_int(std::string_view what, std::string_view text, Int lo, Int hi) {
  Int n{};
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || n < lo || n > hi)
    throw usage_error(std::string(what) + ": \"" + std::string(text) + "\" is not an integer in [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return n;
}

inline bool parse_flag(std::string_view what, std::string_view text) {
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off" || text.empty()) return false;
  throw usage_error(std::string(what) + ": \"" + std::string(text) + "\" is not a boolean");
}

// "500ms", "5s", or bare seconds; at most 10 minutes.
inline std::chrono::milliseconds parse_grace(std::string_view what, std::string_view text) {
  std::string_view digits = text;
  std::uint64_t scale = 1000;
  if (digits.ends_with("ms")) {
    digits.remove_suffix(2);
    scale = 1;
  } else if (digits.ends_with("s")) {
    digits.remove_suffix(1);
  }
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size() ||
      n > 600'000 / scale)
    throw usage_error(std::string(what) + ": \"" + std::string(text) +
                      "\" is not a duration such as 500ms or 5s (at most 600s)");
  return std::chrono::milliseconds(n * scale);
}

inline healthz_details parse_healthz(std::string_view what, std::string_view text) {
  if (text == "loopback") return healthz_details::loopback;
  if (text == "always") return healthz_details::always;
  if (text == "never") return healthz_details::never;
  throw usage_error(std::string(what) + ": \"" + std::string(text) +
                    "\" is not one of loopback, always, never");
}

inline store_kind parse_store(std::string_view what, std::string_view text) {
  if (text == "memory") return store_kind::memory;
  if (text == "redis") return store_kind::redis;
  throw usage_error(std::string(what) + ": \"" + std::string(text) +
                    "\" is not a store (expected memory or redis)");
}

// Whole seconds, as a bare number, in [1, 86400].
inline std::chrono::seconds parse_seconds(std::string_view what, std::string_view text) {
  return std::chrono::seconds(parse_int<std::int64_t>(what, text, 1, 86400));
}

inline redis_fallback parse_fallback(std::string_view what, std::string_view text) {
  if (text == "memory") return redis_fallback::memory;
  if (text == "none") return redis_fallback::none;
  throw usage_error(std::string(what) + ": \"" + std::string(text) +
                    "\" is not a fallback (expected memory or none)");
}

}  // namespace detail

/// How the configuration reads the environment (tests pass their own).
using env_fn = std::function<const char*(const char*)>;

/// The configuration from `args` (without the program name) over the environment over the
/// defaults. Throws usage_error naming the flag or variable that does not parse.
inline server_config parse_config(const std::vector<std::string_view>& args,
                                  const env_fn& env = [](const char* n) { return std::getenv(n); }) {
  using detail::parse_flag;
  using detail::parse_int;
  using detail::parse_store;
  server_config c;

  if (const char* v = env("WEBSESSION_ADDRESS")) c.address = v;
  if (const char* v = env("WEBSESSION_PORT"))
    c.port = parse_int<unsigned short>("WEBSESSION_PORT", v, 0, 65535);
  if (const char* v = env("WEBSESSION_THREADS"))
    c.threads = parse_int<unsigned>("WEBSESSION_THREADS", v, 1, 256);
  if (const char* v = env("WEBSESSION_STORE")) c.store = parse_store("WEBSESSION_STORE", v);
  if (const char* v = env("WEBSESSION_REDIS_URL")) c.redis_url = v;
  if (const char* v = env("WEBSESSION_REDIS_PASSWORD")) c.redis_password = v;
  if (const char* v = env("WEBSESSION_REDIS_PASSWORD_FILE")) c.redis_password_file = v;
  if (const char* v = env("WEBSESSION_REDIS_WAIT_REPLICAS"))
    c.redis_wait_replicas = parse_int<int>("WEBSESSION_REDIS_WAIT_REPLICAS", v, 0, 16);
  if (const char* v = env("WEBSESSION_REDIS_FALLBACK"))
    c.fallback = detail::parse_fallback("WEBSESSION_REDIS_FALLBACK", v);
  if (const char* v = env("WEBSESSION_AUDIT_LOG")) c.audit_log = v;
  if (const char* v = env("WEBSESSION_INSECURE_COOKIES"))
    c.insecure_cookies = parse_flag("WEBSESSION_INSECURE_COOKIES", v);
  if (const char* v = env("WEBSESSION_SHUTDOWN_GRACE"))
    c.shutdown_grace = detail::parse_grace("WEBSESSION_SHUTDOWN_GRACE", v);
  if (const char* v = env("WEBSESSION_MAX_CONNECTIONS"))
    c.max_connections = parse_int<std::size_t>("WEBSESSION_MAX_CONNECTIONS", v, 1, 1'000'000);
  if (const char* v = env("WEBSESSION_MAX_CONNECTIONS_PER_CLIENT"))
    c.max_connections_per_client =
        parse_int<std::size_t>("WEBSESSION_MAX_CONNECTIONS_PER_CLIENT", v, 0, 1'000'000);
  if (const char* v = env("WEBSESSION_HEALTHZ_DETAILS"))
    c.healthz = detail::parse_healthz("WEBSESSION_HEALTHZ_DETAILS", v);
  if (const char* v = env("WEBSESSION_USERS")) c.users_file = v;
  if (const char* v = env("WEBSESSION_RECENT_AUTH"))
    c.recent_auth = detail::parse_seconds("WEBSESSION_RECENT_AUTH", v);

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw usage_error(std::string(arg) + " needs a value");
      return args[++i];
    };
    const auto no_value = [&] {
      if (inline_value) throw usage_error(std::string(arg) + " takes no value");
    };
    if (arg == "--address") c.address = value();
    else if (arg == "--port") c.port = parse_int<unsigned short>("--port", value(), 0, 65535);
    else if (arg == "--threads") c.threads = parse_int<unsigned>("--threads", value(), 1, 256);
    else if (arg == "--store") c.store = parse_store("--store", value());
    else if (arg == "--redis-url") {
      c.redis_url = value();
      c.redis_url_from_command_line = true;
    }
    else if (arg == "--redis-password-file") c.redis_password_file = value();
    else if (arg == "--max-connections")
      c.max_connections = parse_int<std::size_t>("--max-connections", value(), 1, 1'000'000);
    else if (arg == "--max-connections-per-client")
      c.max_connections_per_client =
          parse_int<std::size_t>("--max-connections-per-client", value(), 0, 1'000'000);
    else if (arg == "--healthz-details")
      c.healthz = detail::parse_healthz("--healthz-details", value());
    else if (arg == "--redis-wait-replicas")
      c.redis_wait_replicas = parse_int<int>("--redis-wait-replicas", value(), 0, 16);
    else if (arg == "--redis-fallback")
      c.fallback = detail::parse_fallback("--redis-fallback", value());
    else if (arg == "--audit-log") c.audit_log = value();
    else if (arg == "--shutdown-grace") c.shutdown_grace = detail::parse_grace("--shutdown-grace", value());
    else if (arg == "--users") c.users_file = value();
    else if (arg == "--recent-auth") c.recent_auth = detail::parse_seconds("--recent-auth", value());
    else if (arg == "--hash-password") {
      c.hash_password_user = value();
      if (c.hash_password_user.empty()) throw usage_error("--hash-password needs a user name");
    }
    else if (arg == "--hash-iterations")
      c.hash_iterations = parse_int<std::uint32_t>("--hash-iterations", value(), 100'000, 10'000'000);
    else if (arg == "--insecure-cookies") { no_value(); c.insecure_cookies = true; }
    else if (arg == "--dev-secret") { no_value(); c.dev_secret = true; }
    else if (arg == "--help" || arg == "-h") { no_value(); c.help = true; }
    else throw usage_error("unknown argument \"" + std::string(arg) + "\"");
  }
  if (c.address.empty()) throw usage_error("--address must not be empty");
  if (!c.redis_password.empty() && !c.redis_password_file.empty())
    throw usage_error("WEBSESSION_REDIS_PASSWORD and --redis-password-file / "
                      "WEBSESSION_REDIS_PASSWORD_FILE both give the Redis password: keep one");
  return c;
}

/// The first `max_size` + 1 bytes of `path`, or all of it if shorter: a result longer than
/// `max_size` means the file is, which the caller reports as it sees fit. Any file but a
/// directory will do (a pipe such as <(pass show redis) too). Throws usage_error naming `what`
/// if it cannot be opened or read. `warn` is set when the file is a regular file that its
/// group or others may read: for files holding secrets.
inline std::string read_bounded_file(std::string_view what, const std::string& path,
                                     std::size_t max_size, std::string& warn) {
  const auto fail = [&](const std::string& why) {
    return usage_error(std::string(what) + " \"" + path + "\": " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::strerror(errno));
  struct ::stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw fail("not a file");
  }
  if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
    warn = std::string(what) + " \"" + path +
           "\" may be read by its group or others (chmod 600 it)";
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw fail(std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_size) {
      text.resize(max_size + 1);
      break;
    }
  }
  ::close(fd);
  return text;
}

/// The password in `path`: its first line (a trailing \n or \r\n is dropped), at most 4 KB,
/// not empty, with no other line break or NUL. Throws usage_error naming `what`. `warn` as
/// read_bounded_file.
inline std::string read_password_file(std::string_view what, const std::string& path,
                                      std::string& warn) {
  constexpr std::size_t max_size = 4096;
  const auto fail = [&](const std::string& why) {
    return usage_error(std::string(what) + " \"" + path + "\": " + why);
  };
  std::string text = read_bounded_file(what, path, max_size + 2, warn);
  if (text.ends_with('\n')) text.pop_back();
  if (text.ends_with('\r')) text.pop_back();
  if (text.size() > max_size) throw fail("longer than 4096 bytes");
  if (text.empty()) throw fail("empty");
  if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    throw fail("more than one line (or a NUL byte)");
  return text;
}

}  // namespace example
