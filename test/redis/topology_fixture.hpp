// SPDX-License-Identifier: BSL-1.0
// Test fixtures for the topology-aware Redis tests: a real Redis Cluster and a real Sentinel
// set-up on loopback, built from redis_server (server_fixture.hpp), plus the small blocking tools
// they use: a process runner with a timeout, a minimal RESP client and CLUSTER NODES parsing.
//
// Everything here blocks the calling thread (poll loops of 20 ms, every wait bounded). Every
// process is a child that dies with the test process (PR_SET_PDEATHSIG) and is stopped by PID.
#pragma once

#include "server_fixture.hpp"

#include <websession/redis/config.hpp>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace redis_test {

/// `c` with short timeouts, for riding through a failover (a request may wait `request_timeout`
/// for a new master) and for failure cases that must end well within a test's budget.
inline websession::redis::config failover_config(
    websession::redis::config c, std::chrono::milliseconds request_timeout = std::chrono::seconds(2)) {
  c.request_timeout = request_timeout;
  c.connect_timeout = std::chrono::milliseconds(500);
  c.reconnect_min = std::chrono::milliseconds(20);
  c.reconnect_max = std::chrono::milliseconds(200);
  c.health_check_interval = std::chrono::seconds(1);
  c.cluster.refresh_interval = std::chrono::seconds(1);
  return c;
}

// ------------------------------------------------------------------------------------------
// Child processes

struct process_result {
  int exit_code = -1;      // the exit status; 128 + N if killed by signal N; -1 if timed out
  bool timed_out = false;  // killed (SIGKILL, by PID) because `timeout` passed
  std::string output;      // stdout and stderr, interleaved as written
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null and collects its output. The child
// is killed if it has not finished within `timeout`, and dies with this process.
inline process_result run_process(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) {
  if (argv.empty()) throw std::invalid_argument("run_process: empty argv");
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::dup2(fds[1], 1);  // the copies lose O_CLOEXEC
    ::dup2(fds[1], 2);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  process_result r;
  bool reaped = false;
  int status = 0;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(give_up -
                                                                 std::chrono::steady_clock::now())
        .count();
  };
  try {
    char buf[4096];
    for (bool eof = false; !eof;) {
      const auto left = left_ms();
      if (left <= 0) {
        r.timed_out = true;
        break;
      }
      pollfd p{fds[0], POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno != EINTR) throw std::runtime_error("poll failed");
      if (n <= 0) continue;
      const ssize_t got = ::read(fds[0], buf, sizeof buf);
      if (got > 0) {
        r.output.append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        eof = true;
      }
    }
    // Output closed: the child is exiting (or closed its stdout and lingers: bounded as well).
    while (!r.timed_out && !reaped) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
      } else if (w < 0 && errno != EINTR) {
        throw std::runtime_error("waitpid failed");
      } else if (left_ms() <= 0) {
        r.timed_out = true;
      } else {
        std::this_thread::sleep_for(1ms);
      }
    }
  } catch (...) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::close(fds[0]);
    throw;
  }
  ::close(fds[0]);
  if (!reaped) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (r.timed_out) {
    r.exit_code = -1;
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
  }
  return r;
}

inline std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ' ';
    s += a.empty() ? std::string("''") : a;
  }
  return s;
}

// Credentials the fixtures use on their own connections to servers that want a password:
// AUTH [user] password right after connecting (resp_connection), `-a` or `--user --pass` for
// redis-cli. An empty password means no AUTH.
struct resp_auth {
  std::string user;      // empty: the default user (AUTH password)
  std::string password;  // empty: no AUTH at all

  bool empty() const noexcept { return password.empty(); }
};

// The redis-cli options for `auth` (none if it is empty); --no-auth-warning keeps the output
// free of the "using a password on the command line" warning.
inline std::vector<std::string> redis_cli_auth_args(const resp_auth& auth) {
  if (auth.empty()) return {};
  if (auth.user.empty()) return {"-a", auth.password, "--no-auth-warning"};
  return {"--user", auth.user, "--pass", auth.password, "--no-auth-warning"};
}

// Runs `redis-cli -h 127.0.0.1 -p PORT args...` and returns what it printed (stdout and stderr).
// Its stdout is a pipe, so replies come in redis-cli's raw format unless args hold "--no-raw".
// Error replies are printed, not thrown; throws only if redis-cli cannot run or times out.
// With `auth`, redis-cli authenticates first.
inline std::string redis_cli(std::uint16_t port, std::vector<std::string> args,
                             std::chrono::milliseconds timeout = 10s, const resp_auth& auth = {}) {
  const auto a = redis_cli_auth_args(auth);
  args.insert(args.begin(), a.begin(), a.end());
  args.insert(args.begin(), {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)});
  process_result r = run_process(args, timeout);
  if (r.timed_out) {
    throw std::runtime_error(join_args(args) + ": no exit within " +
                             std::to_string(timeout.count()) + " ms; output: " + r.output);
  }
  if (r.exit_code == 127) throw std::runtime_error("cannot run " + join_args(args));
  return r.output;
}

// ------------------------------------------------------------------------------------------
// A minimal blocking RESP2/RESP3 client (independent of the library under test)

struct resp_reply {
  char type = 0;  // the type byte: + - : $ * and RESP3 _ , # ! = ( % ~ >
  bool null = false;                 // $-1, *-1 or _
  std::string str;                   // string / error / verbatim ("txt:...") / number text
  long long integer = 0;             // for ':' (and the length or count of $ and *)
  std::vector<resp_reply> elements;  // array, set, push; a map as key, value, key, value...
  std::string raw;                   // the exact bytes of this reply

  bool is_error() const noexcept { return type == '-' || type == '!'; }
  bool is_array() const noexcept {
    return type == '*' || type == '~' || type == '>' || type == '%';
  }
};

namespace detail {

inline long long parse_resp_number(std::string_view s) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    throw std::runtime_error("bad RESP number: " + std::string(s));
  }
  return v;
}

// Parses one reply at in[pos...]; false (pos unchanged) if it is not complete yet.
inline bool parse_resp_at(std::string_view in, std::size_t& pos, resp_reply& out, int depth) {
  if (depth > 64) throw std::runtime_error("RESP reply nested too deeply");
  if (pos >= in.size()) return false;
  const std::size_t start = pos;
  const std::size_t eol = in.find("\r\n", pos + 1);
  if (eol == std::string_view::npos) return false;
  const std::string_view line = in.substr(pos + 1, eol - pos - 1);
  std::size_t next = eol + 2;
  resp_reply r;
  r.type = in[pos];
  switch (r.type) {
    case '+':
    case '-':
    case ',':
    case '(':
    case '#':
      r.str = std::string(line);
      break;
    case ':':
      r.str = std::string(line);
      r.integer = parse_resp_number(line);
      break;
    case '_':
      r.null = true;
      break;
    case '$':
    case '!':
    case '=': {
      r.integer = parse_resp_number(line);
      if (r.integer < 0) {
        r.null = true;
        break;
      }
      const auto len = static_cast<std::size_t>(r.integer);
      if (in.size() < next + len + 2) return false;
      if (in.substr(next + len, 2) != "\r\n") throw std::runtime_error("bad RESP bulk string");
      r.str = std::string(in.substr(next, len));
      next += len + 2;
      break;
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      r.integer = parse_resp_number(line);
      if (r.integer < 0) {
        r.null = true;
        break;
      }
      const auto count = static_cast<std::size_t>(r.integer) * (r.type == '%' || r.type == '|' ? 2 : 1);
      for (std::size_t i = 0; i < count; ++i) {
        resp_reply e;
        if (!parse_resp_at(in, next, e, depth + 1)) return false;
        r.elements.push_back(std::move(e));
      }
      if (r.type == '|') {  // attributes precede the reply they describe: skip them
        if (!parse_resp_at(in, next, r, depth + 1)) return false;
        r.raw = std::string(in.substr(start, next - start));
        out = std::move(r);
        pos = next;
        return true;
      }
      break;
    }
    default:
      throw std::runtime_error("bad RESP type byte " + std::to_string(static_cast<int>(r.type)));
  }
  r.raw = std::string(in.substr(start, next - start));
  out = std::move(r);
  pos = next;
  return true;
}

}  // namespace detail

