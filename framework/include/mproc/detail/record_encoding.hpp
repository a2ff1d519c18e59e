// mproc/detail/record_encoding.hpp — how one value becomes one record of a queue or pipe, and back — inline among other records,
// or standalone with descriptors (see mproc/detail/wire.hpp).
//
// A value whose encoding carries descriptors (a pipe end, shared memory) or is longer than
// wire::out_of_line_threshold becomes a standalone record: its own frame, its own batch in a
// store. A long encoding goes into a sealed memfd passed by descriptor instead of through the
// socket, and is decoded straight from a read-only mapping of it.
//
// Thread safety: free functions; the transfer context they set up is per thread.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

struct standalone_record {
  std::vector<std::byte> bytes;  // `u64 length | inline bytes`
  fd_set_owned fds;              // the value's descriptors, then the memfd of an out-of-line body
};

/// A standalone copy of `record` (`u64 length | bytes`) with `fds`; its body goes into a memfd
/// when it is long. Throws mproc::error when no memfd can be made or there are too many
/// descriptors (errc::message_too_large).
standalone_record make_standalone(std::span<const std::byte> record, fd_set_owned fds);

/// Appends the record of `encode(writer&)` to `out`, or, when it must be standalone, returns
/// it and leaves `out` as it was. Throws what encode throws (nothing appended then).
template <class Encode>
std::optional<standalone_record> append_record(std::vector<std::byte>& out, Encode&& encode) {
  const std::size_t at = out.size();
  transfer_out collected{transfer_out::purpose::message};
  wire::put_record(out, std::forward<Encode>(encode));
  if (collected.fds().empty() && out.size() - at - sizeof(std::uint64_t) <= wire::out_of_line_threshold)
    return std::nullopt;
  struct restore {
    std::vector<std::byte>& out;
    std::size_t at;
    ~restore() { out.resize(at); }
  } restore_out{out, at};
  return make_standalone(std::span{out}.subspan(at), std::move(collected.fds()));
}

/// Calls decode(span) with the value's encoding: `record` itself, or, when `out_of_line`, a
/// mapping of the last descriptor in `fds` (taken from it). The value's own descriptors are
/// handed out from `fds` meanwhile. errc::bad_message when the memfd is missing, too short or
/// not sealed against writes.
void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds,
                       void (*decode)(std::span<const std::byte>, void*), void* context);

template <class Decode>
void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds, Decode&& decode) {
  decode_standalone(
      record, out_of_line, fds,
      [](std::span<const std::byte> bytes, void* f) { (*static_cast<std::remove_reference_t<Decode>*>(f))(bytes); },
      &decode);
}

}  // namespace mproc::detail
