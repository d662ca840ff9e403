// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/cluster_trust.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_CLUSTER_TRUST_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_CLUSTER_TRUST_IPP

#include <websession/redis/detail/cluster_trust.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace websession::redis::detail {

namespace trust_detail {

inline std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// The 16 bytes of an address (IPv4 in the first 4), or false if `text` is not an address.
inline bool address_bytes(const std::string& text, std::array<unsigned char, 16>& out, bool& v6) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(text, ec);
  if (ec) return false;
  out.fill(0);
  v6 = a.is_v6();
  if (v6) {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  } else {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  }
  return true;
}

inline bool contains(const std::vector<address>& list, const address& a) {
  return std::find(list.begin(), list.end(), a) != list.end();
}

inline std::string name_of(const address& a) { return a.host + ":" + std::to_string(a.port); }

}  // namespace trust_detail

WEBSESSION_DECL host_filter::host_filter(const std::vector<std::string>& entries) {
  for (const std::string& e : entries) {
    if (e.empty()) throw std::invalid_argument("websession::redis: empty entry in allowed_hosts");
    const auto slash = e.find('/');
    if (slash == std::string::npos) {
      names_.push_back(trust_detail::lower(e));
      continue;
    }
    net n;
    unsigned bits = 0;
    const char* b = e.data() + slash + 1;
    const char* end = e.data() + e.size();
    const auto [p, ec] = std::from_chars(b, end, bits);
    if (!trust_detail::address_bytes(e.substr(0, slash), n.bytes, n.v6) || ec != std::errc{} ||
        p != end || b == end || bits > (n.v6 ? 128u : 32u)) {
      throw std::invalid_argument("websession::redis: malformed CIDR block in allowed_hosts: " + e);
    }
    n.bits = bits;
    nets_.push_back(n);
  }
}

WEBSESSION_DECL bool host_filter::allows(const std::string& host) const {
  if (empty()) return true;
  const std::string name = trust_detail::lower(host);
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) return true;
  std::array<unsigned char, 16> bytes{};
  bool v6 = false;
  if (!trust_detail::address_bytes(host, bytes, v6)) return false;
  for (const net& n : nets_) {
    if (n.v6 != v6) continue;
    unsigned left = n.bits;
    bool match = true;
    for (std::size_t i = 0; left > 0 && match; ++i) {
      const unsigned take = std::min(left, 8u);
      const auto mask = static_cast<unsigned char>(0xFFu << (8 - take));
      match = (bytes[i] & mask) == (n.bytes[i] & mask);
      left -= take;
    }
    if (match) return true;
  }
  return false;
}

WEBSESSION_DECL std::vector<address> map_nodes(const std::vector<cluster_shard>& shards) {
  std::vector<address> out;
  const auto add = [&](const address& a) {
    if (!a.host.empty() && !trust_detail::contains(out, a)) out.push_back(a);
  };
  for (const auto& s : shards) add(s.master);
  for (const auto& s : shards) {
    for (const auto& r : s.replicas) add(r);
  }
  return out;
}

WEBSESSION_DECL trust_verdict check_map(const std::vector<cluster_shard>& shards, bool from_seed,
                                        const std::vector<address>& seeds,
                                        const std::vector<address>& current,
                                        const host_filter& allowed, std::size_t max_nodes) {
  const std::vector<address> nodes = map_nodes(shards);
  if (nodes.size() > max_nodes) {
    return {make_error_code(client_error::too_many_nodes),
            "the slot map names " + std::to_string(nodes.size()) + " nodes, more than " +
                "cluster_config::max_nodes (" + std::to_string(max_nodes) + "): refused"};
  }
  for (const address& a : nodes) {
    if (!allowed.allows(a.host)) {
      return {make_error_code(client_error::host_not_allowed),
              "the slot map names " + trust_detail::name_of(a) +
                  ", outside cluster_config::allowed_hosts: refused"};
    }
    if (!from_seed && !trust_detail::contains(seeds, a) && !trust_detail::contains(current, a)) {
      return {make_error_code(client_error::no_cluster_map),
              "a map from a node that is not a seed names a new host (" +
                  trust_detail::name_of(a) + "): only the seeds introduce hosts"};
    }
  }
  return {};
}

WEBSESSION_DECL redirect_verdict check_redirect(const redirect& r, int request_slot, bool in_map,
                                                const host_filter& allowed) {
  if (request_slot >= 0 && r.slot != request_slot) return redirect_verdict::bad_slot;
  if (!r.to.host.empty() && !allowed.allows(r.to.host)) return redirect_verdict::not_allowed;
  if (r.to.host.empty() || !in_map) return redirect_verdict::refresh;
  return redirect_verdict::follow;
}

}  // namespace websession::redis::detail

#endif
