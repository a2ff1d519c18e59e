#include "cookie_proof.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <system_error>

#include "mproc/error.hpp"

namespace mproc::cluster::detail {
namespace {

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string make_nonce() {
  std::array<unsigned char, 32> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    auto n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw error(std::error_code(errno, std::system_category()), "getrandom");
    }
    filled += static_cast<std::size_t>(n);
  }
  return hex(bytes.data(), bytes.size());
}

std::string cookie_proof(std::string_view cookie, std::string_view role, std::string_view received_nonce,
                         std::string_view sent_nonce) {
  std::string text;
  text.reserve(role.size() + received_nonce.size() + sent_nonce.size() + 2);
  text.append(role).append(1, '\0').append(received_nonce).append(1, '\0').append(sent_nonce);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  if (::HMAC(EVP_sha256(), cookie.data(), static_cast<int>(cookie.size()),
             reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac.data(), &size) == nullptr)
    throw error(errc::invalid_argument, "HMAC-SHA256 failed");
  return hex(mac.data(), size);
}

bool same_proof(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && ::CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mproc::cluster::detail
