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

constinit thread_local detail::arriving_bytes* detail::arriving_now = nullptr;

template <class T>
void detail::append_bytes(std::vector<T>& v, const T* p, std::size_t n) {
  v.insert(v.end(), p, p + n);
}
template void detail::append_bytes(std::vector<std::byte>&, const std::byte*, std::size_t);
template void detail::append_bytes(std::vector<char>&, const char*, std::size_t);
template void detail::append_bytes(std::vector<unsigned char>&, const unsigned char*, std::size_t);

void reader::wait_ready(std::size_t n) {
  // Only arriving bytes can be short of what is left.
  if (n > remaining() || arriving_ == nullptr) fail("truncated payload");
  const std::size_t at = static_cast<std::size_t>(p_ - arriving_->begin);
  const std::size_t ready = arriving_->wait_ready(at + n);
  ready_end_ = p_ + std::min(ready - at, remaining());
}

void reader::not_ready(std::size_t n) {
  if (arriving_ == nullptr || n > remaining()) fail("truncated payload");
  throw detail::bytes_not_ready{};
}

void reader::raw_arriving(std::byte* dst, std::size_t n) {
  take_pieces(n, [&](const std::byte* p, std::size_t k) { dst = static_cast<std::byte*>(std::memcpy(dst, p, k)) + k; });
}

}  // namespace mproc
