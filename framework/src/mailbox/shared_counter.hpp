// Internal: one 64-bit counter in anonymous shared memory (a memfd), shared by a queue's owner
// and one consumer process: the consumer counts the messages its get() returned, and when its
// connection drops without a goodbye (SIGKILL) the owner reads how many of the last batch it
// really took and puts the rest back. Nothing named is created: the kernel frees the memory
// with the last mapping.
//
// Thread safety: value() is an atomic; create/map from any thread.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>

#include "../fd.hpp"

namespace mproc::detail {

class shared_counter {
 public:
  static std::shared_ptr<shared_counter> create(std::error_code& ec) {
    unique_fd fd{::memfd_create("mproc-consumed", MFD_CLOEXEC)};
    if (!fd || ::ftruncate(fd.get(), sizeof(std::uint64_t)) != 0) return ec = last_error(), nullptr;
    return map(std::move(fd), ec);
  }
  /// Maps a counter received from the peer; refuses anything that is not at least 8 bytes.
  static std::shared_ptr<shared_counter> map(unique_fd fd, std::error_code& ec) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_size < static_cast<off_t>(sizeof(std::uint64_t)))
      return ec = make_error_code(errc::bad_message), nullptr;
    void* p = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return ec = last_error(), nullptr;
    ec.clear();
    return std::shared_ptr<shared_counter>{new shared_counter{std::move(fd), p}};
  }
  ~shared_counter() { ::munmap(mem_, sizeof(std::uint64_t)); }
  shared_counter(const shared_counter&) = delete;
  shared_counter& operator=(const shared_counter&) = delete;

  std::atomic<std::uint64_t>& value() noexcept { return *static_cast<std::atomic<std::uint64_t>*>(mem_); }
  int fd() const noexcept { return fd_.get(); }

 private:
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the counter must work across processes");
  shared_counter(unique_fd fd, void* mem) : fd_(std::move(fd)), mem_(mem) {}
  unique_fd fd_;
  void* mem_;
};

}  // namespace mproc::detail
