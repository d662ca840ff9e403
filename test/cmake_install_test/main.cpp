// SPDX-License-Identifier: BSL-1.0
// Consumer of the installed (or add_subdirectory'd) websession: two headers, one trivial use.
#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <cstdio>
#include <string_view>

#ifdef WS_EXPECT_REDIS
#include <hiredis/hiredis.h>
#ifndef WEBSESSION_WITH_REDIS
#error "websession::redis must define WEBSESSION_WITH_REDIS"
#endif
#endif

static_assert(websession::clock<websession::manual_clock>);
static_assert(!websession::session_store<int>);

int main() {
  const boost::system::error_code ec = make_error_code(websession::error::expired);
  if (ec != websession::error::expired || std::string_view(ec.category().name()) != "websession") {
    std::fprintf(stderr, "unexpected error code: %s\n", ec.to_string().c_str());
    return 1;
  }
#ifdef WS_EXPECT_REDIS
  // Links against hiredis: the library websession::redis brought in.
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return 1;
  redisReaderFree(reader);
#endif
  std::printf("websession consumer: %s\n", ec.message().c_str());
  return 0;
}
