// Internal: proving knowledge of the cluster cookie without sending it (challenge-response).
//
// Each side sends the other a fresh random nonce; each answers with
//   HMAC-SHA256(cookie, role ‖ 0 ‖ nonce it received ‖ 0 ‖ nonce it sent)
// where role is "join" for the joining node and "listen" for the listening one, so a proof can
// neither be replayed on another connection (fresh nonces) nor reflected back (roles differ).
//
// Thread safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

namespace mproc::cluster::detail {

/// 32 random bytes from the kernel's CSPRNG, hex-encoded.
std::string make_nonce();

/// The proof of `role` (see above), hex-encoded.
std::string cookie_proof(std::string_view cookie, std::string_view role, std::string_view received_nonce,
                         std::string_view sent_nonce);

/// Compares two proofs in time independent of where they differ.
bool same_proof(std::string_view a, std::string_view b) noexcept;

inline constexpr std::string_view join_role = "join";
inline constexpr std::string_view listen_role = "listen";

}  // namespace mproc::cluster::detail
