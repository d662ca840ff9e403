// SPDX-License-Identifier: BSL-1.0
// bench_sessions: latency percentiles and throughput of the session manager, one cell of the
// benchmark matrix per run (scripts/bench.sh runs the matrix and the baselines).
//
//   bench_sessions --store memory|redis [--redis-port P | --redis-url URL]
//                  --cipher aes_gcm|plaintext --payload BYTES --concurrency C --threads T
//                  [--sessions N] [--scenarios create,load,load_save,rotate,destroy]
//                  [--seconds S] [--json FILE] [--tag T]
//   bench_sessions --micro --payload BYTES [--seconds S] [--json FILE]
//   bench_sessions --footprint --store memory|redis [--redis-port P] --cipher aes_gcm|plaintext
//                  --payload BYTES --sessions N [--concurrency C] [--bound] [--json FILE]
//   bench_sessions --store redis --ioc-pool shared|own ... (the load scenario only)
//
// A cell: C coroutines on an io_context run by T threads, each looping on one scenario for S
// seconds after a short warm-up; every operation's latency is kept (bench/latency.hpp).
//   create     new_session() + assign the payload + async_save (the first save stores it)
//   load       async_load(cookie) of an existing session (hit): store read, open, parse
//   load_save  async_load + set one field + async_save (a versioned write)
//   rotate     async_rotate of a loaded session (new id, seal, store rotate)
//   destroy    async_destroy of the sessions `create` made (create runs first, untimed if not
//              asked for)
//   conn_get   (Redis only) a bare GET of the same stored value through the same redis::client
//              (one redis::connection, or the cluster's routing), no manager: the client's own
//              floor
//   store_load (Redis only) redis_store::load of the same session, no manager: the GET, the
//              value's version header checked, the sealed bytes handed back (what a manager
//              load asks of the store before it opens and parses)
//   socket_get (Redis on --redis-port only, 1 coroutine) the first session's GET on a blocking
//              socket of its own, no Asio and no websession: send, then recv until the whole
//              reply is in, timed end to end like the others (the floor of any client of one
//              request at a time)
// The Redis store talks to the server on 127.0.0.1:--redis-port, or to what --redis-url names
// (any URL redis::parse_url takes; redis-cluster://H:P,H:P,... is a Cluster, reached through
// redis::client and a redis_store over a redis::cluster).
// Each coroutine has --sessions stored sessions (default 1), which load, load_save, conn_get
// and store_load take in turn: sessions get random slot tags, so on a cluster several per
// coroutine spread even one coroutine's requests over the masters.
// --micro times the parts of a load and a save alone on the same payload: AES-256-GCM seal
// and open, Boost.JSON serialize and parse, and a map find + copy of the sealed bytes.
//
// --footprint (run it in a process of its own: earlier cells would leave their heap behind)
// stores N sessions through the manager (C coroutines, anonymous or with --bound each bound
// to a user of its own) and reports the memory they take, per session: for the memory store
// the growth of this process's resident set (/proc/self/statm) and of the allocator's in-use
// bytes (mallinfo2); for Redis the growth of the server's INFO used_memory (the database
// should be empty: bench.sh flushes it first).
//
// --ioc-pool: --threads io_contexts, each run by one thread (a server with an io_context per
// thread), one manager shared by all, --concurrency coroutines per io_context looping on
// async_load. `shared`: one redis::client, on io_context 0 (the others' requests hop to its
// thread and back); `own`: a redis_store over one client per io_context.
// Output: a table on stdout; with --json, one JSON object per line appended to FILE (Redis
// lines also name the deployment; a cluster's give its masters and the sessions each holds).
#include "latency.hpp"

#include <websession/websession.hpp>
#ifdef WEBSESSION_WITH_REDIS
#include <websession/redis/client.hpp>
#include <websession/redis/config.hpp>
#include <websession/store/redis.hpp>
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#ifdef WEBSESSION_WITH_REDIS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace websession;
using bench::recorder;
using bench::summary;
using clk = std::chrono::steady_clock;

