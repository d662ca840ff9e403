// SPDX-License-Identifier: BSL-1.0
// Boost.Beast glue: load the session a request's cookie names, write the Set-Cookie its response
// needs, and with_session, which runs a handler between the two and answers failures through an
// error-response hook. Also client fingerprints for optional client binding. Generic over the
// message's Fields (Beast's is_fields) and over the manager (the glue_manager concept).
#pragma once

#include <websession/concepts.hpp>
#include <websession/detail/async.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/detail/sha256.hpp>
#include <websession/error.hpp>
#include <websession/http/cookie.hpp>
#include <websession/id.hpp>
#include <websession/options.hpp>
#include <websession/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/type_traits.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace websession::http {

namespace detail {
inline constexpr auto tuple_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);
}  // namespace detail

/// The header container of the messages the glue reads and writes: Beast's Fields requirements
/// (boost::beast::http::is_fields), and the lookups and insertions basic_fields offers that the
/// glue uses (find and equal_range by field and by name, set, insert). Models:
/// boost::beast::http::basic_fields<Allocator> and classes derived from it.
template <class Fields>
concept glue_fields =
    boost::beast::http::is_fields<Fields>::value &&
    requires(Fields& f, const Fields& cf, boost::beast::http::field name, std::string_view text) {
      cf.find(name) == cf.end();
      cf.equal_range(name);
      cf.equal_range(text);
      f.set(name, text);
      f.insert(name, text);
    };

/// What the glue needs of a session manager (basic_session_manager models it; a wrapper that
/// adds logging or metrics around one may too):
///
/// | expression                           | type or effect                                   |
/// |--------------------------------------|--------------------------------------------------|
/// | cm.get_executor()                    | convertible to any_io_executor                   |
/// | cm.get_options()                     | const options& (the cookie settings)             |
/// | cm.get_clock().now()                 | convertible to time_point (the cookie's Expires) |
/// | cm.new_lazy_session(fingerprint)     | session: fresh, not dirty                        |
/// | m.async_load(id, fingerprint, tok)   | session_id parsed by the glue: (error_code,      |
/// |                                      | session), as basic_session_manager::async_load   |
/// | m.async_load(cookie, fingerprint,tok)| a cookie value that is no id: the manager counts |
/// |                                      | and refuses it (malformed)                       |
/// | m.async_save(s, tok)                 | (error_code)                                     |
///
/// `tok` is as_tuple(use_awaitable): the glue's own operations are coroutines.
template <class M>
concept glue_manager =
    requires(M& m, const M& cm, session& s, const session_id& id, std::string_view text,
             std::string fingerprint) {
      { cm.get_executor() } -> std::convertible_to<boost::asio::any_io_executor>;
      { cm.get_options() } -> std::convertible_to<const options&>;
      { cm.get_clock().now() } -> std::convertible_to<time_point>;
      { cm.new_lazy_session(std::move(fingerprint)) } -> std::same_as<session>;
      {
        m.async_load(id, text, detail::tuple_awaitable)
      } -> std::same_as<boost::asio::awaitable<std::tuple<boost::system::error_code, session>>>;
      {
        m.async_load(text, text, detail::tuple_awaitable)
      } -> std::same_as<boost::asio::awaitable<std::tuple<boost::system::error_code, session>>>;
      {
        m.async_save(s, detail::tuple_awaitable)
      } -> std::same_as<boost::asio::awaitable<std::tuple<boost::system::error_code>>>;
    };

/// Options of the Beast glue. The cookie itself is configured in options::cookie.
struct glue_options {
  // Not an aggregate: GCC 12 destroys an aggregate temporary with a destructor twice when it
  // appears in a co_await expression (`co_await with_session(.., glue_options{})`, or the default
  // argument); a declared constructor avoids it.
  glue_options() = default;

  /// Binds each session to its client: the session stores client_fingerprint() of the request
  /// that created it, and a request presenting the cookie with another fingerprint gets a fresh
  /// session (the manager counts and reports it as tampered). This is defence in depth against
  /// a stolen cookie replayed from another browser, not authentication: headers are trivially
  /// copied by whoever stole the cookie. Off by default because a browser update changes the
  /// User-Agent and so logs the user out.
  bool bind_client = false;
  /// The request headers whose values make up the fingerprint, in order. Prefer headers a
  /// browser keeps for the session's lifetime; never the client address (mobile clients move).
  // Not a braced list: GCC 12 has an internal compiler error (in check_noexcept_r) on
  // glue_options{} inside a function template when this initializer is one.
  std::vector<std::string> fingerprint_headers = std::vector<std::string>(1, "User-Agent");
};

