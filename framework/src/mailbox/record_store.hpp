// Internal: a FIFO of encoded records, kept as the byte batches they arrived in.
//
// A queue's owner stores what producers sent here, and a consumer's inbox holds what the owner
// sent it. Records are `u64 length | bytes` (mproc/detail/wire.hpp); a whole data frame is
// appended without copying, and a consumer's want is served by copying a contiguous range.
//
// Thread safety: none; the owner of the store locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

#include "mproc/detail/wire.hpp"

namespace mproc::detail {

class record_store {
 public:
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::size_t bytes() const noexcept { return bytes_; }

  /// Appends a whole data payload of `count` records (validated by the caller).
  void append_batch(std::vector<std::byte> payload, std::size_t count) {
    if (count == 0) return;
    bytes_ += payload.size();
    batches_.push_back({std::move(payload), 0, count});
    count_ += count;
  }
  /// Puts records back at the front (a consumer gave back what it did not consume).
  void prepend_batch(std::vector<std::byte> payload, std::size_t count) {
    if (count == 0) return;
    bytes_ += payload.size();
    batches_.push_front({std::move(payload), 0, count});
    count_ += count;
  }
  /// Appends one record written by `encode(writer&)` to the tail batch (local puts).
  template <class Encode>
  void append(Encode&& encode) {
    if (batches_.empty() || batches_.back().bytes.size() >= tail_limit)
      batches_.push_back({});
    auto& b = batches_.back();
    std::size_t before = b.bytes.size();
    wire::put_record(b.bytes, std::forward<Encode>(encode));
    bytes_ += b.bytes.size() - before;
    ++b.count;
    ++count_;
  }

  /// The first record; precondition: !empty().
  std::span<const std::byte> front() const noexcept {
    const auto& b = batches_.front();
    std::uint64_t n;
    std::memcpy(&n, b.bytes.data() + b.head, sizeof n);
    return {b.bytes.data() + b.head + sizeof n, static_cast<std::size_t>(n)};
  }
  void pop() noexcept {
    auto& b = batches_.front();
    std::uint64_t n;
    std::memcpy(&n, b.bytes.data() + b.head, sizeof n);
    std::size_t step = sizeof n + static_cast<std::size_t>(n);
    b.head += step;
    bytes_ -= step;
    --b.count;
    --count_;
    if (b.count == 0) batches_.pop_front();
  }

  /// Decodes the first record with `decode(span)` and removes it, also when decoding fails (a
  /// bad record must not block the queue); returns the decoding error. Precondition: !empty().
  template <class Decode>
  std::error_code pop_front(Decode&& decode) {
    std::error_code ec;
    try {
      decode(front());
    } catch (const error& e) {
      ec = e.code();
    }
    pop();
    return ec;
  }

  /// Moves up to `k` records (at least one, then no more than about `max_bytes`) to the end of
  /// `out`; returns how many.
  std::size_t take(std::size_t k, std::size_t max_bytes, std::vector<std::byte>& out) {
    std::size_t taken = 0, size = 0;
    while (taken < k && count_ > 0) {
      auto& b = batches_.front();
      // Walk records of this batch while within limits, then copy them at once.
      std::size_t begin = b.head, end = b.head, n_here = 0;
      while (n_here < b.count && taken + n_here < k) {
        std::uint64_t n;
        std::memcpy(&n, b.bytes.data() + end, sizeof n);
        std::size_t step = sizeof n + static_cast<std::size_t>(n);
        if (taken + n_here > 0 && size + step > max_bytes) break;
        end += step;
        size += step;
        ++n_here;
      }
      if (n_here == 0) break;
      std::size_t at = out.size();
      out.resize(at + (end - begin));
      std::memcpy(out.data() + at, b.bytes.data() + begin, end - begin);
      b.head = end;
      b.count -= n_here;
      bytes_ -= end - begin;
      count_ -= n_here;
      taken += n_here;
      if (b.count == 0) batches_.pop_front();
      if (size >= max_bytes) break;
    }
    return taken;
  }

  /// Everything, as one payload (for giving back); the store is empty afterwards.
  std::vector<std::byte> drain(std::size_t& count) {
    std::vector<std::byte> out;
    count = take(count_, SIZE_MAX, out);
    return out;
  }

 private:
  static constexpr std::size_t tail_limit = 256 * 1024;
  struct batch {
    std::vector<std::byte> bytes;
    std::size_t head = 0;   // offset of the first unconsumed record
    std::size_t count = 0;  // unconsumed records
  };
  std::deque<batch> batches_;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace mproc::detail