namespace {

#ifdef WEBSESSION_WITH_REDIS
// Cancels the clients (their run loops) when a cell's scope ends, however it ends.
struct cancel_on_exit {
  std::vector<redis::client> clients;  // handles: copies share the connections
  ~cancel_on_exit() {
    for (auto& c : clients) c.cancel();
  }
};
#endif

constexpr auto tuple_token = asio::as_tuple(asio::use_awaitable);

struct settings {
  std::string store = "memory";
  std::uint16_t redis_port = 6379;
  std::string redis_url;  // instead of redis_port when set
  std::string cipher = "aes_gcm";
  std::size_t payload = 1024;
  int concurrency = 1;
  int threads = 1;
  int sessions = 1;  // per coroutine
  std::vector<std::string> scenarios{"create", "load", "load_save", "rotate", "destroy"};
  double seconds = 1.0;
  std::string json_path;
  std::string tag;  // --tag: copied into the JSON lines (bench.sh marks repeated rounds with it)
  bool micro = false;
  bool footprint = false;
  bool bound = false;  // --footprint: sessions bound to a user each
  std::string ioc_pool;  // --ioc-pool shared|own (empty: one io_context run by --threads)
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "bench_sessions: " << problem << "\n"
            << "usage: bench_sessions --store memory|redis [--redis-port P | --redis-url URL] "
               "--cipher aes_gcm|plaintext --payload BYTES --concurrency C --threads T "
               "[--sessions N] [--scenarios a,b,...] [--seconds S] [--json FILE] [--tag T]\n"
               "       bench_sessions --micro --payload BYTES [--seconds S] [--json FILE]\n"
               "       bench_sessions --footprint --store memory|redis [--redis-port P] --cipher C "
               "--payload BYTES --sessions N [--concurrency C] [--bound] [--json FILE]\n";
  std::exit(2);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t comma = s.find(',', at);
    const std::size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

settings parse_args(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--store") s.store = value();
    else if (a == "--redis-port") s.redis_port = static_cast<std::uint16_t>(std::stoul(value()));
    else if (a == "--redis-url") s.redis_url = value();
    else if (a == "--cipher") s.cipher = value();
    else if (a == "--payload") s.payload = std::stoul(value());
    else if (a == "--concurrency") s.concurrency = std::stoi(value());
    else if (a == "--threads") s.threads = std::stoi(value());
    else if (a == "--sessions") s.sessions = std::stoi(value());
    else if (a == "--scenarios" || a == "--scenario") s.scenarios = split(value());
    else if (a == "--seconds") s.seconds = std::stod(value());
    else if (a == "--json") s.json_path = value();
    else if (a == "--tag") s.tag = value();
    else if (a == "--micro") s.micro = true;
    else if (a == "--footprint") s.footprint = true;
    else if (a == "--bound") s.bound = true;
    else if (a == "--ioc-pool") s.ioc_pool = value();
    else usage("unknown argument " + a);
  }
  if (s.store != "memory" && s.store != "redis") usage("--store must be memory or redis");
  if (s.cipher != "aes_gcm" && s.cipher != "plaintext") usage("--cipher must be aes_gcm or plaintext");
  if (s.concurrency < 1 || s.threads < 1 || s.sessions < 1 || s.seconds <= 0)
    usage("bad concurrency, threads, sessions or seconds");
  if (!s.redis_url.empty() && s.store != "redis") usage("--redis-url needs --store redis");
  if (s.bound && !s.footprint) usage("--bound needs --footprint");
  if (s.footprint && !s.redis_url.empty()) usage("--footprint needs --redis-port (one server)");
  for (const auto& sc : s.scenarios)
    if (sc != "create" && sc != "load" && sc != "load_save" && sc != "rotate" && sc != "destroy" &&
        sc != "conn_get" && sc != "store_load" && sc != "socket_get")
      usage("unknown scenario " + sc);
  for (const char* redis_only : {"conn_get", "store_load", "socket_get"})
    if (s.store != "redis" &&
        std::find(s.scenarios.begin(), s.scenarios.end(), redis_only) != s.scenarios.end())
      usage(std::string(redis_only) + " needs --store redis");
  if (std::find(s.scenarios.begin(), s.scenarios.end(), "socket_get") != s.scenarios.end()) {
    if (s.concurrency != 1) usage("socket_get needs --concurrency 1");
    if (!s.redis_url.empty()) usage("socket_get needs --redis-port (a server on 127.0.0.1)");
  }
  if (!s.ioc_pool.empty() && (s.store != "redis" || (s.ioc_pool != "shared" && s.ioc_pool != "own")))
    usage("--ioc-pool must be shared or own, with --store redis");
  return s;
}

// Session data whose JSON serialization is exactly `bytes` long (at least the size of "{}"):
// fields of 48 characters, then one padding field.
boost::json::object make_payload(std::size_t bytes) {
  boost::json::object o;
  for (int i = 0;; ++i) {
    boost::json::object next = o;
    next["field" + std::to_string(i)] = std::string(48, static_cast<char>('a' + i % 26));
    // Room left for the padding field ,"pad":"" (9 bytes) after this field?
    if (boost::json::serialize(next).size() + 9 > bytes) break;
    o = std::move(next);
  }
  const std::size_t now = boost::json::serialize(o).size();
  const std::size_t frame = o.empty() ? 8 : 9;  // "pad":"" plus a comma unless first
  if (now + frame <= bytes) o["pad"] = std::string(bytes - now - frame, 'p');
  return o;
}

// One output line: a manager cell or a micro baseline.
struct row {
  std::string kind;  // "manager" or "micro"
  std::string scenario;
  summary sum;
  std::uint64_t errors = 0;
  std::size_t plain_bytes = 0;   // serialized session (metadata + data)
  std::size_t stored_bytes = 0;  // what the store keeps (sealed)
  boost::json::object facts;     // about the Redis deployment, copied into the JSON line
};

void emit(const settings& cfg, const std::vector<row>& rows) {
  bench::print_header();
  for (const row& r : rows) {
    summary s = r.sum;
    s.name = r.scenario;
    bench::print(s);
    if (r.errors) std::printf("  (%llu errors)\n", static_cast<unsigned long long>(r.errors));
  }
  if (cfg.json_path.empty()) return;
  std::ofstream out(cfg.json_path, std::ios::app);
  for (const row& r : rows) {
    boost::json::object o;
    o["kind"] = r.kind;
    o["scenario"] = r.scenario;
    if (r.kind == "manager") {
      o["store"] = cfg.store;
      o["cipher"] = cfg.cipher;
      o["concurrency"] = cfg.concurrency;
      o["threads"] = cfg.threads;
      o["sessions"] = cfg.sessions;
    }
    for (const auto& f : r.facts) o[f.key()] = f.value();
    if (!cfg.tag.empty()) o["tag"] = cfg.tag;
    o["payload"] = cfg.payload;
    o["ops_per_s"] = r.sum.ops_per_s;
    o["p50_us"] = r.sum.p50_us;
    o["p90_us"] = r.sum.p90_us;
    o["p99_us"] = r.sum.p99_us;
    o["p999_us"] = r.sum.p999_us;
    o["max_us"] = r.sum.max_us;
    o["samples"] = r.sum.samples;
    o["errors"] = r.errors;
    o["plain_bytes"] = r.plain_bytes;
    o["stored_bytes"] = r.stored_bytes;
    out << boost::json::serialize(o) << "\n";
  }
}

// Runs `make()` (returning an awaitable) on the io_context and waits for it from this thread.
template <class Make>
auto run_sync(asio::io_context& ioc, Make make) {
  return asio::co_spawn(ioc, make(), asio::use_future).get();
}

// What the workers of one scenario share.
struct run_state {
  clk::time_point measure_from;  // operations started before are warm-up
  clk::time_point stop_at;       // no operation starts after
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::size_t> next{0};  // create/destroy: next slot
  std::atomic<std::int64_t> last_done{0};  // latest completion, ns since measure_from
};

void note_done(run_state& st, clk::time_point t) {
  const std::int64_t ns = (t - st.measure_from).count();
  std::int64_t seen = st.last_done.load(std::memory_order_relaxed);
  while (ns > seen && !st.last_done.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

// A read of a key below the manager (Redis only: a bare GET on the store's connection, or
// redis_store::load); true if a value came back.
using raw_get_fn = std::function<asio::awaitable<bool>(const std::string& key)>;

template <class Manager>
class cell {
 public:
  cell(Manager& m, const settings& cfg, asio::io_context& ioc, raw_get_fn raw_get = {},
       raw_get_fn store_get = {})
      : m_(m),
        cfg_(cfg),
        ioc_(ioc),
        raw_get_(std::move(raw_get)),
        store_get_(std::move(store_get)),
        payload_(make_payload(cfg.payload)) {
    // Creates are bounded by count as well as by time, so the store does not grow without
    // limit: about 128 MiB of session data, and at least 20000.
    create_cap_ = std::max<std::size_t>(20000, (std::size_t{128} << 20) / (cfg.payload + 512));
  }

  // Stores --sessions sessions per coroutine, for load, load_save, rotate and the raw reads.
  void setup() {
    for (int i = 0; i < cfg_.concurrency * cfg_.sessions; ++i) {
      session s = make_filled();
      run_sync(ioc_, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await m_.async_save(s, tuple_token);
        if (ec) throw boost::system::system_error(ec, "setup save");
      });
      ids_.push_back(s.id());
      keys_.push_back(s.storage_key());
    }
    session s = make_filled();
    json_serializer{}.serialize(s.metadata(), s.data(), plain_);
    plain_bytes_ = plain_.size();
    std::string sealed;
    m_.get_cipher().seal(plain_, s.storage_key(), sealed);
    stored_bytes_ = sealed.size();
  }

  // The scenarios, after setup().
  std::vector<row> run() {
    std::vector<row> rows;
    const bool want_create = has("create");
    const bool want_destroy = has("destroy");
    for (const std::string& sc : cfg_.scenarios) {
      if (sc == "destroy") continue;  // after create, below
      rows.push_back(measure(sc));
    }
    if (want_destroy) {
      if (!want_create) measure("create");  // makes the sessions to destroy (not reported)
      rows.push_back(measure("destroy"));
    } else if (want_create) {
      measure("destroy");  // cleans up (not reported)
    }
    for (row& r : rows) {
      r.plain_bytes = plain_bytes_;
      r.stored_bytes = stored_bytes_;
    }
    return rows;
  }

 private:
  bool has(std::string_view sc) const {
    return std::find(cfg_.scenarios.begin(), cfg_.scenarios.end(), sc) != cfg_.scenarios.end();
  }

  session make_filled() {
    session s = m_.new_session();
    s.mutable_data() = payload_;
    return s;
  }

  // The untimed warm-up before a scenario's measured span, and the span (--seconds).
  std::pair<clk::duration, clk::duration> warmup_and_span() const {
    return {std::chrono::duration_cast<clk::duration>(
                std::chrono::duration<double>(std::min(0.2, cfg_.seconds / 5))),
            std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(cfg_.seconds))};
  }

  row measure(const std::string& sc) {
#ifdef WEBSESSION_WITH_REDIS
    if (sc == "socket_get") return socket_get();
#endif
    const auto [warmup, span] = warmup_and_span();
    run_state st;
    if (sc == "create" || sc == "destroy") {
      if (sc == "create") {
        created_.clear();
        created_.resize(create_cap_);
      }
      // Capped by count (destroy by what create made): a warm-up would eat into the cap.
      st.measure_from = clk::now();
    } else {
      st.measure_from = clk::now() + warmup;
    }
    st.stop_at = st.measure_from + span;
    std::vector<recorder> recs(cfg_.concurrency, recorder(1024));
    std::vector<std::future<void>> done;
    for (int w = 0; w < cfg_.concurrency; ++w)
      done.push_back(asio::co_spawn(ioc_, worker(sc, w, st, recs[w]), asio::use_future));
    for (auto& f : done) f.get();
    if (sc == "create") created_count_ = std::min(st.next.load(), create_cap_);
    recorder all(0);
    for (auto& r : recs) all.append(r);
    row out;
    out.kind = "manager";
    out.scenario = sc;
    out.errors = st.errors.load();
    out.sum = all.summarize(sc, std::chrono::nanoseconds(std::max<std::int64_t>(1, st.last_done.load())));
    return out;
  }

  asio::awaitable<void> worker(std::string sc, int w, run_state& st, recorder& rec) {
    // This worker's sessions: [first, first + sessions), taken in turn; rotate keeps to the first.
    const auto sessions = static_cast<std::size_t>(cfg_.sessions);
    const std::size_t first = static_cast<std::size_t>(w) * sessions;
    session mine;
    if (sc == "rotate") {
      auto [ec, s] = co_await m_.async_load(ids_[first], tuple_token);
      if (ec) throw boost::system::system_error(ec, "worker load");
      mine = std::move(s);
    }
    std::int64_t counter = 0;
    for (std::size_t turn = 0;; ++turn) {
      const clk::time_point a = clk::now();
      if (a >= st.stop_at) break;
      const std::size_t at = first + turn % sessions;
      bool ok = true;
      if (sc == "create") {
        const std::size_t slot = st.next.fetch_add(1);
        if (slot >= created_.size()) break;
        session s = make_filled();
        auto [ec] = co_await m_.async_save(s, tuple_token);
        ok = !ec;
        created_[slot] = std::move(s);
      } else if (sc == "load") {
        auto [ec, s] = co_await m_.async_load(ids_[at], tuple_token);
        ok = !ec;
      } else if (sc == "load_save") {
        auto [ec, s] = co_await m_.async_load(ids_[at], tuple_token);
        if (!ec) {
          s.set("counter", ++counter);
          auto [ec2] = co_await m_.async_save(s, tuple_token);
          ok = !ec2;
        } else {
          ok = false;
        }
      } else if (sc == "rotate") {
        auto [ec] = co_await m_.async_rotate(mine, tuple_token);
        ok = !ec;
      } else if (sc == "conn_get") {
        ok = co_await raw_get_(keys_[at]);
      } else if (sc == "store_load") {
        ok = co_await store_get_(keys_[at]);
      } else {  // destroy
        const std::size_t slot = st.next.fetch_add(1);
        if (slot >= created_count_) break;
        auto [ec] = co_await m_.async_destroy(created_[slot], tuple_token);
        ok = !ec;
      }
      const clk::time_point b = clk::now();
      if (!ok) st.errors.fetch_add(1, std::memory_order_relaxed);
      if (a >= st.measure_from) {
        rec.add(b - a);
        note_done(st, b);
      }
    }
    if (sc == "rotate") {  // for any scenario that follows
      ids_[first] = mine.id();
      keys_[first] = mine.storage_key();
    }
  }

#ifdef WEBSESSION_WITH_REDIS
  // The socket_get scenario, on this (the calling) thread while the io_context idles.
  row socket_get() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket_get: socket() failed");
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } close_fd{fd};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(cfg_.redis_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("socket_get: connect failed");
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    redis::request req;
    req.push("GET", keys_.at(0));
    const std::string_view out = req.payload();
    std::vector<char> in(64 * 1024);
    // One GET: true when a bulk string long enough to be the session came back whole.
    auto get = [&]() -> bool {
      for (std::size_t sent = 0; sent < out.size();) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
      }
      std::size_t got = 0;
      std::size_t want = 0;  // the whole reply's size, once its header is in
      while (want == 0 || got < want) {
        const ssize_t n = ::recv(fd, in.data() + got, in.size() - got, 0);
        if (n <= 0) return false;
        got += static_cast<std::size_t>(n);
        if (want != 0) continue;
        const std::string_view head(in.data(), got);
        if (const std::size_t eol = head.find("\r\n"); eol != std::string_view::npos) {
          if (head[0] != '$') return false;
          const std::size_t len = std::strtoull(in.data() + 1, nullptr, 10);
          want = eol + 2 + len + 2;
          if (want > in.size()) return false;
        }
      }
      return got == want && want > stored_bytes_;  // the value: a header + the sealed bytes
    };
    const auto [warmup, span] = warmup_and_span();
    recorder rec(1024);
    const clk::time_point from = clk::now() + warmup;
    clk::time_point last = from;
    for (;;) {
      const clk::time_point a = clk::now();
      if (a >= from + span) break;
      const bool ok = get();
      const clk::time_point b = clk::now();
      if (!ok) throw std::runtime_error("socket_get: bad or no reply");
      if (a >= from) {
        rec.add(b - a);
        last = b;
      }
    }
    row r;
    r.kind = "manager";
    r.scenario = "socket_get";
    r.sum = rec.summarize("socket_get", std::max<clk::duration>(last - from, clk::duration(1)));
    return r;
  }
