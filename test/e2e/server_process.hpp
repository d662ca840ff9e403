// SPDX-License-Identifier: BSL-1.0
// Child processes for the end-to-end tests: the example server started on port 0 (its port
// read from the first stdout line within a bounded wait, stopped by PID with SIGTERM, then
// SIGKILL) and short-lived commands (curl, the server with a bad configuration) whose output
// is captured. Every wait is bounded: a hung child fails the test, it does not hang it.
#pragma once

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace e2e {

using namespace std::chrono_literals;

/// A secret every test server shares (at least 32 bytes).
inline const std::string test_secret = "e2e-test-secret-0123456789abcdef-0123456789abcdef";

/// The server binary: $WEBSESSION_E2E_SERVER, else the path CMake compiled in.
inline std::string server_binary() {
  if (const char* p = std::getenv("WEBSESSION_E2E_SERVER"); p && *p) return p;
#ifdef WEBSESSION_E2E_SERVER
  return WEBSESSION_E2E_SERVER;
#else
  throw std::runtime_error("set WEBSESSION_E2E_SERVER to the example server binary");
#endif
}

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/websession-e2e-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace detail {

// The parent's environment without WEBSESSION_* (a developer's settings must not leak into a
// test), plus `extra` ("NAME=value").
inline std::vector<std::string> child_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("WEBSESSION_")) env.emplace_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

inline std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Exit status as a shell reports it: the code, or 128 + the signal.
inline int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts `argv` with `env`; its stdout (and, with `merge_stderr`, its stderr) goes to the
// returned pipe; otherwise its stderr goes to `stderr_file` when not empty. Searches PATH.
inline std::pair<pid_t, int> spawn(std::vector<std::string> argv, std::vector<std::string> env,
                                   bool merge_stderr, const std::string& stderr_file = {}) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  if (merge_stderr) {
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  } else if (!stderr_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  std::vector<char*> cargv = c_strings(argv);
  std::vector<char*> cenv = c_strings(env);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return {pid, fds[0]};
}

// The exit status of `pid`, or nullopt if it is still running after `timeout`.
inline std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

// Reads `fd` until a newline (returned without it), EOF or the deadline; false on the latter two.
inline bool read_line(int fd, std::chrono::milliseconds timeout, std::string& line) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    line.push_back(c);
  }
}

}  // namespace detail

/// What a finished command printed (stdout and stderr together) and its exit status.
struct captured {
  int status = -1;
  std::string output;
};

/// Runs `argv` to completion with the parent's environment (WEBSESSION_* removed) plus `env`.
/// Killed after `timeout`; the status is then 128 + SIGKILL.
inline captured run_capture(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env = {},
                            std::chrono::milliseconds timeout = 20s) {
  auto [pid, fd] = detail::spawn(argv, detail::child_env(env), true);
  captured out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the command closed its output (it is exiting)
    out.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::optional<int> st = detail::wait_exit(pid, 5s);
  if (!st) {
    ::kill(pid, SIGKILL);
    st = detail::wait_exit(pid, 5s);
  }
  out.status = st.value_or(-1);
  return out;
}

/// How to start the server.
struct server_options {
  /// Arguments beside --port 0 and --audit-log (which the fixture adds).
  std::vector<std::string> args;
  /// Environment additions, "NAME=value".
  std::vector<std::string> env;
  /// Pass WEBSESSION_SECRET=test_secret.
  bool with_secret = true;
};

