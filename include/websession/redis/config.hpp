// SPDX-License-Identifier: BSL-1.0
// Settings of a Redis client (a plain struct with documented defaults: one server, a Sentinel-
// managed master or a Cluster) and their parsing from a redis://, rediss://, redis-cluster://
// or redis-sentinel:// URL.
#pragma once

#include <websession/redis/error.hpp>
#include <websession/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace websession::redis {

/// One server's address: a cluster seed or a sentinel.
struct address {
  /// Host name or IP address (IPv6 without brackets).
  std::string host;
  std::uint16_t port = 6379;

  friend bool operator==(const address&, const address&) = default;
};

/// Which kind of deployment a config describes.
enum class deployment {
  /// One server at config::host and config::port.
  standalone,
  /// A master found through Redis Sentinel (config::sentinel); the connection follows failovers.
  sentinel,
  /// A Redis Cluster found from seed nodes (config::cluster); used through redis::cluster.
  cluster,
};

/// "standalone", "sentinel" or "cluster".
inline const char* to_string(deployment d) noexcept {
  switch (d) {
    case deployment::standalone: return "standalone";
    case deployment::sentinel: return "sentinel";
    case deployment::cluster: return "cluster";
  }
  return "unknown";
}

/// How to find the master through Redis Sentinel (config::deployment is sentinel).
struct sentinel_config {
  /// The sentinels, asked in order; the one that answered is asked first next time.
  std::vector<address> sentinels;
  /// The name the sentinels monitor the master under (`sentinel monitor NAME ...`).
  std::string master_name;
  /// ACL user and password for the sentinels themselves (sentinel's `requirepass` / ACL), which
  /// are often not those of the data nodes; empty password sends no AUTH.
  std::string username;
  std::string password;
  /// Talk TLS to the sentinels (a rediss-sentinel:// URL sets this and config::tls); the CA,
  /// certificate and verification settings are config's.
  bool tls = false;
  /// Subscribe to `+switch-master` on a sentinel, so a failover is followed at once rather than
  /// when the old master's connection fails.
  bool subscribe = true;
  /// How many sentinels must name the same master before the client connects to it. 1 (the
  /// default): the first sentinel that answers decides, and a +switch-master announcement is
  /// followed at once. N > 1: the sentinels are asked until N of them agree (else the connect
  /// attempt fails with client_error::no_quorum and is retried), and an announcement only makes
  /// the client ask them again. At most the number of sentinels.
  std::size_t quorum = 1;
};

/// How to find and use a Redis Cluster (config::deployment is cluster).
struct cluster_config {
  /// Nodes asked for the slot map until one answers (any master or replica will do).
  std::vector<address> seeds;
  /// The slot map is asked for again this often (besides after a MOVED and after a node's
  /// connection fails); zero: only on those events.
  std::chrono::milliseconds refresh_interval = std::chrono::seconds(10);
  /// Redirections (MOVED, ASK) followed per request before it fails.
  unsigned max_redirects = 5;
  /// Hosts the topology may send us to, besides the seeds: host names (compared without
  /// case), IP addresses, or CIDR blocks ("10.0.0.0/8", "fd00::/8"; they match IP addresses
  /// only, as the nodes announce them, never a name). Empty (the default): any host that the
  /// seeds' slot map names. A host outside the list is never connected to: a map naming one is
  /// refused (client_error::host_not_allowed), a redirection to one is not followed. The seeds
  /// must be inside it. URL form: `redis-cluster://h1,h2?allow=10.0.0.0/8,cache.internal`.
  std::vector<std::string> allowed_hosts;
  /// Most nodes (masters and replicas) a slot map may name; a map naming more is refused and
  /// reported (client_error::too_many_nodes), and no connection beyond the cap is opened.
  std::size_t max_nodes = 1000;
};

