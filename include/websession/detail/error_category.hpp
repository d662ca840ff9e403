// SPDX-License-Identifier: BSL-1.0
// The one boost::system category template behind websession's error enums (the session layer's
// and the Redis client's): a traits class says name, fixed id, messages and, optionally, the
// condition each code belongs to. Includes nothing from the session layer, so the Redis client
// may use it too (see test/layering.cmake).
#pragma once

#include <boost/system/error_category.hpp>
#include <boost/system/error_condition.hpp>

#include <cstddef>
#include <string>

namespace websession::detail {

/// A boost::system::error_category described by `Traits`:
///
/// | member                                    | semantics                                     |
/// |-------------------------------------------|-----------------------------------------------|
/// | `static constexpr unsigned long long id`  | the category's fixed id: the category stays   |
/// |                                           | unique even if several shared objects see it  |
/// | `static constexpr const char* name`       | the category's name                           |
/// | `static const char* message(int) noexcept`| the text of a value (for unknown values too)  |
/// | `static boost::system::error_condition    | optional: the condition a value belongs to    |
/// |  default_condition(int) noexcept`         | (default_error_condition); without it, a code |
/// |                                           | is its own condition                          |
///
/// Use it through category_of<Traits>(), which returns the one instance.
template <class Traits>
class enum_category final : public boost::system::error_category {
 public:
  constexpr enum_category() noexcept : boost::system::error_category(Traits::id) {}

  const char* name() const noexcept override { return Traits::name; }

  std::string message(int ev) const override { return Traits::message(ev); }

  const char* message(int ev, char*, std::size_t) const noexcept override {
    return Traits::message(ev);
  }

  boost::system::error_condition default_error_condition(int ev) const noexcept override {
    if constexpr (requires(int v) { Traits::default_condition(v); })
      return Traits::default_condition(ev);
    else
      return boost::system::error_condition(ev, *this);
  }
};

/// The instance of enum_category<Traits>.
template <class Traits>
const boost::system::error_category& category_of() noexcept {
  static constexpr enum_category<Traits> instance;
  return instance;
}

}  // namespace websession::detail
