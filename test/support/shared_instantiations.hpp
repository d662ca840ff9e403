// SPDX-License-Identifier: BSL-1.0
// The class templates that many TUs of websession_tests instantiate with the same arguments (the
// manager over the memory stack of test/manager_fixture.hpp, its store), compiled once, in
// shared_instantiations.cpp: `extern template` keeps every other TU from generating their
// members again (GCC and clang honour it for members defined in the class, at -O2 too). The
// build includes this header in every TU through the precompiled header (test/CMakeLists.txt);
// the tests do not name it.
#pragma once

#include <websession/clock.hpp>
#include <websession/websession.hpp>

extern template class websession::detail::memory_store_impl<websession::manual_clock>;
extern template class websession::basic_memory_store<websession::manual_clock>;
extern template class websession::basic_session_manager<
    websession::json_serializer, websession::aes_gcm_cipher,
    websession::basic_memory_store<websession::manual_clock>, websession::manual_clock>;
