// SPDX-License-Identifier: BSL-1.0
// The I/O-free part of the cluster client: reading CLUSTER SHARDS / CLUSTER SLOTS replies into
// shards, reading MOVED / ASK redirections, and splitting an encoded request into its commands.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/slot.hpp>
#include <websession/result.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis::detail {

/// A contiguous range of slots, both ends included.
struct slot_range {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  friend bool operator==(const slot_range&, const slot_range&) = default;
};

/// One shard of a cluster: its slots and its nodes.
struct cluster_shard {
  std::vector<slot_range> slots;
  /// The master; empty host when the shard has no master that is online.
  address master;
  std::vector<address> replicas;
};

namespace cluster_parse {

inline std::optional<long long> as_integer(const reply& r) {
  if (r.type == reply_type::integer) return r.integer;
  if (r.is_string()) {
    long long v = 0;
    const char* b = r.str.data();
    const char* e = b + r.str.size();
    const auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc{} && p == e) return v;
  }
  return std::nullopt;
}

inline std::optional<std::uint16_t> as_port(const reply& r) {
  const auto v = as_integer(r);
  if (!v || *v <= 0 || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

inline bool as_slot(const reply& r, std::uint16_t& out) {
  const auto v = as_integer(r);
  if (!v || *v < 0 || *v >= slot_count) return false;
  out = static_cast<std::uint16_t>(*v);
  return true;
}

// An announced host: empty means "the address you asked", "?" an unknown endpoint.
inline bool usable_host(std::string& host, const address& asked) {
  if (host == "?") return false;
  if (host.empty()) host = asked.host;
  return true;
}

// A RESP2 map is a flat array of key, value, key, value...
inline const reply* field(const reply& map, std::string_view name) {
  if (map.type != reply_type::array) return nullptr;
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].is_string() && map.elements[i].str == name) return &map.elements[i + 1];
  }
  return nullptr;
}

inline std::string field_string(const reply& map, std::string_view name) {
  const reply* f = field(map, name);
  return f && f->is_string() ? f->str : std::string();
}

}  // namespace cluster_parse

/// The shards of a `CLUSTER SHARDS` reply (Redis 7). `asked` is the node that answered (an
/// empty announced address means that node); with `tls`, nodes are reached on their
/// "tls-port". A shard whose master is not "online" gets an empty master host. Fails with
/// client_error::protocol_error when the reply does not have that shape.
inline result<std::vector<cluster_shard>> parse_cluster_shards(const reply& r, const address& asked,
                                                               bool tls) {
  using namespace cluster_parse;
  const auto bad = [] { return make_error_code(client_error::protocol_error); };
  if (r.type != reply_type::array) return bad();
  std::vector<cluster_shard> shards;
  for (const reply& s : r.elements) {
    const reply* slots = field(s, "slots");
    const reply* nodes = field(s, "nodes");
    if (!slots || !nodes || slots->type != reply_type::array || nodes->type != reply_type::array ||
        slots->elements.size() % 2 != 0) {
      return bad();
    }
    cluster_shard shard;
    for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
      slot_range range;
      if (!as_slot(slots->elements[i], range.first) || !as_slot(slots->elements[i + 1], range.last) ||
          range.first > range.last) {
        return bad();
      }
      shard.slots.push_back(range);
    }
    for (const reply& n : nodes->elements) {
      if (n.type != reply_type::array) return bad();
      address a;
      a.host = field_string(n, "endpoint");
      if (a.host.empty()) a.host = field_string(n, "ip");
      const reply* port = tls ? field(n, "tls-port") : field(n, "port");
      if (!port) continue;  // e.g. no tls-port: not reachable the way we talk
      const auto p = as_port(*port);
      if (!p) return bad();
      a.port = *p;
      if (!usable_host(a.host, asked)) continue;
      const std::string role = field_string(n, "role");
      const std::string health = field_string(n, "health");
      if (role == "master") {
        if (health == "online") shard.master = std::move(a);
      } else {
        shard.replicas.push_back(std::move(a));
      }
    }
    // A shard without slots (a master that was emptied, or a lone replica group) routes nothing.
    if (!shard.slots.empty()) shards.push_back(std::move(shard));
  }
  return shards;
}