/// Bounds on what a server's replies may announce. A reply header is a promise of what follows
/// (`*4000000\r\n` announces four million elements in ten bytes), so these are checked as soon
/// as a header arrives, before anything is stored for it; storage then grows only as elements
/// and bytes actually arrive. A reply beyond a limit is a protocol error
/// (client_error::reply_too_large): the connection is dropped, its requests in flight fail like
/// on any dropped connection (error::connection_lost, or for an idempotent request sent again
/// until its time ran out error::timeout or error::not_connected), and it reconnects.
///
/// The defaults are far above what this library asks of Redis: a session value is at most
/// 1 MiB by default (options::max_value_bytes), SCAN or ZRANGE replies hold a few thousand
/// elements, CLUSTER SLOTS at most 16,384 slot ranges. Raise them only for your own commands
/// with larger replies (big MGET, HGETALL, KEYS on a large database). Within the limits, memory
/// still grows with what the server really sends (up to about 40 times its bytes for arrays of
/// tiny elements, such as `:1`): the limits stop allocations for what is only announced, and
/// bound each array, string and line, not the sum of a reply.
struct reply_limits {
  /// Most elements one array may announce (its own elements, not counting nested ones; RESP3
  /// maps, sets, pushes and attributes are not accepted at all: the client speaks RESP2).
  /// 1,048,576 is 64 times the largest reply the library itself can get (CLUSTER SLOTS of a
  /// cluster with each of its 16,384 slots in a range of its own; a SCAN page holds about
  /// COUNT 1000 keys). A nil or integer element costs 4 bytes on the wire but about 72 bytes
  /// of memory (twice that while the array grows), so this also bounds what one array costs
  /// to about 150 MiB, and only for a server that really sends every element.
  std::size_t max_elements = std::size_t{1} << 20;
  /// Longest bulk string one reply may hold, in bytes. 64 MiB is 64 times the default session size
  /// limit and an eighth of Redis's own proto-max-bulk-len default (512 MiB). The reader buffers a
  /// bulk string whole before handing it out, so this is also about the most its buffer grows to.
  std::size_t max_bulk_length = std::size_t{64} << 20;
  /// Longest line: a simple string (`+OK`), an error (`-ERR ...`), an integer, or the length
  /// line of an array or bulk string, in bytes. hiredis looks for a line's end from its start
  /// again each time more bytes arrive, so a line without end costs time quadratic in its
  /// length (measured with hiredis 0.14: 1.1 s of CPU for 4 MiB, 18 s for 16 MiB, so about
  /// 5 minutes for 64 MiB): keep this small. Redis's own status and error lines are well
  /// under 1 KiB; 64 KiB leaves room for long script errors.
  std::size_t max_line_length = std::size_t{64} << 10;

  friend bool operator==(const reply_limits&, const reply_limits&) = default;
};

/// How to reach and talk to one Redis server. Every field has a usable default, so
/// `config{}` connects to a local server without TLS or AUTH.
struct config {
  /// Host name or IP address (IPv6 without brackets). Resolved on every connect.
  std::string host = "127.0.0.1";
  /// TCP port.
  std::uint16_t port = 6379;
  /// ACL user for `AUTH user password`; empty sends `AUTH password` (the default user).
  std::string username;
  /// AUTH is sent on every (re)connect when this is not empty; empty sends no AUTH.
  std::string password;
  /// Database for `SELECT` on every (re)connect; 0 sends no SELECT.
  int database = 0;
  /// Name for `CLIENT SETNAME` on every (re)connect (shows in CLIENT LIST, lets an operator
  /// kill our connections); empty sends none. Must not contain spaces.
  std::string client_name = "websession";

  /// Connect with TLS (a rediss:// URL sets this).
  bool tls = false;
  /// PEM file of the CA certificates that sign the server's certificate; empty uses the
  /// system's default trust store.
  std::string ca_file;
  /// PEM certificate chain presented to the server (mutual TLS); empty presents none.
  std::string cert_file;
  /// PEM private key of cert_file.
  std::string key_file;
  /// Check the server's certificate chain and that it names `tls_server_name` (or `host`).
  /// Turning this off makes TLS open to any man in the middle.
  bool verify_peer = true;
  /// Name checked against the server's certificate and sent as SNI; empty uses `host`.
  std::string tls_server_name;
  /// With Cluster or Sentinel over TLS, the client connects to hosts that the topology names;
  /// they are verified against ca_file. When ca_file is empty (the public trust store: any
  /// public CA's certificate for any name the topology announces passes), no tls_server_name
  /// pins the name, or verify_peer is off, the error handler gets a client_error::insecure_setup
  /// warning when async_run starts. With strict_tls, such a config throws
  /// std::invalid_argument at construction instead.
  bool strict_tls = false;