// Parses one complete reply from the front of `in`: the number of bytes it took, or nullopt if
// `in` holds only part of a reply. Throws on malformed input.
inline std::optional<std::size_t> parse_resp(std::string_view in, resp_reply& out) {
  std::size_t pos = 0;
  if (!detail::parse_resp_at(in, pos, out, 0)) return std::nullopt;
  return pos;
}

// RESP bytes made visible: \r \n \t \\ and other control or non-ASCII bytes escaped.
inline std::string escape_resp(std::string_view bytes) {
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      s += "\\r";
    } else if (c == '\n') {
      s += "\\n";
    } else if (c == '\t') {
      s += "\\t";
    } else if (c == '\\') {
      s += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    } else {
      s += ch;
    }
  }
  return s;
}

// One blocking TCP connection to 127.0.0.1:port speaking RESP (RESP2 unless sent HELLO 3).
// With a non-empty `auth` it sends AUTH first (and throws if the server refuses it).
class resp_connection {
 public:
  explicit resp_connection(std::uint16_t port, const resp_auth& auth = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                               std::strerror(err));
    }
    if (auth.empty()) return;
    try {
      std::vector<std::string> cmd{"AUTH"};
      if (!auth.user.empty()) cmd.push_back(auth.user);
      cmd.push_back(auth.password);
      const resp_reply r = command(cmd);
      if (r.is_error()) {
        throw std::runtime_error("AUTH on 127.0.0.1:" + std::to_string(port) + ": -" + r.str);
      }
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
  resp_connection(const resp_connection&) = delete;
  resp_connection& operator=(const resp_connection&) = delete;
  ~resp_connection() { ::close(fd_); }

  static std::string encode(const std::vector<std::string>& args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return s;
  }

  void send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void send(const std::vector<std::string>& args) { send_raw(encode(args)); }

  // The next reply, or nullopt if none came within `timeout`. Throws if the server closed.
  std::optional<resp_reply> try_read(std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      resp_reply r;
      if (const auto used = parse_resp(buf_, r)) {
        buf_.erase(0, *used);
        return r;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            give_up - std::chrono::steady_clock::now())
                            .count();
      if (left < 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno != EINTR) throw std::runtime_error("poll failed");
      if (n <= 0) continue;
      char chunk[16384];
      const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got == 0) throw std::runtime_error("the server closed the connection");
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw std::runtime_error(std::string("recv failed: ") + std::strerror(errno));
      }
      buf_.append(chunk, static_cast<std::size_t>(got));
    }
  }

  resp_reply read(std::chrono::milliseconds timeout = 5s) {
    auto r = try_read(timeout);
    if (!r) throw std::runtime_error("no reply within " + std::to_string(timeout.count()) + " ms");
    return std::move(*r);
  }

  resp_reply command(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 5s) {
    send(args);
    return read(timeout);
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// One command on a fresh connection (authenticated with `auth`, if not empty).
inline resp_reply redis_command(std::uint16_t port, const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout = 5s,
                                const resp_auth& auth = {}) {
  resp_connection c(port, auth);
  return c.command(args, timeout);
}

// The same, but an error reply throws (with the port and the command in the message).
inline resp_reply redis_command_ok(std::uint16_t port, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout = 5s,
                                   const resp_auth& auth = {}) {
  resp_reply r = redis_command(port, args, timeout, auth);
  if (r.is_error()) {
    throw std::runtime_error("127.0.0.1:" + std::to_string(port) + " " + join_args(args) +
                             ": -" + r.str);
  }
  return r;
}

// The value of `name:` in INFO or CLUSTER INFO text; empty if absent.
// Whether the master on `port` streams its writes to `replicas` replicas: a write, then WAIT on
// the same connection. A replica whose link is "up" may not get anything yet: after a full sync,
// Redis 7 starts streaming only at the replica's first REPLCONF ACK (up to a second later).
inline bool streams_to_replicas(std::uint16_t port, int replicas, const resp_auth& auth = {}) {
  try {
    resp_connection c(port, auth);
    c.command({"SET", "{fixture}:sync", "1"});
    return c.command({"WAIT", std::to_string(replicas), "50"}).integer >= replicas;
  } catch (const std::exception&) {
    return false;
  }
}

inline std::string info_field(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      return std::string(line.substr(name.size() + 1));
    }
    pos = eol + 1;
  }
  return {};
}

// A flat RESP2 [field, value, field, value...] reply (SENTINEL MASTER, SENTINEL REPLICAS
// entries) as a map; nested values are left out.
inline std::map<std::string, std::string> reply_fields(const resp_reply& r) {
  std::map<std::string, std::string> m;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    m[r.elements[i].str] = r.elements[i + 1].str;
  }
  return m;
}

// ------------------------------------------------------------------------------------------
// Cluster helpers

// The cluster hash slot of a key (CRC16/XMODEM mod 16384, honouring a non-empty {hash tag}).
inline int key_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  std::uint16_t crc = 0;
  for (const char ch : key) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<unsigned char>(ch) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc & 16383;
}

// A key (prefix + a number) that hashes to `slot`. Use "{" + key + "}..." for more of them.
inline std::string key_for_slot(int slot, std::string_view prefix = "key:") {
  for (unsigned i = 0;; ++i) {
    std::string k = std::string(prefix) + std::to_string(i);
    if (key_slot(k) == slot) return k;
  }
}

// One line of CLUSTER NODES.
struct cluster_node_entry {
  std::string id;
  std::string ip;
  std::uint16_t port = 0;
  std::uint16_t bus_port = 0;
  std::string hostname;                    // after the ',' of ip:port@cport,hostname
  std::vector<std::string> flags;          // e.g. {"myself", "master"}, {"slave"}, {"master", "fail"}
  std::string master_id;                   // "-" for a master
  std::string link_state;                  // connected / disconnected
  std::vector<std::pair<int, int>> slots;  // owned ranges, inclusive ([migration] marks left out)

  bool has_flag(std::string_view f) const {
    return std::find(flags.begin(), flags.end(), f) != flags.end();
  }
  bool is_master() const { return has_flag("master"); }
  // Marked failed or suspected by the node asked, or not (yet) a full member.
  bool is_failing() const {
    return has_flag("fail") || has_flag("fail?") || has_flag("handshake") || has_flag("noaddr");
  }
};

