// SPDX-License-Identifier: BSL-1.0
// Umbrella header: everything a server needs for sessions on the embedded store.
#pragma once

#include <websession/cipher/aes_gcm.hpp>
#include <websession/cipher/plaintext.hpp>
#include <websession/clock.hpp>
#include <websession/concepts.hpp>
#include <websession/defaults.hpp>
#include <websession/error.hpp>
#include <websession/id.hpp>
#include <websession/manager.hpp>
#include <websession/options.hpp>
#include <websession/serializer/json.hpp>
#include <websession/session.hpp>
#include <websession/store/memory.hpp>
