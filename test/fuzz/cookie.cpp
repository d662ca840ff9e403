// SPDX-License-Identifier: BSL-1.0
// Fuzz target: the Cookie request header parser (websession/http/cookie.hpp).
// Input: an optional first line (at most 64 bytes) naming the cookie to find, then the header.
// Invariants: no crash; too_large exactly above the limit; every view points into the header;
// valid pairs have a token name and cookie-octet value; find_cookie returns the first valid pair
// of that name; the valid pairs written back as `n=v; n=v` parse to the same pairs; a valid pair
// goes through make_set_cookie and is read back by find_cookie.
#include "fuzz.hpp"

#include <websession/http/cookie.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace websession;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  std::string_view name = "__Host-session";
  std::string_view header = input;
  if (const auto nl = input.find('\n'); nl != std::string_view::npos && nl <= 64) {
    name = input.substr(0, nl);
    header = input.substr(nl + 1);
  }

  auto pairs = http::parse_cookie_header(header);
  if (header.size() > http::default_max_cookie_header) {
    WS_FUZZ_CHECK(!pairs && pairs.error() == error::too_large);
    WS_FUZZ_CHECK(!http::find_cookie(header, name));
    return 0;
  }
  WS_FUZZ_CHECK(pairs.has_value());
  if (!header.empty()) {
    auto small = http::parse_cookie_header(header, header.size() - 1);
    WS_FUZZ_CHECK(!small && small.error() == error::too_large);
  }

  std::optional<std::string_view> first;
  std::vector<std::pair<std::string_view, std::string_view>> valid;
  std::string rebuilt;
  for (const http::cookie_pair& p : *pairs) {
    WS_FUZZ_CHECK(fuzz::within(p.name, header) && fuzz::within(p.value, header));
    WS_FUZZ_CHECK(p.name.find(';') == std::string_view::npos);
    WS_FUZZ_CHECK(p.value.find(';') == std::string_view::npos);
    if (!p.valid()) continue;
    WS_FUZZ_CHECK(http::is_cookie_name(p.name));
    WS_FUZZ_CHECK(http::is_cookie_value(p.value));
    if (!first && p.name == name) first = p.value;
    valid.emplace_back(p.name, p.value);
    if (!rebuilt.empty()) rebuilt += "; ";
    rebuilt.append(p.name).append("=").append(p.value);
  }

  const auto found = http::find_cookie(header, name);
  WS_FUZZ_CHECK(found.has_value() == first.has_value());
  if (found) WS_FUZZ_CHECK(*found == *first && fuzz::within(*found, header));

  // The valid pairs, written canonically, parse to themselves and nothing else.
  auto again = http::parse_cookie_header(rebuilt, std::numeric_limits<std::size_t>::max());
  WS_FUZZ_CHECK(again && again->size() == valid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    const http::cookie_pair& p = (*again)[i];
    WS_FUZZ_CHECK(p.valid() && p.name == valid[i].first && p.value == valid[i].second);
  }

  // A valid pair can be set by make_set_cookie (a Secure, host-only cookie satisfies both
  // prefixes) and read back from the name=value part.
  for (std::size_t i = 0; i < valid.size() && i < 4; ++i) {
    cookie_options o;
    o.name = std::string(valid[i].first);
    const auto now = time_point{std::chrono::seconds(1700000000)};
    const std::string sc = http::make_set_cookie(o, valid[i].second, std::chrono::seconds(60), now);
    const std::string_view head = std::string_view(sc).substr(0, sc.find(';'));
    const auto back = http::find_cookie(head, valid[i].first);
    WS_FUZZ_CHECK(back && *back == valid[i].second);
  }
  return 0;
}
