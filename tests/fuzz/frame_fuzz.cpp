// libFuzzer target for the mailbox frame decoder: arbitrary bytes, cut into arbitrary chunks,
// go through the frame splitter, every frame's records through the record cursor, and every
// record into a few value types. Nothing may crash, hang or read out of bounds; errors must be
// the typed ones (bad_message, message_too_large).
//
//   cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DMPROC_FUZZ=ON && cmake --build build/fuzz --target frame_fuzz
//   build/fuzz/tests/fuzz/frame_fuzz -max_total_time=60
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mproc/detail/wire.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace mproc::detail;

void expect_typed(const std::error_code& ec) {
  if (ec && ec != mproc::errc::bad_message && ec != mproc::errc::message_too_large &&
      ec != std::errc::not_enough_memory)
    std::abort();
}

template <class T>
void try_decode(std::span<const std::byte> record) {
  try {
    T value{};
    wire::decode_record(record, value);
  } catch (const mproc::error& e) {
    if (e.code() != mproc::errc::bad_message) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size, so partial frames across reads are explored too.
  std::size_t chunk = 1 + data[0] % 64;
  const auto* bytes = reinterpret_cast<const std::byte*>(data + 1);
  std::size_t n = size - 1;
  wire::frame_splitter splitter{1 << 16};
  for (std::size_t at = 0; at < n; at += chunk) {
    std::size_t len = std::min(chunk, n - at);
    auto room = splitter.prepare(len);
    std::memcpy(room.data(), bytes + at, len);
    splitter.commit(len);
    wire::header h;
    std::span<const std::byte> payload;
    std::error_code ec;
    while (splitter.next(h, payload, ec)) {
      wire::record_cursor cursor{payload};
      std::span<const std::byte> record;
      std::error_code rec_ec;
      while (cursor.next(record, rec_ec)) {
        try_decode<std::string>(record);
        try_decode<std::int64_t>(record);
        try_decode<std::vector<std::int32_t>>(record);
        try_decode<std::map<std::string, std::optional<double>>>(record);
        try_decode<std::variant<int, std::string>>(record);
        try_decode<wire::hello_message>(record);
      }
      expect_typed(rec_ec);
    }
    expect_typed(ec);
    if (ec) return 0;  // the stream is dead after a bad frame, as in a real connection
  }
  return 0;
}
