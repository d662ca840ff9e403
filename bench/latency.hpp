// SPDX-License-Identifier: BSL-1.0
// Latency recording for the benchmarks: every sample kept, percentiles from the sorted samples
// (no averages as headline figures). One recorder per coroutine; merge them with append().
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace websession::bench {

struct summary {
  std::string name;
  std::size_t samples = 0;
  double ops_per_s = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};

class recorder {
 public:
  explicit recorder(std::size_t expected) { ns_.reserve(expected); }

  void add(std::chrono::nanoseconds d) { ns_.push_back(d.count()); }

  /// Takes every sample of `other` (per-coroutine recorders merged after a concurrent run).
  void append(const recorder& other) { ns_.insert(ns_.end(), other.ns_.begin(), other.ns_.end()); }

  std::size_t size() const noexcept { return ns_.size(); }

  /// `wall` is the elapsed time of the whole run, for throughput.
  summary summarize(std::string name, std::chrono::nanoseconds wall) {
    summary s;
    s.name = std::move(name);
    s.samples = ns_.size();
    if (ns_.empty()) return s;
    std::sort(ns_.begin(), ns_.end());
    auto at = [&](double q) {
      std::size_t i = static_cast<std::size_t>(q * static_cast<double>(ns_.size() - 1) + 0.5);
      return static_cast<double>(ns_[i]) / 1000.0;
    };
    s.p50_us = at(0.50);
    s.p90_us = at(0.90);
    s.p99_us = at(0.99);
    s.p999_us = at(0.999);
    s.max_us = static_cast<double>(ns_.back()) / 1000.0;
    s.ops_per_s = static_cast<double>(ns_.size()) / std::chrono::duration<double>(wall).count();
    return s;
  }

 private:
  std::vector<long long> ns_;
};

inline void print_header() {
  std::printf("%-34s %10s %9s %9s %9s %9s\n", "scenario", "ops/s", "p50 us", "p90 us", "p99 us",
              "p99.9 us");
}

inline void print(const summary& s) {
  std::printf("%-34s %10.0f %9.2f %9.2f %9.2f %9.2f\n", s.name.c_str(), s.ops_per_s, s.p50_us,
              s.p90_us, s.p99_us, s.p999_us);
}

}  // namespace websession::bench
