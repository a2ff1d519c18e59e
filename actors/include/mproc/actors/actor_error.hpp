// mproc/actors/actor_error.hpp — mproc::errc values as CAF exit reasons, and back.
//
//   self->quit(mproc::actors::make_actor_error(mproc::errc::wrong_type));
//   // a monitor's down_msg.reason: mproc::actors::errc_of(reason) == mproc::errc::wrong_type
//
// An actor of mproc::actors that ends because of an mproc failure ends with such a reason: a
// caf::error of category atom "mproc" whose code is the errc value. CAF serializes it like any
// caf::error, so it crosses processes unchanged.
//
// Thread safety: pure functions.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <optional>

#include "mproc/error.hpp"

namespace mproc::actors {

inline constexpr caf::atom_value errc_category = caf::atom("mproc");

inline caf::error make_actor_error(errc e) {
  return caf::error{static_cast<std::uint8_t>(e), errc_category};
}

/// The errc inside `reason`, or nullopt when it is not an mproc reason (normal exit, CAF's own).
inline std::optional<errc> errc_of(const caf::error& reason) {
  if (!reason || reason.category() != errc_category) return std::nullopt;
  return static_cast<errc>(reason.code());
}

}  // namespace mproc::actors
