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
// A body's descriptor goes out before its bytes are written: the producer reserves a body, sends
// the frame, and only then fills it, chunk by chunk, publishing in `filled` how many bytes are
// written. The consumer decodes as the chunks arrive (a reader over arriving bytes, see
// mproc/serialization.hpp), so the two copies of a large message, producer's value -> body ->
// consumer's value, run at the same time on two CPUs instead of one after the other, and the
// consumer reads each chunk from the shared cache shortly after it was written. A reader that
// catches up waits: it spins briefly (a chunk takes some 30 us to write), then sleeps on
// `filled` until several chunks more are there (then the producer is not running beside it:
// one wake-up per chunk would cost more than the copy). When the producer dies before the
// last chunk (its pid is in the header), or gave the body up (`fill_aborted`), the reader gets
// errc::bad_message: never a torn value.
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
#include "mproc/detail/deadline.hpp"
#include "mproc/serialization.hpp"

namespace mproc::detail::body_pool {

/// Where a pooled body's encoding starts; page 0 is its header.
constexpr std::size_t header_size = 4096;
/// The most a producer keeps in its pool, in bodies and in bytes; larger or further records
/// get a one-shot sealed memfd instead.
constexpr std::size_t max_bodies = 4;
constexpr std::size_t max_bytes = std::size_t{256} << 20;
/// A body is filled in chunks of this size (half the L2 cache of a core here), each published
/// when written.
constexpr std::size_t fill_chunk = std::size_t{512} << 10;

enum body_state : std::uint32_t { idle = 0, sent = 1, reading = 2, retired = 3 };
/// `filled` of a body its producer gave up (the put failed after the frame was sent).
constexpr std::uint32_t fill_aborted = UINT32_MAX;
static_assert(max_bytes < fill_aborted, "a byte count of `filled` never reads as aborted");

struct body_header {
  std::uint64_t magic;
  std::atomic<std::uint32_t> state;     // a body_state; a futex word (the producer may wait on it)
  std::atomic<std::uint32_t> filled;    // encoding bytes written, or fill_aborted; a futex word
  std::atomic<std::uint32_t> sleepers;  // readers asleep on `filled` (the producer wakes them)
  std::atomic<std::uint32_t> wake_at;   // ...once `filled` reaches this (a reader's hint)
  std::int32_t producer;                // pid of the process filling it
};
constexpr std::uint64_t body_magic = 0x32594442434f524dULL;  // "MPROCBY2" (8 bytes, layout 2)

/// An encoding in pieces, to be copied one after the other.
using pieces = std::span<const std::span<const std::byte>>;

struct body;

/// Producer: a pooled body reserved (marked sent, `filled` 0) for one encoding. Send its
/// descriptor, then fill() it. Destroyed unfilled (the put failed), the body is retired and a
/// reader of it gets bad_message. Move-only; not thread-safe (one put owns it).
class lent_body {
 public:
  lent_body() noexcept = default;
  lent_body(std::shared_ptr<body> b, std::size_t size) noexcept : body_(std::move(b)), size_(size) {}
  lent_body(lent_body&& other) noexcept = default;
  lent_body& operator=(lent_body&& other) noexcept;
  ~lent_body();
  explicit operator bool() const noexcept { return body_ != nullptr; }
  /// A descriptor of the body, to send (empty when none can be made: then the body is given up).
  unique_fd descriptor();
  /// Copies `encoding` (`size` bytes in all) into the body in chunks, publishing each; then
  /// this is empty. Nothing when it is empty.
  void fill(pieces encoding) noexcept;

 private:
  void give_up() noexcept;
  std::shared_ptr<body> body_;
  std::size_t size_ = 0;
};

/// A body for `size` bytes from the pool; an empty lent_body when the pool cannot take it (too
/// large, every body in use and no room for another, or no memory for a new one). When every
/// body is in use and `may_wait`, waits a little for the oldest to come back (see body_pool.cpp).
lent_body reserve(std::size_t size, bool may_wait);

/// reserve() and fill() at once: a descriptor of a pooled body holding `encoding`, marked sent;
/// empty when the pool cannot take it.
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

/// While one lives on a thread, a reader over the encoding of a borrowed body reads its bytes
/// as they are written (mproc::detail::arriving_bytes). wait_all() then checks that every byte
/// came: bad_message when the producer died first or gave the body up. A wait that reaches
/// `until` throws mproc::error(errc::timeout) instead (the body stays borrowed: its reader
/// reads it again later, or gives it up to another reader). Not copyable; used by the one
/// thread it was made on.
class arriving_body final : public arriving_bytes {
 public:
  arriving_body(const mapping& m, std::uint64_t length, deadline until = forever);
  ~arriving_body();
  arriving_body(const arriving_body&) = delete;
  arriving_body& operator=(const arriving_body&) = delete;
  std::size_t wait_ready(std::size_t need) override;
  void wait_all() { wait_ready(length_); }

 private:
  /// True once the producer's process has ended (it can write no more).
  bool producer_gone();
  body_header* header_;
  std::size_t length_;
  deadline until_;
  arriving_bytes* outer_;
  unique_fd pidfd_;  // the producer's, once waited for
  bool spinning_pays_ = true;  // false once a spin ran out: the producer is not running now
};

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