/// The shards of a `CLUSTER SLOTS` reply (Redis 3 to 6, and 7): one entry per slot range,
/// grouped here by master. Fails with client_error::protocol_error on another shape.
inline result<std::vector<cluster_shard>> parse_cluster_slots(const reply& r, const address& asked) {
  using namespace cluster_parse;
  const auto bad = [] { return make_error_code(client_error::protocol_error); };
  if (r.type != reply_type::array) return bad();
  std::vector<cluster_shard> shards;
  for (const reply& e : r.elements) {
    if (e.type != reply_type::array || e.elements.size() < 3) return bad();
    slot_range range;
    if (!as_slot(e.elements[0], range.first) || !as_slot(e.elements[1], range.last) ||
        range.first > range.last) {
      return bad();
    }
    std::vector<address> nodes;
    for (std::size_t i = 2; i < e.elements.size(); ++i) {
      const reply& n = e.elements[i];
      if (n.type != reply_type::array || n.elements.size() < 2 || !n.elements[0].is_string()) {
        return bad();
      }
      address a;
      a.host = n.elements[0].str;
      const auto p = as_port(n.elements[1]);
      if (!p) return bad();
      a.port = *p;
      if (usable_host(a.host, asked)) {
        nodes.push_back(std::move(a));
      } else if (i == 2) {
        nodes.push_back(address{});  // a master we cannot reach: the range stays unserved
      }
    }
    cluster_shard* shard = nullptr;
    for (auto& s : shards) {
      if (!nodes.front().host.empty() && s.master == nodes.front()) shard = &s;
    }
    if (!shard) {
      shards.emplace_back();
      shard = &shards.back();
      shard->master = nodes.front();
      shard->replicas.assign(nodes.begin() + 1, nodes.end());
    }
    shard->slots.push_back(range);
  }
  return shards;
}

/// A MOVED or ASK error reply.
struct redirect {
  enum class kind : unsigned char { moved, ask };
  kind type = kind::moved;
  std::uint16_t slot = 0;
  /// Empty host: the node did not know the endpoint ("?"); refresh the map instead.
  address to;
};

/// Reads "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>" (an error reply's text).
/// An empty host means the host of `asked` (Redis writes ":port" when it has no better name).
inline std::optional<redirect> parse_redirect(std::string_view text, const address& asked) {
  redirect r;
  if (text.starts_with("MOVED ")) {
    r.type = redirect::kind::moved;
    text.remove_prefix(6);
  } else if (text.starts_with("ASK ")) {
    r.type = redirect::kind::ask;
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  {
    const auto [p, ec] = std::from_chars(text.data(), text.data() + space, slot);
    if (ec != std::errc{} || p != text.data() + space || slot >= slot_count) return std::nullopt;
  }
  r.slot = static_cast<std::uint16_t>(slot);
  std::string_view endpoint = text.substr(space + 1);
  const auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  unsigned port = 0;
  {
    const char* b = endpoint.data() + colon + 1;
    const char* e = endpoint.data() + endpoint.size();
    const auto [p, ec] = std::from_chars(b, e, port);
    if (ec != std::errc{} || p != e || port == 0 || port > 65535) return std::nullopt;
  }
  std::string host(endpoint.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "?") {
    host.clear();
  } else if (host.empty()) {
    host = asked.host;
  }
  r.to = address{std::move(host), static_cast<std::uint16_t>(port)};
  return r;
}

/// Server errors after which a cluster request may be sent again unchanged (after a pause and,
/// for CLUSTERDOWN, a fresh map): nothing ran.
inline bool retryable_cluster_error(std::string_view text) {
  return text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN") ||
         text.starts_with("LOADING") || text.starts_with("MASTERDOWN");
}

/// The commands of an encoded request (as request::payload holds them: arrays of bulk strings),
/// each with its own bytes; empty if the payload is not of that shape.
inline std::vector<std::string_view> split_commands(std::string_view payload) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  const auto number = [&](char type, std::size_t& value) {
    if (pos >= payload.size() || payload[pos] != type) return false;
    const auto end = payload.find("\r\n", pos);
    if (end == std::string_view::npos) return false;
    const auto [p, ec] = std::from_chars(payload.data() + pos + 1, payload.data() + end, value);
    if (ec != std::errc{} || p != payload.data() + end) return false;
    pos = end + 2;
    return true;
  };
  while (pos < payload.size()) {
    const std::size_t start = pos;
    std::size_t args = 0;
    if (!number('*', args)) return {};
    for (std::size_t i = 0; i < args; ++i) {
      std::size_t len = 0;
      if (!number('$', len) || payload.size() - pos < len + 2) return {};
      pos += len + 2;
    }
    out.push_back(payload.substr(start, pos - start));
  }
  return out;
}

}  // namespace websession::redis::detail
