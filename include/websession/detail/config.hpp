// SPDX-License-Identifier: BSL-1.0
// Build-mode switches of the library: header-only (the default) or separately compiled.
//
// Header-only: every non-template definition is `inline` and comes with its header. With
// WEBSESSION_SEPARATE_COMPILATION defined in every translation unit of a program, the headers
// only declare those definitions, and exactly one translation unit includes the library's
// `src.hpp` header(s) (for the Redis client, <websession/redis/src.hpp>) to compile them once.
#pragma once

#if defined(WEBSESSION_SEPARATE_COMPILATION)
#define WEBSESSION_DECL
#else
#define WEBSESSION_DECL inline
#endif
