#include "mproc/shared_memory.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <new>
#include <utility>

#include "../fd.hpp"

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
mapping_cache* cache = new mapping_cache;  // NOLINT: intentionally leaked (used at exit)

// A fork child may inherit the mutex locked by another thread: start it afresh there. The
// inherited mappings stay valid in the child, so the entries do too.
[[maybe_unused]] const int cache_atfork =
    ::pthread_atfork(nullptr, nullptr, [] { new (&cache->mutex) std::mutex; });

}  // namespace

shared_memory shared_memory::adopt(int fd, std::size_t size) {
  auto m = std::make_shared<detail::shm_mapping>();
  m->fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(size) || size == 0)
    throw error(errc::bad_message, "shared memory block smaller than announced");
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  std::lock_guard lock{cache->mutex};
  shared_memory s;
  if (auto known = cache->live[key].lock(); known && known->size == size) {
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
