// SPDX-License-Identifier: BSL-1.0
// The one translation unit of websession_redis_separate that compiles the Redis client's
// definitions (the build defines WEBSESSION_SEPARATE_COMPILATION for every unit of it).
#include <websession/redis/src.hpp>
