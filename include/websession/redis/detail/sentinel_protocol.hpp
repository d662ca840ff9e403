// SPDX-License-Identifier: BSL-1.0
// The I/O-free part of Sentinel support: reading the replies of SENTINEL
// get-master-addr-by-name and ROLE, and the +switch-master messages of a sentinel.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_protocol.hpp>
#include <websession/redis/reply.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace websession::redis::detail {

/// What `SENTINEL get-master-addr-by-name NAME` said.
struct sentinel_answer {
  enum class kind : unsigned char { master, unknown_name, bad_reply };
  kind type = kind::bad_reply;
  address master;
};

/// An array [host, port] names the master; nil means the sentinel does not know the name;
/// anything else (an error reply, another shape) is bad_reply.
inline sentinel_answer parse_master_addr(const reply& r) {
  sentinel_answer a;
  if (r.is_nil()) {
    a.type = sentinel_answer::kind::unknown_name;
    return a;
  }
  if (r.type != reply_type::array || r.elements.size() != 2 || !r.elements[0].is_string() ||
      r.elements[0].str.empty()) {
    return a;
  }
  const auto port = cluster_parse::as_port(r.elements[1]);
  if (!port) return a;
  a.type = sentinel_answer::kind::master;
  a.master = address{r.elements[0].str, *port};
  return a;
}

/// Whether a ROLE reply says "master".
inline bool role_is_master(const reply& r) {
  return r.type == reply_type::array && !r.elements.empty() && r.elements[0].is_string() &&
         r.elements[0].str == "master";
}

/// A failover that a sentinel announced: the master moved from `from` to `to`.
struct master_switch {
  address from;
  address to;
};

/// The old and new master of a pub/sub message ["message", "+switch-master", "<name> <old-ip>
/// <old-port> <new-ip> <new-port>"] about `master_name`; nullopt for anything else.
inline std::optional<master_switch> parse_master_switch(const reply& r,
                                                        std::string_view master_name) {
  if (r.type != reply_type::array || r.elements.size() != 3) return std::nullopt;
  if (r.elements[0].str != "message" || r.elements[1].str != "+switch-master") return std::nullopt;
  std::string_view text = r.elements[2].str;
  std::string_view parts[5];
  for (auto& part : parts) {
    const auto space = text.find(' ');
    part = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  }
  if (parts[0] != master_name || parts[1].empty() || parts[3].empty()) return std::nullopt;
  auto port_of = [](std::string_view text) {
    reply port;
    port.type = reply_type::string;
    port.str = std::string(text);
    return cluster_parse::as_port(port);
  };
  const auto from_port = port_of(parts[2]);
  const auto to_port = port_of(parts[4]);
  if (!from_port || !to_port) return std::nullopt;
  return master_switch{address{std::string(parts[1]), *from_port},
                       address{std::string(parts[3]), *to_port}};
}

/// The new master of a +switch-master message about `master_name` (see parse_master_switch).
inline std::optional<address> parse_switch_master(const reply& r, std::string_view master_name) {
  auto s = parse_master_switch(r, master_name);
  if (!s) return std::nullopt;
  return std::move(s->to);
}

/// Whether an error reply says the server is not (or not yet) a usable master: a demoted
/// master (READONLY) or one still loading its data (LOADING). Nothing ran.
inline bool not_master_error(std::string_view text) {
  return text.starts_with("READONLY") || text.starts_with("LOADING");
}

}  // namespace websession::redis::detail
