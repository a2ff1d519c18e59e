// mproc/actor_error.hpp — mproc's errors inside CAF, and CAF's errors as mproc errors.
//
// A remote actor's failures reach CAF code as caf::error values of the category atom("mproc")
// (a down_msg / exit_msg reason, an error answering a request); their code is an mproc::errc:
//   host_lost   the process hosting the actor ended: the context names "exit code N" or "signal S"
//   actor_down  the actor ended (or never existed) before it could answer
//   wrong_type  a message type is not registered in both processes (MPROC_ACTOR_MESSAGE)
//
// Thread safety: free functions, no shared state.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <string>
#include <system_error>

#include "mproc/error.hpp"

namespace mproc {

/// The category of mproc errors inside caf::error.
inline constexpr caf::atom_value caf_error_category = caf::atom("mproc");

/// An mproc error as CAF carries it; `context` ends up in the text of to_error().
caf::error make_caf_error(errc code, std::string context = {});

/// The mproc error code of a CAF error: mproc's own category maps back to its errc;
/// sec::request_timeout to errc::timeout; sec::request_receiver_down and other ends of an actor
/// to errc::actor_down; anything else to errc::bad_message. An empty error is the empty code.
std::error_code to_error_code(const caf::error& e);

/// The text of a CAF error: the context of an mproc error, CAF's rendering otherwise.
std::string describe(const caf::error& e);

/// The context string of an mproc error ("" for none, or for errors of other categories).
std::string context_of(const caf::error& e);

/// Makes actor_system::render show "mproc: <errc message>: <context>" for mproc errors (every
/// process's actor system gets it; call it on configs of systems you make yourself).
void add_error_category(caf::actor_system_config& cfg);

/// A throwable mproc::error for `e`, with `what` in front of the description.
mproc::error to_error(const caf::error& e, const std::string& what);

}  // namespace mproc