/// The example server, started on a free port with its audit log and stderr in a temporary
/// directory. The destructor stops it (SIGTERM, SIGKILL after a bounded wait) and, when the test
/// failed, copies its stderr to ours.
class server_process {
 public:
  explicit server_process(server_options o = {}) {
    std::vector<std::string> argv = {server_binary(), "--port", "0", "--audit-log",
                                     audit_path().string()};
    argv.insert(argv.end(), o.args.begin(), o.args.end());
    if (o.with_secret) o.env.push_back("WEBSESSION_SECRET=" + test_secret);
    auto [pid, fd] = detail::spawn(argv, detail::child_env(o.env), false, stderr_path().string());
    pid_ = pid;
    std::string line;
    const bool got = detail::read_line(fd, 20s, line);
    // Nothing else comes on stdout; the server ignores SIGPIPE, so closing it here is safe.
    ::close(fd);
    constexpr std::string_view prefix = "listening on ";
    const std::size_t colon = line.rfind(':');
    if (!got || !line.starts_with(prefix) || colon == std::string::npos) {
      const int status = stop();
      throw std::runtime_error("server did not report its port (first line \"" + line +
                               "\", exit status " + std::to_string(status) + "): " + stderr_text());
    }
    port_ = static_cast<unsigned short>(std::stoi(line.substr(colon + 1)));
  }

  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  ~server_process() {
    stop();
    bool failed = false;
    try {
      namespace ut = boost::unit_test;
      failed = !ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
    } catch (...) {
    }
    if (failed || status_ != 0) {
      std::cerr << "---- server stderr (exit status " << status_ << ") ----\n"
                << stderr_text() << "---- end of server stderr ----" << std::endl;
    }
  }

  unsigned short port() const noexcept { return port_; }
  const std::filesystem::path& dir() const noexcept { return dir_.path(); }
  std::filesystem::path audit_path() const { return dir_.path() / "audit.log"; }
  std::filesystem::path stderr_path() const { return dir_.path() / "server.err"; }
  std::string stderr_text() const { return read_file(stderr_path()); }

  /// The audit log's lines (complete ones: the server flushes each line as it writes it).
  std::vector<std::string> audit_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(read_file(audit_path()));
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
    return lines;
  }

  /// Sends `sig` without waiting.
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  /// Waits up to `timeout` for the exit; its status, or nullopt if the server still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return status_;
    const std::optional<int> st = detail::wait_exit(pid_, timeout);
    if (st) {
      status_ = *st;
      pid_ = -1;
    }
    return st;
  }

  /// Sends `sig` and waits (bounded) for the exit; SIGKILL if the server does not exit in time.
  /// Returns the exit status (128 + signal if killed). Idempotent: later calls return the same.
  int stop(int sig = SIGTERM, std::chrono::milliseconds grace = 10s) {
    if (pid_ <= 0) return status_;
    signal(sig);
    if (!wait(grace)) {
      ::kill(pid_, SIGKILL);
      if (!wait(10s)) pid_ = -1;  // unreachable short of a kernel problem: do not wait again
    }
    return status_;
  }

 private:
  temp_dir dir_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
  int status_ = -1;
};

/// A command line (and environment) the server must refuse at start: exit status 2, `message`
/// in its output, never listening, and never `secret` in its output.
struct bad_start {
  std::string what;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string message;
};

/// Each case runs with `common_args` before its own and `common_env` after its own.
inline void expect_refused_at_start(const std::vector<bad_start>& cases,
                                    const std::vector<std::string>& common_args = {},
                                    const std::vector<std::string>& common_env = {},
                                    const std::string& secret = {}) {
  for (const bad_start& bc : cases) {
    BOOST_TEST_CONTEXT(bc.what) {
      std::vector<std::string> argv = {server_binary(), "--port", "0"};
      argv.insert(argv.end(), common_args.begin(), common_args.end());
      argv.insert(argv.end(), bc.args.begin(), bc.args.end());
      std::vector<std::string> env = bc.env;
      env.insert(env.end(), common_env.begin(), common_env.end());
      const captured out = run_capture(argv, env, 10s);
      BOOST_TEST(out.status == 2, out.output);
      BOOST_TEST(out.output.find(bc.message) != std::string::npos, out.output);
      BOOST_TEST(out.output.find("listening on 127.0.0.1") == std::string::npos, out.output);
      if (!secret.empty()) BOOST_TEST(out.output.find(secret) == std::string::npos, out.output);
    }
  }
}

}  // namespace e2e