/// base64url(SHA-256) of the values of `headers` in `req`, in the given order, for client
/// binding (glue_options::bind_client, basic_session_manager::set_fingerprint). The encoding is
/// unambiguous: each header contributes its number of fields, then each value with its length,
/// so an absent header, an empty one and a repeated one all differ, and no shifting of bytes
/// between values collides. Header names are matched case-insensitively. 43 characters.
/// Throws std::runtime_error if OpenSSL's SHA-256 fails, and std::bad_alloc.
template <class Body, glue_fields Fields>
std::string client_fingerprint(const boost::beast::http::request<Body, Fields>& req,
                               const std::vector<std::string>& headers) {
  std::string buf = "websession-fp-v1";
  const auto put_u64 = [&buf](std::uint64_t n) {
    for (int shift = 56; shift >= 0; shift -= 8) buf.push_back(static_cast<char>(n >> shift));
  };
  for (const std::string& name : headers) {
    const auto range = req.equal_range(name);
    std::uint64_t count = 0;
    for (auto it = range.first; it != range.second; ++it) ++count;
    put_u64(count);
    for (auto it = range.first; it != range.second; ++it) {
      const auto v = it->value();
      put_u64(v.size());
      buf.append(v.data(), v.size());
    }
  }
  unsigned char digest[websession::detail::sha256_size];
  if (!websession::detail::sha256(buf.data(), buf.size(), digest))
    throw std::runtime_error("websession client_fingerprint: SHA-256 failed");
  std::string out;
  websession::detail::base64url_encode(digest, sizeof digest, out);
  return out;
}

/// The HTTP status with_session answers with when a session operation fails with `ec`, by its
/// websession::condition:
/// - 503 Service Unavailable for store_unreachable (store_unavailable, timeout) and store_full
///   (capacity): the store, not the request, is at fault, and a retry later may succeed;
/// - 409 Conflict for conflict and session_gone (not_found, expired from a save): the session
///   was changed, destroyed or ran out by its absolute deadline while this request ran, so its
///   changes were not stored; retrying the request works on the current state;
/// - 500 Internal Server Error for everything else (internal, invalid_use: too_large,
///   invalid_session...; codes of other categories).
inline boost::beast::http::status session_error_status(
    const boost::system::error_code& ec) noexcept {
  using boost::beast::http::status;
  if (ec == condition::store_unreachable || ec == condition::store_full)
    return status::service_unavailable;
  if (ec == condition::conflict || ec == condition::session_gone) return status::conflict;
  return status::internal_server_error;
}

/// The words of with_session's default error response for `ec`, by session_error_status(ec):
/// "session store unavailable, retry later" (503), "the session changed during the request,
/// retry it" (409), "internal error" (500). For an error-response hook that answers in another
/// format (JSON, HTML) with the same words.
inline std::string_view session_error_text(const boost::system::error_code& ec) noexcept {
  using boost::beast::http::status;
  const status st = session_error_status(ec);
  if (st == status::service_unavailable) return "session store unavailable, retry later";
  if (st == status::conflict) return "the session changed during the request, retry it";
  return "internal error";
}

/// True for the errors a client's cookie can cause: the conditions session_gone (not_found,
/// expired) and client_input (malformed, tampered: also another client's fingerprint).
/// async_load_session answers them with a fresh session instead of an error, so that no cookie
/// can turn a page into an error page; a handler whose session ended under it (an async_update
/// or async_rotate failing with one of them) can carry on the same way with fresh_session.
/// Store failures are not among them.
inline bool starts_fresh(const boost::system::error_code& ec) noexcept {
  return ec == condition::session_gone || ec == condition::client_input;
}

/// The session async_load_session gives a request without a usable cookie:
/// mgr.new_lazy_session(), not dirty (stored only once something writes to it), carrying the
/// request's client_fingerprint when opts.bind_client. No I/O. Throws what client_fingerprint
/// and new_lazy_session throw.
template <glue_manager Manager, class Body, glue_fields Fields>
session fresh_session(const Manager& mgr, const boost::beast::http::request<Body, Fields>& req,
                      const glue_options& opts = glue_options()) {
  if (!opts.bind_client) return mgr.new_lazy_session(std::string());
  return mgr.new_lazy_session(client_fingerprint(req, opts.fingerprint_headers));
}

