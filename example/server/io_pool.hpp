// SPDX-License-Identifier: BSL-1.0
// One io_context per thread: io_context i is run by thread i alone (the calling thread runs
// io_context 0), so the handlers of one io_context never run concurrently and what only they
// share (a connection's stream and state) needs no strand. What several io_contexts share (the
// session manager and its store, the audit log, a connection count) synchronizes itself.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <exception>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

namespace example {

class io_context_pool {
 public:
  /// `threads` io_contexts (at least one), each built with concurrency hint 1: one thread runs
  /// it, though other threads may still post to it (locking stays on).
  explicit io_context_pool(std::size_t threads) {
    if (threads == 0) threads = 1;
    contexts_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i)
      contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }

  io_context_pool(const io_context_pool&) = delete;
  io_context_pool& operator=(const io_context_pool&) = delete;

  /// io_context 0 goes first. Shared objects built on it (a Redis client's strand) may hold
  /// handlers that own coroutine frames of connections on the others (after a forced stop);
  /// destroying those frames needs the others' io_contexts (their sockets, their work counts)
  /// still alive. The others' pending handlers own only their own connections.
  ~io_context_pool() {
    for (auto& c : contexts_) c.reset();
  }

  std::size_t size() const noexcept { return contexts_.size(); }
  boost::asio::io_context& operator[](std::size_t i) noexcept { return *contexts_[i]; }

  /// Runs io_context i on thread i (0: the calling thread) until each runs out of work or is
  /// stopped; returns when all have.
  void run() {
    std::vector<std::thread> threads;
    threads.reserve(contexts_.size() - 1);
    for (std::size_t i = 1; i < contexts_.size(); ++i)
      threads.emplace_back([c = contexts_[i].get()] { run_one(*c); });
    run_one(*contexts_[0]);
    for (std::thread& t : threads) t.join();
  }

  /// Stops every io_context (any thread).
  void stop() {
    for (auto& c : contexts_) c->stop();
  }

 private:
  static void run_one(boost::asio::io_context& ioc) {
    // Handlers catch their own exceptions; this only keeps a thread from dying on a surprise.
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        std::cerr << "server: unexpected exception in an io_context: " << e.what() << std::endl;
      }
    }
  }

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
};

}  // namespace example
