// Micro benchmark of the manager on the in-process store: create, load, and load + modify +
// save of a 1 KB session, encrypted (AES-256-GCM) and in plaintext, one coroutine on one thread.
// Baselines in the same run: a bare map lookup + copy of the same bytes, and the cipher and
// the serializer alone, so each figure can be read as a ratio.
#include "latency.hpp"

#include <websession/websession.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_map>

namespace asio = boost::asio;
using namespace websession;
using bench::recorder;
using bench::summary;
using clk = std::chrono::steady_clock;

namespace {

constexpr auto tuple_token = asio::as_tuple(asio::use_awaitable);

// About 1 KB once serialized: 16 fields of ~50 bytes.
void fill_1k(session& s) {
  for (int i = 0; i < 16; ++i)
    s.set("field" + std::to_string(i), std::string(48, static_cast<char>('a' + i)));
}

template <class Manager>
asio::awaitable<void> run_manager(Manager& m, std::string label, std::size_t n,
                                  std::vector<summary>& out) {
  const std::size_t warmup = n / 20;
  // create
  {
    recorder r(n);
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n + warmup; ++i) {
      auto a = clk::now();
      auto [ec, s] = co_await m.async_create(tuple_token);
      if (ec) throw boost::system::system_error(ec);
      if (i >= warmup) r.add(clk::now() - a);
      if (i + 1 == warmup) t0 = clk::now();
    }
    out.push_back(r.summarize("create/" + label, clk::now() - t0));
  }
  // One 1 KB session for the loads.
  auto [ec, s] = co_await m.async_create(tuple_token);
  fill_1k(s);
  co_await m.async_save(s, asio::use_awaitable);
  const std::string id = s.id();
  // load
  {
    recorder r(n);
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n + warmup; ++i) {
      auto a = clk::now();
      auto [e, l] = co_await m.async_load(id, tuple_token);
      if (e) throw boost::system::system_error(e);
      if (i >= warmup) r.add(clk::now() - a);
      if (i + 1 == warmup) t0 = clk::now();
    }
    out.push_back(r.summarize("load 1KB/" + label, clk::now() - t0));
  }
  // load + modify + save
  {
    recorder r(n);
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n + warmup; ++i) {
      auto a = clk::now();
      auto [e, l] = co_await m.async_load(id, tuple_token);
      if (e) throw boost::system::system_error(e);
      l.set("counter", i);
      auto [e2] = co_await m.async_save(l, tuple_token);
      if (e2) throw boost::system::system_error(e2);
      if (i >= warmup) r.add(clk::now() - a);
      if (i + 1 == warmup) t0 = clk::now();
    }
    out.push_back(r.summarize("load+save 1KB/" + label, clk::now() - t0));
  }
}

// What the manager's load costs at least: find the bytes and copy them out, decrypt, parse.
void run_baselines(const std::string& plain, const aes_gcm_cipher& c, std::size_t n,
                   std::vector<summary>& out) {
  std::string sealed;
  c.seal(plain, "key", sealed);
  std::unordered_map<std::string, std::string> map;
  for (int i = 0; i < 1000; ++i) map["websession:" + std::to_string(i)] = sealed;
  auto time = [&](const char* name, auto&& op) {
    recorder r(n);
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n; ++i) {
      auto a = clk::now();
      op(i);
      r.add(clk::now() - a);
    }
    out.push_back(r.summarize(name, clk::now() - t0));
  };
  std::string sink;
  time("baseline map find+copy 1KB", [&](std::size_t i) {
    sink = map.find("websession:" + std::to_string(i % 1000))->second;
  });
  time("baseline aes-gcm open 1KB", [&](std::size_t) { c.open(sealed, "key", sink); });
  time("baseline aes-gcm seal 1KB", [&](std::size_t) { c.seal(plain, "key", sink); });
  json_serializer js;
  time("baseline json parse 1KB", [&](std::size_t) {
    session_metadata m;
    boost::json::object d;
    js.deserialize(plain, m, d);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 100000;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--n" && i + 1 < argc) n = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::cerr << "usage: bench_memory [--n ITERATIONS] [--json FILE]\n";
      return 2;
    }
  }
  const std::string secret(32, 's');
  std::vector<summary> results;
  asio::io_context ioc;
  memory_store_options so;
  so.sweep_interval = std::chrono::milliseconds(0);
  basic_session_manager<json_serializer, aes_gcm_cipher, memory_store, std::chrono::system_clock>
      encrypted(ioc.get_executor(), aes_gcm_cipher(secret), memory_store(ioc.get_executor(), so));
  basic_session_manager<json_serializer, plaintext_cipher, memory_store, std::chrono::system_clock>
      plain(ioc.get_executor(), plaintext_cipher{}, memory_store(ioc.get_executor(), so));

  std::string plain_bytes;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        co_await run_manager(encrypted, "aes_gcm", n, results);
        co_await run_manager(plain, "plaintext", n, results);
        session s = plain.new_session();
        fill_1k(s);
        json_serializer{}.serialize(s.metadata(), s.data(), plain_bytes);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ioc.run();
  run_baselines(plain_bytes, aes_gcm_cipher(secret), n, results);

  std::printf("websession memory-store micro benchmark: %zu iterations, serialized session %zu B\n",
              n, plain_bytes.size());
  bench::print_header();
  for (auto& r : results) bench::print(r);

  if (!json_path.empty()) {
    boost::json::array arr;
    for (auto& r : results)
      arr.push_back({{"name", r.name}, {"ops_per_s", r.ops_per_s}, {"p50_us", r.p50_us},
                     {"p90_us", r.p90_us}, {"p99_us", r.p99_us}, {"p999_us", r.p999_us}});
    std::ofstream(json_path) << boost::json::serialize(boost::json::object{{"results", arr}}) << "\n";
  }
}
