#include "mproc/utf8.hpp"

namespace mproc {
namespace {

/// Length of the valid UTF-8 sequence at bytes[i], or 0 with `bad` set to the length of the
/// maximal invalid subpart there (at least 1): the bytes one U+FFFD replaces.
std::size_t valid_sequence_at(std::string_view bytes, std::size_t i, std::size_t& bad) noexcept {
  auto b = static_cast<unsigned char>(bytes[i]);
  if (b < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) length = 2;
  else if (b >= 0xE0 && b <= 0xEF) length = 3, low = b == 0xE0 ? 0xA0 : 0x80, high = b == 0xED ? 0x9F : 0xBF;
  else if (b >= 0xF0 && b <= 0xF4) length = 4, low = b == 0xF0 ? 0x90 : 0x80, high = b == 0xF4 ? 0x8F : 0xBF;
  bad = 1;
  if (length == 0) return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  for (std::size_t k = 1; k < length; ++k) {
    if (i + k >= bytes.size()) return 0;  // truncated: everything so far is one subpart
    auto c = static_cast<unsigned char>(bytes[i + k]);
    if (c < low || c > high) return 0;
    low = 0x80, high = 0xBF;
    bad = k + 1;
  }
  return length;
}

}  // namespace

utf8_error::utf8_error(std::size_t offset)
    : error(errc::bad_message, "invalid UTF-8 at byte " + std::to_string(offset)), offset_(offset) {}

std::optional<std::size_t> first_invalid_utf8(std::string_view bytes) noexcept {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t n = valid_sequence_at(bytes, i, bad);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

std::string decode_utf8(std::string_view bytes, utf8_errors errors, std::error_code& ec) {
  ec.clear();
  auto first_bad = first_invalid_utf8(bytes);
  if (!first_bad) return std::string{bytes};
  if (errors == utf8_errors::strict) return ec = make_error_code(errc::bad_message), std::string{};
  std::string out{bytes.substr(0, *first_bad)};
  out.reserve(bytes.size() + 16);
  std::size_t bad = 0;
  for (std::size_t i = *first_bad; i < bytes.size();) {
    std::size_t n = valid_sequence_at(bytes, i, bad);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      i += bad;
    }
  }
  return out;
}

std::string decode_utf8(std::string_view bytes, utf8_errors errors) {
  std::error_code ec;
  auto text = decode_utf8(bytes, errors, ec);
  if (ec) throw utf8_error(*first_invalid_utf8(bytes));
  return text;
}

}  // namespace mproc
