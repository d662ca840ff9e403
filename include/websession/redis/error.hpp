// SPDX-License-Identifier: BSL-1.0
// Error codes of the Redis client: why a request failed (error), why a URL was rejected
// (url_error) and why a connection to the server failed (client_error). The client knows
// nothing of sessions: the session store on top of it (redis_store) translates.
#pragma once

#include <websession/detail/error_category.hpp>

#include <boost/system/error_code.hpp>

#include <ostream>
#include <string>
#include <type_traits>

namespace websession::redis {

/// Why a request failed (connection, cluster and client `async_exec`), or why `async_run`
/// ended abnormally. Values are stable (they may be logged). A request may also complete with
/// boost::asio::error::operation_aborted (cancelled, or the client stopped). redis_store
/// (store/redis.hpp) reports them as session errors.
enum class error {
  /// The request was never written: no working connection during its whole request_timeout (or
  /// at once with config::fail_fast_when_down while the server is down); on a cluster, no
  /// master could take it before its deadline (no slot map, a slot without a master, its node
  /// down), or async_exec_at named no master. It did not run; last_error() says why.
  not_connected = 1,
  /// The request was written, but the connection dropped before all its replies came, and it
  /// is not idempotent (so it was not sent again): it may or may not have run. Also a durable
  /// request (request::wait_for_replicas) whose WAIT answer was lost with the connection.
  connection_lost,
  /// Connected, but the replies did not come before the request's deadline
  /// (config::request_timeout): it may have run; its late replies are skipped.
  timeout,
  /// A durable request ran on the master, but the WAIT after it confirmed fewer replicas than
  /// request::wait_for_replicas asked for within its timeout: the write may not survive a
  /// failover.
  replicas_not_confirmed,
  /// Cluster: the request was redirected (MOVED, ASK) more than config::cluster.max_redirects
  /// times.
  too_many_redirects,
  /// `async_run` only: the run loop ended on an unexpected exception (an allocation failure)
  /// and the connection or cluster stopped. Requests never complete with it.
  internal,
};

/// Why redis::parse_url rejected a URL. Values are stable (they may be logged).
enum class url_error {
  /// The URL does not start with `redis://`, `rediss://`, `redis-cluster://`,
  /// `rediss-cluster://`, `redis-sentinel://` or `rediss-sentinel://`.
  bad_scheme = 1,
  /// Nothing between the scheme (or the `@`) and the port or path.
  missing_host,
  /// An IPv6 literal without its closing `]`, or with text between `]` and the port.
  bad_host,
  /// The port is not a decimal number in 1..65535.
  bad_port,
  /// The path is not `/` followed by a decimal database number in 0..2^31-1.
  bad_database,
  /// A `%` in the user or password not followed by two hex digits.
  bad_escape,
  /// The URL has a `?query`, or a `#fragment` other than a sentinel URL's master name; no
  /// options are read from URLs.
  unsupported_query,
  /// A redis-sentinel:// URL without `#master-name` (or with an empty one).
  missing_master_name,
  /// Several `host:port` entries in a redis:// or rediss:// URL: only redis-cluster:// and
  /// redis-sentinel:// URLs take a list of nodes.
  multiple_hosts,
  /// A redis-cluster:// URL with a database other than 0 (a cluster has only database 0).
  cluster_database,
};

/// Why a connection to the server failed or was dropped (see connection::last_error). Requests
/// never complete with these: they see redis::error::not_connected, connection_lost or timeout.
enum class client_error {
  /// The server sent bytes that are not RESP2 (including RESP3 types, nesting deeper than 8
  /// arrays, a bulk string longer than it announced); the connection was dropped.
  protocol_error = 1,
  /// The server sent a reply nobody asked for; the connection was dropped.
  unexpected_reply,
  /// AUTH was refused (wrong password or user); the client retries with backoff.
  auth_failed,
  /// SELECT was refused (database out of range, or not permitted).
  select_failed,
  /// CLIENT SETNAME was refused (a name with spaces, or not permitted).
  setname_failed,
  /// Resolve, connect, TLS handshake and the setup commands did not finish in connect_timeout.
  connect_timeout,
  /// Requests were outstanding and nothing was received for health_check_interval: the
  /// connection was presumed dead and dropped.
  unresponsive,
  /// Sentinel: no sentinel could be reached (or all refused our credentials).
  no_sentinel,
  /// Sentinel: the sentinels that answered do not know the configured master name.
  unknown_master,
  /// Sentinel: the server the sentinels named is not a master (ROLE), or answered READONLY /
  /// LOADING; the sentinels are asked again.
  not_master,
  /// Sentinel: a sentinel announced a failover (+switch-master); the connection moves to the
  /// new master.
  master_switched,
  /// Cluster: a seed or node is not a cluster node (cluster support disabled).
  not_a_cluster,
  /// Cluster: no node could tell the slot map (none reachable, or every answer was unusable).
  no_cluster_map,
  /// Cluster: the slot map leaves some slots without a master (uncovered slots, or a failed
  /// master not yet replaced); requests for those slots wait for a map that serves them.
  slots_uncovered,
  /// Internal: a cluster's request to one node was never written (the node is down); the
  /// cluster sends it elsewhere. Requests of a connection or a cluster never complete with it.
  not_sent,
  /// The server announced an array with more elements, or a bulk string (or line) longer,
  /// than config::limits allows; the connection was dropped (a hostile or tampered-with
  /// server, or limits too low for your own commands).
  reply_too_large,
  /// Sentinel with sentinel_config::quorum: fewer sentinels than the quorum named the same
  /// master; the client stays where it is (or keeps trying) rather than move.
  no_quorum,
  /// Cluster: the topology named a host outside cluster_config::allowed_hosts; it is never
  /// connected to (a map naming one is refused, a redirection to one is not followed).
  host_not_allowed,
  /// Cluster: a slot map named more nodes than cluster_config::max_nodes; it was refused.
  too_many_nodes,
  /// A warning about the configuration, given once to the error handler when async_run
  /// starts (never recorded as last_error): a sentinel without a password, TLS to discovered
  /// hosts checked against the public trust store with no name pinned, or verify_peer off.
  insecure_setup,
  /// Cluster: a MOVED or ASK named another slot than the request's; not followed.
  bad_redirect,
};

namespace detail {

// Fixed ids keep the categories unique even if this header is seen by several shared objects.
struct error_traits {
  static constexpr unsigned long long id = 0x7773726564697333ULL;
  static constexpr const char* name = "websession.redis";
  static const char* message(int ev) noexcept {
    switch (static_cast<error>(ev)) {
      case error::not_connected: return "redis request not sent: no connection to the server";
      case error::connection_lost:
        return "redis connection lost before the reply (the request may have run)";
      case error::timeout: return "redis request timed out";
      case error::replicas_not_confirmed:
        return "redis WAIT confirmed fewer replicas than the request asked for";
      case error::too_many_redirects: return "redis cluster redirected the request too many times";
      case error::internal: return "unexpected exception in the redis client's run loop";
    }
    return "unknown redis error";
  }
};

struct url_error_traits {
  static constexpr unsigned long long id = 0x7773726564697331ULL;
  static constexpr const char* name = "websession.redis.url";
  static const char* message(int ev) noexcept {
    switch (static_cast<url_error>(ev)) {
      case url_error::bad_scheme:
        return "redis URL must start with redis://, rediss://, redis-cluster://, "
               "rediss-cluster://, redis-sentinel:// or rediss-sentinel://";
      case url_error::missing_host: return "redis URL has no host";
      case url_error::bad_host: return "redis URL has a malformed [IPv6] host";
      case url_error::bad_port: return "redis URL port is not a number in 1..65535";
      case url_error::bad_database:
        return "redis URL path is not /<database number> (a number in 0..2147483647)";
      case url_error::bad_escape:
        return "redis URL user or password has a % not followed by two hex digits";
      case url_error::unsupported_query:
        return "redis URL has a ?query or #fragment, which is not supported (only a "
               "redis-sentinel:// URL takes #master-name)";
      case url_error::missing_master_name:
        return "redis-sentinel URL has no #master-name";
      case url_error::multiple_hosts:
        return "redis URL lists several hosts; only redis-cluster:// and redis-sentinel:// "
               "URLs take a list of nodes";
      case url_error::cluster_database:
        return "redis-cluster URL names a database other than 0 (a cluster has only database 0)";
    }
    return "unknown redis URL error";
  }
};

struct client_error_traits {
  static constexpr unsigned long long id = 0x7773726564697332ULL;
  static constexpr const char* name = "websession.redis.client";
  static const char* message(int ev) noexcept {
    switch (static_cast<client_error>(ev)) {
      case client_error::protocol_error: return "redis protocol error";
      case client_error::unexpected_reply: return "redis sent a reply nobody asked for";
      case client_error::auth_failed: return "redis AUTH failed (wrong user or password?)";
      case client_error::select_failed: return "redis SELECT failed (database out of range?)";
      case client_error::setname_failed: return "redis CLIENT SETNAME failed";
      case client_error::connect_timeout: return "redis connect timed out";
      case client_error::unresponsive: return "redis server stopped answering";
      case client_error::no_sentinel: return "no redis sentinel could be reached";
      case client_error::unknown_master: return "the redis sentinels do not know the master name";
      case client_error::not_master: return "the redis server is not a master";
      case client_error::master_switched: return "redis sentinel announced a new master";
      case client_error::not_a_cluster: return "the redis server is not a cluster node";
      case client_error::no_cluster_map: return "no redis cluster node told the slot map";
      case client_error::slots_uncovered: return "redis cluster slots without a master";
      case client_error::not_sent: return "redis request was not sent (node down)";
      case client_error::reply_too_large:
        return "redis reply exceeds the configured limits (config::limits)";
      case client_error::no_quorum: return "too few redis sentinels agree on the master";
      case client_error::host_not_allowed:
        return "redis topology named a host outside the allowed hosts";
      case client_error::too_many_nodes: return "redis cluster map names too many nodes";
      case client_error::insecure_setup: return "redis client configuration is not secure";
      case client_error::bad_redirect: return "redis redirection for another slot";
    }
    return "unknown redis client error";
  }
};

}  // namespace detail

/// The category of redis::error.
inline const boost::system::error_category& error_category() noexcept {
  return websession::detail::category_of<detail::error_traits>();
}

/// The category of redis::url_error.
inline const boost::system::error_category& url_error_category() noexcept {
  return websession::detail::category_of<detail::url_error_traits>();
}

/// The category of redis::client_error.
inline const boost::system::error_category& client_error_category() noexcept {
  return websession::detail::category_of<detail::client_error_traits>();
}

inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Writes the error's message (for logs and test diagnostics).
inline std::ostream& operator<<(std::ostream& os, error e) {
  return os << error_category().message(static_cast<int>(e));
}

inline boost::system::error_code make_error_code(url_error e) noexcept {
  return {static_cast<int>(e), url_error_category()};
}

inline boost::system::error_code make_error_code(client_error e) noexcept {
  return {static_cast<int>(e), client_error_category()};
}

}  // namespace websession::redis

template <>
struct boost::system::is_error_code_enum<websession::redis::error> : std::true_type {};

template <>
struct boost::system::is_error_code_enum<websession::redis::url_error> : std::true_type {};

template <>
struct boost::system::is_error_code_enum<websession::redis::client_error> : std::true_type {};
