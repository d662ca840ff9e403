// SPDX-License-Identifier: BSL-1.0
// The example server's password side without a server (example/server/passwords.hpp): records
// and a known answer, every malformed record and users-file line, the same cost for unknown
// users, the checker's completion and its bound, and `--hash-password` on a pipe.
#include "server/passwords.hpp"
#include "server_process.hpp"  // temp_dir

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace ex = example;
using namespace std::chrono_literals;

// Records cheap enough for the sanitizer builds (where every HMAC allocation of OpenSSL goes
// through ASan's allocator: 600,000 iterations take 13 s there); the parser is told to take
// them (its `floor`), and the default floor is tested on its own.
constexpr std::uint32_t fast = 1000;

// The seconds `fn` takes, the fastest of `n` runs (the least disturbed by other processes).
template <class Fn>
double fastest(int n, Fn fn) {
  double best = 1e9;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::string line_for(const std::string& user, const std::string& password,
                     std::uint32_t iterations = fast) {
  return user + ":" + ex::to_string(ex::hash_password(password, iterations));
}

// What user_table::parse throws for `text`, or "" if it accepts it.
std::string parse_error(const std::string& text) {
  try {
    (void)ex::user_table::parse(text, "users", fast);
  } catch (const ex::usage_error& e) {
    return e.what();
  }
  return {};
}

// Runs hash_password_command on `input` fed through a pipe; its status, stdout and stderr.
struct command_result {
  int status = -1;
  std::string out;
  std::string err;
};
command_result hash_command(const std::string& user, const std::string& input) {
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe(fds) == 0);
  BOOST_TEST_REQUIRE(::write(fds[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  ::close(fds[1]);
  std::FILE* out = std::tmpfile();
  BOOST_TEST_REQUIRE(out != nullptr);
  std::ostringstream err;
  command_result r;
  r.status = ex::hash_password_command(user, fds[0], out, err, fast);
  ::close(fds[0]);
  std::rewind(out);
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) r.out.append(buf, n);
  std::fclose(out);
  r.err = err.str();
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(passwords)

BOOST_AUTO_TEST_CASE(pbkdf2_known_answer) {
  // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P = "passwd", S = "salt", c = 1 (the first 32 of
  // its 64 bytes). Proves the digest, the parameter order and the key length.
  ex::password_hash h;
  h.iterations = 1;
  h.salt = {'s', 'a', 'l', 't'};
  std::vector<unsigned char> key;
  BOOST_TEST_REQUIRE(ex::detail::unhex(
      "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc", key));
  std::copy(key.begin(), key.end(), h.key.begin());
  BOOST_TEST(ex::verify_password("passwd", h));
  BOOST_TEST(!ex::verify_password("passwe", h));
}

BOOST_AUTO_TEST_CASE(record_round_trip) {
  const ex::password_hash h = ex::hash_password("correct horse", fast);
  BOOST_TEST(h.iterations == fast);
  BOOST_TEST(h.salt.size() == ex::salt_size);
  const std::string text = ex::to_string(h);
  BOOST_TEST(text.starts_with("pbkdf2-sha256$1000$"));
  BOOST_TEST(text.size() == std::string("pbkdf2-sha256$1000$").size() + 32 + 1 + 64);
  std::string why;
  const std::optional<ex::password_hash> back = ex::parse_password_hash(text, why, fast);
  BOOST_TEST_REQUIRE(back.has_value(), why);
  BOOST_TEST((back->salt == h.salt));
  BOOST_TEST((back->key == h.key));
  BOOST_TEST(ex::verify_password("correct horse", *back));
  BOOST_TEST(!ex::verify_password("correct horsE", *back));
  BOOST_TEST(!ex::verify_password("correct horse ", *back));
  // A fresh salt each time: the same password never gives the same record.
  const ex::password_hash again = ex::hash_password("correct horse", fast);
  BOOST_TEST((again.salt != h.salt));
  BOOST_TEST((again.key != h.key));
  // Upper-case hex (written by hand) is read too.
  std::string upper = text;
  std::transform(upper.begin() + 19, upper.end(), upper.begin() + 19,
                 [](char c) { return c == '$' ? c : static_cast<char>(std::toupper(c)); });
  BOOST_TEST(ex::parse_password_hash(upper, why, fast).has_value());
  // The users file's own floor refuses it.
  BOOST_TEST(!ex::parse_password_hash(text, why).has_value());
  BOOST_TEST(why == "the iteration count must be a number from 100000 to 10000000");
  // The default: OWASP's count.
  BOOST_TEST(ex::default_iterations == 600'000u);
}

BOOST_AUTO_TEST_CASE(hashing_refuses_bad_input) {
  BOOST_CHECK_THROW(ex::hash_password(""), std::invalid_argument);
  BOOST_CHECK_THROW(ex::hash_password(std::string(1025, 'p')), std::invalid_argument);
  BOOST_CHECK_THROW(ex::hash_password("pw", 0), std::invalid_argument);
  BOOST_CHECK_THROW(ex::hash_password("pw", ex::max_iterations + 1), std::invalid_argument);
  BOOST_TEST(ex::password_problem(std::string(1024, 'p')).empty());
  BOOST_TEST(!ex::password_problem(std::string(1025, 'p')).empty());
  BOOST_TEST(!ex::password_problem("").empty());
}

BOOST_AUTO_TEST_CASE(malformed_records_are_refused_without_quoting_them) {
  const std::string salt(32, 'a');
  const std::string key(64, 'b');
  const std::vector<std::string> bad = {
      "",
      "pbkdf2-sha256",
      "pbkdf2-sha256$100000$" + salt,                       // no key
      "pbkdf2-sha256$100000$" + salt + "$" + key + "$x",    // a fifth field
      "pbkdf2-sha1$100000$" + salt + "$" + key,             // another scheme
      "PBKDF2-SHA256$100000$" + salt + "$" + key,           // the scheme is case-sensitive
      "pbkdf2-sha256$$" + salt + "$" + key,                 // no count
      "pbkdf2-sha256$abc$" + salt + "$" + key,
      "pbkdf2-sha256$99999$" + salt + "$" + key,            // too few iterations
      "pbkdf2-sha256$10000001$" + salt + "$" + key,         // too many
      "pbkdf2-sha256$4294967296$" + salt + "$" + key,       // overflows
      "pbkdf2-sha256$+100000$" + salt + "$" + key,
      "pbkdf2-sha256$-100000$" + salt + "$" + key,
      "pbkdf2-sha256$100000 $" + salt + "$" + key,
      "pbkdf2-sha256$100000$" + salt.substr(1) + "$" + key,   // odd hex
      "pbkdf2-sha256$100000$" + std::string(30, 'a') + "$" + key,  // 15 bytes of salt
      "pbkdf2-sha256$100000$" + std::string(130, 'a') + "$" + key,  // 65 bytes
      "pbkdf2-sha256$100000$" + std::string(31, 'a') + "g$" + key,  // not hex
      "pbkdf2-sha256$100000$" + salt + "$" + std::string(62, 'b'),  // 31-byte key
      "pbkdf2-sha256$100000$" + salt + "$" + std::string(66, 'b'),  // 33-byte key
      "pbkdf2-sha256$100000$" + salt + "$" + std::string(63, 'b') + "z",
      "pbkdf2-sha256$100000$" + salt + "$" + key + " ",     // trailing space
  };
  for (const std::string& text : bad) {
    BOOST_TEST_CONTEXT("record \"" << text << "\"") {
      std::string why;
      BOOST_TEST(!ex::parse_password_hash(text, why).has_value());
      BOOST_TEST(!why.empty());
      BOOST_TEST(why.find(salt) == std::string::npos);
      BOOST_TEST(why.find(key.substr(0, 16)) == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(users_file_lines) {
  const std::string ada = line_for("ada", "ada's password");
  const std::string bob = line_for("bob with spaces", "bob's password", fast + 1);
  const ex::user_table t = ex::user_table::parse(
      "# users\n\n" + ada + "\r\n# bob next\n" + bob + "\n", "users", fast);
  BOOST_TEST(t.size() == 2u);
  BOOST_TEST(t.find("ada") != nullptr);
  BOOST_TEST(t.find("bob with spaces") != nullptr);
  BOOST_TEST(t.find("carol") == nullptr);
  BOOST_TEST(t.check("ada", "ada's password"));
  BOOST_TEST(!t.check("ada", "bob's password"));
  BOOST_TEST(t.check("bob with spaces", "bob's password"));
  BOOST_TEST(!t.check("carol", "ada's password"));
  BOOST_TEST(!t.check("ada", ""));
  BOOST_TEST(!t.check("ada", std::string(1025, 'p')));
  // No trailing newline, one user.
  BOOST_TEST(ex::user_table::parse(ada, "users", fast).size() == 1u);
  // The default floor: min_iterations.
  BOOST_CHECK_THROW(ex::user_table::parse(ada, "users"), ex::usage_error);

  const std::string record = ada.substr(4);
  struct bad_case {
    std::string text;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {"", "users: no users"},
      {"# only a comment\n\n", "users: no users"},
      {ada + "\nno colon here\n", "users line 2: expected name:hash"},
      {":" + record, "users line 1: the user name must be 1 to 128 bytes"},
      {std::string(129, 'n') + ":" + record, "users line 1: the user name must be 1 to 128 bytes"},
      {"a\x01" "b:" + record, "users line 1: the user name must not contain control characters"},
      {std::string("a\0b:", 4) + record, "users line 1: the user name must not contain control"},
      {"ada:" + record + "x", "users line 1: user \"ada\": the key must be 32 bytes in hex"},
      {"ada:pbkdf2-sha256$999$" + std::string(32, 'a') + "$" + std::string(64, 'b'),
       "users line 1: user \"ada\": the iteration count must be a number from 1000"},
      {"ada:" + record + "\n" + bob + "\nada:" + record, "users line 3: user \"ada\" is already on line 1"},
      {"ada:" + std::string(5000, 'x'), "users line 1: longer than 4096 bytes"},
      {"ada :" + record + "\nada:" + record + "\n" + "ada\r:" + record,
       "users line 3: the user name must not contain control characters"},
  };
  for (const bad_case& c : cases) {
    BOOST_TEST_CONTEXT("file \"" << c.text.substr(0, 80) << "\"") {
      const std::string error = parse_error(c.text);
      BOOST_TEST(error.starts_with(c.message), error);
      BOOST_TEST(error.find(record.substr(19, 16)) == std::string::npos);  // the salt, unquoted
    }
  }
}

BOOST_AUTO_TEST_CASE(users_file_from_disk) {
  e2e::temp_dir dir;
  const auto write = [](const std::filesystem::path& p, const std::string& text, mode_t mode) {
    std::ofstream(p, std::ios::binary) << text;
    ::chmod(p.c_str(), mode);
  };
  const std::string ada = line_for("ada", "pw", ex::min_iterations);  // load() takes the default floor
  write(dir.path() / "private", ada + "\n", 0600);
  write(dir.path() / "shared", ada + "\n", 0644);
  write(dir.path() / "huge", "# " + std::string(ex::max_users_file_size, 'x') + "\n" + ada, 0600);
  std::string warn;
  BOOST_TEST(ex::user_table::load((dir.path() / "private").string(), warn).size() == 1u);
  BOOST_TEST(warn.empty(), warn);
  BOOST_TEST(ex::user_table::load((dir.path() / "shared").string(), warn).size() == 1u);
  BOOST_TEST(warn.find("chmod 600") != std::string::npos, warn);
  const auto error_of = [&](const std::filesystem::path& p) -> std::string {
    try {
      (void)ex::user_table::load(p.string(), warn);
    } catch (const ex::usage_error& e) {
      return e.what();
    }
    return {};
  };
  BOOST_TEST(error_of(dir.path() / "nope").find("No such file") != std::string::npos);
  BOOST_TEST(error_of(dir.path()).find("not a file") != std::string::npos);
  BOOST_TEST(error_of(dir.path() / "huge").find("larger than 1 MB") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_users_cost_what_known_ones_do) {
  // Two users at the cheapest count and one at three times that: an unknown name is checked
  // against a record at the count most users have, so it takes as long as a wrong password for
  // ada, and not nothing (nor as long as carol's).
  constexpr std::uint32_t cost = 20 * fast;  // long enough to measure
  const ex::user_table t = ex::user_table::parse(
      line_for("ada", "pw", cost) + "\n" + line_for("bob", "pw", cost) + "\n" +
          line_for("carol", "pw", 3 * cost) + "\n",
      "users", fast);
  const double wrong = fastest(3, [&] { BOOST_TEST(!t.check("ada", "wrong")); });
  const double unknown = fastest(3, [&] { BOOST_TEST(!t.check("nobody", "wrong")); });
  const double slow = fastest(3, [&] { BOOST_TEST(!t.check("carol", "wrong")); });
  BOOST_TEST_MESSAGE("wrong password " << wrong << " s, unknown user " << unknown
                                       << " s, 3x record " << slow << " s");
  BOOST_TEST(unknown > 0.5 * wrong);
  BOOST_TEST(unknown < 2.0 * wrong);
  BOOST_TEST(unknown < 0.75 * slow);
}

BOOST_AUTO_TEST_CASE(checker_completes_on_the_callers_executor) {
  auto users = std::make_shared<const ex::user_table>(
      ex::user_table::parse(line_for("ada", "pw"), "users", fast));
  ex::password_checker checker(users, 1);
  boost::asio::io_context io;
  const std::thread::id io_thread = std::this_thread::get_id();
  std::vector<std::pair<std::string, bool>> results;
  for (const char* pw : {"pw", "wrong"}) {
    checker.async_check("ada", pw,
                        boost::asio::bind_executor(io, [&, pw](boost::system::error_code ec, bool ok) {
                          BOOST_TEST(!ec);
                          BOOST_TEST((std::this_thread::get_id() == io_thread));
                          results.emplace_back(pw, ok);
                        }));
  }
  checker.async_check("nobody", "pw",
                      boost::asio::bind_executor(io, [&](boost::system::error_code ec, bool ok) {
                        BOOST_TEST(!ec);
                        results.emplace_back("nobody", ok);
                      }));
  // Work is tracked: run() waits for the hashing thread's answers.
  io.run();
  BOOST_TEST_REQUIRE(results.size() == 3u);
  for (const auto& [what, ok] : results) BOOST_TEST(ok == (what == "pw"), what);
}

BOOST_AUTO_TEST_CASE(checker_without_an_executor_completes_on_its_threads) {
  auto users = std::make_shared<const ex::user_table>(
      ex::user_table::parse(line_for("ada", "pw"), "users", fast));
  std::promise<std::pair<std::thread::id, bool>> done;
  {
    ex::password_checker checker(users, 1);
    checker.async_check("ada", "pw", [&](boost::system::error_code ec, bool ok) {
      BOOST_TEST(!ec);
      done.set_value({std::this_thread::get_id(), ok});
    });
    std::future<std::pair<std::thread::id, bool>> f = done.get_future();
    BOOST_TEST_REQUIRE((f.wait_for(30s) == std::future_status::ready));
    const auto [thread, ok] = f.get();
    BOOST_TEST((thread != std::this_thread::get_id()));
    BOOST_TEST(ok);
  }
}

BOOST_AUTO_TEST_CASE(checker_refuses_beyond_its_bound) {
  auto users = std::make_shared<const ex::user_table>(
      ex::user_table::parse(line_for("ada", "pw"), "users", fast));
  ex::password_checker checker(users, 1, 2);
  boost::asio::io_context io;
  int busy = 0;
  int checked = 0;
  for (int i = 0; i < 6; ++i) {
    checker.async_check("ada", "pw", boost::asio::bind_executor(io, [&](boost::system::error_code ec, bool ok) {
      if (ec) {
        BOOST_TEST((ec == boost::system::errc::resource_unavailable_try_again));
        BOOST_TEST(!ok);
        ++busy;
      } else {
        BOOST_TEST(ok);
        ++checked;
      }
    }));
  }
  io.run();
  BOOST_TEST(checked == 2);
  BOOST_TEST(busy == 4);
  // The bound is on checks under way, not in total: the next ones run.
  checker.async_check("ada", "pw", boost::asio::bind_executor(io, [&](boost::system::error_code ec, bool ok) {
    BOOST_TEST(!ec);
    BOOST_TEST(ok);
    ++checked;
  }));
  io.restart();
  io.run();
  BOOST_TEST(checked == 3);
}

BOOST_AUTO_TEST_CASE(checker_destroyed_with_checks_queued) {
  auto users = std::make_shared<const ex::user_table>(
      ex::user_table::parse(line_for("ada", "pw"), "users", fast));
  boost::asio::io_context io;
  int called = 0;
  {
    ex::password_checker checker(users, 1);
    for (int i = 0; i < 4; ++i)
      checker.async_check("ada", "pw", boost::asio::bind_executor(
                                           io, [&](boost::system::error_code, bool) { ++called; }));
  }  // waits for the running check, drops the queued ones
  io.run();
  BOOST_TEST(called <= 1);
}

BOOST_AUTO_TEST_CASE(hash_password_command_on_a_pipe) {
  const command_result ok = hash_command("ada", "s3cret pass\n");
  BOOST_TEST(ok.status == 0, ok.err);
  BOOST_TEST_REQUIRE(ok.out.starts_with("ada:pbkdf2-sha256$1000$"), ok.out);
  BOOST_TEST(ok.out.ends_with("\n"));
  BOOST_TEST(std::count(ok.out.begin(), ok.out.end(), '\n') == 1);
  BOOST_TEST(ok.out.find("s3cret") == std::string::npos);
  BOOST_TEST(ok.err.find("s3cret") == std::string::npos);
  const ex::user_table t = ex::user_table::parse(ok.out, "stdout", fast);
  BOOST_TEST(t.check("ada", "s3cret pass"));
  BOOST_TEST(!t.check("ada", "s3cret pass\n"));

  // CRLF, and no newline at all.
  BOOST_TEST(hash_command("ada", "pw\r\n").status == 0);
  BOOST_TEST(hash_command("ada", std::string(1024, 'p')).status == 0);

  struct bad_case {
    std::string user;
    std::string input;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {"ada", "", "the password must not be empty"},
      {"ada", "\n", "the password must not be empty"},
      {"ada", "first\nsecond\n", "expected one line"},
      {"ada", std::string("pass\0word\n", 10), "without NUL bytes"},
      {"ada", std::string(1025, 'p'), "the password must be at most 1024 bytes"},
      {"ada", std::string(5000, 'p') + "\n", "the password must be at most 1024 bytes"},
      {"a:b", "pw\n", "must not contain ':'"},
      {"", "pw\n", "the user name must be 1 to 128 bytes"},
      {std::string(129, 'u'), "pw\n", "the user name must be 1 to 128 bytes"},
      {"a\nb", "pw\n", "the user name must not contain control characters"},
  };
  for (const bad_case& c : cases) {
    BOOST_TEST_CONTEXT("user \"" << c.user << "\", input of " << c.input.size() << " bytes") {
      const command_result r = hash_command(c.user, c.input);
      BOOST_TEST(r.status == 2);
      BOOST_TEST(r.out.empty(), r.out);
      BOOST_TEST(r.err.find(c.message) != std::string::npos, r.err);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
