// Internal: mproc-encoded values (mproc/serialization.hpp) carried inside CAF messages as
// std::string, a type every CAF system knows (std::vector<std::byte> is not one).
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mproc/serialization.hpp"

namespace mproc::cluster::detail {

inline std::string as_string(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

inline std::vector<std::byte> as_bytes(const std::string& text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

/// Encodes `x` for a CAF message.
template <class T>
std::string encode_to_string(const T& x) {
  return as_string(to_bytes(x));
}

/// Decodes what encode_to_string made; throws mproc::error (bad_message) when it does not decode.
template <class T>
T decode_from_string(const std::string& text) {
  return from_bytes<T>(reinterpret_cast<const std::byte*>(text.data()), text.size());
}

}  // namespace mproc::cluster::detail