inline std::vector<cluster_node_entry> parse_cluster_nodes(std::string_view text) {
  std::vector<cluster_node_entry> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> f;
    for (std::size_t p = 0; p < line.size();) {
      std::size_t sp = line.find(' ', p);
      if (sp == std::string_view::npos) sp = line.size();
      if (sp > p) f.push_back(line.substr(p, sp - p));
      p = sp + 1;
    }
    if (f.size() < 8) continue;
    cluster_node_entry e;
    e.id = std::string(f[0]);
    std::string_view addr = f[1];
    if (const auto comma = addr.find(','); comma != std::string_view::npos) {
      e.hostname = std::string(addr.substr(comma + 1));
      addr = addr.substr(0, comma);
    }
    if (const auto at = addr.find('@'); at != std::string_view::npos) {
      e.bus_port = static_cast<std::uint16_t>(detail::parse_resp_number(addr.substr(at + 1)));
      addr = addr.substr(0, at);
    }
    if (const auto colon = addr.rfind(':'); colon != std::string_view::npos) {
      e.ip = std::string(addr.substr(0, colon));
      e.port = static_cast<std::uint16_t>(detail::parse_resp_number(addr.substr(colon + 1)));
    }
    for (std::size_t p = 0; p <= f[2].size();) {
      std::size_t c = f[2].find(',', p);
      if (c == std::string_view::npos) c = f[2].size();
      e.flags.emplace_back(f[2].substr(p, c - p));
      p = c + 1;
    }
    e.master_id = std::string(f[3]);
    e.link_state = std::string(f[7]);
    for (std::size_t i = 8; i < f.size(); ++i) {
      if (f[i].front() == '[') continue;
      const auto dash = f[i].find('-');
      const int a = static_cast<int>(detail::parse_resp_number(f[i].substr(0, dash)));
      const int b = dash == std::string_view::npos
                        ? a
                        : static_cast<int>(detail::parse_resp_number(f[i].substr(dash + 1)));
      e.slots.emplace_back(a, b);
    }
    out.push_back(std::move(e));
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// A Redis Cluster on loopback

// PEM files for a server's TLS port (see redis_cluster::options::tls).
struct tls_files {
  std::string cert_file;  // the server's certificate (chain)
  std::string key_file;   // its private key
  std::string ca_file;    // the CA that signed it: servers verify each other's (bus, replication)

  bool enabled() const noexcept { return !cert_file.empty(); }
};

class redis_cluster {
 public:
  struct options {
    int masters = 3;              // redis-cli --cluster create needs at least 3
    int replicas_per_master = 1;
    int node_timeout_ms = 1000;   // --cluster-node-timeout
    std::vector<std::string> args;                    // extra arguments for every node
    std::chrono::milliseconds ready_timeout = 20s;    // creation until state ok and replicas synced
    // The default user's password: every node gets --requirepass and --masterauth with it (so
    // replicas authenticate to their masters), and the fixture authenticates with it on all its
    // own connections (AUTH, redis-cli -a). Empty: no password. ACL users for the client under
    // test go in `args`, e.g. {"--user", "app", "on", ">apppw", "~*", "&*", "+@all"}.
    std::string password = {};
    // If enabled: every node also listens with TLS on tls_port(i), and the cluster bus and
    // replication use TLS (--tls-cluster yes, --tls-replication yes); clients need no
    // certificate (--tls-auth-clients no). port(i) stays a plain port, which the fixture itself
    // uses. CLUSTER SHARDS then lists both "port" (plain) and "tls-port"; CLUSTER SLOTS, CLUSTER
    // NODES, MOVED and ASK name the TLS port to a TLS client and the plain one to the others.
    tls_files tls = {};
  };

  enum class migration_step { importing, migrating, keys_moved, done };

  redis_cluster() : redis_cluster(options{}) {}

  // Starts masters * (1 + replicas_per_master) nodes, creates the cluster with redis-cli, then
  // waits until every node says cluster_state:ok, all agree on the slot owners and on which
  // nodes are replicas (wait_state_ok), and every replica's link is up. Throws (having stopped every node) if that does not happen in time.
  explicit redis_cluster(options opts) : opts_(std::move(opts)) {
    if (opts_.masters < 3) throw std::invalid_argument("redis_cluster: at least 3 masters");
    if (opts_.replicas_per_master < 0) throw std::invalid_argument("redis_cluster: replicas < 0");
    const auto give_up = std::chrono::steady_clock::now() + opts_.ready_timeout;
    const std::size_t n = static_cast<std::size_t>(opts_.masters) *
                          static_cast<std::size_t>(1 + opts_.replicas_per_master);
    auth_.password = opts_.password;
    // Node, bus (and TLS) ports from the kernel, all distinct. --cluster-port avoids the default
    // bus port (port + 10000), which may be taken or above 65535 for an ephemeral port.
    const std::size_t per_node = opts_.tls.enabled() ? 3 : 2;
    std::set<std::uint16_t> seen;
    std::vector<std::uint16_t> picked;
    while (picked.size() < per_node * n) {
      const auto p = free_port();
      if (seen.insert(p).second) picked.push_back(p);
    }
    for (std::size_t i = 0; i < n; ++i) {
      redis_server::options o;
      o.port = picked[per_node * i];
      // Relative to --dir, which is the node's own temporary directory.
      // repl-diskless-sync-delay 0: a master otherwise waits 5 s before the first full sync.
      o.args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", std::to_string(opts_.node_timeout_ms), "--cluster-port",
                std::to_string(picked[per_node * i + 1]), "--repl-diskless-sync-delay", "0"};
      if (!opts_.password.empty()) {
        o.args.insert(o.args.end(), {"--requirepass", opts_.password, "--masterauth",
                                     opts_.password});
      }
      if (opts_.tls.enabled()) {
        tls_ports_.push_back(picked[per_node * i + 2]);
        o.args.insert(o.args.end(),
                      {"--tls-port", std::to_string(tls_ports_.back()), "--tls-cert-file",
                       opts_.tls.cert_file, "--tls-key-file", opts_.tls.key_file,
                       "--tls-ca-cert-file", opts_.tls.ca_file, "--tls-auth-clients", "no",
                       "--tls-cluster", "yes", "--tls-replication", "yes"});
      }
      o.args.insert(o.args.end(), opts_.args.begin(), opts_.args.end());
      nodes_.push_back(std::make_unique<redis_server>(std::move(o)));
      paused_.push_back(false);
    }
    std::vector<std::string> create{"redis-cli"};
    const auto cli_auth = redis_cli_auth_args(auth_);
    create.insert(create.end(), cli_auth.begin(), cli_auth.end());
    create.insert(create.end(), {"--cluster", "create"});
    for (const auto& node : nodes_) create.push_back("127.0.0.1:" + std::to_string(node->port()));
    create.insert(create.end(), {"--cluster-replicas", std::to_string(opts_.replicas_per_master),
                                 "--cluster-yes"});
    const process_result made = run_process(create, remaining(give_up));
    if (made.timed_out || made.exit_code != 0) {
      throw std::runtime_error(join_args(create) +
                               (made.timed_out ? ": timed out" : ": failed (exit code " +
                                                                     std::to_string(made.exit_code) +
                                                                     ")") +
                               "; its output:\n" + made.output);
    }
    if (!wait_state_ok(remaining(give_up))) {
      throw std::runtime_error("the cluster did not reach cluster_state:ok with all nodes agreeing"
                               " within " + std::to_string(opts_.ready_timeout.count()) + " ms: " +
                               last_problem_ + "\n" + describe());
    }
    // One write per master (a key set and deleted again) so that replication offsets leave 0:
    // until then CLUSTER SHARDS reports the replicas as "loading" and CLUSTER SLOTS omits them.
    if (opts_.replicas_per_master > 0) {
      for (const auto p : master_ports()) {
        const auto view = nodes_view(p);
        for (const auto& e : view) {
          if (!e.has_flag("myself") || e.slots.empty()) continue;
          const std::string key = key_for_slot(e.slots.front().first, "websession-fixture:");
          command_ok(p, {"SET", key, "1"});
          command_ok(p, {"DEL", key});
        }
      }
    }
    if (!wait_replicas_synced(remaining(give_up))) {
      throw std::runtime_error("the cluster replicas did not sync within " +
                               std::to_string(opts_.ready_timeout.count()) + " ms: " +
                               last_problem_ + "\n" + describe());
    }
  }

  redis_cluster(const redis_cluster&) = delete;
  redis_cluster& operator=(const redis_cluster&) = delete;

  ~redis_cluster() {
    for (auto& node : nodes_) node->stop();
  }

  const options& get_options() const noexcept { return opts_; }
  // What the fixture authenticates with (empty without options::password).
  const resp_auth& auth() const noexcept { return auth_; }
  std::size_t size() const noexcept { return nodes_.size(); }
  // Node i's port, in creation order: redis-cli made nodes 0..masters-1 the first masters.
  std::uint16_t port(std::size_t i) const { return nodes_.at(i)->port(); }
  std::vector<std::uint16_t> ports() const {
    std::vector<std::uint16_t> v;
    for (const auto& node : nodes_) v.push_back(node->port());
    return v;
  }
  // Node i's TLS port (only with options::tls).
  std::uint16_t tls_port(std::size_t i) const { return tls_ports_.at(i); }
  const std::vector<std::uint16_t>& tls_ports() const noexcept { return tls_ports_; }
  std::size_t index_of(std::uint16_t port) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->port() == port) return i;
    }
    throw std::out_of_range("no cluster node on port " + std::to_string(port));
  }
  redis_server& node(std::size_t i) { return *nodes_.at(i); }
  pid_t pid(std::size_t i) const { return nodes_.at(i)->pid(); }
  bool running(std::size_t i) const { return nodes_.at(i)->running(); }

  // SIGKILL (a crash); start() brings the node back on its port with its nodes.conf (so with its
  // node id) but no data: a restarted old master rejoins and becomes a replica if it was failed
  // over meanwhile.
  void kill_hard(std::size_t i) {
    nodes_.at(i)->kill_hard();
    paused_.at(i) = false;
  }
  void start(std::size_t i) { nodes_.at(i)->start(); }
  // SIGSTOP / SIGCONT. The waits below skip paused nodes.
  void pause(std::size_t i) {
    nodes_.at(i)->pause();
    paused_.at(i) = nodes_[i]->running();
  }
  void resume(std::size_t i) {
    nodes_.at(i)->resume();
    paused_.at(i) = false;
  }

  // redis-cli -h 127.0.0.1 -p port args... (numbers are formatted; authenticated as auth());
  // returns its output.
  template <class... Args>
  std::string cli(std::uint16_t port, const Args&... args) const {
    return redis_cli(port, std::vector<std::string>{to_arg(args)...}, 10s, auth_);
  }

  // One command on a fresh connection (authenticated as auth()).
  resp_reply command(std::uint16_t port, const std::vector<std::string>& args) const {
    return redis_command(port, args, 5s, auth_);
  }
  // The same, but an error reply throws.
  resp_reply command_ok(std::uint16_t port, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = 5s) const {
    return redis_command_ok(port, args, timeout, auth_);
  }

  // CLUSTER NODES as seen by the node on `port`.
  std::vector<cluster_node_entry> nodes_view(std::uint16_t port) const {
    return parse_cluster_nodes(command_ok(port, {"CLUSTER", "NODES"}, 1s).str);
  }

  std::string node_id(std::uint16_t port) const {
    return command_ok(port, {"CLUSTER", "MYID"}, 1s).str;
  }

  // The masters not marked failing, asked from the first live node that answers, ordered by
  // their lowest slot (masters without slots last, by port).
  std::vector<std::uint16_t> master_ports() const {
    auto view = any_view();
    std::vector<std::pair<int, std::uint16_t>> masters;
    for (const auto& e : view) {
      if (!e.is_master() || e.is_failing()) continue;
      int lowest = 16384 + e.port;
      for (const auto& r : e.slots) lowest = std::min(lowest, r.first);
      masters.emplace_back(lowest, e.port);
    }
    std::sort(masters.begin(), masters.end());
    std::vector<std::uint16_t> v;
    for (const auto& m : masters) v.push_back(m.second);
    return v;
  }

  // The replicas of the master on `master_port`, as the first live node that answers knows them.
  std::vector<std::uint16_t> replica_ports(std::uint16_t master_port) const {
    auto view = any_view();
    std::string master_id;
    for (const auto& e : view) {
      if (e.port == master_port) master_id = e.id;
    }
    std::vector<std::uint16_t> v;
    for (const auto& e : view) {
      if (!master_id.empty() && e.master_id == master_id) v.push_back(e.port);
    }
    std::sort(v.begin(), v.end());
    return v;
  }

  // The port of the master owning `slot` as the first live node that answers sees it; -1 if none.
  int slot_owner_port(int slot) const {
    for (const auto& e : any_view()) {
      if (!e.is_master()) continue;
      for (const auto& r : e.slots) {
        if (slot >= r.first && slot <= r.second) return e.port;
      }
    }
    return -1;
  }

  // Waits until every running, unpaused node reports cluster_state:ok, they all see the same
  // owner (by port) for every slot, all 16384 are covered, none of them marks a running,
  // unpaused node as failing, and each lists every running, unpaused node in the role that node
  // gives itself (master, or replica of the same master). False after `timeout`
  // (last_problem() says what was missing).
  bool wait_state_ok(std::chrono::milliseconds timeout) const {
    return poll_until([this] { return state_ok_now(); }, timeout);
  }

  // Waits until every running, unpaused replica reports master_link_status:up, and every such
  // node's CLUSTER SHARDS shows every such node with health "online" (a replica is "loading"
  // there, and left out of CLUSTER SLOTS, while its replication offset is 0).
  bool wait_replicas_synced(std::chrono::milliseconds timeout) const {
    return poll_until([this] { return replicas_synced_now(); }, timeout);
  }

  // What the last failed wait found missing.
  const std::string& last_problem() const noexcept { return last_problem_; }

  // One line per node: port, pid, and what it says of itself (for failure messages).
  std::string describe() const {
    std::string s;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const auto p = nodes_[i]->port();
      s += "  node " + std::to_string(i) + " 127.0.0.1:" + std::to_string(p) +
           " pid " + std::to_string(nodes_[i]->pid());
      if (!nodes_[i]->running()) {
        s += " (not running)\n";
        continue;
      }
      if (paused_[i]) {
        s += " (paused)\n";
        continue;
      }
      try {
        const auto info = command_ok(p, {"CLUSTER", "INFO"}, 500ms).str;
        s += " cluster_state:" + info_field(info, "cluster_state");
        for (const auto& e : nodes_view(p)) {
          if (!e.has_flag("myself")) continue;
          std::string flags;
          for (const auto& f : e.flags) flags += (flags.empty() ? "" : ",") + f;
          s += " " + flags + " slots";
          for (const auto& r : e.slots) {
            s += " " + std::to_string(r.first) + "-" + std::to_string(r.second);
          }
        }
      } catch (const std::exception& e) {
        s += std::string(" (") + e.what() + ")";
      }
      s += "  log: " + (nodes_[i]->dir() / "redis.log").string() + "\n";
    }
    return s;
  }

  // --- Slot migration, step by step (as redis-cli --cluster reshard does it) ---

  // On the target: CLUSTER SETSLOT slot IMPORTING <source id>.
  void set_importing(int slot, std::uint16_t from_port, std::uint16_t to_port) const {
    command_ok(to_port,
               {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", node_id(from_port)});
  }
  // On the source: CLUSTER SETSLOT slot MIGRATING <target id>. From here the source answers
  // -ASK for keys of the slot it no longer has.
  void set_migrating(int slot, std::uint16_t from_port, std::uint16_t to_port) const {
    command_ok(from_port,
               {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", node_id(to_port)});
  }
  // Moves up to `max_keys` keys of the slot (CLUSTER GETKEYSINSLOT, then MIGRATE ... KEYS in
  // batches of up to 100); returns how many were moved. With options::password MIGRATE passes
  // AUTH; with options::tls it goes to the target's TLS port (--tls-cluster makes MIGRATE talk
  // TLS).
  std::size_t move_keys(int slot, std::uint16_t from_port, std::uint16_t to_port,
                        std::size_t max_keys = std::numeric_limits<std::size_t>::max()) const {
    const std::uint16_t target = opts_.tls.enabled() ? tls_ports_.at(index_of(to_port)) : to_port;
    std::size_t moved = 0;
    while (moved < max_keys) {
      const std::size_t batch = std::min<std::size_t>(100, max_keys - moved);
      const auto keys = command_ok(
          from_port, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(batch)});
      if (keys.elements.empty()) break;
      std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(target), "", "0",
                                       "5000"};
      if (!auth_.empty()) {
        if (auth_.user.empty()) {
          migrate.insert(migrate.end(), {"AUTH", auth_.password});
        } else {
          migrate.insert(migrate.end(), {"AUTH2", auth_.user, auth_.password});
        }
      }
      migrate.push_back("KEYS");
      for (const auto& k : keys.elements) migrate.push_back(k.str);
      command_ok(from_port, migrate, 10s);
      moved += keys.elements.size();
    }
    return moved;
  }
  // CLUSTER SETSLOT slot NODE <target id> on the target, then the source, then every other
  // master (the order redis-cli uses); the replicas learn it by gossip.
  void set_node(int slot, std::uint16_t from_port, std::uint16_t to_port) const {
    const std::string id = node_id(to_port);
    const std::vector<std::string> cmd{"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id};
    command_ok(to_port, cmd);
    command_ok(from_port, cmd);
    for (const auto p : master_ports()) {
      if (p != to_port && p != from_port) command_ok(p, cmd);
    }
  }
  // The whole migration of one slot, or its first steps: stop_after = importing leaves only the
  // target importing; migrating leaves both marks set and the keys on the source; keys_moved
  // leaves the marks set with every key on the target.
  void migrate_slot(int slot, std::uint16_t from_port, std::uint16_t to_port,
                    migration_step stop_after = migration_step::done) const {
    set_importing(slot, from_port, to_port);
    if (stop_after == migration_step::importing) return;
    set_migrating(slot, from_port, to_port);
    if (stop_after == migration_step::migrating) return;
    move_keys(slot, from_port, to_port);
    if (stop_after == migration_step::keys_moved) return;
    set_node(slot, from_port, to_port);
  }

 private:
  template <class T>
  static std::string to_arg(const T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      return std::to_string(v);
    } else {
      return std::string(v);
    }
  }

  static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point give_up) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    return left.count() > 0 ? left : 0ms;
  }

  template <class Pred>
  static bool poll_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= give_up) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  bool live(std::size_t i) const { return nodes_[i]->running() && !paused_[i]; }

  std::vector<cluster_node_entry> any_view() const {
    std::string why = "no cluster node is running";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!live(i)) continue;
      try {
        return nodes_view(nodes_[i]->port());
      } catch (const std::exception& e) {
        why = e.what();
      }
    }
    throw std::runtime_error("no cluster node answered CLUSTER NODES: " + why);
  }

  bool state_ok_now() const {
    std::set<std::uint16_t> live_ports;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (live(i)) live_ports.insert(nodes_[i]->port());
    }
    std::optional<std::vector<std::tuple<int, int, std::uint16_t>>> first;
    std::uint16_t first_port = 0;
    // What each live node says of itself (its "myself" line): master, or replica of which
    // master id; and how each live node sees every live node (port -> role).
    std::map<std::uint16_t, std::string> self_roles;
    std::map<std::uint16_t, std::map<std::uint16_t, std::string>> seen_roles;
    const auto role_of = [](const cluster_node_entry& e) {
      return e.is_master() ? std::string("master") : "replica of " + e.master_id;
    };
    for (const auto p : live_ports) {
      const std::string at = "127.0.0.1:" + std::to_string(p) + ": ";
      try {
        resp_connection c(p, auth_);
        const auto info = c.command({"CLUSTER", "INFO"}, 1s);
        const auto state = info_field(info.str, "cluster_state");
        if (state != "ok") {
          last_problem_ = at + "cluster_state:" + (info.is_error() ? "-" + info.str : state);
          return false;
        }
        const auto nodes = c.command({"CLUSTER", "NODES"}, 1s);
        if (nodes.is_error()) {
          last_problem_ = at + "CLUSTER NODES: -" + nodes.str;
          return false;
        }
        std::vector<std::tuple<int, int, std::uint16_t>> owners;
        for (const auto& e : parse_cluster_nodes(nodes.str)) {
          if (live_ports.count(e.port) != 0 && e.is_failing()) {
            last_problem_ = at + "still marks running node " + std::to_string(e.port) + " failing";
            return false;
          }
          if (live_ports.count(e.port) != 0) {
            seen_roles[p][e.port] = role_of(e);
            if (e.has_flag("myself")) self_roles[p] = role_of(e);
          }
          if (!e.is_master()) continue;
          for (const auto& r : e.slots) owners.emplace_back(r.first, r.second, e.port);
        }
        std::sort(owners.begin(), owners.end());
        int next = 0;
        for (const auto& [a, b, owner] : owners) {
          if (a != next) break;
          next = b + 1;
        }
        if (next != 16384) {
          last_problem_ = at + "slots not all covered (gap at " + std::to_string(next) + ")";
          return false;
        }
        if (!first) {
          first = std::move(owners);
          first_port = p;
        } else if (owners != *first) {
          last_problem_ = at + "disagrees with " + std::to_string(first_port) + " on slot owners";
          return false;
        }
      } catch (const std::exception& e) {
        last_problem_ = at + e.what();
        return false;
      }
    }
    if (!first) {
      last_problem_ = "no cluster node is running";
      return false;
    }
    // Every live node knows every live node in the role that node gives itself: right after
    // creation (or a failover) a node may still list a replica as a master without slots until
    // gossip tells it otherwise, and master_ports() / replica_ports() would read that view.
    for (const auto& [p, seen] : seen_roles) {
      const std::string at = "127.0.0.1:" + std::to_string(p) + ": ";
      for (const auto q : live_ports) {
        const auto self = self_roles.find(q);
        if (self == self_roles.end()) {
          last_problem_ = "127.0.0.1:" + std::to_string(q) + ": no \"myself\" line in CLUSTER NODES";
          return false;
        }
        const auto it = seen.find(q);
        if (it == seen.end()) {
          last_problem_ = at + "does not list running node " + std::to_string(q);
          return false;
        }
        if (it->second != self->second) {
          last_problem_ = at + "sees " + std::to_string(q) + " as " + it->second + ", which says it is " +
                          self->second;
          return false;
        }
      }
    }
    return true;
  }

  bool replicas_synced_now() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!live(i)) continue;
      const auto p = nodes_[i]->port();
      const std::string at = "127.0.0.1:" + std::to_string(p) + ": ";
      try {
        const auto info = command_ok(p, {"INFO", "replication"}, 1s).str;
        if (info_field(info, "role") == "slave" && info_field(info, "master_link_status") != "up") {
          last_problem_ = at + "master_link_status:" + info_field(info, "master_link_status");
          return false;
        }
        // CLUSTER SHARDS (RESP2): [["slots", [...], "nodes", [[field, value, ...], ...]], ...]
        const auto shards = command_ok(p, {"CLUSTER", "SHARDS"}, 1s);
        for (const auto& shard : shards.elements) {
          for (std::size_t k = 0; k + 1 < shard.elements.size(); k += 2) {
            if (shard.elements[k].str != "nodes") continue;
            for (const auto& n : shard.elements[k + 1].elements) {
              auto f = reply_fields(n);
              const auto port = static_cast<std::uint16_t>(std::atoi(f["port"].c_str()));
              bool is_live = false;
              for (std::size_t j = 0; j < nodes_.size(); ++j) {
                if (live(j) && nodes_[j]->port() == port) is_live = true;
              }
              if (is_live && f["health"] != "online") {
                last_problem_ = at + "CLUSTER SHARDS shows " + f["port"] + " " + f["role"] +
                                " health " + f["health"];
                return false;
              }
            }
          }
        }
      } catch (const std::exception& e) {
        last_problem_ = at + e.what();
        return false;
      }
    }
    return true;
  }

  options opts_;
  resp_auth auth_;
  std::vector<std::unique_ptr<redis_server>> nodes_;
  std::vector<std::uint16_t> tls_ports_;  // with options::tls: nodes_[i]'s TLS port
  std::vector<bool> paused_;
  mutable std::string last_problem_;
};

