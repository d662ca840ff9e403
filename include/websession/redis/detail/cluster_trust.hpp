// SPDX-License-Identifier: BSL-1.0
// What a cluster client believes of what its topology says, pure: which hosts it may connect to
// (the optional allow-list), whether a slot map may be installed, whether a redirection is
// followed. The rules (docs/redis.md, "What is trusted"):
// - A map that a configured seed answered is installed when it names at most max_nodes nodes,
//   all allowed. A map from a node learned later is installed only if, besides that, it names
//   no host that is neither a seed nor in the current map: only the seeds introduce hosts.
// - A MOVED or ASK for another slot than the request's is refused. One to a host of the current
//   map is followed; one to any other host triggers a refresh from the seeds, and the request
//   then goes where the new map says (to that host only if the seeds' map agrees).
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_protocol.hpp>
#include <websession/redis/error.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace websession::redis::detail {

/// cluster_config::allowed_hosts, parsed once.
class host_filter {
 public:
  /// Throws std::invalid_argument for an entry that is empty or a malformed CIDR block.
  explicit host_filter(const std::vector<std::string>& entries);

  /// Whether the list is empty (every host allowed).
  bool empty() const noexcept { return names_.empty() && nets_.empty(); }
  /// Whether `host` (a name or an IP address, as announced) may be connected to.
  bool allows(const std::string& host) const;

 private:
  struct net {
    std::array<unsigned char, 16> bytes{};
    unsigned bits = 0;
    bool v6 = false;
  };
  std::vector<std::string> names_;  // lower case
  std::vector<net> nets_;
};

/// The distinct nodes (masters, then replicas) of a map.
std::vector<address> map_nodes(const std::vector<cluster_shard>& shards);

/// Why a map may not be installed (empty when it may), with a message.
struct trust_verdict {
  boost::system::error_code ec;
  std::string message;
};

/// The installation rule above. `current`: the nodes of the current map.
trust_verdict check_map(const std::vector<cluster_shard>& shards, bool from_seed,
                        const std::vector<address>& seeds, const std::vector<address>& current,
                        const host_filter& allowed, std::size_t max_nodes);

/// What to do with a redirection.
enum class redirect_verdict : unsigned char {
  follow,       // to a host of the current map
  refresh,      // to another host: ask the seeds, then route by their map
  bad_slot,     // for another slot than the request's: refused
  not_allowed,  // to a host outside the allow-list: not followed
};

/// `request_slot`: the request's slot (-1: none); `in_map`: the target is a node of the
/// current map.
redirect_verdict check_redirect(const redirect& r, int request_slot, bool in_map,
                                const host_filter& allowed);

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/cluster_trust.ipp>
#endif
