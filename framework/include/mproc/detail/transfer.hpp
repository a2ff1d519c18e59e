// mproc/detail/transfer.hpp — what handles leave behind when they are encoded as the arguments
// of a process, and find again when the child decodes them.
//
// A queue handle that can put counts as a writer of its queue while it travels: encoding it
// issues a ticket, the child redeems it when it decodes the handle, and the ticket is released
// when the process ends (or is never started) — the releases are collected here too.
//
// A pipe end cannot travel as bytes: its descriptor must be passed. While a process's
// arguments are encoded, a `transfer_out` is current on that thread; a pipe end's codec adds a
// duplicate of its descriptor there and writes only its index. The node sends the collected
// descriptors with the start message (SCM_RIGHTS) and closes its duplicates; in the child a
// `transfer_in` hands each one out, once, while the arguments are decoded.
//
// A queue message travels the same way: while a value is encoded for a queue, a transfer_out
// for a message is current, and the descriptors it collects go with that message's record
// (see mproc/detail/wire.hpp). Encoding such a handle anywhere else (into a pipe message, say)
// is errc::invalid_argument.
//
// Thread safety: the current transfer is per thread; the objects themselves are not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <system_error>
#include <vector>

namespace mproc::detail {

class queue_exporter;  // mproc/detail/queue_core.hpp

/// Owns a set of descriptors (closed by the destructor); move-only.
class fd_set_owned {
 public:
  fd_set_owned() = default;
  fd_set_owned(fd_set_owned&& o) noexcept : fds_(std::move(o.fds_)) { o.fds_.clear(); }
  fd_set_owned& operator=(fd_set_owned&& o) noexcept;
  ~fd_set_owned() { reset(); }
  fd_set_owned(const fd_set_owned&) = delete;
  fd_set_owned& operator=(const fd_set_owned&) = delete;

  /// Adds a CLOEXEC duplicate of `fd`; returns its index.
  std::uint32_t add_dup(int fd, std::error_code& ec);
  /// Takes ownership of an fd.
  void adopt(int fd) { fds_.push_back(fd); }
  /// Releases descriptor `index` to the caller (-1 when absent or taken already).
  int take(std::uint32_t index) noexcept;
  const std::vector<int>& fds() const noexcept { return fds_; }
  bool empty() const noexcept { return fds_.empty(); }
  std::size_t size() const noexcept { return fds_.size(); }
  /// CLOEXEC duplicates of every descriptor (the originals stay here).
  fd_set_owned duplicate(std::error_code& ec) const;
  void reset() noexcept;

 private:
  std::vector<int> fds_;
};

/// What a process's arguments left behind: descriptors to send, and what to do once the
/// process has ended (release queue tickets). The destructor runs the latter if nobody did.
struct transfer_bundle {
  fd_set_owned fds;
  std::vector<std::function<void()>> at_end;
  transfer_bundle() = default;
  transfer_bundle(transfer_bundle&&) noexcept = default;
  transfer_bundle& operator=(transfer_bundle&& o) noexcept {
    if (this != &o) {
      end();
      fds = std::move(o.fds);
      at_end = std::move(o.at_end);
      o.at_end.clear();
    }
    return *this;
  }
  ~transfer_bundle() { end(); }
  /// Runs (once) what must happen when the process has ended.
  void end() noexcept {
    auto todo = std::move(at_end);
    at_end.clear();
    for (auto& f : todo) f();
  }
};

/// Current while a process's arguments, or a queue message, are encoded on this thread.
class transfer_out {
 public:
  /// remote_process_arguments: the arguments of a process on another host (mproc::cluster);
  /// what runs at its end runs when that process has ended there.
  enum class purpose { process_arguments, message, remote_process_arguments };
  explicit transfer_out(purpose p = purpose::process_arguments) noexcept;
  ~transfer_out();
  transfer_out(const transfer_out&) = delete;
  transfer_out& operator=(const transfer_out&) = delete;
  static transfer_out* current() noexcept;
  fd_set_owned& fds() noexcept { return bundle_.fds; }
  /// What runs when the process ends: only for process arguments (a message has no end).
  bool for_process() const noexcept { return purpose_ != purpose::message; }
  transfer_bundle& bundle() noexcept { return bundle_; }
  /// Set while values are encoded for another host: queue handles then travel as handles served
  /// from this process (see queue_exporter). Null otherwise.
  queue_exporter* exporter() const noexcept { return exporter_; }
  void set_exporter(queue_exporter* e) noexcept { exporter_ = e; }

 private:
  transfer_bundle bundle_;
  purpose purpose_;
  queue_exporter* exporter_ = nullptr;
  transfer_out* previous_;
};

/// Current while a child decodes its arguments.
class transfer_in {
 public:
  explicit transfer_in(fd_set_owned& fds) noexcept;
  ~transfer_in();
  transfer_in(const transfer_in&) = delete;
  transfer_in& operator=(const transfer_in&) = delete;
  static transfer_in* current() noexcept;
  fd_set_owned& fds() noexcept { return fds_; }

 private:
  fd_set_owned& fds_;
  transfer_in* previous_;
};

/// For a codec that passes a descriptor: a duplicate of `fd` goes with the start message of the
/// process whose arguments are being encoded, or with the queue message being encoded; returns
/// its index. Elsewhere (a pipe message) errc::invalid_argument. `what` names the handle in
/// error messages.
std::uint32_t pass_fd(int fd, const char* what);
/// The other side: the descriptor sent at `index`, now the caller's. errc::bad_message when it
/// did not come (or was taken already).
int receive_fd(std::uint32_t index, const char* what);

}  // namespace mproc::detail
