// SPDX-License-Identifier: BSL-1.0
// Passwords of the example server: PBKDF2-HMAC-SHA256 records that carry their own parameters,
// the users file (--users: one "name:record" line per user), the checker that verifies a login
// off the I/O threads and costs the same whether the user exists or not, and
// `server --hash-password NAME`, which prints a user's line for a password read on stdin.
#pragma once

#include "config.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace example {

/// A password hash as the users file keeps it: PBKDF2-HMAC-SHA256 with its iteration count and
/// salt, written `pbkdf2-sha256$ITERATIONS$SALT$KEY` (salt and key in lowercase hex). The
/// scheme name and the parameters travel with each record, so that a later version can raise
/// the count or change the scheme while old lines keep working.
struct password_hash {
  std::uint32_t iterations = 0;
  std::vector<unsigned char> salt;
  std::array<unsigned char, 32> key{};
};

inline constexpr std::string_view password_scheme = "pbkdf2-sha256";
/// OWASP's figure for PBKDF2-HMAC-SHA256 (2023): about 0.3 s of one core here.
inline constexpr std::uint32_t default_iterations = 600'000;
/// The users file refuses records below this: a stolen file would be too cheap to attack.
/// (config.hpp's --hash-iterations range repeats these bounds.)
inline constexpr std::uint32_t min_iterations = 100'000;
/// Records above this are refused: each login would hold a hashing thread for minutes.
inline constexpr std::uint32_t max_iterations = 10'000'000;
inline constexpr std::size_t salt_size = 16;
inline constexpr std::size_t max_salt_size = 64;
/// Longer passwords are refused before any hashing (PBKDF2 hashes a long one once per
/// iteration's HMAC key set-up only, but nobody types more than this).
inline constexpr std::size_t max_password_size = 1024;
/// User names at login and in the users file.
inline constexpr std::size_t max_user_size = 128;
/// The users file is read whole at start.
inline constexpr std::size_t max_users_file_size = 1024 * 1024;

/// Why `name` cannot be a user name (1 to max_user_size bytes, no control characters), or an
/// empty view when it can.
inline std::string_view user_name_problem(std::string_view name) {
  if (name.empty() || name.size() > max_user_size) return "must be 1 to 128 bytes";
  for (const char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "must not contain control characters";
  return {};
}

/// Why `password` cannot be checked or hashed (empty, or longer than max_password_size), or an
/// empty view when it can.
inline std::string_view password_problem(std::string_view password) {
  if (password.empty()) return "must not be empty";
  if (password.size() > max_password_size) return "must be at most 1024 bytes";
  return {};
}

namespace detail {

inline std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 0xf]);
  }
  return out;
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool unhex(std::string_view text, std::vector<unsigned char>& out) {
  if (text.size() % 2 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_digit(text[i]);
    const int lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<unsigned char>(hi << 4 | lo));
  }
  return true;
}

// PBKDF2-HMAC-SHA256 of `password` with the parameters of `h` into `key`.
inline bool derive(std::string_view password, const password_hash& h,
                   std::array<unsigned char, 32>& key) {
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), h.salt.data(),
                           static_cast<int>(h.salt.size()), static_cast<int>(h.iterations),
                           EVP_sha256(), static_cast<int>(key.size()), key.data()) == 1;
}

}  // namespace detail

/// `h` as the users file writes it.
inline std::string to_string(const password_hash& h) {
  return std::string(password_scheme) + "$" + std::to_string(h.iterations) + "$" +
         detail::hex(h.salt.data(), h.salt.size()) + "$" + detail::hex(h.key.data(), h.key.size());
}

/// Parses a record written by to_string, with `floor` to max_iterations iterations. On failure
/// returns nullopt and sets `why` (which never quotes the record). Only tests lower `floor`.
inline std::optional<password_hash> parse_password_hash(std::string_view text, std::string& why,
                                                        std::uint32_t floor = min_iterations) {
  std::vector<std::string_view> fields;
  for (std::size_t from = 0;;) {
    const std::size_t dollar = text.find('$', from);
    fields.push_back(text.substr(from, dollar - from));
    if (dollar == std::string_view::npos) break;
    from = dollar + 1;
  }
  if (fields.size() != 4 || fields[0] != password_scheme) {
    why = "not a " + std::string(password_scheme) + "$ITERATIONS$SALT$KEY record";
    return std::nullopt;
  }
  password_hash h;
  const std::string_view it = fields[1];
  const auto [end, ec] = std::from_chars(it.data(), it.data() + it.size(), h.iterations);
  if (it.empty() || ec != std::errc{} || end != it.data() + it.size() ||
      h.iterations < floor || h.iterations > max_iterations) {
    why = "the iteration count must be a number from " + std::to_string(floor) + " to " +
          std::to_string(max_iterations);
    return std::nullopt;
  }
  if (!detail::unhex(fields[2], h.salt) || h.salt.size() < salt_size ||
      h.salt.size() > max_salt_size) {
    why = "the salt must be 16 to 64 bytes in hex";
    return std::nullopt;
  }
  std::vector<unsigned char> key;
  if (!detail::unhex(fields[3], key) || key.size() != h.key.size()) {
    why = "the key must be 32 bytes in hex";
    return std::nullopt;
  }
  std::copy(key.begin(), key.end(), h.key.begin());
  return h;
}

