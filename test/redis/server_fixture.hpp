// SPDX-License-Identifier: BSL-1.0
// Test helpers for the Redis integration tests: a private redis-server on a free loopback port
// (started, killed, restarted and stopped by PID), and small coroutine helpers.
#pragma once

#include "../support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include "redis_available.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace redis_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A port that was free a moment ago (the kernel picked it for a socket bound to port 0).
inline std::uint16_t free_port() {
  asio::io_context ioc;
  asio::ip::tcp::acceptor a(ioc, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

inline std::filesystem::path make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "websession-redis-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// Sends PING over a plain TCP connection and waits up to `wait` for any reply line (+PONG, or
// -NOAUTH from a server with a password): the server is up and has loaded.
inline bool answers_ping(std::uint16_t port, std::chrono::milliseconds wait) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char ping[] = "PING\r\n";
    if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == sizeof ping - 1) {
      pollfd p{fd, POLLIN, 0};
      char buf[64];
      ok = ::poll(&p, 1, static_cast<int>(wait.count())) == 1 && ::recv(fd, buf, sizeof buf, 0) > 0;
    }
  }
  ::close(fd);
  return ok;
}

inline bool accepts_tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A redis-server child process with its own port and directory. The child dies with the test
// process (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
class redis_server {
 public:
  struct options {
    std::vector<std::string> args;  // extra arguments, e.g. {"--requirepass", "secret"}
    bool tls = false;               // the port is a TLS port (args must hold the tls files)
    // The program to run: "redis-sentinel" runs a sentinel (it then needs config_text).
    std::string executable = "redis-server";
    // If not empty: written once to dir()/redis.conf before the first start and passed as the
    // config file (the command-line arguments still follow it and win). The server may rewrite
    // it (CONFIG REWRITE; a sentinel rewrites it on every state change), and a restart after
    // kill_hard() reads the rewritten file.
    std::string config_text = {};
    // Passes --save '' --appendonly no. Set to false to leave persistence to `args`/config_text.
    bool no_persistence = true;
    // The port to listen on; 0 picks a free one.
    std::uint16_t port = 0;
  };

  redis_server() : redis_server(options{}) {}

  explicit redis_server(options opts)
      : opts_(std::move(opts)), dir_(make_temp_dir()), port_(opts_.port ? opts_.port : free_port()) {
    try {
      if (!opts_.config_text.empty()) {
        const std::string file = config_file().string();
        const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) throw std::runtime_error("cannot write " + file);
        const bool ok = ::write(fd, opts_.config_text.data(), opts_.config_text.size()) ==
                        static_cast<ssize_t>(opts_.config_text.size());
        ::close(fd);
        if (!ok) throw std::runtime_error("cannot write " + file);
      }
      start();
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
      throw;
    }
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  ~redis_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::uint16_t port() const noexcept { return port_; }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }
  // The config file given to the server (exists only with options::config_text).
  std::filesystem::path config_file() const { return dir_ / "redis.conf"; }

  // Starts the server (on the same port as before, after a kill) and waits until it answers.
  void start() {
    if (pid_ > 0) return;
    // Without this the child's failed exec shows only as "exited at start" with empty logs.
    if (opts_.executable.find('/') == std::string::npos && !on_path(opts_.executable)) {
      throw std::runtime_error(opts_.executable + " not found in PATH" +
                               (in_ci() ? std::string(" (CI is set: the Redis tests must run)") : ""));
    }
    std::vector<std::string> args{opts_.executable};
    if (!opts_.config_text.empty()) args.push_back(config_file().string());
    if (opts_.no_persistence) args.insert(args.end(), {"--save", "", "--appendonly", "no"});
    args.insert(args.end(), {"--bind", "127.0.0.1", "--dir", dir_.string(), "--logfile",
                             (dir_ / "redis.log").string(), "--daemonize", "no",
                             "--enable-debug-command", "local"});
    if (opts_.tls) {
      args.insert(args.end(), {"--port", "0", "--tls-port", std::to_string(port_)});
    } else {
      args.insert(args.end(), {"--port", std::to_string(port_)});
    }
    args.insert(args.end(), opts_.args.begin(), opts_.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // Errors found before the log file is open (a bad option) go to stderr: keep them.
    const std::string output = (dir_ / "output.log").string();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) ::dup2(null, 0);
      const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      if (opts_.tls ? accepts_tcp(port_) : answers_ping(port_, 200ms)) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(opts_.executable + " on port " + std::to_string(port_) +
                                 " exited at start; its output and log end with:\n" +
                                 file_tail(dir_ / "output.log") + file_tail(dir_ / "redis.log"));
      }
      if (std::chrono::steady_clock::now() > give_up) {
        stop();
        throw std::runtime_error(opts_.executable + " on port " + std::to_string(port_) +
                                 " did not answer within 10 s");
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  // SIGKILL: the server vanishes mid-traffic, like a crash.
  void kill_hard() { signal_and_reap(SIGKILL); }

  // SIGSTOP / SIGCONT: the server stays connected but says nothing (a hung host).
  void pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  // Nothing is persisted (--save '', no AOF), so there is nothing to wait for: SIGKILL, which
  // unlike SIGTERM does not wait for the server's next cron tick (up to 100 ms).
  void stop() { signal_and_reap(SIGKILL); }

 private:
  // The last 2 KB of a file (for error messages: the directory goes with the object).
  static std::string file_tail(const std::filesystem::path& file) {
    std::string text;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    const off_t size = ::lseek(fd, 0, SEEK_END);
    const off_t from = size > 2048 ? size - 2048 : 0;
    text.resize(static_cast<std::size_t>(size - from));
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    ::close(fd);
    return text;
  }

  void signal_and_reap(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  options opts_;
  std::filesystem::path dir_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

// The bounded runner of coroutine tests (test/support/run.hpp).
using websession::test::run_test;

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ignored;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

// Runs a blocking step (a fixture's redis-cli or failover wait) on a thread of its own, and waits
// for it without blocking the io_context. It must not start servers: their PR_SET_PDEATHSIG
// fires when that thread ends (it follows the thread that forked, not the process).
inline asio::awaitable<void> off_loop(std::function<void()> f) {
  std::atomic<bool> done{false};
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      f();
    } catch (...) {
      failure = std::current_exception();
    }
    done = true;
  });
  while (!done) co_await sleep_for(5ms);
  t.join();
  if (failure) std::rethrow_exception(failure);
}

// Polls `pred` every 5 ms until it holds or `limit` passes; returns whether it held.
inline asio::awaitable<bool> wait_until(std::function<bool()> pred, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

}  // namespace redis_test
