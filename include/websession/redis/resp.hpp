// SPDX-License-Identifier: BSL-1.0
// The RESP2 encoder: appends a command (an array of bulk strings) to a reused std::string.
// Arguments are binary-safe; integers are written in decimal.
#pragma once

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>

namespace websession::redis::resp {

/// Anything that converts to std::string_view: std::string, string literals, string_view.
template <class T>
concept string_argument = std::convertible_to<const T&, std::string_view>;

/// Integers, written in decimal. bool and the character types are excluded on purpose:
/// `'a'` or `true` as an argument is almost certainly a mistake.
template <class T>
concept integer_argument =
    std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
    !std::same_as<T, signed char> && !std::same_as<T, unsigned char> &&
    !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
    !std::same_as<T, char32_t>;

/// One argument of a command.
template <class T>
concept scalar_argument = string_argument<T> || integer_argument<T>;

/// A sized range of scalar arguments (e.g. std::vector<std::string> of keys for DEL), which
/// contributes one argument per element.
template <class T>
concept range_argument = !string_argument<T> && std::ranges::sized_range<const T> &&
                         scalar_argument<std::ranges::range_value_t<const T>>;

/// What append_command accepts.
template <class T>
concept argument = scalar_argument<T> || range_argument<T>;

namespace detail {

inline void append_length_line(std::string& out, char marker, std::size_t n) {
  char buf[24];
  buf[0] = marker;
  const auto end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out.append(buf, static_cast<std::size_t>(end + 2 - buf));
}

template <class T>
std::size_t count(const T& arg) {
  if constexpr (range_argument<T>) {
    return static_cast<std::size_t>(std::ranges::size(arg));
  } else {
    return 1;
  }
}

// An upper bound of the encoded size of one argument: "$<length>\r\n<bytes>\r\n".
template <class T>
std::size_t encoded_bound(const T& arg) {
  if constexpr (range_argument<T>) {
    std::size_t n = 0;
    for (const auto& element : arg) n += encoded_bound(element);
    return n;
  } else if constexpr (string_argument<T>) {
    return std::string_view(arg).size() + 26;
  } else {
    return 50;
  }
}

}  // namespace detail

/// Appends one bulk string (`$<len>\r\n<bytes>\r\n`).
inline void append_bulk(std::string& out, std::string_view s) {
  detail::append_length_line(out, '$', s.size());
  out.append(s);
  out.append("\r\n", 2);
}

/// Appends an integer as a bulk string of its decimal form.
template <integer_argument I>
void append_bulk(std::string& out, I value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof(buf), value).ptr;
  append_bulk(out, std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

/// Appends the bulk strings of one argument (one, or one per element of a range).
template <argument T>
void append_argument(std::string& out, const T& arg) {
  if constexpr (range_argument<T>) {
    for (const auto& element : arg) append_argument(out, element);
  } else if constexpr (string_argument<T>) {
    append_bulk(out, std::string_view(arg));
  } else {
    append_bulk(out, arg);
  }
}

/// Appends one command: `*<n>\r\n` and then each argument as a bulk string, e.g.
/// `append_command(out, "SET", key, value, "PX", 5000)`. Never fails except by throwing
/// std::bad_alloc or std::length_error when `out` cannot grow.
template <argument... Args>
void append_command(std::string& out, const Args&... args) {
  const std::size_t n = (std::size_t{0} + ... + detail::count(args));
  // One allocation for the whole command rather than one per growth step (and still
  // geometric growth over many commands pipelined into one buffer).
  const std::size_t need = out.size() + 24 + (std::size_t{0} + ... + detail::encoded_bound(args));
  if (need > out.capacity()) out.reserve(std::max(need, 2 * out.capacity()));
  detail::append_length_line(out, '*', n);
  (append_argument(out, args), ...);
}

}  // namespace websession::redis::resp
