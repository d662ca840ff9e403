// SPDX-License-Identifier: BSL-1.0
// basic_session_manager: creates, loads, saves, rotates and destroys sessions through four
// compile-time policies (serializer, cipher, store, clock), as Asio asynchronous operations.
// This header declares and documents the manager (and its asynchronous operations'
// initiation); its parts, one job each: record_codec.hpp (sealing), metrics.hpp (counters),
// observer.hpp (events), admission.hpp (may an opened session be served),
// impl/manager_sessions.hpp (one session: create, load, save, rotate, destroy; the only user of
// detail::session_access), impl/manager_users.hpp (the per-user index: listing, revocation,
// the per-user cap), impl/manager_updates.hpp (async_update's turns and retries).
#pragma once

#include <websession/admission.hpp>
#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/detail/async.hpp>
#include <websession/detail/lanes.hpp>
#include <websession/error.hpp>
#include <websession/id.hpp>
#include <websession/metrics.hpp>
#include <websession/observer.hpp>
#include <websession/options.hpp>
#include <websession/record_codec.hpp>
#include <websession/session.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace websession {

/// What async_list_user reports per session. The storage key is a handle (it cannot be used as
/// a cookie); pass it with the user to async_destroy_user_key to end that one session. The
/// metadata leaves out the CSRF secret and the client fingerprint (both empty).
struct session_info {
  std::string storage_key;
  session_metadata metadata;
};

/// The session manager.
///
/// Every async_* function is an Asio asynchronous operation: the last argument is a completion
/// token (use_awaitable, as_tuple(use_awaitable), a callback, use_future, deferred...) and the
/// completion signature is void(error_code, T) or void(error_code). Operations run on the
/// handler's associated executor (a coroutine's own executor with use_awaitable), or on the
/// manager's executor for handlers without one. Expected failures are error codes (see
/// websession::error, and websession::condition for their kinds); with plain use_awaitable they
/// arrive as boost::system::system_error, with as_tuple(use_awaitable) as values. No exception
/// escapes into the io_context.
///
/// Terminal cancellation (a cancelled coroutine, `co_await (mgr.async_load(id, use_awaitable) ||
/// timer.async_wait(use_awaitable))`, or a handler bound to a signal with
/// bind_cancellation_slot) reaches the store request the operation waits for: the operation
/// completes with operation_aborted. With Redis, a request already sent may still have run, so
/// a cancelled save may or may not have been stored (load again to know). On an io_context run
/// by several threads, a coroutine that awaits `a || b` must run on a strand (co_spawn it on
/// make_strand(ioc)): Asio completes both branches on the coroutine's executor, and without a
/// strand the winner's cancellation of the loser races the loser's completion.
///
/// A manager may be used by many coroutines on several threads at once. It must outlive its
/// operations; arguments passed by reference (session&) must too.
///
/// Moving: a manager is movable (so it fits in std::optional, std::vector, or a member set up
/// after construction) and, as with Asio's I/O objects, may be moved only while no operation
/// started on it is outstanding: an operation refers to the manager it was started on, so moving
/// that manager (from or onto it) while an operation runs is undefined behaviour. The manager
/// moved to takes everything: options, policies, store, counters, observer. The moved-from
/// manager may only be destroyed or assigned to. Sessions are plain values: one loaded through
/// the manager before the move may be saved through the manager it was moved to.
template <serializer Serializer, cipher Cipher, session_store Store, clock Clock>
class basic_session_manager {
 public:
  using executor_type = boost::asio::any_io_executor;
  using serializer_type = Serializer;
  using cipher_type = Cipher;
  using store_type = Store;
  using clock_type = Clock;
  using codec_type = record_codec<Serializer, Cipher>;

 private:
  template <class T>
  static constexpr bool nothrow_movable_policy =
      std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>;
  static constexpr bool nothrow_movable =
      nothrow_movable_policy<Serializer> && nothrow_movable_policy<Cipher> &&
      nothrow_movable_policy<Store> && nothrow_movable_policy<Clock>;

  // Wipes the key's bytes, including what a moved-from short string keeps in its inline buffer.
  static void wipe(std::string& key) noexcept {
    key.resize(key.capacity());
    OPENSSL_cleanse(key.data(), key.size());
    key.clear();
  }

