#include "mproc/serialization.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>

namespace mproc {

void detail::advise_huge_pages(void* p, std::size_t n) noexcept {
  constexpr std::uintptr_t page = 4096;
  auto begin = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  auto end = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

void writer::raw_large(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const std::byte*>(p);
  if (gathered_ != nullptr) return gathered_->push_back({out_.size(), {bytes, n}});
  if (out_.capacity() - out_.size() < n) {
    std::vector<std::byte> bigger;
    bigger.reserve(std::max(out_.size() + n, 2 * out_.capacity()));
    detail::advise_huge_pages(bigger.data(), bigger.capacity());
    bigger.insert(bigger.end(), out_.begin(), out_.end());
    out_.swap(bigger);
  }
  out_.insert(out_.end(), bytes, bytes + n);
}

}  // namespace mproc
