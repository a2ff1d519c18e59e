// The printer's behavior, shared by spawn_printer and the by-name factory.
#pragma once

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

namespace mproc::actors::detail {

caf::behavior printer_behavior(caf::event_based_actor* self, int fd);

}  // namespace mproc::actors::detail
