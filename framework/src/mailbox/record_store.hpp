// Internal: a FIFO of encoded records, kept as the byte batches they arrived in.
//
// A queue's owner stores what producers sent here, and a consumer's inbox holds what the owner
// sent it. Records are `u64 length | bytes` (mproc/detail/wire.hpp); a whole data frame is
// appended without copying, and a consumer's want is served by copying a contiguous range.
// A standalone record (one with descriptors; see record_encoding.hpp) is a batch of its own
// that owns its descriptors, and it always travels alone.
//
// Thread safety: none; the owner of the store locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/detail/record_encoding.hpp"

namespace mproc::detail {

class record_store {
 public:
  /// Records as they travel in one frame: bytes, how many, and (a standalone one's) descriptors.
  struct chunk {
    std::vector<std::byte> bytes;
    std::size_t count = 0;
    fd_set_owned fds;
  };

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::size_t bytes() const noexcept { return bytes_; }

  /// Appends a whole data payload of `count` records (validated by the caller, with
  /// wire::record_cursor::count and the frame's descriptors: with any, count is 1).
  void append_batch(std::vector<std::byte> payload, std::size_t count, fd_set_owned fds = {}) {
    if (count == 0) return;
    bytes_ += payload.size();
    batches_.push_back({std::move(payload), 0, count, std::move(fds)});
    count_ += count;
  }
  /// Puts records back at the front (a consumer gave back what it did not consume).
  void prepend_batch(std::vector<std::byte> payload, std::size_t count, fd_set_owned fds = {}) {
    if (count == 0) return;
    bytes_ += payload.size();
    batches_.push_front({std::move(payload), 0, count, std::move(fds)});
    count_ += count;
  }
  void prepend(chunk c) { prepend_batch(std::move(c.bytes), c.count, std::move(c.fds)); }
  /// Appends one record written by `encode(writer&)` (local puts): to the tail batch, or as a
  /// batch of its own when it is standalone.
  template <class Encode>
  void append(Encode&& encode) {
    if (batches_.empty() || !batches_.back().fds.empty() || batches_.back().bytes.size() >= tail_limit)
      batches_.push_back({});
    auto& b = batches_.back();
    std::size_t before = b.bytes.size();
    // No waiting for a pooled body: the owner's lock is held, and consumers need it to get.
    auto standalone = append_record(b.bytes, std::forward<Encode>(encode), false);
    if (standalone) {
      if (b.count == 0) batches_.pop_back();
      return append_batch(std::move(standalone->bytes), 1, std::move(standalone->fds));
    }
    bytes_ += b.bytes.size() - before;
    ++b.count;
    ++count_;
  }

  void pop() noexcept {
    auto& b = batches_.front();
    std::size_t step = record_at(b).size() + sizeof(std::uint64_t);
    b.head += step;
    bytes_ -= step;
    --b.count;
    --count_;
    if (b.count == 0) batches_.pop_front();
  }

  /// Records of at most this many inline bytes are decoded in place, under the store's lock:
  /// copying one out to decode it unlocked would cost about what decoding it does (measured:
  /// copying every record out cost a third of the 8-byte throughput of a queue).
  static constexpr std::size_t small_record = 4096;
  /// The first record is inline and small. Precondition: !empty().
  bool front_is_small() const noexcept {
    const auto& b = batches_.front();
    return b.fds.empty() && meta_at(b) <= small_record;  // out_of_line is the top bit: never small
  }
  /// Decodes the first record (a small one: see front_is_small()) in place with `decode(span)`
  /// and removes it, also when decoding fails (a bad record must not block the queue); returns
  /// the decoding error.
  template <class Decode>
  std::error_code pop_front(Decode&& decode) {
    std::error_code ec;
    try {
      decode(record_at(batches_.front()));
    } catch (const error& e) {
      ec = decode_failure(e);
    }
    pop();
    return ec;
  }

