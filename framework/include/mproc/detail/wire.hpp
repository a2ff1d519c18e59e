// mproc/detail/wire.hpp — the byte format of mailbox connections (queues and pipes).
//
// A connection carries frames. Every frame starts with a 24-byte header:
//
//   u32 magic "MPQ1" | u16 version | u16 kind | u64 type id | u64 payload length
//
// The type id names the message type T of the mailbox (see type_id<T>()), so two ends that
// disagree on T get errc::wrong_type instead of a misread value. Data frames carry records,
// each `u64 length | bytes` (the value encoded by mproc/serialization.hpp), many per frame:
// batching records per frame and frames per syscall is what makes a queue fast.
//
// Descriptors (a pipe end or shared memory inside a message; a large record's body) travel
// with SCM_RIGHTS. A frame that carries some has `with_fds` set in its kind and a u32 count
// before its payload; the connection hands them to the frame's handler. Such a data frame
// holds exactly one record, so its descriptors are that record's. A record whose length has
// `out_of_line` set is a large one: its inline bytes are the u64 length of its encoding, which
// is the content of the frame's last descriptor (a sealed memfd) instead.
//
// Decoding never trusts the bytes: a bad magic, version or kind, a length over the limit, a
// truncated record — each is errc::bad_message or errc::message_too_large, after which the
// stream is not read any further (it cannot be resynchronized).
//
// Thread safety: frame_splitter and record_cursor are plain values, one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <typeinfo>
#include <vector>

#include "mproc/error.hpp"
#include "mproc/serialization.hpp"

namespace mproc::detail::wire {

constexpr std::uint32_t magic = 0x3151504D;  // "MPQ1" little-endian
constexpr std::uint16_t version = 1;

enum class kind : std::uint16_t {
  hello = 1,    // client -> owner: open a queue (hello_message)
  welcome,      // owner -> client: accepted (welcome_message)
  refused,      // owner -> client: not accepted (status_message), then the owner closes
  data,         // records, either direction (a put; a pipe message)
  want,         // client -> owner: send me up to n records (u32)
  batch,        // owner -> client: records answering a want
  status,       // owner -> client: a want that cannot be served (status_message)
  request,      // client -> owner: request_message
  reply,        // owner -> client: reply_message
  notice,       // owner -> client: the queue was closed (u8)
  give_back,    // client -> owner: records it fetched but did not consume (put back in front)
  // Actor routing (mproc/actor_*.hpp); type_id carries the pid of the destination process.
  actor_hello,      // host -> parent, then parent -> host: who I am (actor_peer_hello)
  actor_refused,    // parent -> host: not accepted (status_message), then the parent closes
  actor_message,    // a CAF message for an actor of the destination process
  actor_monitor,    // "tell me when your actor dies" (watcher pid, actor id)
  actor_down,       // an actor of the origin process died (origin pid, actor id, reason)
  actor_node_down,  // parent -> hosts: a process of the node ended (pid, reason)
  last = actor_node_down,
};

/// Set in a header's kind: the payload starts with a u32 count of attached descriptors.
constexpr std::uint16_t with_fds = 0x8000;
/// Set in a record's length: the value's encoding is in the record's last descriptor.
constexpr std::uint64_t out_of_line = std::uint64_t{1} << 63;
/// Records whose encoding is longer travel out of line, in a memfd.
constexpr std::size_t out_of_line_threshold = std::size_t{1} << 20;
/// Most descriptors one frame (one record) may carry (the kernel's SCM_MAX_FD).
constexpr std::size_t max_fds_per_frame = 253;

struct header {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint64_t type_id;
  std::uint64_t length;
};
static_assert(sizeof(header) == 24);

/// Default limit on one frame's payload; records are bounded by it too.
constexpr std::uint64_t default_max_payload = std::uint64_t{1} << 30;

/// Checks magic, version, kind and the length limit.
std::error_code check(const header& h, std::uint64_t max_payload) noexcept;

/// FNV-1a of a string; the basis of type ids.
constexpr std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// The identity of a message type: its mangled name and size, hashed. Identical in every
/// process built from the same program (and across programs built by the same compiler ABI).
template <class T>
std::uint64_t type_id() noexcept {
  static const std::uint64_t id = fnv1a(typeid(T).name()) ^ (sizeof(T) * 0x9E3779B97F4A7C15ULL);
  return id;
}
/// A readable name of T for error messages.
std::string type_name(const std::type_info& t);

/// Appends a header for a payload of `length` bytes.
void put_header(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::uint64_t length);
/// Appends a whole frame: header and payload.
void put_frame(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::span<const std::byte> payload);
/// Appends a whole frame that carries `fd_count` descriptors (sent alongside): the header with
/// with_fds set, the u32 count, the payload.
void put_frame_with_fds(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::span<const std::byte> payload,
                        std::uint32_t fd_count);
/// The other side: when `h` has with_fds, reads the count off `payload`, clears the flag;
/// bad_message when the payload is too short or the count 0. Returns the count (0 without).
std::uint32_t take_fd_count(header& h, std::span<const std::byte>& payload, std::error_code& ec) noexcept;
/// Sets the length of the frame whose header starts at `header_at` to what follows it in `out`
/// (for frames whose records were appended after the header).
void set_frame_length(std::vector<std::byte>& out, std::size_t header_at) noexcept;

/// Appends one record (u64 length, then what `encode` writes). When encode throws, the buffer
/// is restored to what it was and the exception propagates. With `gathered`, large ranges are
/// listed there instead of copied (see mproc::writer); the length counts them.
template <class Encode>
void put_record(std::vector<std::byte>& out, Encode&& encode, std::vector<writer::gathered_range>* gathered = nullptr) {
  std::size_t at = out.size(), ranges = gathered != nullptr ? gathered->size() : 0;
  out.resize(at + sizeof(std::uint64_t));
  std::uint64_t n = 0;
  try {
    writer w = gathered != nullptr ? writer{out, *gathered} : writer{out};
    encode(w);
    for (std::size_t i = ranges; gathered != nullptr && i < gathered->size(); ++i) n += (*gathered)[i].bytes.size();
  } catch (...) {
    out.resize(at);
    if (gathered != nullptr) gathered->resize(ranges);
    throw;
  }
  n += out.size() - at - sizeof(std::uint64_t);
  std::memcpy(out.data() + at, &n, sizeof n);
}

/// Splits a byte stream into frames. Read into prepare(), commit() what arrived, then take
/// frames with next() until it returns false.
class frame_splitter {
 public:
  explicit frame_splitter(std::uint64_t max_payload = default_max_payload) : max_(max_payload) {}
  /// Room for at least `min` more bytes at the end of the buffer.
  std::span<std::byte> prepare(std::size_t min = 64 * 1024);
  void commit(std::size_t n) noexcept { end_ += n; }
  /// The next complete frame: its header and payload (valid until the next call). False when
  /// no complete frame is buffered (ec clear) or the stream is bad (ec set; do not call again).
  bool next(header& h, std::span<const std::byte>& payload, std::error_code& ec) noexcept;
  /// Bytes received but not yet returned as frames (a frame cut short at EOF).
  std::size_t buffered() const noexcept { return end_ - begin_; }

