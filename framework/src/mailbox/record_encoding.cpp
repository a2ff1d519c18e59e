#include "mproc/detail/record_encoding.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "../fd.hpp"
#include "body_pool.hpp"
#include "mproc/error.hpp"

namespace mproc::detail {
namespace {

constexpr int body_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/// A sealed memfd holding `encoding`: written with write(2) (no mapping, so it can be sealed
/// against writes at once); the receiver can trust it not to change or shrink under it.
unique_fd sealed_memfd(body_pool::pieces encoding) {
  unique_fd fd{::memfd_create("mproc-record", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (!fd) throw error(errc::message_too_large, "no memfd for a large message: " + last_error().message());
  std::error_code ec;
  for (auto piece : encoding)
    if (!ec) write_all(fd.get(), piece.data(), piece.size(), ec);
  if (!ec && ::fcntl(fd.get(), F_ADD_SEALS, body_seals) != 0) ec = last_error();
  if (ec) throw error(errc::message_too_large, "writing a large message to a memfd: " + ec.message());
  return fd;
}

/// A read-only mapping of a received body; unmapped by the destructor.
class mapped_body {
 public:
  mapped_body(int fd, std::uint64_t length) : length_(static_cast<std::size_t>(length)) {
    struct stat st {};
    int seals = ::fcntl(fd, F_GET_SEALS);
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_SHRINK)) == 0 ||
        static_cast<std::uint64_t>(st.st_size) < length)
      throw error(errc::bad_message, "the body of a large message is not a sealed memfd of its length");
    if (length_ == 0) return;
    void* p = ::mmap(nullptr, length_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) throw error(errc::bad_message, "cannot map the body of a large message: " + last_error().message());
    data_ = static_cast<const std::byte*>(p);
  }
  ~mapped_body() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), length_);
  }
  mapped_body(const mapped_body&) = delete;
  mapped_body& operator=(const mapped_body&) = delete;
  std::span<const std::byte> bytes() const noexcept { return {data_, length_}; }

 private:
  const std::byte* data_ = nullptr;
  std::size_t length_;
};

/// The encoding in order: the inline bytes after the length, each gathered range where it belongs.
std::vector<std::span<const std::byte>> pieces_of(std::span<const std::byte> record,
                                                  const std::vector<writer::gathered_range>& gathered, std::size_t& size) {
  std::vector<std::span<const std::byte>> pieces;
  std::size_t from = sizeof(std::uint64_t);
  size = 0;
  auto add = [&](std::span<const std::byte> piece) {
    if (piece.empty()) return;
    pieces.push_back(piece);
    size += piece.size();
  };
  for (const auto& g : gathered) {
    add(record.subspan(from, g.at - from));
    add(g.bytes);
    from = g.at;
  }
  add(record.subspan(from));
  return pieces;
}

}  // namespace

struct body_fill::pending {
  body_pool::lent_body body;
  std::vector<std::byte> record;  // what the pieces of the encoding point into, with the value
  std::vector<writer::gathered_range> gathered;
};

body_fill::body_fill() noexcept = default;
body_fill::body_fill(body_fill&&) noexcept = default;
body_fill& body_fill::operator=(body_fill&&) noexcept = default;
body_fill::~body_fill() = default;  // an unfilled lent_body gives itself up

void body_fill::run() noexcept {
  if (!pending_) return;
  std::size_t size = 0;
  auto pieces = pieces_of(pending_->record, pending_->gathered, size);
  pending_->body.fill(pieces);
  pending_.reset();
}

struct body_fill_access {
  static void set(body_fill& f, body_pool::lent_body body, std::vector<std::byte> record,
                  std::vector<writer::gathered_range> gathered) {
    f.pending_ = std::make_unique<body_fill::pending>(
        body_fill::pending{std::move(body), std::move(record), std::move(gathered)});
  }
};

standalone_record make_standalone(encoded_standalone e, bool may_wait, bool fill_later) {
  static_assert(detail::large_buffer > wire::out_of_line_threshold, "a gathered range makes a record out of line");
  standalone_record r;
  std::size_t size = 0;
  auto pieces = pieces_of(e.record, e.gathered, size);
  if (size > wire::out_of_line_threshold) {
    unique_fd memfd;
    if (!fill_later) {
      memfd = body_pool::lend(pieces, size, may_wait);
    } else if (auto body = body_pool::reserve(size, may_wait)) {
      memfd = body.descriptor();
      if (memfd) body_fill_access::set(r.fill, std::move(body), std::move(e.record), std::move(e.gathered));
    }
    if (!memfd) memfd = sealed_memfd(pieces);
    std::uint64_t words[2] = {wire::out_of_line | sizeof(std::uint64_t), size};
    r.bytes.resize(sizeof words);
    std::memcpy(r.bytes.data(), words, sizeof words);
    e.fds.adopt(memfd.release());
  } else {
    r.bytes = std::move(e.record);
  }
  if (e.fds.size() > wire::max_fds_per_frame)
    throw error(errc::message_too_large, "a message carries more descriptors than one frame can pass");
  r.fds = std::move(e.fds);
  return r;
}

void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds,
                       void (*decode)(std::span<const std::byte>, void*), void* context, deadline until) {
  transfer_in handing_out{fds};
  if (!out_of_line) return decode(record, context);
  std::uint64_t length = 0;
  if (record.size() != sizeof length || fds.empty() || fds.fds().back() < 0)
    throw error(errc::bad_message, "a large message arrived without its body");
  std::memcpy(&length, record.data(), sizeof length);
  const bool value_has_fds = fds.size() > 1;  // the body is the last one
  // The body's descriptor stays in `fds`: a record whose decoding ran out of time is read again.
  const int body = fds.fds().back();
  int seals = ::fcntl(body, F_GET_SEALS);
  if (seals >= 0 && (seals & F_SEAL_WRITE) == 0) {  // a pooled body, handed back once decoded
    auto borrowed = body_pool::borrow(body, length);
    struct give_back {
      std::shared_ptr<const body_pool::mapping> m;
      bool read_again = false;  // not decoded in time: it stays ours, as the record stays
      ~give_back() {
        if (!read_again) body_pool::release_when_done(std::move(m));
      }
    } give_back_later{borrowed};
    try {
      // Its producer may still be filling it: the decoder copies each chunk out once it is
      // written, and the value counts only when every byte came. A value with descriptors of
      // its own is decoded only once, so only from a whole body (then no timeout comes after
      // the decoder took them). A take that may not wait (its deadline passed already: a
      // try_get, an asynchronous get's try) takes only a whole body: decoding the part that came
      // only to time out at its end would cost each try as much as the whole value.
      body_pool::arriving_body arriving{*borrowed, length, until};
      const auto bytes = body_pool::encoding(*borrowed, length);
      if (value_has_fds || until <= std::chrono::steady_clock::now()) arriving.wait_all();
      else arriving.wait_ready(std::min<std::size_t>(length, body_pool::fill_chunk));
      try {
        decode(bytes, context);
      } catch (const bytes_not_ready&) {  // a small read ran ahead of the producer: again, whole
        arriving.wait_all();
        decode(bytes, context);
      }
      return arriving.wait_all();
    } catch (const body_still_arriving&) {
      give_back_later.read_again = true;
      throw;
    }
  }
  mapped_body mapped{body, length};
  decode(mapped.bytes(), context);
}

}  // namespace mproc::detail