#endif

  Manager& m_;
  const settings& cfg_;
  asio::io_context& ioc_;
  raw_get_fn raw_get_;
  raw_get_fn store_get_;
  boost::json::object payload_;
  std::vector<std::string> ids_;
  std::vector<std::string> keys_;
  std::vector<session> created_;
  std::size_t create_cap_ = 0;
  std::size_t created_count_ = 0;
  std::string plain_;
  std::size_t plain_bytes_ = 0;
  std::size_t stored_bytes_ = 0;
};

template <class Cipher>
std::vector<row> run_store(const settings& cfg, asio::io_context& ioc, Cipher cipher) {
  if (cfg.store == "memory") {
    memory_store_options so;
    so.max_sessions = 4'000'000;
    so.max_bytes = std::size_t{4} << 30;
    session_manager_for<memory_store, Cipher> m(ioc.get_executor(), std::move(cipher),
                                                memory_store(ioc.get_executor(), so));
    cell<decltype(m)> c(m, cfg, ioc);
    c.setup();
    return c.run();
  }
#ifdef WEBSESSION_WITH_REDIS
  redis::config rc;
  std::string where = "redis on port " + std::to_string(cfg.redis_port);
  if (cfg.redis_url.empty()) {
    rc.port = cfg.redis_port;
  } else {
    auto parsed = redis::parse_url(cfg.redis_url);
    if (!parsed) usage("--redis-url " + cfg.redis_url + ": " + parsed.error().message());
    rc = std::move(*parsed);
    where = cfg.redis_url;
  }
  redis::client client(ioc.get_executor(), rc);
  client.async_run(asio::detached);
  const cancel_on_exit guard{{client}};
  session_manager_for<redis_store, Cipher> m(ioc.get_executor(), std::move(cipher),
                                           redis_store(client, redis_store_options{}));
  // The first requests wait for the connection (on a cluster: the map, then a connection per
  // master); make sure every one is up before timing anything.
  const clk::time_point give_up = clk::now() + std::chrono::seconds(10);
  while (!client.connected() && clk::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  boost::system::error_code ping_ec = run_sync(ioc, [&]() -> asio::awaitable<boost::system::error_code> {
    auto [ec] = co_await m.async_ping(tuple_token);
    co_return ec;
  });
  if (ping_ec || !client.connected())
    throw std::runtime_error(where + ": " + (ping_ec ? ping_ec.message() : "not connected") +
                             " (" + client.last_error_message() + ")");
  // What redis_store::load sends, minus everything else the manager does.
  raw_get_fn raw_get = [client](const std::string& key) mutable -> asio::awaitable<bool> {
    redis::request req(true);
    req.push("GET", key).route(key);
    auto [ec, replies] = co_await client.async_exec(req, tuple_token);
    co_return !ec && replies.size() == 1 && replies[0].type == redis::reply_type::string;
  };
  // The store's own part of a load: a second handle on the same client.
  raw_get_fn store_get = [store = redis_store(client)](const std::string& key) mutable
      -> asio::awaitable<bool> {
    auto rec = co_await store.load(key);
    co_return rec && !rec->value.empty();
  };
  cell<decltype(m)> c(m, cfg, ioc, std::move(raw_get), std::move(store_get));
  c.setup();
  boost::json::object facts;
  facts["deployment"] = redis::to_string(rc.deployment);
  if (client.is_cluster()) {
    // Where the sessions landed (DBSIZE of each master right after setup; bench.sh flushes
    // between cells): with random slot tags, every master should hold some.
    boost::json::array per_master;
    for (std::size_t i = 0; i < client.master_count(); ++i) {
      std::int64_t keys = run_sync(ioc, [&]() -> asio::awaitable<std::int64_t> {
        redis::request req;
        req.push("DBSIZE");
        auto [ec, replies] = co_await client.async_exec_at(i, req, tuple_token);
        co_return !ec && replies.size() == 1 && replies[0].type == redis::reply_type::integer
            ? replies[0].integer
            : -1;
      });
      per_master.push_back(keys);
    }
    facts["masters"] = client.master_count();
    facts["keys_per_master"] = std::move(per_master);
  }
  std::vector<row> rows = c.run();
  for (row& r : rows) r.facts = facts;
  return rows;
#else
  throw std::runtime_error("built without hiredis: no redis store");
#endif
}

#ifdef WEBSESSION_WITH_REDIS
// --ioc-pool: async_load on a manager shared by --threads io_contexts (one thread each), with
// one Redis client on io_context 0 (shared) or one per io_context (own).
template <class Cipher>
std::vector<row> run_ioc_pool(const settings& cfg, Cipher cipher) {
  const auto n = static_cast<std::size_t>(cfg.threads);
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  for (std::size_t i = 0; i < n; ++i) {
    iocs.push_back(std::make_unique<asio::io_context>(1));
    work.push_back(asio::make_work_guard(*iocs.back()));
  }
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < n; ++i) pool.emplace_back([&ioc = *iocs[i]] { ioc.run(); });
  struct joiner {
    decltype(work)& w;
    std::vector<std::thread>& p;
    ~joiner() {
      w.clear();
      for (auto& t : p) t.join();
    }
  } join{work, pool};
  redis::config rc;
  rc.port = cfg.redis_port;
  if (!cfg.redis_url.empty()) {
    auto parsed = redis::parse_url(cfg.redis_url);
    if (!parsed) usage("--redis-url " + cfg.redis_url + ": " + parsed.error().message());
    rc = std::move(*parsed);
  }
  std::vector<redis::client> clients;
  for (std::size_t i = 0; i < (cfg.ioc_pool == "own" ? n : 1); ++i) {
    clients.emplace_back(iocs[i]->get_executor(), rc);
    clients.back().async_run(asio::detached);
  }
  const cancel_on_exit guard{clients};
  session_manager_for<redis_store, Cipher> m(iocs[0]->get_executor(), std::move(cipher),
                                           redis_store(clients));
  const clk::time_point give_up = clk::now() + std::chrono::seconds(10);
  for (auto& c : clients)
    while (!c.connected() && clk::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Sessions per coroutine, made on io_context 0.
  const auto per = static_cast<std::size_t>(cfg.sessions);
  const std::size_t coros = n * static_cast<std::size_t>(cfg.concurrency);
  std::vector<std::string> ids;
  const boost::json::object payload = make_payload(cfg.payload);
  for (std::size_t i = 0; i < coros * per; ++i) {
    session s = m.new_session();
    s.mutable_data() = payload;
    run_sync(*iocs[0], [&]() -> asio::awaitable<void> {
      auto [ec] = co_await m.async_save(s, tuple_token);
      if (ec) throw boost::system::system_error(ec, "setup save");
    });
    ids.push_back(s.id());
  }
  const clk::time_point from = clk::now() + std::chrono::milliseconds(200);
  const clk::time_point stop_at = from + std::chrono::duration_cast<clk::duration>(
                                             std::chrono::duration<double>(cfg.seconds));
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> ops{0};  // warm-up included, for the CPU time per operation
  // This process's CPU time (all threads), in microseconds.
  const auto cpu_us = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  const double cpu_from = cpu_us();
  std::vector<recorder> recs(coros, recorder(1024));
  std::vector<clk::time_point> last(coros, from);
  std::vector<std::future<void>> done;
  for (std::size_t w = 0; w < coros; ++w) {
    done.push_back(asio::co_spawn(
        *iocs[w % n],
        [&, w]() -> asio::awaitable<void> {
          for (std::size_t turn = 0;; ++turn) {
            const clk::time_point a = clk::now();
            if (a >= stop_at) break;
            auto [ec, s] = co_await m.async_load(ids[w * per + turn % per], tuple_token);
            const clk::time_point b = clk::now();
            if (ec) errors.fetch_add(1, std::memory_order_relaxed);
            ops.fetch_add(1, std::memory_order_relaxed);
            if (a >= from) {
              recs[w].add(b - a);
              last[w] = b;
            }
          }
        },
        asio::use_future));
  }
  for (auto& f : done) f.get();
  const double cpu_used = cpu_us() - cpu_from;
  recorder all(0);
  clk::time_point end = from;
  for (std::size_t w = 0; w < coros; ++w) {
    all.append(recs[w]);
    end = std::max(end, last[w]);
  }
  row r;
  r.kind = "manager";
  r.scenario = "load";
  r.errors = errors.load();
  r.sum = all.summarize("load", std::max<clk::duration>(end - from, clk::duration(1)));
  r.facts["deployment"] = redis::to_string(rc.deployment);
  r.facts["ioc_pool"] = cfg.ioc_pool;
  r.facts["io_contexts"] = n;
  r.facts["redis_clients"] = clients.size();
  // Less sensitive than ops/s to other processes on a shared machine.
  r.facts["client_cpu_us_per_op"] = cpu_used / static_cast<double>(std::max<std::uint64_t>(1, ops.load()));
  return {r};
}
#endif

// The parts of a load and a save alone, on the bytes of the same session.
std::vector<row> run_micro(const settings& cfg) {
  asio::io_context ioc;
  session_manager_for<memory_store, plaintext_cipher> m(ioc.get_executor(), plaintext_cipher{},
                                                        memory_store(ioc.get_executor()));
  session s = m.new_session();
  s.mutable_data() = make_payload(cfg.payload);
  const json_serializer js;
  std::string plain;
  js.serialize(s.metadata(), s.data(), plain);
  const aes_gcm_cipher c(std::string(32, 's'));
  const std::string key = s.storage_key();
  std::string sealed;
  c.seal(plain, key, sealed);
  std::unordered_map<std::string, std::string> map;
  for (int i = 0; i < 1000; ++i) map["websession:" + std::to_string(i)] = sealed;
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("websession:" + std::to_string(i));

  const auto span = std::chrono::duration<double>(std::min(cfg.seconds, 0.3));
  std::vector<row> rows;
  auto time = [&](const char* name, auto&& op) {
    for (int i = 0; i < 200; ++i) op(i);  // warm-up
    recorder r(1 << 16);
    const auto t0 = clk::now();
    const auto end = t0 + std::chrono::duration_cast<clk::duration>(span);
    std::size_t i = 0;
    for (clk::time_point a = t0; a < end; ++i) {
      op(i);
      const clk::time_point b = clk::now();
      r.add(b - a);
      a = b;
    }
    row out;
    out.kind = "micro";
    out.scenario = name;
    out.sum = r.summarize(name, clk::now() - t0);
    out.plain_bytes = plain.size();
    out.stored_bytes = sealed.size();
    rows.push_back(std::move(out));
  };
  std::string sink;
  time("aes-gcm seal", [&](std::size_t) { c.seal(plain, key, sink); });
  time("aes-gcm open", [&](std::size_t) { c.open(sealed, key, sink); });
  time("json serialize", [&](std::size_t) { js.serialize(s.metadata(), s.data(), sink); });
  time("json parse", [&](std::size_t) {
    session_metadata meta;
    boost::json::object d;
    js.deserialize(plain, meta, d);
  });
  time("map find+copy", [&](std::size_t i) { sink = map.find(keys[i % 1000])->second; });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// --footprint: the memory N stored sessions take.

// Resident bytes of this process (/proc/self/statm: pages resident, second field).
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// The allocator's view: bytes in use by live allocations (every arena), and the resident set
// with and without giving free heap pages back to the kernel first.
struct mem_probe {
  std::size_t rss = 0;          // after malloc_trim(0)
  std::size_t rss_untrimmed = 0;
  std::size_t heap_in_use = 0;  // mallinfo2().uordblks + hblkhd (chunks in use, mmapped too)
};

mem_probe probe_memory() {
  mem_probe p;
  p.rss_untrimmed = resident_bytes();
  ::malloc_trim(0);
  p.rss = resident_bytes();
  const struct mallinfo2 mi = ::mallinfo2();
  p.heap_in_use = mi.uordblks + mi.hblkhd;
  return p;
}

// Stores `n` sessions like the 1 KB cells' (make_payload), through the manager's first save,
// with `concurrency` coroutines; with `bound`, session i is bound to user "user-i" before it.
// Returns the number stored; every session object is gone when it returns.
template <class Manager>
std::size_t fill_sessions(Manager& m, asio::io_context& ioc, const boost::json::object& payload,
                          std::size_t n, int concurrency, bool bound) {
  std::atomic<std::size_t> next{0}, stored{0};
  std::vector<std::future<void>> done;
  for (int w = 0; w < concurrency; ++w) {
    done.push_back(asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
      for (;;) {
        const std::size_t i = next.fetch_add(1);
        if (i >= n) break;
        session s = m.new_session();
        s.mutable_data() = payload;
        if (bound) m.bind_user(s, "user-" + std::to_string(i));
        auto [ec] = co_await m.async_save(s, tuple_token);
        if (!ec) stored.fetch_add(1);
      }
    }, asio::use_future));
  }
  for (auto& f : done) f.get();
  return stored.load();
}