/// with_session's answer when a session operation fails with `ec`, unless an error-response
/// hook builds another: status `st` (with_session passes session_error_status(ec)),
/// `Content-Type: text/plain; charset=utf-8`, `Cache-Control: no-store`, the request's version
/// and keep-alive, and session_error_text(ec) and a newline as the body when the body type takes
/// a string (otherwise an empty body). A hook may start from it and add to it.
template <class Response, class Request>
Response default_error_response(const Request& req, const boost::system::error_code& ec,
                                boost::beast::http::status st) {
  using boost::beast::http::field;
  Response res;
  res.result(st);
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(field::content_type, "text/plain; charset=utf-8");
  res.set(field::cache_control, "no-store");
  using body_value = typename Response::body_type::value_type;
  if constexpr (std::is_assignable_v<body_value&, std::string_view>) {
    std::string text(session_error_text(ec));
    text += '\n';
    res.body() = std::string_view(text);
  }
  res.prepare_payload();
  return res;
}

namespace detail {

template <class T>
struct awaitable_value {};
template <class T, class Executor>
struct awaitable_value<boost::asio::awaitable<T, Executor>> {
  using type = T;
};

// The response type of a with_session handler: what its awaitable yields.
template <class Handler, class Request>
using handler_response_t =
    typename awaitable_value<std::invoke_result_t<Handler&, const Request&, session&>>::type;

// The session cookie of a request: the first valid pair with the session cookie's name that is
// a well-formed id, parsed once here (the manager does not parse it again). A sibling subdomain
// or an old path can leave other cookies of the same name, and those that cannot be ids are not
// worth a store round trip. Without a well-formed one, the first candidate as text, so that the
// manager counts it as malformed.
struct session_cookie_value {
  std::optional<session_id> id;
  std::optional<std::string> malformed;
};

template <class Request>
session_cookie_value session_cookie(const Request& req, std::string_view name) {
  session_cookie_value found;
  const auto range = req.equal_range(boost::beast::http::field::cookie);
  for (auto it = range.first; it != range.second && !found.id; ++it) {
    const auto field_value = it->value();
    const std::string_view header(field_value.data(), field_value.size());
    // An oversized header is ignored as a whole, like find_cookie does.
    if (header.size() > default_max_cookie_header) continue;
    for_each_cookie(header, [&](const cookie_pair& p) {
      if (!p.valid() || p.name != name) return false;
      if (std::optional<session_id> id = session_id::parse(p.value)) {
        found.id = std::move(id);
        return true;
      }
      if (!found.malformed) found.malformed.emplace(p.value);
      return false;
    });
  }
  return found;
}

template <class Manager, class Request>
awaitable<result<session>> load_session_impl(Manager& mgr, const Request& req, glue_options opts) {
  std::string fingerprint;
  if (opts.bind_client) fingerprint = client_fingerprint(req, opts.fingerprint_headers);
  const session_cookie_value cookie = session_cookie(req, mgr.get_options().cookie.name);
  if (cookie.id || cookie.malformed) {
    boost::system::error_code ec;
    session loaded;
    if (cookie.id) {
      std::tie(ec, loaded) = co_await mgr.async_load(*cookie.id, fingerprint, tuple_awaitable);
    } else {
      std::tie(ec, loaded) = co_await mgr.async_load(*cookie.malformed, fingerprint, tuple_awaitable);
    }
    if (!ec) co_return std::move(loaded);
    if (!starts_fresh(ec)) co_return ec;
  }
  // Not dirty: from here on, dirty means that the handler wrote to it, which decides whether it
  // is stored.
  co_return mgr.new_lazy_session(std::move(fingerprint));
}

// Whether the Cache-Control directives in `value` forbid every cache to store the response:
// no-store is among them and public is not (directive names are case-insensitive, RFC 9111).
inline void scan_cache_directives(std::string_view value, bool& no_store, bool& is_public) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view d = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    d = d.substr(0, d.find('='));
    while (!d.empty() && (d.front() == ' ' || d.front() == '\t')) d.remove_prefix(1);
    while (!d.empty() && (d.back() == ' ' || d.back() == '\t')) d.remove_suffix(1);
    const auto is = [d](std::string_view name) {
      if (d.size() != name.size()) return false;
      for (std::size_t i = 0; i < d.size(); ++i)
        if ((d[i] >= 'A' && d[i] <= 'Z' ? d[i] - 'A' + 'a' : d[i]) != name[i]) return false;
      return true;
    };
    no_store = no_store || is("no-store");
    is_public = is_public || is("public");
  }
}