 public:
  /// Throws std::invalid_argument if `opts` does not validate.
  basic_session_manager(executor_type ex, Cipher cipher, Store store, options opts = {},
                        Serializer ser = {}, Clock clock = {})
      : ex_(std::move(ex)),
        opts_(std::move(opts)),
        codec_(std::move(ser), std::move(cipher), opts_.max_value_bytes),
        store_(std::move(store)),
        clock_(std::move(clock)),
        state_(std::make_unique<shared_state>()) {
    opts_.validate();
    if constexpr (requires(const Cipher& c) {
                    { c.user_hash_key() } -> std::convertible_to<std::string_view>;
                  }) {
      user_key_ = std::string(codec_.get_cipher().user_hash_key());
    }
  }

  ~basic_session_manager() { wipe(user_key_); }

  /// See "Moving" in the class comment: no operation may be outstanding on `other`.
  basic_session_manager(basic_session_manager&& other) noexcept(nothrow_movable)
      : ex_(std::move(other.ex_)),
        opts_(std::move(other.opts_)),
        codec_(std::move(other.codec_)),
        store_(std::move(other.store_)),
        clock_(std::move(other.clock_)),
        state_(std::move(other.state_)),
        user_key_(std::move(other.user_key_)) {
    wipe(other.user_key_);
  }

  /// See "Moving" in the class comment: no operation may be outstanding on either manager.
  basic_session_manager& operator=(basic_session_manager&& other) noexcept(nothrow_movable) {
    if (this != &other) {
      wipe(user_key_);
      ex_ = std::move(other.ex_);
      opts_ = std::move(other.opts_);
      codec_ = std::move(other.codec_);
      store_ = std::move(other.store_);
      clock_ = std::move(other.clock_);
      state_ = std::move(other.state_);
      user_key_ = std::move(other.user_key_);
      wipe(other.user_key_);
    }
    return *this;
  }

  /// For stores constructible from an executor (the memory store): the store is made here.
  basic_session_manager(executor_type ex, Cipher cipher, options opts = {})
    requires std::constructible_from<Store, executor_type>
      : basic_session_manager(ex, std::move(cipher), Store(ex), std::move(opts)) {}

  basic_session_manager(const basic_session_manager&) = delete;
  basic_session_manager& operator=(const basic_session_manager&) = delete;

  /// The executor of operations whose handler has no associated executor.
  executor_type get_executor() const noexcept { return ex_; }
  /// The options, validated at construction.
  const options& get_options() const noexcept { return opts_; }
  /// The store: for what the store offers beyond session_store (for example
  /// basic_memory_store::start_sweep, redis_store's client, fallback_store's degraded()).
  Store& get_store() noexcept { return store_; }
  const Store& get_store() const noexcept { return store_; }
  const Cipher& get_cipher() const noexcept { return codec_.get_cipher(); }
  /// The record codec (serializer and cipher, with options::max_value_bytes): for tools that
  /// seal or open stored values themselves.
  const codec_type& get_codec() const noexcept { return codec_; }
  const Clock& get_clock() const noexcept { return clock_; }

  /// Replaces the observer hook. Set it before operations start; it is not synchronized with
  /// running operations.
  void set_observer(session_observer obs) { state_->observer = std::move(obs); }

  /// The defence against a rollback of sealed values: the application's per-user "valid after"
  /// time (see valid_after_source). A session of `user` whose stored value was sealed (written)
  /// at or before valid_after(user) is refused on every load (error::revoked, counted in
  /// stats().revoked, the value erased) and left out of listings. Revocation by erasing keys
  /// ("log out everywhere", async_destroy_user) trusts the store to keep them erased; someone
  /// who can write to the store can put an old sealed value back, and it opens (it is
  /// authentic). Set the user's time to now before async_destroy_user and such a value is
  /// refused even then. Times are to the millisecond: a session written in the same
  /// millisecond as the time is refused too. Unset (the default): nothing is checked. Set it
  /// before operations start; it is not synchronized with running operations.
  void set_valid_after(valid_after_source valid_after) {
    state_->valid_after = std::move(valid_after);
  }

  /// The counters (metrics.hpp: described, so JSON output and exporters enumerate them).
  session_stats stats() const noexcept { return state_->counts.snapshot(); }