// ------------------------------------------------------------------------------------------
// A Sentinel set-up on loopback: one master, one replica, N sentinels (3 by default)

class redis_sentinel_group {
 public:
  struct options {
    std::string master_name = "mymaster";
    int sentinels = 3;
    int quorum = 2;
    // sentinel down-after-milliseconds. With 1000 (not above Sentinel's 1 s PING period), the
    // sentinels may each see a master they have just switched to as down for a moment: Sentinel
    // 7.0 starts the new master's link with its "PING pending since" clock at the switch but
    // sends the first PING only a PING period later. With quorum reached and a good replica
    // (e.g. the old master, restarted as a replica after a kill -9), they then fail over again,
    // about 1 s after the first failover (seen here in about 1 run in 6, more under load).
    int down_after_ms = 1000;
    // sentinel failover-timeout. Also: no sentinel starts another failover of this master within
    // 2 x this after the previous one began (a kill -9 right after a failover waits for that),
    // and a failed election is retried only after 2 x this. Keep it >= 3000: the leader must see
    // the promotion within it and asks the promoted replica for INFO only every 1 s meanwhile.
    int failover_timeout_ms = 3000;
    // Shortens two sentinel timers with SENTINEL DEBUG (not kept in the config file, so applied
    // again by start_sentinel()): INFO every 100 ms instead of 10 s (replicas are seen at once)
    // and hello messages every 500 ms instead of 2 s (peers found sooner; a demoted master that
    // still says "master" is converted to a replica after 4 x 500 ms instead of 8 s). Measured
    // here, each pitfall reproduced: publish-period 100 lets the other sentinels convert the
    // replica being promoted back to a replica (after 4 x 100 ms) before the leader, which asks
    // that replica for INFO only every 1 s during a failover, sees the promotion, so SENTINEL
    // FAILOVER fails; ping-period / ask-period 100 make the sentinels notice a dead master in
    // the same instant and split their votes (a failover after kill -9 then took 8-20 s instead
    // of about 2 s).
    bool fast_timers = true;
    std::vector<std::string> data_args;        // extra arguments for the master and the replica
    std::vector<std::string> sentinel_config;  // extra lines for every sentinel's config file
    std::chrono::milliseconds ready_timeout = 20s;
    // The data nodes' password: the master and the replica get --requirepass and --masterauth
    // with it, the sentinels `sentinel auth-pass NAME password`, and the fixture authenticates
    // with it on the data nodes. Empty: none.
    std::string data_password = {};
    // The sentinels' own password: `requirepass` in their config, `sentinel sentinel-pass` so
    // that they can still talk to each other, and the fixture authenticates with it on the
    // sentinels. Empty: none.
    std::string sentinel_password = {};
  };