// A response that carries the session Set-Cookie must not be stored by a shared cache (which
// could hand the cookie to another user) nor by the browser's: `private, no-store` replaces what
// the handler set (a `public` or `max-age` written for the page would let a proxy serve the
// cookie to the next visitor), unless that already forbids storing (no-store, not public).
template <class Response>
void forbid_caching(Response& res) {
  using boost::beast::http::field;
  bool present = false, no_store = false, is_public = false;
  const auto range = res.equal_range(field::cache_control);
  for (auto it = range.first; it != range.second; ++it) {
    present = true;
    scan_cache_directives(std::string_view(it->value().data(), it->value().size()), no_store,
                          is_public);
  }
  if (present && no_store && !is_public) return;
  res.set(field::cache_control, "private, no-store");
}

template <class Manager, class Response>
awaitable<boost::system::error_code> apply_session_impl(Manager& mgr, session& s, Response& res) {
  const cookie_options& co = mgr.get_options().cookie;
  if (s.destroyed()) {
    res.insert(boost::beast::http::field::set_cookie, make_delete_cookie(co));
    forbid_caching(res);
    co_return boost::system::error_code{};
  }
  if (!s.valid()) co_return make_error_code(error::invalid_session);
  // The handler said not to store what it did (session::skip_save).
  if (s.save_skipped()) co_return boost::system::error_code{};
  // Like express-session's saveUninitialized=false: storing every visitor's empty session would
  // let crawlers fill the store, and a cookie nobody needs is a tracking identifier.
  if (s.is_new() && !s.dirty()) co_return boost::system::error_code{};
  const std::uint64_t version = s.metadata().version;
  auto [ec] = co_await mgr.async_save(s, tuple_awaitable);
  if (ec) co_return ec;
  if (!s.id_changed() && s.metadata().version == version) co_return boost::system::error_code{};
  const time_point now = mgr.get_clock().now();
  const auto left =
      std::chrono::floor<std::chrono::seconds>(s.metadata().absolute_deadline - now);
  res.insert(boost::beast::http::field::set_cookie, make_set_cookie(co, s.id(), left, now));
  forbid_caching(res);
  co_return boost::system::error_code{};
}

// with_session's error-response hook when the caller gives none.
template <class Response>
struct default_error_hook {
  template <class Request>
  Response operator()(const Request& req, const boost::system::error_code& ec,
                      boost::beast::http::status st) const {
    return default_error_response<Response>(req, ec, st);
  }
};

}  // namespace detail

/// Loads the session that `req`'s cookie (named options::cookie.name; every Cookie field is
/// searched) refers to. Completes with (error_code, session).
///
/// A missing cookie, a malformed, tampered, expired or unknown one, or (with
/// opts.bind_client) one presented by another client, gives a fresh session (fresh_session,
/// starts_fresh) instead of an error: is_new() is true and dirty() false, and
/// async_apply_session stores it only if something writes to it. With opts.bind_client the
/// fresh session carries the request's fingerprint. Of several cookies with the session
/// cookie's name, the first that is a well-formed id is loaded.
///
/// Errors: store_unavailable and timeout (answer 503), internal (an exception inside, e.g. the
/// CSPRNG failed). `mgr` and `req` must outlive the operation.
template <glue_manager Manager, class Body, glue_fields Fields, class CompletionToken>
auto async_load_session(Manager& mgr, const boost::beast::http::request<Body, Fields>& req,
                        const glue_options& opts, CompletionToken&& token) {
  return websession::detail::async_run<session>(
      mgr.get_executor(), [&mgr, &req, opts] { return detail::load_session_impl(mgr, req, opts); },
      std::forward<CompletionToken>(token));
}

/// async_load_session with default glue_options (no client binding).
template <glue_manager Manager, class Body, glue_fields Fields, class CompletionToken>
auto async_load_session(Manager& mgr, const boost::beast::http::request<Body, Fields>& req,
                        CompletionToken&& token) {
  return async_load_session(mgr, req, glue_options{}, std::forward<CompletionToken>(token));
}