  /// The name of `user`'s index in the store (user_index_key with the cipher's user hash key,
  /// if it has one: aes_gcm_cipher::user_hash_key). Empty for an empty user.
  std::string user_index(std::string_view user) const {
    return user_index_key(opts_.key_prefix, user, user_key_);
  }

  /// The slot tag the sessions of `user` get at their login rotation (user_slot_tag with the
  /// cipher's user hash key).
  std::string user_tag(std::string_view user) const { return user_slot_tag(user, user_key_); }

  /// A new session with a fresh id, not yet stored: the first async_save writes it. No I/O.
  /// Throws std::runtime_error only if the system's CSPRNG fails.
  session new_session() const;

  /// A new session for a request that may not need one (lazy creation: the HTTP glue's fresh
  /// sessions): like new_session(), but carrying the client `fingerprint` (see
  /// http::client_fingerprint; empty: not bound) and not dirty, so async_apply_session stores
  /// it only once something writes to it. async_save stores it regardless (it is new). No I/O.
  /// Throws std::runtime_error only if the system's CSPRNG fails.
  session new_lazy_session(std::string fingerprint = {}) const;

  /// Creates and stores a new session. Completes with (error_code, session). Errors: capacity,
  /// too_large, store_unavailable, timeout.
  template <class CompletionToken>
  auto async_create(CompletionToken&& token) {
    return detail::async_run<session>(
        ex_, [this] { return create_impl(); }, std::forward<CompletionToken>(token));
  }

  /// Loads the session whose id is `cookie_value`. Completes with (error_code, session).
  /// Errors, told apart: malformed (not a well-formed id; the store is not asked, or a stored
  /// value the serializer cannot read), not_found, expired (idle or absolute deadline passed;
  /// the value is erased), revoked (sealed before its user's valid-after time, see
  /// set_valid_after; erased), tampered (authentication failed), store_unavailable, timeout.
  template <class CompletionToken>
  auto async_load(std::string_view cookie_value, CompletionToken&& token) {
    return async_load(cookie_value, std::string_view(), std::forward<CompletionToken>(token));
  }

  /// Loads the session whose id is `cookie_value` for the client whose fingerprint is
  /// `fingerprint` (see http::client_fingerprint): client binding. A session stored with another
  /// fingerprint fails with error::tampered, counted and reported to the observer as tampered;
  /// the stored session is left alone (its own client may still be using it). A session stored
  /// without a fingerprint (made before binding was enabled, or by async_create) takes this one
  /// and is marked dirty, so the next save records it. An empty `fingerprint` checks nothing.
  /// Completes with (error_code, session). Errors: as async_load above, plus tampered for a
  /// fingerprint mismatch (after the deadlines are checked: an expired session is expired).
  template <class CompletionToken>
  auto async_load(std::string_view cookie_value, std::string_view fingerprint,
                  CompletionToken&& token) {
    return detail::async_run<session>(
        ex_,
        [this, id = std::string(cookie_value), fp = std::string(fingerprint)]() mutable
        -> awaitable<result<session>> {
          const std::optional<session_id> parsed = session_id::parse(id);
          if (!parsed) return refuse_malformed<session>();
          return load_impl(std::move(id), parsed->storage_key(opts_.key_prefix), fp);
        },
        std::forward<CompletionToken>(token));
  }

  /// async_load of an id parsed already (session_id::parse; the HTTP glue parses the cookie
  /// once): the same operation without parsing the id again. Errors: as async_load(cookie_value,
  /// fingerprint), but never malformed for the id.
  template <class CompletionToken>
  auto async_load(const session_id& id, std::string_view fingerprint, CompletionToken&& token) {
    return detail::async_run<session>(
        ex_,
        [this, id, fp = std::string(fingerprint)] {
          return load_impl(id.to_string(), id.storage_key(opts_.key_prefix), fp);
        },
        std::forward<CompletionToken>(token));
  }

  /// async_load of a parsed id without client binding.
  template <class CompletionToken>
  auto async_load(const session_id& id, CompletionToken&& token) {
    return async_load(id, std::string_view(), std::forward<CompletionToken>(token));
  }