/// A new record of `password` with a fresh random salt. Throws std::invalid_argument if
/// password_problem(password), or the iteration count is 0 or above max_iterations (the users
/// file refuses fewer than min_iterations), std::runtime_error if OpenSSL fails.
inline password_hash hash_password(std::string_view password,
                                   std::uint32_t iterations = default_iterations) {
  if (!password_problem(password).empty() || iterations == 0 || iterations > max_iterations)
    throw std::invalid_argument("hash_password: password or iteration count out of range");
  password_hash h;
  h.iterations = iterations;
  h.salt.resize(salt_size);
  if (RAND_bytes(h.salt.data(), static_cast<int>(h.salt.size())) != 1 ||
      !detail::derive(password, h, h.key))
    throw std::runtime_error("hash_password: OpenSSL failed");
  return h;
}

/// Whether `password` hashes to `h`'s key: the whole PBKDF2 run, then a constant-time compare.
/// False as well if OpenSSL fails.
inline bool verify_password(std::string_view password, const password_hash& h) {
  std::array<unsigned char, 32> key{};
  const bool derived = detail::derive(password, h, key);
  const bool same = CRYPTO_memcmp(key.data(), h.key.data(), key.size()) == 0;
  OPENSSL_cleanse(key.data(), key.size());
  return derived && same;
}

namespace detail {

// A password's bytes in one heap buffer, wiped when destroyed. A move hands the buffer over and
// leaves no copy behind (a moved std::string may keep a short one in its own small buffer).
class secret_bytes {
 public:
  explicit secret_bytes(std::string_view text) : bytes_(text.begin(), text.end()) {}
  secret_bytes(secret_bytes&&) noexcept = default;
  secret_bytes& operator=(secret_bytes&&) = delete;
  ~secret_bytes() { wipe(); }
  std::string_view view() const noexcept { return {bytes_.data(), bytes_.size()}; }
  void wipe() noexcept {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
  }

 private:
  std::vector<char> bytes_;
};

}  // namespace detail

