// SPDX-License-Identifier: BSL-1.0
// What a client (any deployment) is connected to, for health checks: redis::client::topology.
#pragma once

#include <websession/redis/cluster_status.hpp>
#include <websession/redis/config.hpp>

#include <boost/system/error_code.hpp>

#include <string>

namespace websession::redis {

/// What a client is connected to, for health checks (client::topology).
struct topology {
  redis::deployment deployment = redis::deployment::standalone;
  /// Standalone: connected to the server; Sentinel: to the master; Cluster: a map was read
  /// and every master in it is connected.
  bool connected = false;
  /// Standalone: the server; Sentinel: the current (or last) master; Cluster: empty.
  address server;
  /// Sentinel: the master's name.
  std::string master_name;
  /// Cluster: nodes, slot coverage, redirections.
  cluster_status cluster;
  /// Why the last connect, refresh or node connection failed (empty when none did since).
  boost::system::error_code last_error;
  std::string last_error_message;
};

}  // namespace websession::redis
