// SPDX-License-Identifier: BSL-1.0
// websession::result<T>: a value or an error_code, shared by the session layer and the Redis
// client (which must not include the session layer to get it).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace websession {

/// A value that is either a T or an error_code (boost::system::result).
template <class T>
using result = boost::system::result<T, boost::system::error_code>;

}  // namespace websession
