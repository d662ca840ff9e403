// SPDX-License-Identifier: BSL-1.0
// Fuzz target: the RESP2 reader (websession/redis/reader.hpp), fed the input whole and in pieces
// whose sizes come from a generator seeded with a hash of the input.
// Invariants: no crash, no exception but bad_alloc (none is caught here); the whole and the split
// parse yield the same replies in the same order and end in the same state (no error, or the
// same error code); after an error every further feed and next fail with that code; reset makes
// the reader usable again. Run with the default limits and with small ones (so the limit checks
// are reached by small inputs).
#include "fuzz.hpp"

#include <websession/redis/reader.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace websession;
using redis::reader;
using redis::reply;

namespace {

struct outcome {
  std::vector<reply> replies;
  boost::system::error_code ec;
};

void drain(reader& rd, outcome& o) {
  for (;;) {
    auto r = rd.next();
    if (!r) {
      WS_FUZZ_CHECK(rd.failed() && r.error() == rd.next().error());
      if (!o.ec) o.ec = r.error();
      WS_FUZZ_CHECK(o.ec == r.error());
      return;
    }
    if (!*r) return;
    o.replies.push_back(std::move(**r));
  }
}

outcome parse(std::string_view bytes, const redis::reply_limits& limits, std::uint64_t seed,
              bool split) {
  reader rd(limits);
  outcome o;
  fuzz::splitmix rng{seed};
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t n = bytes.size() - pos;
    if (split) {
      // Mostly tiny pieces, sometimes larger ones, sometimes a zero-length feed.
      const std::uint64_t r = rng.next();
      const std::size_t cap = (r & 3) == 0 ? 512 : 8;
      n = std::min<std::size_t>(n, (r >> 8) % (cap + 1));
    }
    const boost::system::error_code ec = rd.feed(bytes.data() + pos, n);
    pos += n;
    if (ec) {
      WS_FUZZ_CHECK(rd.failed());
      if (!o.ec) o.ec = ec;
      WS_FUZZ_CHECK(o.ec == ec);
      WS_FUZZ_CHECK(!rd.error_message().empty());
      // Dead for good: more bytes fail with the same code.
      WS_FUZZ_CHECK(rd.feed("+OK\r\n", 5) == ec);
    }
    drain(rd, o);
    if (o.ec) break;
  }
  drain(rd, o);
  // reset forgets everything.
  rd.reset();
  WS_FUZZ_CHECK(!rd.failed() && !rd.feed("+OK\r\n", 5));
  auto r = rd.next();
  WS_FUZZ_CHECK(r && *r && (*r)->type == redis::reply_type::status && (*r)->str == "OK");
  return o;
}

void compare(std::string_view bytes, const redis::reply_limits& limits, std::uint64_t seed) {
  const outcome whole = parse(bytes, limits, seed, false);
  const outcome split = parse(bytes, limits, seed, true);
  WS_FUZZ_CHECK(whole.ec == split.ec);
  WS_FUZZ_CHECK(whole.replies.size() == split.replies.size());
  for (std::size_t i = 0; i < whole.replies.size(); ++i)
    WS_FUZZ_CHECK(whole.replies[i] == split.replies[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);
  const std::uint64_t seed = fuzz::fnv1a(input);
  compare(input, redis::reply_limits{}, seed);
  redis::reply_limits small;
  small.max_elements = 8;
  small.max_bulk_length = 64;
  small.max_line_length = 64;
  compare(input, small, seed ^ 1);
  return 0;
}
