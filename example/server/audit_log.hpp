// SPDX-License-Identifier: BSL-1.0
// The audit log of the example server: one JSON object per line (timestamp, event, storage key,
// user), written whole under a mutex from any thread and flushed at once, so a crash loses no
// line and a reader (or a test) sees every event as soon as the request that caused it is done.
// It never receives a session id: the manager's observer only knows storage keys (hashed ids).
#pragma once

#include <websession/manager.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

namespace example {

/// `t` in RFC 3339, UTC, with milliseconds: 2024-05-01T12:34:56.789Z.
inline std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  const int len = std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf,
                                static_cast<int>(ms % 1000));
  return std::string(out, static_cast<std::size_t>(len));
}

class audit_log {
 public:
  /// Appends to `path`, or writes to stderr when `path` is empty. Throws std::runtime_error if
  /// the file cannot be opened.
  explicit audit_log(const std::string& path) {
    if (path.empty()) {
      file_ = stderr;
      return;
    }
    file_ = std::fopen(path.c_str(), "a");
    if (!file_)
      throw std::runtime_error("cannot open audit log \"" + path + "\": " + std::strerror(errno));
    owned_ = true;
  }
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;
  ~audit_log() {
    if (owned_) std::fclose(file_);
  }

  /// Writes {"ts", "event", "key", "user", ...extra} as one line. Never throws: an audit
  /// failure must not fail the request that caused it (it is counted in write_errors()).
  void write(std::string_view event, std::string_view storage_key, std::string_view user,
             boost::json::object extra = {}) noexcept {
    try {
      boost::json::object line;
      line["ts"] = timestamp();
      line["event"] = event;
      line["key"] = storage_key;
      if (!user.empty()) line["user"] = user;
      for (auto& kv : extra) line[kv.key()] = std::move(kv.value());
      std::string text = boost::json::serialize(line);
      text += '\n';
      std::lock_guard lock(mutex_);
      if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
        ++write_errors_;
    } catch (...) {
      std::lock_guard lock(mutex_);
      ++write_errors_;
    }
  }

  /// The manager's observer hook: security-relevant session events (creation is not one).
  void on_session_event(const websession::session_event& e) noexcept {
    using kind = websession::session_event_kind;
    switch (e.kind) {
      case kind::created: return;
      case kind::rotated: {
        boost::json::object extra;
        extra["previous_key"] = e.previous_key;
        write("rotate", e.storage_key, e.user, std::move(extra));
        return;
      }
      case kind::tampered: write("tamper", e.storage_key, e.user); return;
      case kind::expired: write("expired", e.storage_key, e.user); return;
      case kind::destroyed: write("destroyed", e.storage_key, e.user); return;
      case kind::evicted: write("evicted", e.storage_key, e.user); return;
    }
  }

  std::uint64_t write_errors() const {
    std::lock_guard lock(mutex_);
    return write_errors_;
  }

 private:
  static std::string timestamp() { return rfc3339(std::chrono::system_clock::now()); }

  mutable std::mutex mutex_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::uint64_t write_errors_ = 0;
};

}  // namespace example
