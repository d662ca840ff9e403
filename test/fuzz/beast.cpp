// SPDX-License-Identifier: BSL-1.0
// Fuzz target: the Boost.Beast glue (websession/http/beast.hpp): with_session, hence
// async_load_session and async_apply_session, on a request whose headers come from the input,
// with a real manager on the memory store; the io_context runs to completion inside the target.
//
// Input: byte 0 = flags (bit 0: bind_client; bits 1-3: what the handler does; bit 4: move the
// clock past the stored session's idle deadline), then header lines `Name: value` separated by
// '\n' (a line whose name is not a token becomes a Cookie field holding the whole line). In
// values, `$ID` stands for the id of a session stored before the request, `$NEW` for a
// well-formed id that is not stored.
//
// Invariants: no exception escapes, no crash; the answer is 200 (the memory store cannot fail);
// the stored session is loaded exactly when the first valid, well-formed cookie of the session
// cookie's name (over all Cookie fields, each at most 8 KB) is its id and it has not expired;
// otherwise a fresh session that nothing wrote to; a fresh session nobody wrote to gets no
// Set-Cookie; a written one gets exactly one, with Cache-Control, whose value loads the same
// data in a follow-up request; a destroyed one gets a deletion cookie and cannot be loaded again.
#include "fuzz.hpp"

#include <websession/websession.hpp>
#include <websession/http/beast.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace websession;
namespace bhttp = boost::beast::http;

namespace {

using store_type = basic_memory_store<manual_clock>;
using manager_type = basic_session_manager<json_serializer, aes_gcm_cipher, store_type, manual_clock>;
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

const aes_gcm_cipher& cipher() {
  static const aes_gcm_cipher c(std::string("websession fuzz beast secret, 32+ bytes long"));
  return c;
}

enum class action { none, write, login, destroy, skip, erase, count };

struct env {
  boost::asio::io_context ioc;
  manual_clock clock;
  std::optional<manager_type> mgr;

  env() {
    options o;
    o.key_prefix = "fuzz:";
    memory_store_options so;
    mgr.emplace(ioc.get_executor(), cipher(), store_type(ioc.get_executor(), so, clock), o,
                json_serializer{}, clock);
  }