  /// Writes `s` if it is new, dirty, or due for a touch (last write older than
  /// touch_interval); otherwise completes at once without I/O. Completes with (error_code).
  /// Errors: conflict (another save changed the stored version since `s` was loaded; reload and
  /// reapply, or use async_update), not_found (destroyed or expired meanwhile), expired (the
  /// absolute deadline passed), rotation_required (the bound user of a stored session changed:
  /// only async_rotate writes that, with a new id; unbinding is allowed), too_large,
  /// invalid_data, capacity, invalid_session, store errors.
  /// A touch that loses a conflict succeeds: the winner refreshed the deadline already.
  template <class CompletionToken>
  auto async_save(session& s, CompletionToken&& token) {
    return detail::async_run<void>(
        ex_, [this, &s] { return save_impl(s); }, std::forward<CompletionToken>(token));
  }

  /// Gives `s` a new id (and a new CSRF secret) while keeping its data; the old id stops
  /// working at once. Use after login and privilege changes (session fixation). Also writes
  /// pending changes. When it binds a user (a login), the user's least recently used sessions
  /// beyond options::max_sessions_per_user are destroyed afterwards (evicted). Completes with
  /// (error_code). Errors: as async_save; on error `s` is unchanged (still bound as it was
  /// loaded, if bind_user was called: do not save it, see session::skip_save).
  template <class CompletionToken>
  auto async_rotate(session& s, CompletionToken&& token) {
    return detail::async_run<void>(
        ex_, [this, &s] { return rotate_impl(s); }, std::forward<CompletionToken>(token));
  }

  /// Erases `s` from the store and marks it destroyed (the HTTP glue then deletes the cookie).
  /// Destroying a session that is already gone succeeds. Completes with (error_code).
  template <class CompletionToken>
  auto async_destroy(session& s, CompletionToken&& token) {
    return detail::async_run<void>(
        ex_, [this, &s] { return destroy_impl(s); }, std::forward<CompletionToken>(token));
  }

  /// Erases the session stored under `storage_key`, whoever it belongs to (an administrator's
  /// tool). Completes with (error_code, bool erased). Errors: invalid_argument, without touching
  /// the store, unless the key has the shape of this manager's storage keys (is_storage_key:
  /// the key prefix, an optional slot tag, 43 base64url characters), so no other key of the
  /// store can be deleted through it; store errors. To end one session of a user from a
  /// "your devices" page, use async_destroy_user_key, which checks the binding.
  template <class CompletionToken>
  auto async_destroy_key(std::string_view storage_key, CompletionToken&& token) {
    return detail::async_run<bool>(
        ex_, [this, key = std::string(storage_key)] { return destroy_key_impl(key, {}); },
        std::forward<CompletionToken>(token));
  }

  /// Erases the session stored under `storage_key` only if it is bound to `user`, checked in
  /// the same atomic store step (a key taken from one user's list cannot end another user's
  /// session). Completes with (error_code, bool erased): false if there is no such session or
  /// it is bound to someone else. Errors: invalid_argument (an empty user, or a key not of
  /// this manager's shape), store errors.
  template <class CompletionToken>
  auto async_destroy_user_key(std::string_view user, std::string_view storage_key,
                              CompletionToken&& token) {
    return detail::async_run<bool>(
        ex_,
        [this, key = std::string(storage_key), u = std::string(user)]() -> awaitable<result<bool>> {
          if (u.empty()) return refuse<bool>(error::invalid_argument);
          return destroy_key_impl(key, u);
        },
        std::forward<CompletionToken>(token));
  }

  /// Binds `s` to `user` (the per-user index follows on the next write). No I/O. Call
  /// async_rotate next: it writes the binding and changes the id in one store operation; a
  /// plain save of a stored session whose user changed fails with rotation_required.
  void bind_user(session& s, std::string user) const;

  /// Sets the client fingerprint of `s` (see http::client_fingerprint; empty: not bound) and
  /// marks it dirty, so the next save writes it. No I/O.
  void set_fingerprint(session& s, std::string fingerprint) const;

  /// Destroys every session bound to `user` ("log out everywhere"). Completes with
  /// (error_code, std::size_t count).
  template <class CompletionToken>
  auto async_destroy_user(std::string_view user, CompletionToken&& token) {
    return detail::async_run<std::size_t>(
        ex_, [this, u = std::string(user)] { return destroy_user_impl(u); },
        std::forward<CompletionToken>(token));
  }

