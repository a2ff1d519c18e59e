// mproc/entry.hpp — the one line that makes a function (or a process class) startable by name.
//
//   void worker(std::string name, int n) { ... }
//   MPROC_ENTRY(worker);                       // at namespace scope, once per function
//
//   class producer : public mproc::process { ... void run() override; };
//   MPROC_PROCESS_CLASS(producer);             // see mproc/process.hpp
//
// Why a name: the forkserver and spawn start methods run the function in another program image
// (and, later, on another host), where only a name means the same thing. The start method
// `fork` needs no registration and also takes capturing lambdas.
//
// Registration runs during static initialization, so every image of the program knows the same
// names before main(). Registering two different functions under one name is reported as
// errc::duplicate_entry when the node starts.
//
// Thread safety: registration happens before main; lookups afterwards are read-only.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>

#include "mproc/serialization.hpp"

namespace mproc {
class process;
namespace detail {

/// Runs an entry in the child: decodes `args` and calls the function (or rebuilds the object and
/// calls run()). Throws what the function throws; errc::bad_message when args do not decode.
using entry_invoker = void (*)(const void* fn, std::span<const std::byte> args);
/// Runs an entry as a pool task: decodes one argument tuple from `args`, calls the function and
/// appends its encoded result (nothing for void) to `result`. Throws what the function throws.
using task_invoker = void (*)(const void* fn, reader& args, writer& result);

enum class entry_kind : std::uint8_t { function = 1, process_class = 2 };

/// Encodes the state of a registered process subclass (see MPROC_PROCESS_CLASS).
using object_encoder = std::vector<std::byte> (*)(const process&);

struct entry_info {
  std::string name;
  entry_kind kind;
  const void* fn;                    // function pointer, or nullptr for classes
  entry_invoker invoke;
  object_encoder encode = nullptr;   // classes only
  task_invoker run_task = nullptr;   // functions whose result is void or serializable
};

void register_entry(entry_info info);
const entry_info* find_entry_by_name(entry_kind kind, const std::string& name);
const entry_info* find_entry_by_fn(const void* fn);
const entry_info* find_entry_by_type(std::type_index type);
void register_class_type(std::type_index type, const std::string& name);
/// Reports the first name registered twice with different targets (empty when none).
std::string duplicate_entry_name();

template <class F>
struct fn_traits;
template <class R, class... Ps>
struct fn_traits<R (*)(Ps...)> {
  using args_tuple = std::tuple<std::decay_t<Ps>...>;
  using result = R;
};
template <class R, class... Ps>
struct fn_traits<R (*)(Ps...) noexcept> : fn_traits<R (*)(Ps...)> {};

template <class Fn>
const void* fn_address(Fn f) noexcept {
  return reinterpret_cast<const void*>(f);  // NOLINT: identity key of a function
}

template <class Fn>
void invoke_function(const void* fn, std::span<const std::byte> args) {
  using tuple = typename fn_traits<Fn>::args_tuple;
  auto values = from_bytes<tuple>(args.data(), args.size());
  auto f = reinterpret_cast<Fn>(const_cast<void*>(fn));  // NOLINT: inverse of fn_address
  std::apply([&](auto&... xs) { f(std::move(xs)...); }, values);
}

template <class Fn>
void invoke_task(const void* fn, reader& args, writer& result) {
  typename fn_traits<Fn>::args_tuple values;
  decode(args, values);
  auto f = reinterpret_cast<Fn>(const_cast<void*>(fn));  // NOLINT: inverse of fn_address
  using R = typename fn_traits<Fn>::result;
  if constexpr (std::is_void_v<R>) {
    std::apply([&](auto&... xs) { f(std::move(xs)...); }, values);
  } else {
    encode(result, std::apply([&](auto&... xs) -> R { return f(std::move(xs)...); }, values));
  }
}

template <class Fn>
constexpr task_invoker task_invoker_for() {
  using R = std::decay_t<typename fn_traits<Fn>::result>;
  if constexpr (std::is_void_v<R> || serializable<R>) return &invoke_task<Fn>;
  else return nullptr;
}

template <class Fn>
struct function_registrar {
  function_registrar(const char* name, Fn f) {
    static_assert(serializable<typename fn_traits<Fn>::args_tuple>,
                  "MPROC_ENTRY: every parameter of the function must be mproc::serializable");
    register_entry({name, entry_kind::function, fn_address(f), &invoke_function<Fn>, nullptr, task_invoker_for<Fn>()});
  }
};

}  // namespace detail
}  // namespace mproc

#define MPROC_DETAIL_CAT2(a, b) a##b
#define MPROC_DETAIL_CAT(a, b) MPROC_DETAIL_CAT2(a, b)

/// Registers a free function as a process entry point under its spelled name.
#define MPROC_ENTRY(fn)                                                                    \
  [[maybe_unused]] static const ::mproc::detail::function_registrar<decltype(&fn)>         \
      MPROC_DETAIL_CAT(mproc_entry_registrar_, __COUNTER__) { #fn, &fn }
