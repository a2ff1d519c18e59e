// mproc/actors/caf_error.hpp — mproc::errc carried in a caf::error (an exit reason, a reply).
//
//   caf::error e = mproc::actors::to_caf_error(mproc::errc::too_many_restarts, "child \"db\" ...");
//   e.category() == mproc::actors::errc_category;  mproc::actors::errc_of(e) == errc::too_many_restarts
//   sys.render(e)  // "mproc: too many restarts: child \"db\" ..." once add_errc_category(cfg) ran
//
// Thin names over mproc/actor_error.hpp (the framework's actor layer uses the same category).
// CAF errors are a code (uint8_t) in a category (an atom); ours is the category "mproc" and the
// code is the mproc::errc value, so one error model serves both worlds. The context is one
// std::string (a builtin type: it crosses processes without registration).
//
// Thread safety: pure functions; add_errc_category mutates only the config it is given.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <mproc/actor_error.hpp>
#include <mproc/error.hpp>
#include <optional>
#include <string>

namespace mproc::actors {

inline constexpr caf::atom_value errc_category = caf_error_category;

/// A caf::error of category "mproc" with code `e`, and `context` (a std::string) as its context.
caf::error to_caf_error(errc e, std::string context);

/// The errc of an "mproc" error; nullopt for no error and for errors of other categories.
std::optional<errc> errc_of(const caf::error& e) noexcept;

/// The context string of an "mproc" error ("" when there is none).
std::string context_of(const caf::error& e);

/// Makes actor_system::render show "mproc: <errc message>: <context>" for our errors (without
/// ": <context>" when it is empty).
void add_errc_category(caf::actor_system_config& cfg);

}  // namespace mproc::actors