/// The users of --users: name -> record, read once at start and never changed, so any thread
/// may read it without a lock.
class user_table {
 public:
  /// Parses the users file's `text` (`source` names it in errors). One `name:record` line per
  /// user (record: to_string(password_hash)); empty lines and lines starting with '#' are
  /// skipped; a trailing \r is dropped. Throws usage_error naming the line for a line without
  /// ':', a bad user name, a bad record, a user named twice, a line over 4 KB, and for a file
  /// with no user at all. The errors never quote a record. `floor`: as parse_password_hash.
  static user_table parse(std::string_view text, std::string_view source,
                          std::uint32_t floor = min_iterations) {
    user_table t;
    std::map<std::string, std::size_t, std::less<>> line_of;
    std::size_t number = 0;
    for (std::size_t from = 0; from < text.size();) {
      const std::size_t nl = text.find('\n', from);
      std::string_view line = text.substr(from, nl - from);
      from = nl == std::string_view::npos ? text.size() : nl + 1;
      ++number;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.empty() || line.front() == '#') continue;
      const auto fail = [&](const std::string& why) {
        return usage_error(std::string(source) + " line " + std::to_string(number) + ": " + why);
      };
      if (line.size() > 4096) throw fail("longer than 4096 bytes");
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) throw fail("expected name:hash");
      const std::string_view name = line.substr(0, colon);
      if (const std::string_view p = user_name_problem(name); !p.empty())
        throw fail("the user name " + std::string(p));
      std::string why;
      std::optional<password_hash> h = parse_password_hash(line.substr(colon + 1), why, floor);
      if (!h) throw fail("user \"" + std::string(name) + "\": " + why);
      if (const auto it = line_of.find(name); it != line_of.end())
        throw fail("user \"" + std::string(name) + "\" is already on line " +
                   std::to_string(it->second));
      line_of.emplace(std::string(name), number);
      t.users_.emplace(std::string(name), std::move(*h));
    }
    if (t.users_.empty()) throw usage_error(std::string(source) + ": no users");
    t.make_dummy();
    return t;
  }

  /// Reads and parses the users file at `path` (at most 1 MB); errors as parse, and those of
  /// read_bounded_file. `warn` is set when others than its owner may read the file.
  static user_table load(const std::string& path, std::string& warn) {
    const std::string what = "--users \"" + path + "\"";
    const std::string text = read_bounded_file("--users", path, max_users_file_size, warn);
    if (text.size() > max_users_file_size) throw usage_error(what + ": larger than 1 MB");
    return parse(text, what);
  }

  std::size_t size() const noexcept { return users_.size(); }

  /// The record of `user`, or null.
  const password_hash* find(std::string_view user) const {
    const auto it = users_.find(user);
    return it == users_.end() ? nullptr : &it->second;
  }

  /// Whether `user` exists and `password` is theirs. Costs one PBKDF2 run in every case: an
  /// unknown user is checked against a dummy record with the iteration count most users have,
  /// so the answer's timing does not tell which names exist. False for a password_problem.
  bool check(std::string_view user, std::string_view password) const {
    if (!password_problem(password).empty()) return false;
    const password_hash* h = find(user);
    const bool match = verify_password(password, h ? *h : dummy_);
    return h != nullptr && match;
  }

 private:
  user_table() = default;

  void make_dummy() {
    std::map<std::uint32_t, std::size_t> counts;
    for (const auto& [name, h] : users_) ++counts[h.iterations];
    dummy_.iterations = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
                          return a.second < b.second;
                        })->first;
    dummy_.salt.resize(salt_size);
    // A random key nobody knows the password of; check() refuses an unknown user anyway.
    if (RAND_bytes(dummy_.salt.data(), static_cast<int>(dummy_.salt.size())) != 1 ||
        RAND_bytes(dummy_.key.data(), static_cast<int>(dummy_.key.size())) != 1)
      throw std::runtime_error("RAND_bytes failed");
  }

  std::map<std::string, password_hash, std::less<>> users_;
  password_hash dummy_;
};

/// Checks logins against a user_table on threads of its own: a PBKDF2 run takes a third of a
/// second, which must not stall the connections of an I/O thread.
///
/// Thread safety: async_check may be called from any thread. Lifetime: the checker must
/// outlive the operations it started; its destructor abandons checks still waiting (their
/// handlers are destroyed without being called) and waits for the running ones. Cancellation:
/// none (a check runs to its end once started).
class password_checker {
 public:
  /// `threads` hashing threads (at least 1); at most `max_waiting` checks queued or running at
  /// once: more complete at once with errc::resource_unavailable_try_again (answered 503), so
  /// that a flood of logins queues no unbounded work.
  password_checker(std::shared_ptr<const user_table> users, std::size_t threads,
                   std::size_t max_waiting = 64)
      : users_(std::move(users)), pool_(std::max<std::size_t>(threads, 1)), max_waiting_(max_waiting) {
    if (!users_) throw std::invalid_argument("password_checker: no user table");
  }

  password_checker(const password_checker&) = delete;
  password_checker& operator=(const password_checker&) = delete;

  ~password_checker() {
    pool_.stop();
    pool_.join();
  }

  const user_table& users() const noexcept { return *users_; }

  /// Checks `password` for `user` (user_table::check) on a hashing thread and completes with
  /// (error_code, bool ok) on the handler's associated executor (by default, a hashing thread).
  /// Errors: errc::resource_unavailable_try_again when max_waiting checks are already under way.
  /// `password` is copied before this returns, into a buffer wiped once hashed (or abandoned);
  /// the caller wipes its own.
  template <class CompletionToken>
  auto async_check(std::string user, std::string_view password, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, bool)>(
        [this](auto handler, std::string u, detail::secret_bytes p) {
          this->start(std::move(handler), std::move(u), std::move(p));
        },
        token, std::move(user), detail::secret_bytes(password));
  }

 private:
  template <class Handler>
  void start(Handler handler, std::string user, detail::secret_bytes password) {
    namespace asio = boost::asio;
    auto work = asio::prefer(asio::get_associated_executor(handler, pool_.get_executor()),
                             asio::execution::outstanding_work.tracked);
    if (waiting_.fetch_add(1) >= max_waiting_) {
      waiting_.fetch_sub(1);
      asio::post(work, [h = std::move(handler)]() mutable {
        std::move(h)(make_error_code(boost::system::errc::resource_unavailable_try_again), false);
      });
      return;
    }
    asio::post(pool_, [this, h = std::move(handler), work = std::move(work), u = std::move(user),
                       p = std::move(password)]() mutable {
      const bool ok = users_->check(u, p.view());
      p.wipe();
      waiting_.fetch_sub(1);
      asio::post(work, [h = std::move(h), ok]() mutable {
        std::move(h)(boost::system::error_code{}, ok);
      });
    });
  }

  std::shared_ptr<const user_table> users_;
  boost::asio::thread_pool pool_;
  std::size_t max_waiting_;
  std::atomic<std::size_t> waiting_{0};
};

