// SPDX-License-Identifier: BSL-1.0
// Tests of websession/store/fallback.hpp without Redis: the primary is a memory store behind a
// wrapper that fails chosen operations with chosen errors, so each answer of the fallback store
// while degraded, the switch, the probe and the recovery are checked one by one. (The same
// store against a redis-server that really goes away: test/redis/store.cpp.)
#include "support/run.hpp"

#include <websession/store/fallback.hpp>
#include <websession/store/memory.hpp>
#include <websession/testing/store_conformance.hpp>
#include <websession/websession.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using websession::error;
using websession::manual_clock;
using websession::result;
using websession::store_record;
using websession::store_write;
using websession::test::code;
using websession::test::ec;
using websession::test::run_on;
using websession::test::tuple_token;

/// A session_store that forwards to `Inner` except for the operations told to fail, which
/// complete at once with the error they were given (what an unreachable server looks like
/// to the store's caller). Copies share the faults, as copies of a store share its data.
template <websession::session_store Inner>
class faulty_store {
 public:
  enum class op : std::size_t { load, insert, replace, rotate, erase, erase_bound, erase_user, list_user, ping };
  static constexpr std::size_t ops = 9;

  explicit faulty_store(Inner inner) : inner_(std::move(inner)), faults_(std::make_shared<faults>()) {}

  /// Makes `o` fail with `e` (no error: `o` works again).
  void fail(op o, error_code e) {
    std::lock_guard lock(faults_->m);
    faults_->fail[static_cast<std::size_t>(o)] = e;
  }
  /// Every operation fails with `e`: the server is gone.
  void fail_all(error_code e) {
    for (std::size_t o = 0; o < ops; ++o) fail(static_cast<op>(o), e);
  }
  void heal() { fail_all({}); }
  /// How many times `o` reached the wrapper.
  std::size_t calls(op o) const { return faults_->calls[static_cast<std::size_t>(o)].load(); }
  Inner& inner() { return inner_; }

  websession::awaitable<result<store_record>> load(std::string_view key) {
    if (auto e = fault(op::load)) co_return e;
    co_return co_await inner_.load(key);
  }
  websession::awaitable<result<std::uint64_t>> insert(std::string_view key, store_write w) {
    if (auto e = fault(op::insert)) co_return e;
    co_return co_await inner_.insert(key, w);
  }
  websession::awaitable<result<std::uint64_t>> replace(std::string_view key, store_write w,
                                                       std::uint64_t v) {
    if (auto e = fault(op::replace)) co_return e;
    co_return co_await inner_.replace(key, w, v);
  }
  websession::awaitable<result<std::uint64_t>> rotate(std::string_view a, std::string_view b,
                                                      store_write w, std::uint64_t v) {
    if (auto e = fault(op::rotate)) co_return e;
    co_return co_await inner_.rotate(a, b, w, v);
  }
  websession::awaitable<result<bool>> erase(std::string_view key) {
    if (auto e = fault(op::erase)) co_return result<bool>(boost::system::in_place_error, e);
    co_return co_await inner_.erase(key);
  }
  websession::awaitable<result<bool>> erase_bound(std::string_view key, std::string_view user) {
    if (auto e = fault(op::erase_bound)) co_return result<bool>(boost::system::in_place_error, e);
    co_return co_await inner_.erase_bound(key, user);
  }
  websession::awaitable<result<std::vector<std::string>>> erase_user(std::string_view user) {
    if (auto e = fault(op::erase_user)) co_return e;
    co_return co_await inner_.erase_user(user);
  }
  websession::awaitable<result<std::vector<std::string>>> list_user(std::string_view user) {
    if (auto e = fault(op::list_user)) co_return e;
    co_return co_await inner_.list_user(user);
  }
  websession::awaitable<error_code> ping() {
    if (auto e = fault(op::ping)) co_return e;
    co_return co_await inner_.ping();
  }

 private:
  struct faults {
    std::mutex m;
    std::array<error_code, ops> fail{};
    std::array<std::atomic<std::size_t>, ops> calls{};
  };

  error_code fault(op o) {
    faults_->calls[static_cast<std::size_t>(o)].fetch_add(1);
    std::lock_guard lock(faults_->m);
    return faults_->fail[static_cast<std::size_t>(o)];
  }

  Inner inner_;
  std::shared_ptr<faults> faults_;
};