  // Runs `make()` (a coroutine) to completion; an exception inside is rethrown here, uncaught.
  template <class T, class F>
  T run(F make) {
    std::optional<T> out;
    boost::asio::co_spawn(ioc, make(), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    ioc.restart();
    ioc.run();
    WS_FUZZ_CHECK(out.has_value());
    return std::move(*out);
  }
};

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
}

bool is_token(std::string_view s) {
  return !s.empty() && websession::detail::all_of(s, websession::detail::token_chars);
}

// What the glue should load: the first valid pair named `name` that is a well-formed id.
std::optional<std::string> expected_cookie(const request& req, std::string_view name) {
  const auto range = req.equal_range(bhttp::field::cookie);
  for (auto it = range.first; it != range.second; ++it) {
    const std::string_view header(it->value().data(), it->value().size());
    auto pairs = http::parse_cookie_header(header);
    if (!pairs) continue;
    for (const http::cookie_pair& p : *pairs)
      if (p.valid() && p.name == name && session_id::parse(p.value)) return std::string(p.value);
  }
  return std::nullopt;
}

std::vector<std::string> set_cookies(const response& res) {
  std::vector<std::string> out;
  const auto range = res.equal_range(bhttp::field::set_cookie);
  for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
  return out;
}

// Loads `cookie_value` through the glue in a request of its own.
session follow_up(env& e, const std::string& cookie_value) {
  request req{bhttp::verb::get, "/", 11};
  req.set(bhttp::field::cookie, e.mgr->get_options().cookie.name + "=" + cookie_value);
  return e.run<session>([&]() -> awaitable<session> {
    auto [ec, s] = co_await http::async_load_session(*e.mgr, req, http::detail::tuple_awaitable);
    WS_FUZZ_CHECK(!ec);
    co_return std::move(s);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view rest = fuzz::as_view(data + 1, size - 1);
  env e;
  const std::string cookie_name = e.mgr->get_options().cookie.name;

  // The stored session.
  const std::string stored_id = e.run<std::string>([&]() -> awaitable<std::string> {
    session s = e.mgr->new_session();
    s.set("n", 1);
    auto [ec] = co_await e.mgr->async_save(s, http::detail::tuple_awaitable);
    WS_FUZZ_CHECK(!ec);
    co_return s.id();
  });
  const std::string unknown_id = session_id::generate().to_string();

  request req{bhttp::verb::get, "/", 11};
  std::size_t start = 0;
  while (start <= rest.size()) {
    const std::size_t nl = std::min(rest.find('\n', start), rest.size());
    std::string line(rest.substr(start, nl - start));
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    replace_all(line, "$ID", stored_id);
    replace_all(line, "$NEW", unknown_id);
    const std::size_t colon = line.find(':');
    std::string name = colon == std::string::npos ? std::string() : line.substr(0, colon);
    std::string value = colon == std::string::npos ? line : line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    if (!is_token(name)) {
      name = "Cookie";
      value = line;
    }
    req.insert(name, value);
  }

  http::glue_options opts;
  opts.bind_client = (flags & 1) != 0;
  const auto act = static_cast<action>(((flags >> 1) & 7) % static_cast<int>(action::count));
  const bool expire = (flags & 16) != 0;
  if (expire) e.clock.advance(e.mgr->get_options().anonymous_idle_timeout + std::chrono::seconds(1));

  const std::optional<std::string> expected = expected_cookie(req, cookie_name);
  const bool expect_loaded = expected && *expected == stored_id && !expire;

  bool was_new = false;
  std::string final_id;
  const response res = e.run<response>([&]() -> awaitable<response> {
    co_return co_await http::with_session(
        *e.mgr, req, [&](const request&, session& s) -> awaitable<response> {
          WS_FUZZ_CHECK(s.valid());
          was_new = s.is_new();
          if (expect_loaded) {
            WS_FUZZ_CHECK(!s.is_new() && s.id() == stored_id && s.get("n") != nullptr);
          } else {
            WS_FUZZ_CHECK(s.is_new() && !s.dirty() && s.id() != stored_id && s.data().empty());
          }
          switch (act) {
            case action::none: break;
            case action::write: {
              // Printable ASCII: non-UTF-8 data is the application's error (invalid_data, 500).
              std::string v;
              for (char c : rest.substr(0, 32)) v.push_back(static_cast<char>(0x20 + static_cast<unsigned char>(c) % 95));
              s.set("k", v);
              break;
            }
            case action::login: {
              e.mgr->bind_user(s, "fuzz-user");
              auto [ec] = co_await e.mgr->async_rotate(s, http::detail::tuple_awaitable);
              WS_FUZZ_CHECK(!ec);
              break;
            }
            case action::destroy: {
              auto [ec] = co_await e.mgr->async_destroy(s, http::detail::tuple_awaitable);
              WS_FUZZ_CHECK(!ec || ec == error::not_found);
              break;
            }
            case action::skip: s.set("k", 1); s.skip_save(); break;
            case action::erase: s.erase("n"); break;
            case action::count: break;
          }
          final_id = s.id();
          co_return response{bhttp::status::ok, 11};
        },
        opts);
  });
  if (res.result() != bhttp::status::ok)
    std::fprintf(stderr, "status %u: %s\n", res.result_int(), res.body().c_str());
  WS_FUZZ_CHECK(res.result() == bhttp::status::ok);

  const std::vector<std::string> sc = set_cookies(res);
  WS_FUZZ_CHECK(sc.size() <= 1);
  if (!sc.empty()) WS_FUZZ_CHECK(res.find(bhttp::field::cache_control) != res.end());
  switch (act) {
    case action::none:
      if (was_new) WS_FUZZ_CHECK(sc.empty());
      break;
    case action::skip: WS_FUZZ_CHECK(sc.empty()); break;
    case action::write:
    case action::login: {
      WS_FUZZ_CHECK(sc.size() == 1);
      const std::string_view head = std::string_view(sc[0]).substr(0, sc[0].find(';'));
      const auto value = http::find_cookie(head, cookie_name);
      WS_FUZZ_CHECK(value && *value == final_id);
      const session again = follow_up(e, std::string(*value));
      WS_FUZZ_CHECK(!again.is_new() && again.id() == final_id);
      if (act == action::write) WS_FUZZ_CHECK(again.get("k") != nullptr);
      if (act == action::login) WS_FUZZ_CHECK(again.user() == "fuzz-user" && final_id != stored_id);
      break;
    }
    case action::destroy: {
      WS_FUZZ_CHECK(sc.size() == 1 && sc[0].find("Max-Age=0") != std::string::npos);
      if (!was_new) WS_FUZZ_CHECK(follow_up(e, stored_id).is_new());
      break;
    }
    case action::erase:
      if (!was_new) {
        WS_FUZZ_CHECK(sc.size() == 1);
        WS_FUZZ_CHECK(follow_up(e, stored_id).get("n") == nullptr);
      }
      break;
    case action::count: break;
  }
  return 0;
}
