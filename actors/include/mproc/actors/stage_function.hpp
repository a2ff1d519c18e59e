// mproc/actors/stage_function.hpp — user functions for pipeline stages, named by a string.
//
//   int square(int x) { return x * x; }
//   bool is_even(int x) { return x % 2 == 0; }
//   std::optional<int> count_to_100(std::uint64_t i) { return i < 100 ? std::optional<int>(i) : std::nullopt; }
//   void show(int x) { std::cout << x << '\n'; }
//   MPROC_STAGE_FN(square);           // at namespace scope, one line per function
//   MPROC_STAGE_FN(is_even);
//   MPROC_STAGE_FN(count_to_100);
//   MPROC_STAGE_FN(show);
//
// Why names: a stage may be spawned in another process (mproc/actors/pipeline.hpp), and spawn
// arguments must be serializable; only a name means the same function in every image of the
// program. Registration runs during static initialization, so every process knows the same names.
//
// Items are caf::message. A registered function R f(Args...) is called with the item's elements
// (the item must hold exactly Args..., after decay; a single `const caf::message&` parameter takes
// the item as it is) and its result becomes the new item: caf::make_message(r), an empty message
// for void, the value or an empty message for std::optional<T>, and a caf::message as it is.
// How a stage reads the result depends on its kind: a map forwards it, a filter wants one bool,
// a source's generator is called with the item index (std::uint64_t) and ends the stream with an
// empty result, a sink ignores it.
//
// Errors: an item that does not hold Args... throws mproc::error(errc::wrong_type); an unknown
// name is errc::unknown_entry and a name registered twice for different functions
// errc::duplicate_entry (both from find_stage_function).
//
// Thread safety: registration happens before main; lookups afterwards are read-only.
#pragma once

#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/error.hpp"

namespace mproc::actors {

/// A registered function in its uniform shape: item in, result out.
using stage_function = caf::message (*)(const caf::message& item);

/// The function registered under `name`; throws mproc::error (unknown_entry, duplicate_entry).
stage_function find_stage_function(const std::string& name);
/// The same, without throwing: nullptr and `ec` set.
stage_function find_stage_function(const std::string& name, std::error_code& ec) noexcept;

namespace detail {

void register_stage_function(const char* name, stage_function fn, const void* identity);

template <class T>
inline constexpr bool is_optional = false;
template <class T>
inline constexpr bool is_optional<std::optional<T>> = true;

template <class T>
caf::message result_message(T&& r) {
  using R = std::decay_t<T>;
  if constexpr (std::is_same_v<R, caf::message>) {
    return std::forward<T>(r);
  } else if constexpr (is_optional<R>) {
    return r ? caf::make_message(std::move(*r)) : caf::message{};
  } else {
    return caf::make_message(std::forward<T>(r));
  }
}

[[noreturn]] void throw_wrong_item(const caf::message& item);

template <class F>
struct stage_fn_traits;
template <class R, class... Ps>
struct stage_fn_traits<R (*)(Ps...)> {
  using result = R;
  using params = std::tuple<std::decay_t<Ps>...>;
};
template <class R, class... Ps>
struct stage_fn_traits<R (*)(Ps...) noexcept> : stage_fn_traits<R (*)(Ps...)> {};

template <auto F, class... Ps, std::size_t... Is>
decltype(auto) call_with_elements(const caf::message& item, std::tuple<Ps...>*, std::index_sequence<Is...>) {
  if constexpr (sizeof...(Ps) == 1 && (std::is_same_v<Ps, caf::message> && ...)) {
    return F(item);
  } else {
    if (!item.match_elements<Ps...>()) throw_wrong_item(item);
    return F(item.get_as<Ps>(Is)...);
  }
}

/// The uniform wrapper of function F.
template <auto F>
caf::message call_stage_function(const caf::message& item) {
  using traits = stage_fn_traits<decltype(F)>;
  using params = typename traits::params;
  constexpr auto n = std::tuple_size_v<params>;
  if constexpr (std::is_void_v<typename traits::result>) {
    call_with_elements<F>(item, static_cast<params*>(nullptr), std::make_index_sequence<n>{});
    return {};
  } else {
    return result_message(call_with_elements<F>(item, static_cast<params*>(nullptr), std::make_index_sequence<n>{}));
  }
}

template <auto F>
struct stage_function_registrar {
  explicit stage_function_registrar(const char* name) {
    register_stage_function(name, &call_stage_function<F>, reinterpret_cast<const void*>(F));  // NOLINT: identity key
  }
};

}  // namespace detail
}  // namespace mproc::actors

#define MPROC_STAGE_FN_CAT2(a, b) a##b
#define MPROC_STAGE_FN_CAT(a, b) MPROC_STAGE_FN_CAT2(a, b)

/// Registers a free function for pipeline stages under its spelled name.
#define MPROC_STAGE_FN(fn)                                                           \
  [[maybe_unused]] static const ::mproc::actors::detail::stage_function_registrar<&fn> \
      MPROC_STAGE_FN_CAT(mproc_stage_fn_registrar_, __COUNTER__) { #fn }