  /// Takes the first record out and decodes it with `decode(span)` while `lock` (the store's)
  /// is released, so that the store's users go on meanwhile; `taking` counts it meanwhile, and
  /// `taken()` runs (locked) once it is out. Returns the decoding error. errc::timeout: its body
  /// was still being written at `until`, and the record is back in front, for the next reader;
  /// after any other error the record is gone (a bad record must not block the queue).
  /// Precondition: !empty().
  template <class Decode, class Taken>
  std::error_code decode_front_unlocked(std::unique_lock<std::mutex>& lock, std::size_t& taking, Decode&& decode,
                                        deadline until, Taken&& taken) {
    chunk record;
    take(1, SIZE_MAX, record);
    ++taking;
    taken();
    lock.unlock();
    auto ec = decode_alone(record, decode, until);
    lock.lock();
    --taking;
    if (ec == errc::timeout) prepend(std::move(record));
    return ec;
  }

  /// Moves up to `k` records (at least one, then no more than about `max_bytes`) to the end of
  /// `out`; returns how many. A standalone record is taken only alone, with its descriptors.
  std::size_t take(std::size_t k, std::size_t max_bytes, chunk& out) {
    std::size_t taken = 0, size = 0;
    while (taken < k && count_ > 0) {
      auto& b = batches_.front();
      if (!b.fds.empty()) {
        if (taken > 0) break;
        out.fds = std::move(b.fds);
        out.bytes = std::move(b.bytes);
        out.count = 1;
        bytes_ -= out.bytes.size();
        --count_;
        batches_.pop_front();
        return 1;
      }
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
      std::size_t at = out.bytes.size();
      out.bytes.resize(at + (end - begin));
      std::memcpy(out.bytes.data() + at, b.bytes.data() + begin, end - begin);
      out.count += n_here;
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

  /// Everything, as the chunks it travels in, oldest first; the store is empty afterwards.
  std::vector<chunk> drain() {
    std::vector<chunk> out;
    while (!empty()) {
      out.emplace_back();
      take(count_, SIZE_MAX, out.back());
    }
    return out;
  }

 private:
  static constexpr std::size_t tail_limit = 256 * 1024;
  struct batch {
    std::vector<std::byte> bytes;
    std::size_t head = 0;   // offset of the first unconsumed record
    std::size_t count = 0;  // unconsumed records
    fd_set_owned fds;       // a standalone record's (then count is 1)
  };
  /// The length word of the record at `at`: its inline length, and wire::out_of_line.
  static std::uint64_t meta_of(const std::vector<std::byte>& bytes, std::size_t at) noexcept {
    std::uint64_t n;
    std::memcpy(&n, bytes.data() + at, sizeof n);
    return n;
  }
  static std::uint64_t meta_at(const batch& b) noexcept { return meta_of(b.bytes, b.head); }
  /// The inline bytes of the record at `at`.
  static std::span<const std::byte> record_of(const std::vector<std::byte>& bytes, std::size_t at) noexcept {
    return {bytes.data() + at + sizeof(std::uint64_t), static_cast<std::size_t>(meta_of(bytes, at) & ~wire::out_of_line)};
  }
  /// Decodes the one record of `c` (taken alone): errc::timeout leaves `c` as it was.
  template <class Decode>
  static std::error_code decode_alone(chunk& c, Decode& decode, deadline until) {
    try {
      const bool out_of_line = (meta_of(c.bytes, 0) & wire::out_of_line) != 0;
      if (c.fds.empty() && !out_of_line) decode(record_of(c.bytes, 0));
      else decode_standalone(record_of(c.bytes, 0), out_of_line, c.fds, decode, until);
    } catch (const body_still_arriving& e) {
      return e.code();
    } catch (const error& e) {
      return decode_failure(e);
    }
    return {};
  }
  /// The inline bytes of the batch's first record.
  static std::span<const std::byte> record_at(const batch& b) noexcept {
    return record_of(b.bytes, b.head);
  }
  std::deque<batch> batches_;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace mproc::detail