  /// The live sessions bound to `user`, least recently used first. Completes with (error_code,
  /// std::vector<session_info>). Values that fail to open or have expired are left out. Loads
  /// in batches (MGET with redis_store) and reads only each session's envelope
  /// (record_codec::open_envelope).
  template <class CompletionToken>
  auto async_list_user(std::string_view user, CompletionToken&& token) {
    return detail::async_run<std::vector<session_info>>(
        ex_, [this, u = std::string(user)] { return list_user_impl(u); },
        std::forward<CompletionToken>(token));
  }

  /// Loads the session `cookie_value`, calls fn(session&), saves; on conflict, waits a short
  /// randomized backoff and starts again, at most options::max_update_attempts times.
  /// The updates of one session through this manager take turns (in arrival order; a waiting
  /// one that is cancelled leaves the line with operation_aborted, fn not called), so they
  /// never conflict with each other: conflicts, and retries, come only from other processes
  /// sharing the store and from async_save.
  /// Completes with (error_code, session) holding the saved state. Errors: those of async_load
  /// and async_save; conflict when the attempts run out; internal if fn throws.
  template <class Fn, class CompletionToken>
    requires std::invocable<Fn&, session&>
  auto async_update(std::string_view cookie_value, Fn fn, CompletionToken&& token) {
    return async_update(cookie_value, std::string_view(), std::move(fn),
                        std::forward<CompletionToken>(token));
  }

  /// async_update for the client whose fingerprint is `fingerprint` (client binding, as
  /// async_load(cookie_value, fingerprint) checks it, on every load of every attempt: a cookie
  /// replayed from another client fails with tampered and fn is not called). Empty
  /// `fingerprint`: nothing checked.
  template <class Fn, class CompletionToken>
    requires std::invocable<Fn&, session&>
  auto async_update(std::string_view cookie_value, std::string_view fingerprint, Fn fn,
                    CompletionToken&& token) {
    return detail::async_run<session>(
        ex_,
        [this, id = std::string(cookie_value), fp = std::string(fingerprint),
         fn = std::move(fn)]() mutable -> awaitable<result<session>> {
          const std::optional<session_id> parsed = session_id::parse(id);
          if (!parsed) return refuse_malformed<session>();
          return update_impl<Fn>(std::move(id), parsed->storage_key(opts_.key_prefix), fp,
                                 std::move(fn));
        },
        std::forward<CompletionToken>(token));
  }

  /// async_update of an id parsed already (session_id::parse): the storage key is derived once
  /// for the turns and every load. Errors: as the cookie overload, but never malformed for the
  /// id.
  template <class Fn, class CompletionToken>
    requires std::invocable<Fn&, session&>
  auto async_update(const session_id& id, std::string_view fingerprint, Fn fn,
                    CompletionToken&& token) {
    return detail::async_run<session>(
        ex_,
        [this, id, fp = std::string(fingerprint), fn = std::move(fn)]() mutable {
          return update_impl<Fn>(id.to_string(), id.storage_key(opts_.key_prefix), fp,
                                 std::move(fn));
        },
        std::forward<CompletionToken>(token));
  }

  /// Applies fn(s) to `s`, a session loaded by this manager, and saves it, taking turns with
  /// the other updates of the same session through this manager (every overload): for a
  /// request handler that has the session loaded already, this costs no second load, and
  /// concurrent requests of one session neither conflict nor retry. If another update saved
  /// the session since `s` was loaded, `s` is replaced first by the state that update saved
  /// (handed over in memory, without a store round trip); a conflict with another process (or
  /// a plain async_save) reloads `s` and reapplies fn, as the other overloads do. So fn must
  /// make the whole change: changes made to `s` before the call may be replaced. A new session
  /// (never stored) is changed and saved at once. Client binding: the state handed over and
  /// every reload must carry the fingerprint `s` carries (if any), else tampered (fn is not
  /// called on it, `s` keeps its own state). Completes with (error_code); on success `s` holds
  /// the saved state. Errors: those of async_save and async_load (not_found, expired: the
  /// session ended meanwhile); tampered; conflict when the attempts run out; internal if fn
  /// throws. On error `s` may hold unsaved changes: do not save it.
  template <class Fn, class CompletionToken>
    requires std::invocable<Fn&, session&>
  auto async_update(session& s, Fn fn, CompletionToken&& token) {
    return detail::async_run<void>(
        ex_, [this, &s, fn = std::move(fn)]() mutable { return update_loaded_impl<Fn>(s, fn); },
        std::forward<CompletionToken>(token));
  }

