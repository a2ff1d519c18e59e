#include "mproc/detail/record_encoding.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "../fd.hpp"
#include "mproc/error.hpp"

namespace mproc::detail {
namespace {

constexpr int body_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/// A sealed memfd holding `bytes`: written with write(2) (no mapping, so it can be sealed
/// against writes at once); the receiver can trust it not to change or shrink under it.
unique_fd sealed_memfd(std::span<const std::byte> bytes) {
  unique_fd fd{::memfd_create("mproc-record", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (!fd) throw error(errc::message_too_large, "no memfd for a large message: " + last_error().message());
  std::error_code ec;
  write_all(fd.get(), bytes.data(), bytes.size(), ec);
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

}  // namespace

standalone_record make_standalone(std::span<const std::byte> record, fd_set_owned fds) {
  const auto body = record.subspan(sizeof(std::uint64_t));
  standalone_record r;
  if (body.size() > wire::out_of_line_threshold) {
    unique_fd memfd = sealed_memfd(body);
    std::uint64_t words[2] = {wire::out_of_line | sizeof(std::uint64_t), body.size()};
    r.bytes.resize(sizeof words);
    std::memcpy(r.bytes.data(), words, sizeof words);
    fds.adopt(memfd.release());
  } else {
    r.bytes.assign(record.begin(), record.end());
  }
  if (fds.size() > wire::max_fds_per_frame)
    throw error(errc::message_too_large, "a message carries more descriptors than one frame can pass");
  r.fds = std::move(fds);
  return r;
}

void decode_standalone(std::span<const std::byte> record, bool out_of_line, fd_set_owned& fds,
                       void (*decode)(std::span<const std::byte>, void*), void* context) {
  transfer_in handing_out{fds};
  if (!out_of_line) return decode(record, context);
  std::uint64_t length = 0;
  if (record.size() != sizeof length || fds.empty())
    throw error(errc::bad_message, "a large message arrived without its body");
  std::memcpy(&length, record.data(), sizeof length);
  unique_fd body{fds.take(static_cast<std::uint32_t>(fds.size() - 1))};
  if (!body) throw error(errc::bad_message, "a large message arrived without its body");
  mapped_body mapped{body.get(), length};
  decode(mapped.bytes(), context);
}

}  // namespace mproc::detail
