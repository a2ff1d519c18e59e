// mproc/detail/record_encoding.hpp — how one value becomes one record of a queue or pipe, and back — inline among other records,
// or standalone with descriptors (see mproc/detail/wire.hpp).
//
// A value whose encoding carries descriptors (a pipe end, shared memory) or is longer than
// wire::out_of_line_threshold becomes a standalone record: its own frame, its own batch in a
// store. A long encoding goes into a memfd passed by descriptor instead of through the socket,
// and is decoded straight from a read-only mapping of it. That memfd is one of the producer's
// pooled bodies, used again once its consumer is done (src/mailbox/body_pool.hpp), or, when the
// pool has none to spare, a one-shot memfd sealed against writes.
//
// Thread safety: free functions; the transfer context they set up is per thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

/// A record that must be standalone, encoded but not yet given its memfd.
struct encoded_standalone {
  std::vector<std::byte> record;                 // `u64 length | inline bytes`, gathered ranges left out
  std::vector<writer::gathered_range> gathered;  // into the value itself: make it before the value goes
  fd_set_owned fds;
};

/// The copy into a pooled body that make_standalone(..., fill_later) leaves to its caller, to
/// run once the frame naming the body is on its way: the consumer then reads the body while it
/// is filled. Destroyed without run() (the frame did not go out), the body is given up and a
/// reader of it gets errc::bad_message. Move-only; one thread at a time.
class body_fill {
 public:
  body_fill() noexcept;
  body_fill(body_fill&&) noexcept;
  body_fill& operator=(body_fill&&) noexcept;
  ~body_fill();
  /// Copies the encoding into the body (nothing when there is no pending copy). The value the
  /// encoding was made from must still be alive.
  void run() noexcept;

 private:
  friend struct body_fill_access;
  struct pending;
  std::unique_ptr<pending> pending_;
};

struct standalone_record {
  std::vector<std::byte> bytes;  // `u64 length | inline bytes`
  fd_set_owned fds;              // the value's descriptors, then the memfd of an out-of-line body
  body_fill fill;                // the pooled body's copy, when left to the caller
};

/// The standalone record of `e`; its body goes into a memfd when it is long: a pooled body
/// (waiting a little for one to come back when `may_wait`; never hold a lock its consumers need
/// meanwhile) or a one-shot sealed memfd. A pooled body is filled before this returns, or, when
/// `fill_later`, by the record's `fill.run()`, which the caller calls right after it handed the
/// frame on. Throws mproc::error when no memfd can be made or there are too many descriptors
/// (errc::message_too_large).
standalone_record make_standalone(encoded_standalone e, bool may_wait, bool fill_later = false);

/// Appends the record of `encode(writer&)` to `out` and returns nullopt, or, when it must be
/// standalone, leaves `out` as it was and returns it encoded (for make_standalone). Throws what
/// encode throws (nothing appended then). Large ranges of the value are not copied here: they
/// go once, straight into the memfd of its body.
template <class Encode>
std::optional<encoded_standalone> encode_record(std::vector<std::byte>& out, Encode&& encode) {
  const std::size_t at = out.size();
  transfer_out collected{transfer_out::purpose::message};
  encoded_standalone e;
  wire::put_record(out, std::forward<Encode>(encode), &e.gathered);
  if (collected.fds().empty() && e.gathered.empty() &&
      out.size() - at - sizeof(std::uint64_t) <= wire::out_of_line_threshold)
    return std::nullopt;
  e.record.assign(out.begin() + static_cast<std::ptrdiff_t>(at), out.end());
  out.resize(at);
  for (auto& g : e.gathered) g.at -= at;
  e.fds = std::move(collected.fds());
  return e;
}

/// encode_record and make_standalone in one: the record appended to `out` (nullopt), or
/// returned standalone.
template <class Encode>
std::optional<standalone_record> append_record(std::vector<std::byte>& out, Encode&& encode, bool may_wait) {
  auto e = encode_record(out, std::forward<Encode>(encode));
  if (!e) return std::nullopt;
  return make_standalone(std::move(*e), may_wait);
}

/// What decode_standalone throws when a pooled body was still being written at its deadline:
/// errc::timeout, and the record may be decoded again. Its own type tells it from a codec that
/// throws errc::timeout itself (see decode_failure).
class body_still_arriving : public error {
 public:
  using error::error;
};

/// The error a take reports for a record its codec failed on (the record is gone then): the
/// codec's own, except that errc::timeout, which would mean "not yet, ask again" to get_for,
/// try_get and async_get and so lose the message unseen, becomes errc::bad_message.
inline std::error_code decode_failure(const error& e) noexcept {
  return e.code() == errc::timeout ? make_error_code(errc::bad_message) : e.code();
}

/// Calls decode(span) with the value's encoding: `record` itself, or, when `out_of_line`, a
/// mapping of the last descriptor in `fds` (which stays there). The value's own descriptors are
/// handed out from `fds` meanwhile. errc::bad_message when the memfd is missing, too short,
/// neither sealed against writes nor a pooled body that was sent, or resizable, or when the
/// producer of a pooled body died or gave it up before writing it all. body_still_arriving
/// (errc::timeout) when a pooled body was still being written at `until`: then the descriptors
/// are all still in `fds`, and the record can be decoded again.
void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds,
                       void (*decode)(std::span<const std::byte>, void*), void* context, deadline until = forever);

template <class Decode>
void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds, Decode&& decode,
                       deadline until = forever) {
  decode_standalone(
      record, out_of_line, fds,
      [](std::span<const std::byte> bytes, void* f) { (*static_cast<std::remove_reference_t<Decode>*>(f))(bytes); },
      &decode, until);
}

}  // namespace mproc::detail
