// Internal: memfds that carry the bodies of large records and are used again (see
// mproc/detail/record_encoding.hpp).
//
// Why: fresh memory is what a large message costs on a VM. A fresh 64 MiB memfd took ~40 ms to
// fill (16384 page allocations), a copy into one already filled ~3 ms; mapping it took ~5 ms
// more on the receiving side each time. So a producer keeps the bodies it sent and fills them
// again once their consumer is done, and a consumer keeps its mappings of recent bodies.
//
// A pooled body is a memfd sealed against resizing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
// so a mapping of it can never SIGBUS) but not against writes. Page 0 holds a body_header, the
// encoding starts at page 1. The header's state word hands the body back and forth:
//
//   idle --(producer fills it, sends it)--> sent --(a consumer decodes it)--> reading
//   reading --(that consumer has counted the message as taken)--> idle
//
// The producer writes a body only while it is idle, so a consumer reads a stable encoding. A
// queue's owner hands a record to one consumer at a time, and gives it to another only when that
// one died before counting it; the body is still `sent` or `reading` then. A consumer killed
// after counting leaves the body `reading` for ever: its producer just does not use it again.
// Bodies sealed against writes (F_SEAL_WRITE, the one-shot form) never come here.
//
// Thread safety: every function from any thread. A forked child drops the bodies it inherited
// (without touching their state): they are its parent's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "../fd.hpp"

namespace mproc::detail::body_pool {

/// Where a pooled body's encoding starts; page 0 is its header.
constexpr std::size_t header_size = 4096;
/// The most a producer keeps in its pool, in bodies and in bytes; larger or further records
/// get a one-shot sealed memfd instead.
constexpr std::size_t max_bodies = 4;
constexpr std::size_t max_bytes = std::size_t{256} << 20;

enum body_state : std::uint32_t { idle = 0, sent = 1, reading = 2, retired = 3 };

struct body_header {
  std::uint64_t magic;
  std::atomic<std::uint32_t> state;  // a body_state; a futex word (the producer may wait on it)
};
constexpr std::uint64_t body_magic = 0x31594442434f524dULL;  // "MPROCBDY1" (8 bytes)

/// An encoding in pieces, to be copied one after the other.
using pieces = std::span<const std::span<const std::byte>>;

/// Producer: a descriptor (to send) of a pooled body now holding `encoding` (`size` bytes),
/// marked sent; an empty unique_fd when the pool cannot take it (too large, every body in use
/// and no room for another, or no memory for a new one). When every body is in use and
/// `may_wait`, waits a little for the oldest to come back (see body_pool.cpp).
unique_fd lend(pieces encoding, std::size_t size, bool may_wait);

/// Consumer: a body mapped for reading, from the process's cache of recent mappings.
class mapping;
/// A received body, marked reading; give it back with release(). Throws
/// mproc::error(errc::bad_message) when `fd` is not a pooled body holding `length` bytes (wrong
/// seals or size, no header, or not sent).
std::shared_ptr<const mapping> borrow(int fd, std::uint64_t length);
/// The encoding of a borrowed body.
std::span<const std::byte> encoding(const mapping& m, std::uint64_t length) noexcept;
/// Hands a borrowed body back to its producer (idle, and wakes a producer waiting for it).
void release(const mapping& m) noexcept;

/// While one lives on a thread, bodies decoded there are released when it ends instead of at
/// once. A queue consumer holds one around taking a message, and publishes its consumed count
/// before it ends: a consumer killed in between leaves the body to the message's next reader.
/// Not copyable; nest freely (the outermost one releases).
class deferred_release {
 public:
  deferred_release() noexcept;
  ~deferred_release();
  deferred_release(const deferred_release&) = delete;
  deferred_release& operator=(const deferred_release&) = delete;

 private:
  bool outermost_;
};
/// Releases `m` now, or when the thread's deferred_release ends.
void release_when_done(std::shared_ptr<const mapping> m);

}  // namespace mproc::detail::body_pool