  /// Limit on resolve + connect + TLS handshake + AUTH/SELECT/SETNAME, per attempt.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(2);
  /// Every request completes within this time of its call: with its replies, or with
  /// error::timeout (connected but no answer), error::not_connected (not connected) or
  /// error::connection_lost (see connection::async_exec).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(2);
  /// Delay before the first reconnect attempt after a failed one; it doubles on every further
  /// failure up to reconnect_max, and each wait is drawn at random from [d/2, d] (jitter), so
  /// many clients do not reconnect in lockstep. A dropped working connection is retried at once.
  std::chrono::milliseconds reconnect_min = std::chrono::milliseconds(50);
  /// Longest delay between reconnect attempts.
  std::chrono::milliseconds reconnect_max = std::chrono::seconds(5);
  /// When nothing was sent or received for this long, a PING is sent (never under load); when
  /// replies are awaited and nothing at all arrives for this long, the server is presumed dead
  /// and the connection is dropped and reopened. Zero disables both. Keep it longer than any
  /// command takes on the server (blocking commands such as BLPOP do not belong on a shared
  /// connection).
  std::chrono::milliseconds health_check_interval = std::chrono::seconds(2);
  /// While the server is known to be down (the last connect attempt failed), requests complete
  /// at once with error::not_connected instead of waiting up to request_timeout for a
  /// reconnect; requests waiting when an attempt fails complete then. Requests made during the
  /// first connect, or right after a working connection dropped, still wait for that attempt.
  /// Turn it on for the primary of a fallback_store, whose callers then switch to the secondary
  /// without waiting.
  bool fail_fast_when_down = false;

  /// Standalone (host, port), Sentinel (sentinel) or Cluster (cluster). The connection
  /// settings above (credentials, database, TLS, timeouts) apply to every data node: the
  /// master found through the sentinels, every node of a cluster.
  redis::deployment deployment = redis::deployment::standalone;
  /// Used when deployment is sentinel.
  sentinel_config sentinel;
  /// Used when deployment is cluster.
  cluster_config cluster;

  /// Bounds on the server's replies (a hostile or tampered-with server must not exhaust our
  /// memory). max_elements and max_bulk_length must be positive, max_line_length at least 64.
  /// Applied to every node of a cluster too; the connections to sentinels (which answer only
  /// a few small replies) keep the defaults.
  reply_limits limits;
};