namespace detail {

// Turns terminal echo off on `fd` for its lifetime (if `fd` is a terminal).
class echo_off {
 public:
  explicit echo_off(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  echo_off(const echo_off&) = delete;
  echo_off& operator=(const echo_off&) = delete;
  ~echo_off() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// One line of at most max_password_size bytes from `fd` into `buf` (without its \n or \r\n):
// up to the first newline on a terminal, up to the end of the input otherwise (which must then
// hold that one line only). Sets `size` to its length and returns true, or sets `why`.
inline bool read_password_line(int fd, bool terminal, std::array<char, max_password_size + 3>& buf,
                               std::size_t& size, std::string& why) {
  std::size_t n = 0;
  for (;;) {
    if (n == buf.size()) {
      why = "the password must be at most 1024 bytes";
      return false;
    }
    const ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      why = std::string("cannot read stdin: ") + std::strerror(errno);
      return false;
    }
    if (r == 0) break;
    n += static_cast<std::size_t>(r);
    if (terminal && std::string_view(buf.data(), n).find('\n') != std::string_view::npos) break;
  }
  std::string_view line(buf.data(), n);
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    why = "expected one line (the password) on stdin, without NUL bytes";
    return false;
  }
  if (const std::string_view p = password_problem(line); !p.empty()) {
    why = "the password " + std::string(p);
    return false;
  }
  size = line.size();
  return true;
}

}  // namespace detail

/// `server --hash-password USER [--hash-iterations N]`: reads a password on `in_fd` (one line;
/// on a terminal with a prompt on `err`, without echo, asked twice) and writes USER's users-file
/// line, hashed with `iterations`, to `out`. The password is never printed, and wiped from
/// memory once hashed. Returns the exit status: 0, 2 for a bad user name or password (a message
/// on `err`), 1 if OpenSSL fails.
inline int hash_password_command(std::string_view user, int in_fd, std::FILE* out,
                                 std::ostream& err,
                                 std::uint32_t iterations = default_iterations) {
  if (const std::string_view p = user_name_problem(user); !p.empty()) {
    err << "server: --hash-password: the user name " << p << std::endl;
    return 2;
  }
  if (user.find(':') != std::string_view::npos) {
    err << "server: --hash-password: the user name must not contain ':'" << std::endl;
    return 2;
  }
  const bool terminal = ::isatty(in_fd) == 1;
  std::array<char, max_password_size + 3> first{};
  std::array<char, max_password_size + 3> again{};
  const auto wipe = [&] {
    OPENSSL_cleanse(first.data(), first.size());
    OPENSSL_cleanse(again.data(), again.size());
  };
  std::string why;
  std::size_t n = 0;
  bool read = false;
  {
    const detail::echo_off quiet(in_fd);
    if (terminal) err << "password for " << user << ": " << std::flush;
    read = detail::read_password_line(in_fd, terminal, first, n, why);
    if (terminal && read) {
      err << "\nagain: " << std::flush;
      std::size_t m = 0;
      read = detail::read_password_line(in_fd, terminal, again, m, why);
      if (read && std::string_view(first.data(), n) != std::string_view(again.data(), m)) {
        why = "the two passwords differ";
        read = false;
      }
    }
    if (terminal) err << std::endl;
  }
  if (!read) {
    wipe();
    err << "server: --hash-password: " << why << std::endl;
    return 2;
  }
  try {
    const password_hash h = hash_password(std::string_view(first.data(), n), iterations);
    wipe();
    const std::string line = std::string(user) + ":" + to_string(h) + "\n";
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
      err << "server: --hash-password: cannot write the line" << std::endl;
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    wipe();
    err << "server: --hash-password: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace example
