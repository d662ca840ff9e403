// SPDX-License-Identifier: BSL-1.0
// The default policy stack: Boost.JSON, AES-256-GCM, the in-process store, the system clock,
// and the aliases that name a manager built from it.
#pragma once

#include <websession/cipher/aes_gcm.hpp>
#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/manager.hpp>
#include <websession/serializer/json.hpp>
#include <websession/store/memory.hpp>

#include <chrono>

namespace websession {

/// A manager over `Store` with the default policies for the rest, so that changing one policy
/// does not mean spelling all four: `session_manager_for<redis_store>`,
/// `session_manager_for<memory_store, plaintext_cipher>`. The parameters are in the order
/// users change them most (the store first); basic_session_manager keeps its own order.
template <session_store Store, cipher Cipher = aes_gcm_cipher,
          serializer Serializer = json_serializer, clock Clock = std::chrono::system_clock>
using session_manager_for = basic_session_manager<Serializer, Cipher, Store, Clock>;

/// The defaults: Boost.JSON, AES-256-GCM, the in-process store (memory_store), the system clock.
using session_manager = session_manager_for<memory_store>;

}  // namespace websession
