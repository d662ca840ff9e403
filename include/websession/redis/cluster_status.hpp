// SPDX-License-Identifier: BSL-1.0
// What a cluster client knows of its cluster right now (redis::cluster::status, and the
// cluster part of redis::client::topology), for health checks and /healthz.
#pragma once

#include <websession/redis/config.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace websession::redis {

/// One node as a cluster client sees it (cluster::status).
struct cluster_node_status {
  address node;
  /// Serves slots in the current map (false: a replica, or a node that left).
  bool master = false;
  /// How many slots it serves.
  std::size_t slots = 0;
  /// Its connection is up right now.
  bool connected = false;
};

/// What a cluster client knows right now (for health checks and /healthz).
struct cluster_status {
  /// Whether a slot map was read yet.
  bool have_map = false;
  /// Masters of the current map first, then replicas.
  std::vector<cluster_node_status> nodes;
  /// Slots that have a master in the current map (16384 when the cluster is whole).
  std::size_t covered_slots = 0;
  /// Slot maps read (the first one included).
  std::uint64_t refreshes = 0;
  /// MOVED redirections followed.
  std::uint64_t moved = 0;
  /// ASK redirections followed.
  std::uint64_t ask = 0;
  /// Requests sent again after TRYAGAIN, CLUSTERDOWN, LOADING or a node that was down.
  std::uint64_t retries = 0;
};

}  // namespace websession::redis
