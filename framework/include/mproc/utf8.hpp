// mproc/utf8.hpp — bytes to text, as Python's bytes.decode('utf-8', errors=...).
//
//   auto r = mproc::subprocess::run({"ls"}, {.capture = true});
//   std::string text = mproc::decode_utf8(r.stdout_bytes, mproc::utf8_errors::replace);
//
// Output of an external command is bytes; it is UTF-8 text only if the command says so. These
// helpers never crash on invalid input: the caller picks what happens.
//  - strict: invalid input is an error that names the offset of the first bad byte
//    (mproc::utf8_error, errc::bad_message); Python's errors='strict'.
//  - replace: each maximal invalid subsequence becomes one U+FFFD (the Unicode "maximal
//    subpart" rule, which Python's errors='replace' follows too): a truncated sequence is one
//    U+FFFD, an overlong form or an encoded surrogate is one per byte.
// Valid UTF-8 is: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
//
// Thread safety: pure functions; any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "mproc/error.hpp"

namespace mproc {

enum class utf8_errors { strict, replace };

/// Thrown by the strict decode: errc::bad_message, with the offset of the first invalid byte.
class utf8_error : public error {
 public:
  explicit utf8_error(std::size_t offset);
  std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
};

/// The offset of the first byte that is not part of a valid UTF-8 sequence; nullopt when all
/// of `bytes` is valid UTF-8.
std::optional<std::size_t> first_invalid_utf8(std::string_view bytes) noexcept;

/// `bytes` as valid UTF-8: unchanged if valid; with `replace`, invalid parts become U+FFFD;
/// with `strict`, throws utf8_error.
std::string decode_utf8(std::string_view bytes, utf8_errors errors = utf8_errors::strict);
/// As above; with `strict` and invalid input, ec = errc::bad_message and the result is empty
/// (first_invalid_utf8 gives the offset).
std::string decode_utf8(std::string_view bytes, utf8_errors errors, std::error_code& ec);

}  // namespace mproc