  redis_sentinel_group() : redis_sentinel_group(options{}) {}

  // Starts the master, then the replica (--replicaof) and waits until it is in sync, then the
  // sentinels, and waits until each knows the replica and the other sentinels (wait_ready()).
  explicit redis_sentinel_group(options opts) : opts_(std::move(opts)) {
    if (opts_.sentinels < 1) throw std::invalid_argument("redis_sentinel_group: no sentinels");
    const auto give_up = std::chrono::steady_clock::now() + opts_.ready_timeout;
    data_auth_.password = opts_.data_password;
    sentinel_auth_.password = opts_.sentinel_password;
    std::vector<std::string> data_args;
    if (!opts_.data_password.empty()) {
      data_args = {"--requirepass", opts_.data_password, "--masterauth", opts_.data_password};
    }
    data_args.insert(data_args.end(), opts_.data_args.begin(), opts_.data_args.end());
    // repl-diskless-sync-delay 0: a master otherwise waits 5 s before the first full sync.
    redis_server::options m;
    m.args = {"--repl-diskless-sync-delay", "0"};
    m.args.insert(m.args.end(), data_args.begin(), data_args.end());
    data_.push_back(std::make_unique<redis_server>(std::move(m)));
    redis_server::options r;
    r.args = {"--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1",
              std::to_string(data_[0]->port())};
    r.args.insert(r.args.end(), data_args.begin(), data_args.end());
    data_.push_back(std::make_unique<redis_server>(std::move(r)));
    // Sentinels find replicas in the master's INFO, which they ask for at once and then every
    // 10 s (unless fast_timers): the replica must be attached before they start.
    if (!poll_until([this] { return replica_link_up(1, data_[0]->port()); },
                    remaining(give_up))) {
      throw std::runtime_error("the replica did not sync with the master within " +
                               std::to_string(opts_.ready_timeout.count()) + " ms: " +
                               last_problem_);
    }
    std::set<std::uint16_t> taken{data_[0]->port(), data_[1]->port()};
    for (int i = 0; i < opts_.sentinels; ++i) {
      std::uint16_t p = free_port();
      while (!taken.insert(p).second) p = free_port();
      redis_server::options s;
      s.executable = "redis-sentinel";
      s.port = p;
      const std::string& name = opts_.master_name;
      s.config_text = "port " + std::to_string(p) +
                      "\n"
                      "bind 127.0.0.1\n"
                      "sentinel resolve-hostnames no\n"
                      "sentinel announce-hostnames no\n"
                      "sentinel monitor " + name + " 127.0.0.1 " + std::to_string(data_[0]->port()) +
                      " " + std::to_string(opts_.quorum) +
                      "\n"
                      "sentinel down-after-milliseconds " + name + " " +
                      std::to_string(opts_.down_after_ms) +
                      "\n"
                      "sentinel failover-timeout " + name + " " +
                      std::to_string(opts_.failover_timeout_ms) +
                      "\n"
                      "sentinel parallel-syncs " + name + " 1\n";
      // Passwords in double quotes (the config parser's string syntax); tests use plain ones.
      if (!opts_.data_password.empty()) {
        s.config_text += "sentinel auth-pass " + name + " \"" + opts_.data_password + "\"\n";
      }
      if (!opts_.sentinel_password.empty()) {
        s.config_text += "requirepass \"" + opts_.sentinel_password + "\"\n"
                         "sentinel sentinel-pass \"" + opts_.sentinel_password + "\"\n";
      }
      for (const auto& line : opts_.sentinel_config) s.config_text += line + "\n";
      sentinels_.push_back(std::make_unique<redis_server>(std::move(s)));
      apply_timers(sentinels_.back()->port());
    }
    if (!wait_ready(remaining(give_up))) {
      throw std::runtime_error("the sentinel group was not ready within " +
                               std::to_string(opts_.ready_timeout.count()) + " ms: " +
                               last_problem_ + "\n" + describe());
    }
  }

