// SPDX-License-Identifier: BSL-1.0
// http/cookie.hpp builds Set-Cookie values without reading the environment: it must not pull in
// the WEBSESSION_* parsing of options.hpp (detail/env.hpp, std::getenv). This file includes
// nothing else, so a declaration of env.hpp's names here can only have come through it.
#include <websession/http/cookie.hpp>

#include <type_traits>

namespace cookie_env_free_probe {
struct env_lookup {};
}  // namespace cookie_env_free_probe

// Qualified lookup finds a name declared in websession itself before one of a namespace it
// nominates: websession::env_lookup is the probe's only while env.hpp is not included.
namespace websession {
using namespace cookie_env_free_probe;
}  // namespace websession

static_assert(std::is_same_v<websession::env_lookup, cookie_env_free_probe::env_lookup>,
              "websession/http/cookie.hpp includes the environment parsing (detail/env.hpp)");
