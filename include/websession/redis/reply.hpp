// SPDX-License-Identifier: BSL-1.0
// One RESP2 reply as a plain value tree (what redis::reader produces and a request's replies
// are made of).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace websession::redis {

/// The RESP2 types. A nil bulk string (`$-1`) and a nil array (`*-1`) are both `nil`.
enum class reply_type : unsigned char {
  string,   ///< bulk string (`$`): binary-safe, in `str`
  status,   ///< simple string (`+OK`): in `str`
  error,    ///< server error (`-ERR ...`): the message in `str`
  integer,  ///< integer (`:`): in `integer`
  nil,      ///< nil bulk string or nil array
  array,    ///< array (`*`): in `elements`
};

/// One reply from the server. Only the member that matches `type` is meaningful.
struct reply {
  reply_type type = reply_type::nil;
  std::string str;
  long long integer = 0;
  std::vector<reply> elements;

  /// True for a server error reply (`-ERR`, `-WRONGTYPE`, `-NOAUTH`...).
  bool is_error() const noexcept { return type == reply_type::error; }
  /// True for a nil reply (a missing key for GET, a nil array).
  bool is_nil() const noexcept { return type == reply_type::nil; }
  /// True for a bulk or simple string.
  bool is_string() const noexcept {
    return type == reply_type::string || type == reply_type::status;
  }

  friend bool operator==(const reply&, const reply&) = default;
};

inline const char* to_string(reply_type t) noexcept {
  switch (t) {
    case reply_type::string: return "string";
    case reply_type::status: return "status";
    case reply_type::error: return "error";
    case reply_type::integer: return "integer";
    case reply_type::nil: return "nil";
    case reply_type::array: return "array";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, reply_type t) { return os << to_string(t); }

/// Writes a short human-readable form (for logs and test diagnostics); long strings are cut.
inline std::ostream& operator<<(std::ostream& os, const reply& r) {
  switch (r.type) {
    case reply_type::string:
    case reply_type::status:
    case reply_type::error: {
      os << to_string(r.type) << "(\"";
      const std::string_view s(r.str);
      os << s.substr(0, 64);
      if (s.size() > 64) os << "...(" << s.size() << " bytes)";
      return os << "\")";
    }
    case reply_type::integer: return os << "integer(" << r.integer << ')';
    case reply_type::nil: return os << "nil";
    case reply_type::array: {
      os << "array[";
      for (std::size_t i = 0; i < r.elements.size(); ++i) {
        if (i) os << ", ";
        os << r.elements[i];
      }
      return os << ']';
    }
  }
  return os;
}

}  // namespace websession::redis
