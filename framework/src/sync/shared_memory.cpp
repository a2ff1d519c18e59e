#include "mproc/shared_memory.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <utility>

#include "../fd.hpp"
#include "../hold_across_fork.hpp"

namespace mproc {

detail::shm_mapping::~shm_mapping() {
  if (before_unmap != nullptr && addr != nullptr) before_unmap(addr);
  if (addr != nullptr) ::munmap(addr, size);
  if (fd >= 0) ::close(fd);
}

namespace {

/// The blocks this process maps, by inode: a block that arrives again (its memfd duplicated
/// through a queue) shares the live mapping. Entries expire with their last handle.
struct mapping_cache {
  std::mutex mutex;
  std::map<std::pair<dev_t, ino_t>, std::weak_ptr<detail::shm_mapping>> live;
};
// The forking thread holds the cache's mutex across every fork (hold_across_fork.hpp), so a
// child never inherits it from a thread it does not have; the inherited mappings stay valid in
// the child, so the entries do too. Taking it for a fork cannot deadlock: under it adopt() only
// looks up, maps and drops expired entries (weak references: no mapping is ever unmapped under
// it, which could run a semaphore's before_unmap and wait for a lock in shared memory).
mapping_cache* cache = detail::new_held_across_fork(&mapping_cache::mutex);

}  // namespace

shared_memory shared_memory::adopt(int fd, std::size_t size) {
  auto m = std::make_shared<detail::shm_mapping>();
  m->fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(size) || size == 0)
    throw error(errc::bad_message, "shared memory block smaller than announced");
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  // Declared before the lock, so released after it: it may be the last reference to a mapping.
  std::shared_ptr<detail::shm_mapping> known;
  std::lock_guard lock{cache->mutex};
  shared_memory s;
  if (known = cache->live[key].lock(); known && known->size == size) {
    s.map_ = std::move(known);  // `m` closes the new duplicate
    return s;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw error(detail::last_error(), "mproc::shared_memory: mmap");
  m->addr = p;
  m->size = size;
  std::erase_if(cache->live, [](const auto& e) { return e.second.expired(); });
  cache->live[key] = m;
  s.map_ = std::move(m);
  return s;
}

shared_memory shared_memory::create(std::size_t size) {
  if (size == 0) throw error(errc::invalid_argument, "mproc::shared_memory: size 0");
  int fd = ::memfd_create("mproc-shared", MFD_CLOEXEC);
  if (fd < 0) throw error(detail::last_error(), "mproc::shared_memory: memfd_create");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    auto ec = detail::last_error();
    ::close(fd);
    throw error(ec, "mproc::shared_memory: ftruncate");
  }
  return adopt(fd, size);
}

void codec<shared_memory>::encode(writer& w, const shared_memory& m) {
  if (!m.valid()) throw error(errc::invalid_argument, "passing an empty mproc::shared_memory");
  mproc::encode(w, detail::pass_fd(m.native_handle(), "shared memory"));
  mproc::encode(w, static_cast<std::uint64_t>(m.size()));
}

void codec<shared_memory>::decode(reader& r, shared_memory& m) {
  std::uint32_t index = 0;
  std::uint64_t size = 0;
  mproc::decode(r, index);
  mproc::decode(r, size);
  m = shared_memory::adopt(detail::receive_fd(index, "shared memory"), static_cast<std::size_t>(size));
}

}  // namespace mproc