  redis_sentinel_group(const redis_sentinel_group&) = delete;
  redis_sentinel_group& operator=(const redis_sentinel_group&) = delete;

  ~redis_sentinel_group() {
    for (auto& s : sentinels_) s->stop();  // first, so that they do not react
    for (auto& d : data_) d->stop();
  }

  const options& get_options() const noexcept { return opts_; }
  const std::string& master_name() const noexcept { return opts_.master_name; }

  std::vector<std::uint16_t> sentinel_ports() const {
    std::vector<std::uint16_t> v;
    for (const auto& s : sentinels_) v.push_back(s->port());
    return v;
  }
  // [0] was started as the master, [1] as its replica.
  std::vector<std::uint16_t> data_ports() const { return {data_[0]->port(), data_[1]->port()}; }
  std::size_t data_index(std::uint16_t port) const {
    for (std::size_t i = 0; i < data_.size(); ++i) {
      if (data_[i]->port() == port) return i;
    }
    throw std::out_of_range("no data node on port " + std::to_string(port));
  }

  redis_server& data_node(std::size_t i) { return *data_.at(i); }
  redis_server& sentinel(std::size_t i) { return *sentinels_.at(i); }
  pid_t data_pid(std::size_t i) const { return data_.at(i)->pid(); }
  pid_t sentinel_pid(std::size_t i) const { return sentinels_.at(i)->pid(); }

