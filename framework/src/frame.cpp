#include "frame.hpp"

#include <cstring>

#include "fd.hpp"

namespace mproc::detail {
namespace {

struct header {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint64_t length;
};
static_assert(sizeof(header) == 16);

bool valid(const header& h) noexcept {
  return h.magic == frame_magic && h.version == frame_version &&
         (h.kind == static_cast<std::uint16_t>(frame_kind::start) ||
          h.kind == static_cast<std::uint16_t>(frame_kind::exception)) &&
         h.length <= max_frame_payload;
}

}  // namespace

void write_frame(int fd, frame_kind kind, const std::vector<std::byte>& payload, std::span<const int> fds,
                 std::error_code& ec) noexcept {
  header h{frame_magic, frame_version, static_cast<std::uint16_t>(kind), payload.size()};
  if (fds.empty()) write_all(fd, &h, sizeof h, ec);
  else send_packet(fd, std::as_bytes(std::span{&h, 1}), fds, ec);  // 16 bytes: one write takes them
  if (!ec && !payload.empty()) write_all(fd, payload.data(), payload.size(), ec);
}

bool read_frame(int fd, frame& out, std::vector<unique_fd>& fds, std::error_code& ec) noexcept {
  header h;
  if (!read_all_with_fds(fd, &h, sizeof h, fds, ec)) return false;
  if (!valid(h)) {
    ec = make_error_code(errc::bad_message);
    return false;
  }
  out.kind = static_cast<frame_kind>(h.kind);
  try {
    out.payload.resize(h.length);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return false;
  }
  if (h.length != 0 && !read_all(fd, out.payload.data(), h.length, ec)) {
    if (!ec) ec = make_error_code(errc::bad_message);  // EOF inside the payload
    return false;
  }
  return true;
}

std::vector<frame> parse_frames(const std::vector<std::byte>& bytes, std::error_code& ec) {
  std::vector<frame> frames;
  std::size_t at = 0;
  ec.clear();
  while (at < bytes.size()) {
    header h;
    if (bytes.size() - at < sizeof h) {
      ec = make_error_code(errc::bad_message);
      break;
    }
    std::memcpy(&h, bytes.data() + at, sizeof h);
    at += sizeof h;
    if (!valid(h) || h.length > bytes.size() - at) {
      ec = make_error_code(errc::bad_message);
      break;
    }
    auto begin = bytes.begin() + static_cast<std::ptrdiff_t>(at);
    frames.push_back({static_cast<frame_kind>(h.kind), {begin, begin + static_cast<std::ptrdiff_t>(h.length)}});
    at += h.length;
  }
  return frames;
}

}  // namespace mproc::detail
