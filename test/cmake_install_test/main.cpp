// Consumer of the installed (or add_subdirectory'd) websession: two headers, one trivial use.
#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <cstdio>
#include <string_view>

static_assert(websession::clock<websession::manual_clock>);
static_assert(!websession::session_store<int>);

int main() {
  const boost::system::error_code ec = make_error_code(websession::error::expired);
  if (ec != websession::error::expired || std::string_view(ec.category().name()) != "websession") {
    std::fprintf(stderr, "unexpected error code: %s\n", ec.to_string().c_str());
    return 1;
  }
  std::printf("websession consumer: %s\n", ec.message().c_str());
  return 0;
}
