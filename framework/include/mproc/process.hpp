// mproc/process.hpp — a handle to one OS process run by a node (multiprocessing.Process).
//
//   void greet(std::string who) { std::cout << "hello " << who << '\n'; }
//   MPROC_ENTRY(greet);
//   ...
//   mproc::process p{node, greet, std::string{"world"}};
//   p.start();
//   p.join();                       // p.exitcode() == 0
//
// Or derive and override run(), like Python's Process subclasses (see MPROC_PROCESS_CLASS).
//
// Exit codes follow Python: 0 for a normal return, n for exit(n), 1 for an uncaught exception
// (whose type and message reach the parent: exception()), -N when killed by signal N.
//
// Thread safety: start() and the setters must not race with each other on one handle. join,
// is_alive, exitcode, exception, terminate and kill may be called from any number of threads.
//
// Destructor: releases the handle only. The process keeps running and stays in the node's
// table; at node shutdown a non-daemon process is joined and a daemon process is terminated.
// (Python does the same; use terminate()/join() for anything earlier.)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "mproc/detail/transfer.hpp"
#include "mproc/entry.hpp"
#include "mproc/error.hpp"
#include "mproc/serialization.hpp"
#include "mproc/start_method.hpp"

namespace mproc {

class node;

/// An exception that escaped a child's entry function, as seen by the parent.
struct remote_exception {
  std::string type;     ///< demangled dynamic type, e.g. "std::runtime_error"
  std::string message;  ///< what(), or empty for exceptions not derived from std::exception
};

namespace detail {
struct process_state;
struct process_access;
}  // namespace detail

class process {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// Subclass form: override run(). Uses the calling process's node at start().
  process();
  /// Subclass form bound to a node.
  explicit process(node& n);

  /// Target form: runs fn(args...) in the child. fn must be a registered (MPROC_ENTRY) function
  /// for forkserver/spawn; any callable works with start_method::fork. Arguments are converted to
  /// the parameter types and, for a function pointer, encoded now (so an encoding error surfaces
  /// here, not in the child).
  template <class Fn, class... Args>
    requires std::invocable<std::decay_t<Fn>&, std::decay_t<Args>&...>
  process(node& n, Fn&& fn, Args&&... args) : process(n) {
    set_target(std::forward<Fn>(fn), std::forward<Args>(args)...);
  }

  process(process&&) noexcept;
  process& operator=(process&&) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  virtual ~process();

  /// Starts the process. Throws errc::already_started, errc::unknown_entry,
  /// errc::unsupported_target, errc::spawn_failed, errc::node_closed, errc::interrupted.
  void start();
  void start(std::error_code& ec) noexcept;

  /// Waits until the process exits. Throws errc::not_started, errc::interrupted (SIGINT).
  void join();
  void join(std::error_code& ec) noexcept;
  /// Waits at most `timeout` (monotonic clock). Returns true when the process has exited; false
  /// when the time ran out (is_alive() is then still true).
  bool join(duration timeout);
  bool join(duration timeout, std::error_code& ec) noexcept;

  /// True between a successful start() and the process's exit (checked against the kernel).
  bool is_alive() const;
  /// The OS pid once started, 0 before.
  pid_t pid() const noexcept;
  /// nullopt while running or before start; then 0, n, 1 or -signal (see the header comment).
  std::optional<int> exitcode() const;
  /// The exception that ended the child, if one did.
  std::optional<remote_exception> exception() const;

  /// Sends SIGTERM / SIGKILL. No-op once the process has exited. Throws errc::not_started.
  void terminate();
  void terminate(std::error_code& ec) noexcept;
  void kill();
  void kill(std::error_code& ec) noexcept;

  /// "process-N" by default (N counts per node; "process-1:2" for a child's child).
  const std::string& name() const noexcept;
  void set_name(std::string name);
  bool daemon() const noexcept;
  /// Must be set before start() (errc::already_started after).
  void set_daemon(bool daemon);
  start_method method() const noexcept;
  void set_start_method(start_method m);

 protected:
  /// The code the child runs. The default calls the target given to the constructor.
  virtual void run();

 private:
  friend struct detail::process_access;