using memory = websession::basic_memory_store<manual_clock>;
using primary_type = faulty_store<memory>;
using store_type = websession::fallback_store<primary_type, memory>;
static_assert(websession::session_store<primary_type>);

// A fallback store over a faulty memory store and a memory store, on one io_context and clock;
// the probe interval is 0 unless given, so the next insert while degraded probes.
struct env {
  explicit env(std::chrono::milliseconds probe = 0ms)
      : primary(memory(ioc.get_executor(), {}, clock)),
        secondary(ioc.get_executor(), {}, clock),
        store(primary, secondary, probe) {
    store.set_observer([this](bool degraded, const error_code& e) {
      switches.push_back(degraded);
      switch_errors.push_back(e);
    });
  }

  template <class T>
  T run(websession::awaitable<T> op) {
    return run_on(ioc, std::move(op));
  }
  // Lets a probe started by an insert finish.
  void settle() {
    ioc.restart();
    ioc.poll();
  }

  asio::io_context ioc;
  manual_clock clock;
  primary_type primary;
  memory secondary;
  store_type store;
  std::vector<bool> switches;
  std::vector<error_code> switch_errors;
};

store_write anon(std::string_view v) { return store_write{v, 1h, {}}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(fallback)

// While the primary is unreachable (each of the two errors that mean it), every operation
// answers as fallback.hpp documents.
BOOST_AUTO_TEST_CASE(answers_of_each_operation_while_degraded) {
  for (error outage : {error::store_unavailable, error::timeout}) {
    BOOST_TEST_CONTEXT("primary fails with " << outage) {
      env e;
      // Before the outage: a session in the primary, anonymous and bound.
      BOOST_TEST_REQUIRE(e.run(e.store.insert("in-primary", anon("p"))).has_value());
      BOOST_TEST_REQUIRE(e.run(e.store.insert("bound-primary", store_write{"b", 1h, "u"})).has_value());
      BOOST_TEST(!e.store.degraded());

      e.primary.fail_all(ec(outage));
      // A new session goes to the secondary; the store switches and says so once.
      auto v = e.run(e.store.insert("fresh", anon("f")));
      BOOST_TEST_REQUIRE(v.has_value(), v.error().message());
      BOOST_TEST(e.store.degraded());
      BOOST_TEST(e.run(e.secondary.load("fresh")).has_value());
      BOOST_TEST((e.switches == std::vector<bool>{true}));
      BOOST_TEST(e.switch_errors.at(0) == ec(outage));
      auto st = e.store.stats();
      BOOST_TEST(st.degradations == 1u);
      BOOST_TEST(st.secondary_inserts == 1u);

      // The secondary's session works throughout: load, replace, rotate, erase.
      auto r = e.run(e.store.load("fresh"));
      BOOST_TEST_REQUIRE(r.has_value());
      BOOST_TEST(r->value == "f");
      auto v2 = e.run(e.store.replace("fresh", anon("f2"), 1));
      BOOST_TEST_REQUIRE(v2.has_value());
      auto v3 = e.run(e.store.rotate("fresh", "fresh2", anon("f3"), *v2));
      BOOST_TEST_REQUIRE(v3.has_value());
      BOOST_TEST(e.run(e.secondary.load("fresh2")).has_value());
      // Stale versions are still conflicts.
      BOOST_TEST(code(e.run(e.store.replace("fresh2", anon("x"), 1))) == ec(error::conflict));

      // A session of the primary cannot be read, nor can absence be proven: the outage's
      // error, never not_found (which would log its user out for good).
      BOOST_TEST(code(e.run(e.store.load("in-primary"))) == ec(outage));
      BOOST_TEST(code(e.run(e.store.load("never-stored"))) == ec(outage));
      BOOST_TEST(code(e.run(e.store.replace("in-primary", anon("x"), 1))) == ec(outage));

      // A write that binds a user never goes to the secondary.
      BOOST_TEST(code(e.run(e.store.insert("login", store_write{"l", 1h, "u"}))) ==
                 ec(error::store_unavailable));
      BOOST_TEST(code(e.run(e.store.rotate("fresh2", "login2", store_write{"l", 1h, "u"}, *v3))) ==
                 ec(outage));
      BOOST_TEST(e.run(e.store.load("fresh2")).has_value());  // the failed login left it alone
      BOOST_TEST(e.store.stats().bound_refusals == 1u);
      BOOST_TEST(code(e.run(e.secondary.load("login"))) == ec(error::not_found));

      // Per-user operations need both stores: the outage's error.
      BOOST_TEST(code(e.run(e.store.list_user("u"))) == ec(outage));
      BOOST_TEST(code(e.run(e.store.erase_user("u"))) == ec(outage));

      // Erasing: what the secondary held is erased (true); a key only the primary could hold
      // gives the outage's error.
      auto gone = e.run(e.store.erase("fresh2"));
      BOOST_TEST_REQUIRE(gone.has_value());
      BOOST_TEST(*gone);
      BOOST_TEST(code(e.run(e.store.erase("in-primary"))) == ec(outage));
      BOOST_TEST(code(e.run(e.store.erase_bound("bound-primary", "u"))) == ec(outage));

      // Healthy as far as a health check goes (the secondary answers), degraded in stats.
      BOOST_TEST(e.run(e.store.ping()) == error_code{});
      BOOST_TEST(e.store.stats().degraded);
      BOOST_TEST(e.store.stats().primary_failures >= 1u);

      // The primary's data is untouched.
      BOOST_TEST(e.run(e.primary.inner().load("in-primary")).has_value());
    }
  }
}

// Errors that are answers (capacity, conflict, not_found) come from a reachable primary: no
// switch, and the caller gets them as they are.
BOOST_AUTO_TEST_CASE(answers_of_a_reachable_primary_do_not_switch) {
  env e;
  e.primary.fail(primary_type::op::insert, ec(error::capacity));
  BOOST_TEST(code(e.run(e.store.insert("k", anon("v")))) == ec(error::capacity));
  BOOST_TEST(!e.store.degraded());
  BOOST_TEST(code(e.run(e.secondary.load("k"))) == ec(error::not_found));
  e.primary.heal();
  BOOST_TEST_REQUIRE(e.run(e.store.insert("k", anon("v"))).has_value());
  BOOST_TEST(code(e.run(e.store.insert("k", anon("w")))) == ec(error::conflict));
  BOOST_TEST(code(e.run(e.store.load("absent"))) == ec(error::not_found));
  BOOST_TEST(!e.store.degraded());
  BOOST_TEST(e.switches.empty());
  BOOST_TEST(e.store.stats().primary_failures == 0u);
}

// While degraded the next insert starts a probe (ping) of the primary, without waiting for it;
// when the primary answers, new sessions go there again, the secondary's sessions keep
// working, and a login of one of them moves it to the primary.
BOOST_AUTO_TEST_CASE(probe_recovery_and_migration_at_login) {
  env e;
  e.primary.fail_all(ec(error::store_unavailable));
  BOOST_TEST_REQUIRE(e.run(e.store.insert("visitor", anon("v"))).has_value());
  BOOST_TEST_REQUIRE(e.store.degraded());

  // Still down: the probe fails, the store stays degraded.
  BOOST_TEST_REQUIRE(e.run(e.store.insert("visitor2", anon("v"))).has_value());
  e.settle();
  BOOST_TEST(e.store.degraded());
  BOOST_TEST(e.store.stats().probes >= 1u);
  BOOST_TEST(e.primary.calls(primary_type::op::ping) >= 1u);

  e.primary.heal();
  // This insert starts the probe and goes to the secondary itself (it does not wait).
  BOOST_TEST_REQUIRE(e.run(e.store.insert("visitor3", anon("v"))).has_value());
  e.settle();
  BOOST_TEST(!e.store.degraded());
  BOOST_TEST(e.store.stats().recoveries == 1u);
  BOOST_TEST((e.switches == std::vector<bool>{true, false}));

  // New sessions: the primary.
  BOOST_TEST_REQUIRE(e.run(e.store.insert("after", anon("a"))).has_value());
  BOOST_TEST(e.run(e.primary.inner().load("after")).has_value());
  BOOST_TEST(code(e.run(e.secondary.load("after"))) == ec(error::not_found));

  // The secondary's sessions still load (not in the primary: asked of the secondary next).
  auto r = e.run(e.store.load("visitor"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(e.store.stats().secondary_hits >= 1u);

  // Their login moves them to the primary.
  auto v = e.run(e.store.rotate("visitor", "member", store_write{"m", 1h, "u"}, r->version));
  BOOST_TEST_REQUIRE(v.has_value(), v.error().message());
  BOOST_TEST(e.store.stats().migrations == 1u);
  BOOST_TEST(e.run(e.primary.inner().load("member")).has_value());
  BOOST_TEST(code(e.run(e.secondary.load("visitor"))) == ec(error::not_found));
  auto listed = e.run(e.store.list_user("u"));
  BOOST_TEST_REQUIRE(listed.has_value());
  BOOST_TEST((*listed == std::vector<std::string>{"member"}));

  // A stale login of a secondary session is a conflict, and leaves nothing in the primary.
  auto r2 = e.run(e.store.load("visitor2"));
  BOOST_TEST_REQUIRE(r2.has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.replace("visitor2", anon("changed"), r2->version)).has_value());
  BOOST_TEST(code(e.run(e.store.rotate("visitor2", "member2", store_write{"m", 1h, "u"},
                                       r2->version))) == ec(error::conflict));
  BOOST_TEST(code(e.run(e.primary.inner().load("member2"))) == ec(error::not_found));
  BOOST_TEST(e.run(e.secondary.load("visitor2")).has_value());
}

// No probe before probe_interval has passed since the switch; a load the primary answers ends
// the degradation without one.
BOOST_AUTO_TEST_CASE(probe_interval_and_recovery_by_an_answered_load) {
  env e(1h);
  BOOST_TEST_REQUIRE(e.run(e.store.insert("p", anon("p"))).has_value());
  e.primary.fail_all(ec(error::timeout));
  BOOST_TEST_REQUIRE(e.run(e.store.insert("s", anon("s"))).has_value());
  BOOST_TEST_REQUIRE(e.run(e.store.insert("s2", anon("s"))).has_value());
  e.settle();
  BOOST_TEST(e.store.stats().probes == 0u);
  BOOST_TEST(e.primary.calls(primary_type::op::ping) == 0u);

  e.primary.heal();
  // Degraded: the secondary is asked first, the primary next; its answer ends the outage.
  auto r = e.run(e.store.load("p"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(!e.store.degraded());
  BOOST_TEST(e.store.stats().recoveries == 1u);
}

// The manager over the fallback store during an outage: visitors get sessions, logins are
// refused with store_unavailable (HTTP 503), and after the recovery the login works.
BOOST_AUTO_TEST_CASE(manager_during_an_outage) {
  env e;
  using manager_type = websession::basic_session_manager<
      websession::json_serializer, websession::aes_gcm_cipher, store_type, manual_clock>;
  websession::options o;
  o.key_prefix = "fb:";
  manager_type mgr(e.ioc.get_executor(), websession::aes_gcm_cipher(std::string(32, 'k')), e.store,
                   o, {}, e.clock);
  e.primary.fail_all(ec(error::store_unavailable));
  auto [e1, s] = e.run(mgr.async_create(tuple_token));
  BOOST_TEST_REQUIRE(!e1, e1.message());
  BOOST_TEST(e.store.degraded());
  const std::string id_before = s.id();
  mgr.bind_user(s, "alice");
  auto [e2] = e.run(mgr.async_rotate(s, tuple_token));
  BOOST_TEST(e2 == ec(error::store_unavailable));
  BOOST_TEST(s.id() == id_before);  // on error the id is as it was

  e.primary.heal();
  auto [e3, again] = e.run(mgr.async_load(s.id(), tuple_token));
  BOOST_TEST_REQUIRE(!e3, e3.message());
  mgr.bind_user(again, "alice");
  auto [e4] = e.run(mgr.async_rotate(again, tuple_token));
  BOOST_TEST_REQUIRE(!e4, e4.message());
  auto [e5, list] = e.run(mgr.async_list_user("alice", tuple_token));
  BOOST_TEST_REQUIRE(!e5);
  BOOST_TEST(list.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// The conformance kit on the fallback store while its primary answers.
namespace {

struct fallback_traits {
  using store_type = ::store_type;
  static store_type make_store(asio::any_io_executor ex, manual_clock clock) {
    return store_type(primary_type(memory(ex, {}, clock)), memory(ex, {}, clock));
  }
};

}  // namespace

WEBSESSION_STORE_CONFORMANCE_TESTS(fallback_store_conformance, fallback_traits)