namespace detail {

inline int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline result<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return make_error_code(url_error::bad_escape);
    const int hi = hex_digit(in[i + 1]);
    const int lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return make_error_code(url_error::bad_escape);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// Digits only (no sign, no spaces), value at most `max`.
inline bool parse_decimal(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace detail

namespace detail {

// "host[:port]" or "[v6]:port" (a zone id as %25) into `out`; the port defaults to `default_port`.
inline boost::system::error_code parse_host_port(std::string_view text, std::uint16_t default_port,
                                                 address& out) {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  bool ipv6 = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return make_error_code(url_error::bad_host);
    host = text.substr(1, close - 1);
    ipv6 = true;
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error_code(url_error::bad_host);
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return make_error_code(url_error::missing_host);
  out.host = std::string(host);
  // RFC 6874 writes a zone id as %25 inside a URL: fe80::1%25eth0 names fe80::1%eth0.
  if (const auto zone = out.host.find("%25"); ipv6 && zone != std::string::npos) {
    out.host.erase(zone + 1, 2);
  }
  out.port = default_port;
  if (has_port) {
    std::uint64_t p = 0;
    if (!parse_decimal(port, 65535, p) || p == 0) return make_error_code(url_error::bad_port);
    out.port = static_cast<std::uint16_t>(p);
  }
  return {};
}

}  // namespace detail

/// Parses a Redis URL into a config whose other fields keep their defaults:
///
/// - `redis://[user[:password]@]host[:port][/db]`, or `rediss://...` for TLS: one server;
/// - `redis-cluster://[user[:password]@]host[:port][,host[:port]...]` (or `rediss-cluster://`):
///   a Redis Cluster found from these seed nodes (config::cluster; the database must be 0),
///   optionally followed by `?allow=host-or-cidr[,host-or-cidr...]`
///   (cluster_config::allowed_hosts);
/// - `redis-sentinel://[user[:password]@]host[:port][,host[:port]...][/db]#master-name` (or
///   `rediss-sentinel://`, TLS to the data nodes and the sentinels): the master that the
///   listed sentinels know as master-name (config::sentinel; sentinel ports default to 26379).
///
/// User and password are the data nodes' (for the sentinels' own credentials set
/// config::sentinel); they are percent-decoded (`%40` for `@`); a user without `:` sets only
/// the username (so no AUTH is sent): write `redis://:secret@host` for a password alone. IPv6
/// hosts go in brackets (`redis://[::1]:6380`; a zone id as `%25`: `[fe80::1%25eth0]`). Ports
/// default to 6379 and the database to 0; the scheme is case-insensitive. The last `@` ends the
/// user part, so a password with a raw `@` still parses.
///
/// Errors (redis::url_error): bad_scheme, missing_host (also an empty entry in a host list),
/// bad_host (unterminated `[`), bad_port (not 1..65535), bad_database (not a number in
/// 0..2^31-1), bad_escape (a `%` not followed by two hex digits), unsupported_query (a `?`
/// part other than a cluster URL's `allow=`, or a `#` part outside a sentinel URL),
/// missing_master_name, multiple_hosts (a list in a redis:// URL), cluster_database.
inline result<config> parse_url(std::string_view url) {
  config cfg;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return make_error_code(url_error::bad_scheme);
  const std::string_view scheme = url.substr(0, sep);
  if (detail::iequals(scheme, "redis") || detail::iequals(scheme, "rediss")) {
    cfg.deployment = deployment::standalone;
  } else if (detail::iequals(scheme, "redis-cluster") || detail::iequals(scheme, "rediss-cluster")) {
    cfg.deployment = deployment::cluster;
  } else if (detail::iequals(scheme, "redis-sentinel") ||
             detail::iequals(scheme, "rediss-sentinel")) {
    cfg.deployment = deployment::sentinel;
  } else {
    return make_error_code(url_error::bad_scheme);
  }
  cfg.tls = scheme.size() > 5 && (scheme[5] == 's' || scheme[5] == 'S');
  cfg.sentinel.tls = cfg.tls;
  std::string_view rest = url.substr(sep + 3);

  // The user part may hold raw '/', '?' or '#' in a password, so split it off before anything
  // else.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = detail::percent_decode(userinfo.substr(0, colon));
    if (!user) return user.error();
    cfg.username = std::move(*user);
    if (colon != std::string_view::npos) {
      auto pass = detail::percent_decode(userinfo.substr(colon + 1));
      if (!pass) return pass.error();
      cfg.password = std::move(*pass);
    }
  }
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    // Only a cluster URL takes a query, and only its allow-list.
    const std::string_view query = rest.substr(q + 1);
    if (cfg.deployment != deployment::cluster || !query.starts_with("allow=") ||
        query.find_first_of("&#") != std::string_view::npos) {
      return make_error_code(url_error::unsupported_query);
    }
    std::string_view list = query.substr(6);
    for (;;) {
      const auto comma = list.find(',');
      auto entry = detail::percent_decode(list.substr(0, comma));
      if (!entry) return entry.error();
      if (entry->empty()) return make_error_code(url_error::missing_host);
      cfg.cluster.allowed_hosts.push_back(std::move(*entry));
      if (comma == std::string_view::npos) break;
      list = list.substr(comma + 1);
    }
    rest = rest.substr(0, q);
  }
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    if (cfg.deployment != deployment::sentinel) return make_error_code(url_error::unsupported_query);
    auto name = detail::percent_decode(rest.substr(hash + 1));
    if (!name) return name.error();
    cfg.sentinel.master_name = std::move(*name);
    rest = rest.substr(0, hash);
  }
  if (cfg.deployment == deployment::sentinel && cfg.sentinel.master_name.empty()) {
    return make_error_code(url_error::missing_master_name);
  }

  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }

  const std::uint16_t default_port = cfg.deployment == deployment::sentinel ? 26379 : 6379;
  std::vector<address> hosts;
  for (;;) {
    const auto comma = rest.find(',');
    address a;
    if (auto ec = detail::parse_host_port(rest.substr(0, comma), default_port, a)) return ec;
    hosts.push_back(std::move(a));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  switch (cfg.deployment) {
    case deployment::standalone:
      if (hosts.size() > 1) return make_error_code(url_error::multiple_hosts);
      cfg.host = hosts.front().host;
      cfg.port = hosts.front().port;
      break;
    case deployment::cluster: cfg.cluster.seeds = std::move(hosts); break;
    case deployment::sentinel: cfg.sentinel.sentinels = std::move(hosts); break;
  }

  if (path.size() > 1) {
    std::uint64_t db = 0;
    if (!detail::parse_decimal(path.substr(1), 2147483647u, db)) {
      return make_error_code(url_error::bad_database);
    }
    if (db != 0 && cfg.deployment == deployment::cluster) {
      return make_error_code(url_error::cluster_database);
    }
    cfg.database = static_cast<int>(db);
  }
  return cfg;
}

}  // namespace websession::redis