  template <class Fn, class... Args>
  void set_target(Fn&& fn, Args&&... args);
  void set_local_target(std::function<void()> local);
  void set_entry_target(const void* fn, std::vector<std::byte> args, detail::transfer_bundle passed);
  void signal(int sig, std::error_code& ec) noexcept;

  std::shared_ptr<detail::process_state> state_;
};

namespace detail {

template <class Fn>
concept function_pointer = std::is_pointer_v<std::decay_t<Fn>> &&
                           std::is_function_v<std::remove_pointer_t<std::decay_t<Fn>>>;

/// Friend access for the child bootstrap and registrars.
struct process_access {
  static void run(process& p) { p.run(); }
  static std::shared_ptr<process_state>& state(process& p) { return p.state_; }
  /// Targets the registered function `entry` with arguments already encoded (a spawn requested
  /// by another node, which knows the function only by name); the arguments refer to the
  /// descriptors of `passed` by index (pipe ends).
  static void set_encoded_target(process& p, const entry_info& entry, std::vector<std::byte> args,
                                 transfer_bundle passed = {});
};

/// Makes `p` the handle of the calling (child) process: name, pid, started.
void adopt_current(process& p);

/// A subclass's state travels through its inspect(); a subclass that adds no data members
/// needs none (checked at compile time, so state is never dropped silently).
template <class T>
constexpr bool has_transferable_state = serializable<T> || sizeof(T) == sizeof(process);

template <class T>
std::vector<std::byte> encode_process_object(const process& p) {
  if constexpr (serializable<T>) return to_bytes(static_cast<const T&>(p));
  else return {};
}

template <class T>
void invoke_process_class(const void*, std::span<const std::byte> state) {
  T obj;
  if constexpr (serializable<T>) {
    reader r{state.data(), state.size()};
    mproc::decode(r, obj);
    if (r.remaining() != 0) reader::fail("trailing bytes after process object");
  }
  adopt_current(obj);
  process_access::run(obj);
}

template <class T>
struct class_registrar {
  explicit class_registrar(const char* name) {
    static_assert(std::is_base_of_v<process, T>, "MPROC_PROCESS_CLASS: T must derive from mproc::process");
    static_assert(std::is_default_constructible_v<T>,
                  "MPROC_PROCESS_CLASS: T must be default-constructible (it is rebuilt in the child)");
    static_assert(has_transferable_state<T>,
                  "MPROC_PROCESS_CLASS: T has data members; give it an inspect(f, x) so they reach the child");
    register_entry({name, entry_kind::process_class, nullptr, &invoke_process_class<T>,
                    &encode_process_object<T>});
    register_class_type(typeid(T), name);
  }
};

}  // namespace detail

template <class Fn, class... Args>
void process::set_target(Fn&& fn, Args&&... args) {
  if constexpr (detail::function_pointer<Fn>) {
    using fn_ptr = std::decay_t<Fn>;
    using tuple = typename detail::fn_traits<fn_ptr>::args_tuple;
    static_assert(serializable<tuple>,
                  "every parameter of a process entry function must be mproc::serializable");
    tuple values{std::forward<Args>(args)...};
    detail::transfer_out transfer;  // pipe ends and queue handles among the arguments leave traces here
    auto bytes = to_bytes(values);
    set_entry_target(detail::fn_address(fn), std::move(bytes), std::move(transfer.bundle()));
    set_local_target([fn, values = std::move(values)]() mutable {
      std::apply([&](auto&... xs) { fn(std::move(xs)...); }, values);
    });
  } else {
    // Closures and functors run only under start_method::fork (start() checks).
    set_local_target([f = std::forward<Fn>(fn), ... xs = std::forward<Args>(args)]() mutable {
      std::invoke(f, std::move(xs)...);
    });
  }
}

}  // namespace mproc

/// Registers a subclass of mproc::process so it can be started with forkserver or spawn (fork
/// needs no registration). T must be default-constructible; its data members reach the child
/// through `inspect(f, x)`, as for any serializable type.
#define MPROC_PROCESS_CLASS(T)                                                           \
  [[maybe_unused]] static const ::mproc::detail::class_registrar<T>                      \
      MPROC_DETAIL_CAT(mproc_class_registrar_, __COUNTER__) { #T }