  void kill_data(std::size_t i) { data_.at(i)->kill_hard(); }
  // Restarts data node i on its port, empty. With as_replica (the default) it is then told at
  // once to follow the master the sentinels name (or to be a master if they name it), instead
  // of coming up as an empty master (how it was started) until a sentinel reconfigures it,
  // which takes seconds.
  void start_data(std::size_t i, bool as_replica = true) {
    data_.at(i)->start();
    if (!as_replica) return;
    const auto master = master_port_now();
    if (master == 0) return;
    if (master == data_[i]->port()) {
      redis_command_ok(master, {"REPLICAOF", "NO", "ONE"}, 5s, data_auth_);
    } else {
      redis_command_ok(data_[i]->port(), {"REPLICAOF", "127.0.0.1", std::to_string(master)}, 5s,
                       data_auth_);
    }
  }
  void kill_sentinel(std::size_t i) { sentinels_.at(i)->kill_hard(); }
  // Restarts sentinel i from its (rewritten) config file: same id, same known peers.
  void start_sentinel(std::size_t i) {
    sentinels_.at(i)->start();
    apply_timers(sentinels_[i]->port());
  }

  // What the fixture authenticates with on the data nodes and on the sentinels (empty without
  // options::data_password / options::sentinel_password).
  const resp_auth& data_auth() const noexcept { return data_auth_; }
  const resp_auth& sentinel_auth() const noexcept { return sentinel_auth_; }

  // One command to sentinel i (authenticated as sentinel_auth()).
  resp_reply sentinel_command(std::size_t i, const std::vector<std::string>& args) const {
    return redis_command(sentinels_.at(i)->port(), args, 5s, sentinel_auth_);
  }
  // One command to data node i (authenticated as data_auth()).
  resp_reply data_command(std::size_t i, const std::vector<std::string>& args) const {
    return redis_command(data_.at(i)->port(), args, 5s, data_auth_);
  }

