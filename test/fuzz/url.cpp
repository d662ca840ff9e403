// SPDX-License-Identifier: BSL-1.0
// Fuzz target: Redis URL parsing (websession/redis/config.hpp, parse_url) for every scheme:
// redis, rediss, redis-cluster, rediss-cluster, redis-sentinel, rediss-sentinel.
// Invariants: no crash, no exception; errors are url_error codes; an accepted URL gives a config
// that is consistent with its scheme (TLS, deployment, a host or a non-empty node list, ports in
// 1..65535, a master name for sentinel, database 0 for cluster); writing the config back as a URL
// (percent-encoding the user, password and master name, brackets around IPv6 hosts) and parsing
// that gives the same config.
#include "fuzz.hpp"

#include <websession/redis/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace websession;
using redis::address;
using redis::config;
using redis::deployment;

namespace {

std::string pct(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    }
  }
  return out;
}

// host[:port] as parse_host_port reads it back: brackets when the host has a ':' or starts with
// '[', with the first '%' written as the zone separator "%25".
std::string host_port(const address& a) {
  std::string h = a.host;
  if (h.find(':') != std::string::npos || (!h.empty() && h.front() == '[')) {
    if (const auto z = h.find('%'); z != std::string::npos) h.insert(z + 1, "25");
    h = "[" + h + "]";
  }
  return h + ":" + std::to_string(a.port);
}

std::string to_url(const config& c) {
  std::string u;
  switch (c.deployment) {
    case deployment::standalone: u = c.tls ? "rediss://" : "redis://"; break;
    case deployment::cluster: u = c.tls ? "rediss-cluster://" : "redis-cluster://"; break;
    case deployment::sentinel: u = c.tls ? "rediss-sentinel://" : "redis-sentinel://"; break;
  }
  if (!c.username.empty() || !c.password.empty()) {
    u += pct(c.username);
    if (!c.password.empty()) u += ":" + pct(c.password);
    u += "@";
  }
  std::vector<address> hosts;
  switch (c.deployment) {
    case deployment::standalone: hosts.push_back({c.host, c.port}); break;
    case deployment::cluster: hosts = c.cluster.seeds; break;
    case deployment::sentinel: hosts = c.sentinel.sentinels; break;
  }
  for (std::size_t i = 0; i < hosts.size(); ++i) u += (i ? "," : "") + host_port(hosts[i]);
  if (c.database != 0) u += "/" + std::to_string(c.database);
  if (c.deployment == deployment::sentinel) u += "#" + pct(c.sentinel.master_name);
  return u;
}

bool same(const config& a, const config& b) {
  return a.host == b.host && a.port == b.port && a.username == b.username &&
         a.password == b.password && a.database == b.database && a.tls == b.tls &&
         a.deployment == b.deployment && a.sentinel.sentinels == b.sentinel.sentinels &&
         a.sentinel.master_name == b.sentinel.master_name && a.sentinel.tls == b.sentinel.tls &&
         a.cluster.seeds == b.cluster.seeds;
}

void check_config(std::string_view url, const config& c) {
  const std::string_view scheme = url.substr(0, url.find("://"));
  WS_FUZZ_CHECK(c.tls == (scheme.size() > 5 && (scheme[5] == 's' || scheme[5] == 'S')));
  WS_FUZZ_CHECK(c.sentinel.tls == c.tls);
  WS_FUZZ_CHECK(c.database >= 0);
  switch (c.deployment) {
    case deployment::standalone:
      WS_FUZZ_CHECK(!c.host.empty() && c.port != 0);
      WS_FUZZ_CHECK(c.cluster.seeds.empty() && c.sentinel.sentinels.empty());
      break;
    case deployment::cluster:
      WS_FUZZ_CHECK(!c.cluster.seeds.empty() && c.database == 0);
      break;
    case deployment::sentinel:
      WS_FUZZ_CHECK(!c.sentinel.sentinels.empty() && !c.sentinel.master_name.empty());
      break;
  }
  for (const address& a : c.cluster.seeds) WS_FUZZ_CHECK(!a.host.empty() && a.port != 0);
  for (const address& a : c.sentinel.sentinels) WS_FUZZ_CHECK(!a.host.empty() && a.port != 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  const auto parsed = redis::parse_url(input);
  if (!parsed) {
    WS_FUZZ_CHECK(parsed.error().category() ==
                  make_error_code(redis::url_error::bad_scheme).category());
    return 0;
  }
  check_config(input, *parsed);
  const std::string url = to_url(*parsed);
  const auto again = redis::parse_url(url);
  if (!again) std::fprintf(stderr, "rewritten URL refused: %s (%s)\n", url.c_str(),
                           again.error().message().c_str());
  WS_FUZZ_CHECK(again.has_value());
  WS_FUZZ_CHECK(same(*parsed, *again));
  return 0;
}