  /// A store round trip (health check). Completes with (error_code).
  template <class CompletionToken>
  auto async_ping(CompletionToken&& token) {
    return detail::async_run<void>(
        ex_, [this] { return store_.ping(); }, std::forward<CompletionToken>(token));
  }

 private:
  struct shared_state {
    detail::atomic_counters<session_stats> counts;
    session_observer observer;
    valid_after_source valid_after;
    detail::lanes<session> updates;  // async_update's turns, per storage key
  };

  // Counts one event in session_stats::*Counter.
  template <auto Counter>
  void bump() const noexcept {
    state_->counts.template add<Counter>();
  }

  void notify(session_event_kind kind, std::string_view key, std::string_view user,
              std::string_view previous = {}) const noexcept {
    detail::notify(state_->observer, session_event{kind, key, previous, user});
  }

  // Store failures that are not answers about the key itself.
  void count_store_error(const boost::system::error_code& ec) const noexcept {
    if (ec != condition::session_gone && ec != condition::conflict)
      bump<&session_stats::store_errors>();
  }

  template <class T>
  static awaitable<result<T>> refuse(error e) {
    co_return result<T>(boost::system::in_place_error, e);
  }

  // A cookie value that is not a session id: counted, the store not asked.
  template <class T>
  awaitable<result<T>> refuse_malformed() {
    bump<&session_stats::malformed>();
    co_return result<T>(boost::system::in_place_error, error::malformed);
  }

  // Deadlines are kept in whole milliseconds, as the serializer stores them.
  time_point now_ms() const {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(time_point(clock_.now()));
  }

  static std::chrono::milliseconds ttl_until(time_point deadline, time_point now) {
    auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    return std::max(ttl, std::chrono::milliseconds(1));
  }

  // A visitor's session lives shorter than a user's (options::anonymous_idle_timeout).
  std::chrono::milliseconds idle_timeout_for(const session_metadata& meta) const noexcept {
    return meta.user.empty() ? opts_.anonymous_idle_timeout : opts_.idle_timeout;
  }

  // One session (impl/manager_sessions.hpp).
  void assign_new_id(session& s) const;
  boost::system::error_code seal_for_write(session_metadata& meta, const boost::json::object& data,
                                           std::string_view key, time_point now,
                                           std::string& sealed) const;
  awaitable<result<session>> create_impl();
  awaitable<result<session>> load_impl(std::string id, std::string key,
                                       std::string_view fingerprint);
  boost::system::error_code check_client(session& s, std::string_view fingerprint);
  awaitable<boost::system::error_code> save_impl(session& s);
  awaitable<boost::system::error_code> rotate_impl(session& s);
  awaitable<boost::system::error_code> destroy_impl(session& s);

  // The per-user index (impl/manager_users.hpp).
  awaitable<void> enforce_user_limit(std::string user, std::string keep);
  awaitable<result<bool>> destroy_key_impl(std::string_view key, std::string_view user);
  std::vector<std::string> user_indexes(std::string_view user) const;
  awaitable<result<bool>> erase_bound_to(std::string_view key, std::string_view user);
  awaitable<result<std::size_t>> destroy_user_impl(std::string_view user);
  awaitable<result<std::vector<result<store_record>>>> load_batch(
      const std::vector<std::string>& keys);
  awaitable<result<std::vector<session_info>>> list_user_impl(std::string_view user);

  // async_update (impl/manager_updates.hpp).
  template <class Fn>
  awaitable<result<session>> update_impl(std::string id, std::string key,
                                         std::string_view fingerprint, Fn fn);
  template <class Fn>
  awaitable<boost::system::error_code> update_loaded_impl(session& s, Fn& fn);

  executor_type ex_;
  options opts_;
  codec_type codec_;
  Store store_;
  [[no_unique_address]] Clock clock_;
  std::unique_ptr<shared_state> state_;
  // The cipher's user hash key (empty without one: unkeyed SHA-256).
  std::string user_key_;
};

}  // namespace websession

#include <websession/impl/manager_sessions.hpp>
#include <websession/impl/manager_updates.hpp>
#include <websession/impl/manager_users.hpp>