 private:
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
  std::uint64_t max_;
};

/// Walks the records of a data payload.
class record_cursor {
 public:
  explicit record_cursor(std::span<const std::byte> payload) noexcept : p_(payload) {}
  /// The next record; false at the end (ec clear) or on a truncated record (ec bad_message).
  /// An out-of-line record yields its inline part (8 bytes) and sets out_of_line().
  bool next(std::span<const std::byte>& record, std::error_code& ec) noexcept;
  /// Whether the record next() returned last is out of line.
  bool out_of_line() const noexcept { return out_of_line_; }
  /// Counts the records of a whole payload, validating every length. bad_message on garbage,
  /// and on an out-of-line record unless `fds` (the frame's descriptors) allow one: a frame
  /// with descriptors holds exactly one record, and an out-of-line one needs its memfd.
  static std::size_t count(std::span<const std::byte> payload, std::error_code& ec, std::size_t fds = 0) noexcept;

 private:
  std::span<const std::byte> p_;
  std::size_t at_ = 0;
  bool out_of_line_ = false;
};

/// Decodes one record into a T (errc::bad_message when it does not decode exactly).
template <class T>
void decode_record(std::span<const std::byte> record, T& out) {
  reader r{record.data(), record.size()};
  mproc::decode(r, out);
  if (r.remaining() != 0) reader::fail("trailing bytes after value");
}

/// Decodes a whole control payload; false when it does not decode exactly.
template <class Message>
bool try_decode(std::span<const std::byte> payload, Message& m) {
  try {
    m = from_bytes<Message>(payload.data(), payload.size());
    return true;
  } catch (const error&) {
    return false;
  }
}

// ---- control payloads -------------------------------------------------------------------

struct hello_message {
  std::uint64_t queue_id = 0;
  std::uint64_t type_id = 0;
  std::string type_name;  // for the owner's wrong_type message
};
template <class F>
void inspect(F& f, hello_message& x) {
  f(x.queue_id, x.type_id, x.type_name);
}

struct welcome_message {
  std::uint64_t maxsize = 0;
  bool closed = false;
};
template <class F>
void inspect(F& f, welcome_message& x) {
  f(x.maxsize, x.closed);
}

struct status_message {
  std::int32_t code = 0;  // an mproc::errc
  std::string text;
};
template <class F>
void inspect(F& f, status_message& x) {
  f(x.code, x.text);
}

/// sync: answered after every frame sent before it was handled (a delivery barrier).
/// writer (arg 1/0): this process now holds / no longer holds a handle that can put.
/// ticket_*: (arg = ticket id) a writer handle in flight; these four get no reply.
enum class op : std::uint8_t {
  qsize = 1, close, task_done, join, credit, sync,
  writer, ticket_issue, ticket_redeem, ticket_release,
};

struct request_message {
  std::uint64_t id = 0;
  std::uint8_t what = 0;  // op
  std::uint64_t arg = 0;
};
template <class F>
void inspect(F& f, request_message& x) {
  f(x.id, x.what, x.arg);
}

struct reply_message {
  std::uint64_t id = 0;
  std::int32_t code = 0;  // 0 or an mproc::errc
  std::uint64_t value = 0;
};
template <class F>
void inspect(F& f, reply_message& x) {
  f(x.id, x.code, x.value);
}

}  // namespace mproc::detail::wire