/// Stores what the request did to `s` and adds the Set-Cookie header `res` needs (inserted
/// beside any Set-Cookie the handler wrote). Completes with (error_code).
///
/// - destroyed session: a deletion cookie (make_delete_cookie), no store operation;
/// - session::skip_save() called: nothing is stored or sent;
/// - new session nobody wrote to (from async_load_session, dirty() false): nothing is stored or
///   sent;
/// - otherwise async_save (which writes only what is new, dirty or due for a touch); then a
///   cookie with the session id when the id is new (first save, rotation) or the save wrote
///   something (a touch refreshes Max-Age). Max-Age runs to the absolute deadline, Expires is
///   the manager's clock plus Max-Age; neither is sent when cookie.persistent is false.
///
/// Whenever a session Set-Cookie (including the deletion cookie) is added, `Cache-Control:
/// private, no-store` is set too, replacing the Cache-Control the handler set unless that
/// already forbids storing (it has no-store and not public): a `public` or `max-age` meant for
/// the page must not let a shared cache keep and replay the cookie. So no cache stores a
/// response that hands out a session. Responses without a session Set-Cookie keep the handler's
/// Cache-Control.
///
/// Errors: those of async_save (conflict, not_found, expired, too_large, capacity,
/// store_unavailable, timeout; see session_error_status), invalid_session for a
/// default-constructed session, internal if the cookie options break a rule make_set_cookie
/// enforces. On error `res` is unchanged. `mgr`, `s` and `res` must outlive the operation.
template <glue_manager Manager, class Body, glue_fields Fields, class CompletionToken>
auto async_apply_session(Manager& mgr, session& s, boost::beast::http::response<Body, Fields>& res,
                         CompletionToken&& token) {
  return websession::detail::async_run<void>(
      mgr.get_executor(), [&mgr, &s, &res] { return detail::apply_session_impl(mgr, s, res); },
      std::forward<CompletionToken>(token));
}

/// Runs `handler(req, session&)` (a coroutine returning awaitable<beast response>) between
/// async_load_session and async_apply_session, so that a handler only deals with the session.
///
/// What is stored and sent follows async_apply_session: a fresh session the handler did not
/// write to is neither stored nor sent a cookie. A handler that must store nothing and send no
/// session cookie (an anonymous request that must not create a session, a login whose rotation
/// failed half-way) calls s.skip_save(); a destroyed session still gets its deletion cookie.
///
/// When loading or applying fails, the answer is `on_error(req, ec, session_error_status(ec))`
/// (an error-response hook returning the handler's response type: 503, 409 or 500 suggested)
/// instead of the handler's; bad cookies are not failures (they give a fresh session, see
/// starts_fresh), so the hook never sees them. A handler whose own session operation fails may
/// call the same hook and skip_save(). A conflicting save is not retried: the handler has already
/// run, with side effects this function cannot undo, and its response describes a state that
/// was not stored, so it is replaced and the client may retry the request. A handler that must
/// apply a change under contention uses mgr.async_update(s, fn, token) inside.
///
/// Exceptions from the handler and the hook propagate (nothing is saved). `mgr` and `req` must
/// outlive the returned awaitable.
template <glue_manager Manager, class Body, glue_fields Fields, class Handler, class ErrorHook>
  requires std::invocable<Handler&, const boost::beast::http::request<Body, Fields>&, session&> &&
           std::is_invocable_r_v<
               detail::handler_response_t<Handler, boost::beast::http::request<Body, Fields>>,
               ErrorHook&, const boost::beast::http::request<Body, Fields>&,
               const boost::system::error_code&, boost::beast::http::status>
auto with_session(Manager& mgr, const boost::beast::http::request<Body, Fields>& req,
                  Handler handler, ErrorHook on_error, glue_options opts = {})
    -> boost::asio::awaitable<
        detail::handler_response_t<Handler, boost::beast::http::request<Body, Fields>>> {
  using response_type =
      detail::handler_response_t<Handler, boost::beast::http::request<Body, Fields>>;
  auto [load_ec, s] = co_await async_load_session(mgr, req, opts, detail::tuple_awaitable);
  if (load_ec) {
    response_type err = std::invoke(on_error, req, load_ec, session_error_status(load_ec));
    co_return err;
  }
  response_type res = co_await std::invoke(handler, req, s);
  auto [apply_ec] = co_await async_apply_session(mgr, s, res, detail::tuple_awaitable);
  if (apply_ec) {
    response_type err = std::invoke(on_error, req, apply_ec, session_error_status(apply_ec));
    co_return err;
  }
  co_return res;
}

/// with_session with the default error response (default_error_response: text/plain,
/// session_error_text).
template <glue_manager Manager, class Body, glue_fields Fields, class Handler>
  requires std::invocable<Handler&, const boost::beast::http::request<Body, Fields>&, session&>
auto with_session(Manager& mgr, const boost::beast::http::request<Body, Fields>& req,
                  Handler handler, glue_options opts = {}) {
  using response_type =
      detail::handler_response_t<Handler, boost::beast::http::request<Body, Fields>>;
  return with_session(mgr, req, std::move(handler), detail::default_error_hook<response_type>(),
                      std::move(opts));
}

}  // namespace websession::http