  // The master's port as sentinel i names it (SENTINEL GET-MASTER-ADDR-BY-NAME); 0 if it cannot
  // say (not running, no answer, or a null reply).
  std::uint16_t master_port_by(std::size_t i) const {
    if (!sentinels_.at(i)->running()) return 0;
    try {
      const auto r = redis_command(sentinels_[i]->port(),
                                   {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", opts_.master_name}, 1s,
                                   sentinel_auth_);
      if (r.null || r.elements.size() != 2) return 0;
      return static_cast<std::uint16_t>(detail::parse_resp_number(r.elements[1].str));
    } catch (const std::exception&) {
      return 0;
    }
  }
  // The master's port as the first sentinel that answers names it; 0 if none does.
  std::uint16_t master_port_now() const {
    for (std::size_t i = 0; i < sentinels_.size(); ++i) {
      if (const auto p = master_port_by(i)) return p;
    }
    return 0;
  }
  // The data node that is not master_port_now().
  std::uint16_t replica_port_now() const {
    const auto m = master_port_now();
    return m == data_[0]->port() ? data_[1]->port() : data_[0]->port();
  }

  // SENTINEL FAILOVER on the first running sentinel, repeated every 50 ms while it answers
  // -NOGOODSLAVE or -INPROG (right after a failover the sentinels need a moment to see the new
  // replica). Throws on another error or when `timeout` passes.
  void failover(std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    std::string last;
    for (;;) {
      for (const auto& s : sentinels_) {
        if (!s->running()) continue;
        const auto r = redis_command(s->port(), {"SENTINEL", "FAILOVER", opts_.master_name}, 5s,
                                     sentinel_auth_);
        if (!r.is_error()) return;
        last = r.str;
        if (last.rfind("NOGOODSLAVE", 0) != 0 && last.rfind("INPROG", 0) != 0) {
          throw std::runtime_error("SENTINEL FAILOVER " + opts_.master_name + ": -" + last);
        }
        break;
      }
      if (std::chrono::steady_clock::now() >= give_up) {
        throw std::runtime_error("SENTINEL FAILOVER " + opts_.master_name + " not accepted within " +
                                 std::to_string(timeout.count()) + " ms: -" + last);
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  // Waits until the sentinels name a master other than `old_port` (all running sentinels
  // agreeing, or just one if all_sentinels is false); returns its port, or 0 after `timeout`.
  std::uint16_t wait_master_change(std::uint16_t old_port, std::chrono::milliseconds timeout,
                                   bool all_sentinels = true) const {
    std::uint16_t found = 0;
    poll_until(
        [&] {
          std::uint16_t agreed = 0;
          for (std::size_t i = 0; i < sentinels_.size(); ++i) {
            if (!sentinels_[i]->running()) continue;
            const auto p = master_port_by(i);
            if (p != 0 && p != old_port && !all_sentinels) {
              found = p;
              return true;
            }
            if (!all_sentinels) continue;
            if (p == 0 || p == old_port || (agreed != 0 && p != agreed)) return false;
            agreed = p;
          }
          found = agreed;
          return found != 0;
        },
        timeout);
    return found;
  }

  // Waits until every running sentinel names the same master and that node says ROLE master;
  // returns its port, or 0 after `timeout`. The sentinels may fail over more than once after a
  // kill -9 (see options::down_after_ms): compare a client with this, not with the first new
  // master.
  std::uint16_t wait_settled_master(std::chrono::milliseconds timeout) const {
    std::uint16_t found = 0;
    poll_until(
        [&] {
          const auto p = wait_master_change(0, 0ms);
          if (p == 0) return false;
          try {
            const auto role = redis_command(p, {"ROLE"}, 1s, data_auth_);
            if (role.elements.empty() || role.elements[0].str != "master") return false;
          } catch (const std::exception&) {
            return false;
          }
          found = p;
          return true;
        },
        timeout);
    return found;
  }

  // Waits until: every running sentinel names the same master; the other data node runs and is
  // its replica with master_link_status:up; and every running sentinel sees that master as up
  // (flags exactly "master", no failover in progress), knows all the other sentinels, and lists
  // that replica as an up replica ("slave" flags, master-link-status ok, the right master).
  bool wait_ready(std::chrono::milliseconds timeout) const {
    return poll_until([this] { return ready_now(); }, timeout);
  }

  const std::string& last_problem() const noexcept { return last_problem_; }

  std::string describe() const {
    std::string s;
    for (std::size_t i = 0; i < data_.size(); ++i) {
      s += "  data " + std::to_string(i) + " 127.0.0.1:" + std::to_string(data_[i]->port()) +
           " pid " + std::to_string(data_[i]->pid());
      if (data_[i]->running()) {
        try {
          const auto info =
              redis_command_ok(data_[i]->port(), {"INFO", "replication"}, 500ms, data_auth_).str;
          s += " role:" + info_field(info, "role");
          if (info_field(info, "role") == "slave") {
            s += " master_port:" + info_field(info, "master_port") +
                 " master_link_status:" + info_field(info, "master_link_status");
          }
        } catch (const std::exception& e) {
          s += std::string(" (") + e.what() + ")";
        }
      } else {
        s += " (not running)";
      }
      s += "\n";
    }
    for (std::size_t i = 0; i < sentinels_.size(); ++i) {
      s += "  sentinel " + std::to_string(i) + " 127.0.0.1:" +
           std::to_string(sentinels_[i]->port()) + " pid " + std::to_string(sentinels_[i]->pid());
      if (sentinels_[i]->running()) {
        try {
          auto f = reply_fields(redis_command_ok(
              sentinels_[i]->port(), {"SENTINEL", "MASTER", opts_.master_name}, 500ms,
              sentinel_auth_));
          s += " master " + f["ip"] + ":" + f["port"] + " flags " + f["flags"] + " num-slaves " +
               f["num-slaves"] + " num-other-sentinels " + f["num-other-sentinels"];
        } catch (const std::exception& e) {
          s += std::string(" (") + e.what() + ")";
        }
        s += "  log: " + (sentinels_[i]->dir() / "redis.log").string();
      } else {
        s += " (not running)";
      }
      s += "\n";
    }
    return s;
  }

 private:
  static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point give_up) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    return left.count() > 0 ? left : 0ms;
  }

  template <class Pred>
  static bool poll_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= give_up) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  void apply_timers(std::uint16_t sentinel_port) const {
    if (!opts_.fast_timers) return;
    redis_command_ok(sentinel_port,
                     {"SENTINEL", "DEBUG", "info-period", "100", "publish-period", "500"}, 5s,
                     sentinel_auth_);
  }

  bool replica_link_up(std::size_t i, std::uint16_t master_port) const {
    const std::string at = "127.0.0.1:" + std::to_string(data_[i]->port()) + ": ";
    if (!data_[i]->running()) {
      last_problem_ = at + "not running";
      return false;
    }
    try {
      const auto info =
          redis_command_ok(data_[i]->port(), {"INFO", "replication"}, 1s, data_auth_).str;
      if (info_field(info, "role") != "slave" ||
          info_field(info, "master_port") != std::to_string(master_port) ||
          info_field(info, "master_link_status") != "up") {
        last_problem_ = at + "role:" + info_field(info, "role") + " master_port:" +
                        info_field(info, "master_port") +
                        " master_link_status:" + info_field(info, "master_link_status");
        return false;
      }
    } catch (const std::exception& e) {
      last_problem_ = at + e.what();
      return false;
    }
    if (!streams_to_replicas(master_port, 1, data_auth_)) {
      last_problem_ = at + "the master does not stream to it yet (WAIT 1 says 0)";
      return false;
    }
    return true;
  }

  bool ready_now() const {
    std::uint16_t master = 0;
    for (std::size_t i = 0; i < sentinels_.size(); ++i) {
      if (!sentinels_[i]->running()) continue;
      const auto p = master_port_by(i);
      if (p == 0 || (master != 0 && p != master)) {
        last_problem_ = "the sentinels do not agree on the master";
        return false;
      }
      master = p;
    }
    if (master == 0) {
      last_problem_ = "no sentinel is running";
      return false;
    }
    const std::size_t r = master == data_[0]->port() ? 1 : 0;
    if (!replica_link_up(r, master)) return false;
    const auto replica = data_[r]->port();
    for (const auto& s : sentinels_) {
      if (!s->running()) continue;
      const std::string at = "sentinel 127.0.0.1:" + std::to_string(s->port()) + ": ";
      try {
        auto f = reply_fields(
            redis_command_ok(s->port(), {"SENTINEL", "MASTER", opts_.master_name}, 1s,
                             sentinel_auth_));
        if (f["flags"] != "master" || f["port"] != std::to_string(master)) {
          last_problem_ = at + "master " + f["port"] + " flags " + f["flags"];
          return false;
        }
        if (f["num-other-sentinels"] != std::to_string(sentinels_.size() - 1)) {
          last_problem_ = at + "num-other-sentinels " + f["num-other-sentinels"];
          return false;
        }
        const auto replicas =
            redis_command_ok(s->port(), {"SENTINEL", "REPLICAS", opts_.master_name}, 1s,
                             sentinel_auth_);
        bool seen = false;
        for (const auto& e : replicas.elements) {
          auto rf = reply_fields(e);
          if (rf["port"] == std::to_string(replica) && rf["flags"] == "slave" &&
              rf["master-link-status"] == "ok" && rf["master-port"] == std::to_string(master)) {
            seen = true;
          }
        }
        if (!seen) {
          last_problem_ = at + "does not list 127.0.0.1:" + std::to_string(replica) +
                          " as an up replica of " + std::to_string(master);
          return false;
        }
      } catch (const std::exception& e) {
        last_problem_ = at + e.what();
        return false;
      }
    }
    return true;
  }

  options opts_;
  resp_auth data_auth_;
  resp_auth sentinel_auth_;
  std::vector<std::unique_ptr<redis_server>> data_;       // declared first: destroyed last
  std::vector<std::unique_ptr<redis_server>> sentinels_;
  mutable std::string last_problem_;
};

}  // namespace redis_test