// The sizes of one session like those stored: serialized, sealed, its storage key.
template <class Manager>
boost::json::object session_sizes(Manager& m, const boost::json::object& payload, bool bound) {
  session s = m.new_session();
  s.mutable_data() = payload;
  if (bound) m.bind_user(s, "user-0");
  std::string plain, sealed;
  json_serializer{}.serialize(s.metadata(), s.data(), plain);
  m.get_cipher().seal(plain, s.storage_key(), sealed);
  boost::json::object o;
  o["plain_bytes"] = plain.size();
  o["stored_bytes"] = sealed.size();
  o["key_bytes"] = s.storage_key().size();
  o["user_index_bytes"] = bound ? m.user_index("user-0").size() : 0;
  return o;
}

template <class Cipher>
boost::json::object footprint_of(const settings& cfg, asio::io_context& ioc, Cipher cipher) {
  const boost::json::object payload = make_payload(cfg.payload);
  const auto n = static_cast<std::size_t>(cfg.sessions);
  boost::json::object o;
  if (cfg.store == "memory") {
    memory_store_options so;  // as the memory cells'
    so.max_sessions = 4'000'000;
    so.max_bytes = std::size_t{4} << 30;
    memory_store store(ioc.get_executor(), so);  // a handle on the manager's store
    session_manager_for<memory_store, Cipher> m(ioc.get_executor(), std::move(cipher), store);
    o = session_sizes(m, payload, cfg.bound);
    // Warm-up: one session stored (and left: 1 in N), so that what the first operations
    // allocate once (OpenSSL contexts, coroutine frames) is not counted.
    fill_sessions(m, ioc, payload, 1, 1, cfg.bound);
    const mem_probe before = probe_memory();
    const std::size_t stored_before = store.size();
    const std::size_t stored = fill_sessions(m, ioc, payload, n, cfg.concurrency, cfg.bound);
    const mem_probe after = probe_memory();
    const auto per = [&](std::size_t a, std::size_t b) {
      return stored ? (static_cast<double>(a) - static_cast<double>(b)) / stored : 0.0;
    };
    o["stored"] = stored;
    o["store_size"] = store.size() - stored_before;
    o["rss_before"] = before.rss;
    o["rss_after"] = after.rss;
    o["rss_per_session"] = per(after.rss, before.rss);
    o["rss_untrimmed_per_session"] = per(after.rss_untrimmed, before.rss_untrimmed);
    o["heap_per_session"] = per(after.heap_in_use, before.heap_in_use);
    o["accounted_per_session"] = store.size() ? static_cast<double>(store.bytes()) / store.size() : 0.0;
    return o;
  }
#ifdef WEBSESSION_WITH_REDIS
  redis::config rc;
  rc.port = cfg.redis_port;
  redis::client client(ioc.get_executor(), rc);
  client.async_run(asio::detached);
  const cancel_on_exit guard{{client}};
  session_manager_for<redis_store, Cipher> m(ioc.get_executor(), std::move(cipher),
                                           redis_store(client, redis_store_options{}));
  // INFO memory's used_memory (and DBSIZE), from the server the store writes to.
  auto info = [&](const char* field) -> std::int64_t {
    return run_sync(ioc, [&]() -> asio::awaitable<std::int64_t> {
      redis::request req;
      req.push("INFO", "memory");
      req.push("DBSIZE");
      auto [ec, replies] = co_await client.async_exec(req, tuple_token);
      if (ec || replies.size() != 2 || replies[0].type != redis::reply_type::string)
        throw std::runtime_error("footprint: INFO memory failed");
      if (std::string_view(field) == "dbsize") co_return replies[1].integer;
      const std::string key = std::string("\n") + field + ":";
      const std::size_t at = replies[0].str.find(key);
      if (at == std::string::npos) throw std::runtime_error("footprint: no " + key.substr(1));
      co_return std::stoll(replies[0].str.substr(at + key.size()));
    });
  };
  const clk::time_point give_up = clk::now() + std::chrono::seconds(10);
  while (!client.connected() && clk::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  o = session_sizes(m, payload, cfg.bound);
  const std::int64_t keys_before = info("dbsize");
  const std::int64_t used_before = info("used_memory");
  const std::size_t stored = fill_sessions(m, ioc, payload, n, cfg.concurrency, cfg.bound);
  const std::int64_t used_after = info("used_memory");
  o["stored"] = stored;
  o["keys_before"] = keys_before;
  o["keys_after"] = info("dbsize");
  o["used_memory_before"] = used_before;
  o["used_memory_after"] = used_after;
  o["used_memory_per_session"] =
      stored ? static_cast<double>(used_after - used_before) / stored : 0.0;
  o["redis_stored_bytes"] = o["stored_bytes"].to_number<long long>() + 4;  // "1:0:" version header
  return o;
#else
  throw std::runtime_error("built without hiredis: no redis store");
#endif
}

void run_footprint(const settings& cfg, asio::io_context& ioc) {
  const std::string secret(32, 's');
  boost::json::object o = cfg.cipher == "aes_gcm" ? footprint_of(cfg, ioc, aes_gcm_cipher(secret))
                                                  : footprint_of(cfg, ioc, plaintext_cipher{});
  o["kind"] = "footprint";
  o["store"] = cfg.store;
  o["cipher"] = cfg.cipher;
  o["payload"] = cfg.payload;
  o["sessions"] = cfg.sessions;
  o["concurrency"] = cfg.concurrency;
  o["bound"] = cfg.bound;
  if (!cfg.tag.empty()) o["tag"] = cfg.tag;
  std::printf("footprint: %s store, %s, %d sessions of %zu B data (%s)\n", cfg.store.c_str(),
              cfg.cipher.c_str(), cfg.sessions, cfg.payload,
              cfg.bound ? "each bound to a user" : "anonymous");
  std::printf("  one session: serialized %lld B, sealed %lld B, key %lld B%s\n",
              static_cast<long long>(o["plain_bytes"].to_number<long long>()),
              static_cast<long long>(o["stored_bytes"].to_number<long long>()),
              static_cast<long long>(o["key_bytes"].to_number<long long>()),
              cfg.bound ? (", user index name " + std::to_string(o["user_index_bytes"].to_number<long long>()) + " B").c_str() : "");
  if (cfg.store == "memory") {
    std::printf("  per stored session: %.0f B resident (after malloc_trim; %.0f B without), "
                "%.0f B allocated (mallinfo2), %.0f B accounted by the store\n",
                o["rss_per_session"].as_double(), o["rss_untrimmed_per_session"].as_double(),
                o["heap_per_session"].as_double(), o["accounted_per_session"].as_double());
  } else {
    std::printf("  per stored session: %.0f B of redis used_memory (%lld -> %lld keys)\n",
                o["used_memory_per_session"].as_double(),
                static_cast<long long>(o["keys_before"].to_number<long long>()),
                static_cast<long long>(o["keys_after"].to_number<long long>()));
  }
  if (!cfg.json_path.empty()) {
    std::ofstream out(cfg.json_path, std::ios::app);
    out << boost::json::serialize(o) << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const settings cfg = parse_args(argc, argv);
  try {
    if (cfg.micro) {
      std::printf("micro baselines, payload %zu B\n", cfg.payload);
      emit(cfg, run_micro(cfg));
      return 0;
    }
#ifdef WEBSESSION_WITH_REDIS
    if (!cfg.ioc_pool.empty()) {
      const std::string secret(32, 's');
      std::vector<row> rows = cfg.cipher == "aes_gcm" ? run_ioc_pool(cfg, aes_gcm_cipher(secret))
                                                      : run_ioc_pool(cfg, plaintext_cipher{});
      std::printf("redis, %s client(s), %d io_contexts x 1 thread, %d coroutines each, payload %zu B\n",
                  cfg.ioc_pool.c_str(), cfg.threads, cfg.concurrency, cfg.payload);
      emit(cfg, rows);
      return 0;
    }
#endif
    asio::io_context ioc(cfg.threads);
    auto work = asio::make_work_guard(ioc);
    std::vector<std::thread> pool;
    for (int i = 0; i < cfg.threads; ++i) pool.emplace_back([&] { ioc.run(); });
    struct joiner {
      asio::executor_work_guard<asio::io_context::executor_type>& work;
      std::vector<std::thread>& pool;
      ~joiner() {
        work.reset();
        for (auto& t : pool) t.join();
      }
    } join{work, pool};

    if (cfg.footprint) {
      run_footprint(cfg, ioc);
      return 0;
    }
    const std::string secret(32, 's');
    std::vector<row> rows = cfg.cipher == "aes_gcm"
                                ? run_store(cfg, ioc, aes_gcm_cipher(secret))
                                : run_store(cfg, ioc, plaintext_cipher{});
    std::printf("store %s, cipher %s, payload %zu B (serialized %zu B, stored %zu B), "
                "%d coroutines (%d sessions each), %d threads\n",
                cfg.store.c_str(), cfg.cipher.c_str(), cfg.payload,
                rows.empty() ? 0 : rows[0].plain_bytes, rows.empty() ? 0 : rows[0].stored_bytes,
                cfg.concurrency, cfg.sessions, cfg.threads);
    if (!rows.empty() && !rows[0].facts.empty())
      std::printf("redis: %s\n", boost::json::serialize(rows[0].facts).c_str());
    emit(cfg, rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sessions: %s\n", e.what());
    return 1;
  }
}
