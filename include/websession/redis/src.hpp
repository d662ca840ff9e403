// SPDX-License-Identifier: BSL-1.0
// The non-template definitions of the Redis client, for programs that compile them once: define
// WEBSESSION_SEPARATE_COMPILATION in every translation unit, and include this header in exactly
// one of them (as with Boost.Asio's, Beast's or JSON's src.hpp). Header-only programs never
// include it.
#pragma once

#include <websession/detail/config.hpp>

#include <websession/redis/detail/impl/cluster_impl.ipp>
#include <websession/redis/detail/impl/cluster_trust.ipp>
#include <websession/redis/detail/impl/connection_impl.ipp>
#include <websession/redis/detail/impl/handshake.ipp>
#include <websession/redis/detail/impl/multiplexer.ipp>
#include <websession/redis/detail/impl/operation.ipp>
#include <websession/redis/detail/impl/sentinel.ipp>
#include <websession/redis/detail/impl/stream.ipp>
