#include "mproc/detail/wire.hpp"

#include <cstring>

#include "bootstrap.hpp"

namespace mproc::detail::wire {

std::error_code check(const header& h, std::uint64_t max_payload) noexcept {
  const std::uint16_t k = h.kind & ~with_fds;
  if (h.magic != magic || h.version != version || k == 0 || k > static_cast<std::uint16_t>(kind::last))
    return make_error_code(errc::bad_message);
  if (h.length > max_payload) return make_error_code(errc::message_too_large);
  return {};
}

std::string type_name(const std::type_info& t) { return demangle(t.name()); }

void put_header(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::uint64_t length) {
  header h{magic, version, static_cast<std::uint16_t>(k), type_id, length};
  std::size_t at = out.size();
  out.resize(at + sizeof h);
  std::memcpy(out.data() + at, &h, sizeof h);
}

void put_frame(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::span<const std::byte> payload) {
  put_header(out, k, type_id, payload.size());
  if (payload.empty()) return;
  std::size_t at = out.size();
  out.resize(at + payload.size());  // resize + memcpy: see writer::raw on g++ 12's insert warning
  std::memcpy(out.data() + at, payload.data(), payload.size());
}

void put_frame_with_fds(std::vector<std::byte>& out, kind k, std::uint64_t type_id, std::span<const std::byte> payload,
                        std::uint32_t fd_count) {
  const std::size_t at = out.size() + sizeof(header);
  put_header(out, static_cast<kind>(static_cast<std::uint16_t>(k) | with_fds), type_id, sizeof fd_count + payload.size());
  out.resize(at + sizeof fd_count + payload.size());
  std::memcpy(out.data() + at, &fd_count, sizeof fd_count);
  if (!payload.empty()) std::memcpy(out.data() + at + sizeof fd_count, payload.data(), payload.size());
}

std::uint32_t take_fd_count(header& h, std::span<const std::byte>& payload, std::error_code& ec) noexcept {
  ec.clear();
  if ((h.kind & with_fds) == 0) return 0;
  std::uint32_t count = 0;
  if (payload.size() >= sizeof count) std::memcpy(&count, payload.data(), sizeof count);
  if (count == 0) {
    ec = make_error_code(errc::bad_message);
    return 0;
  }
  payload = payload.subspan(sizeof count);
  h.kind = static_cast<std::uint16_t>(h.kind & ~with_fds);
  return count;
}

void set_frame_length(std::vector<std::byte>& out, std::size_t header_at) noexcept {
  std::uint64_t len = out.size() - header_at - sizeof(header);
  std::memcpy(out.data() + header_at + offsetof(header, length), &len, sizeof len);
}

std::span<std::byte> frame_splitter::prepare(std::size_t min) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < min) {
    // Move the unconsumed tail to the front before growing: buffers stay near one frame's size.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min) buf_.resize(end_ + min);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

bool frame_splitter::next(header& h, std::span<const std::byte>& payload, std::error_code& ec) noexcept {
  ec.clear();
  std::size_t have = end_ - begin_;
  if (have < sizeof h) return false;
  std::memcpy(&h, buf_.data() + begin_, sizeof h);
  if ((ec = check(h, max_))) return false;
  if (have - sizeof h < h.length) {
    // Incomplete: make sure the next prepare() leaves room for the whole frame.
    std::size_t need = sizeof h + static_cast<std::size_t>(h.length);
    if (buf_.size() - begin_ < need) {
      try {
        std::memmove(buf_.data(), buf_.data() + begin_, have);
        end_ = have;
        begin_ = 0;
        buf_.resize(need);
      } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
      }
    }
    return false;
  }
  payload = {buf_.data() + begin_ + sizeof h, static_cast<std::size_t>(h.length)};
  begin_ += sizeof h + static_cast<std::size_t>(h.length);
  return true;
}

bool record_cursor::next(std::span<const std::byte>& record, std::error_code& ec) noexcept {
  ec.clear();
  if (at_ == p_.size()) return false;
  std::uint64_t n;
  if (p_.size() - at_ < sizeof n) {
    ec = make_error_code(errc::bad_message);
    return false;
  }
  std::memcpy(&n, p_.data() + at_, sizeof n);
  at_ += sizeof n;
  out_of_line_ = (n & wire::out_of_line) != 0;
  n &= ~wire::out_of_line;
  if (n > p_.size() - at_ || (out_of_line_ && n != sizeof(std::uint64_t))) {
    ec = make_error_code(errc::bad_message);
    return false;
  }
  record = p_.subspan(at_, static_cast<std::size_t>(n));
  at_ += static_cast<std::size_t>(n);
  return true;
}

std::size_t record_cursor::count(std::span<const std::byte> payload, std::error_code& ec, std::size_t fds) noexcept {
  record_cursor c{payload};
  std::span<const std::byte> r;
  std::size_t n = 0;
  bool any_out_of_line = false;
  while (c.next(r, ec)) {
    ++n;
    any_out_of_line |= c.out_of_line();
  }
  if (!ec && ((fds > 0 && n != 1) || (any_out_of_line && fds == 0))) ec = make_error_code(errc::bad_message);
  return ec ? 0 : n;
}

}  // namespace mproc::detail::wire
