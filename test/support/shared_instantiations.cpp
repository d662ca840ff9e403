// SPDX-License-Identifier: BSL-1.0
// The one TU that compiles the members of shared_instantiations.hpp's class templates.
#include "shared_instantiations.hpp"

template class websession::detail::memory_store_impl<websession::manual_clock>;
template class websession::basic_memory_store<websession::manual_clock>;
template class websession::basic_session_manager<
    websession::json_serializer, websession::aes_gcm_cipher,
    websession::basic_memory_store<websession::manual_clock>, websession::manual_clock>;
