// mproc/actors/printer_pipeline_types.hpp — what every process's CAF config needs for printers
// and pipeline stages.
//
//   caf::actor_system_config cfg;
//   mproc::actors::add_printer_pipeline_types(cfg);
//
// Registers the actor types "mproc.printer", "mproc.source", "mproc.stage" and "mproc.sink" for
// spawning by name (their arguments and messages are CAF builtin types only, so no message type
// needs registering). Call it once per config, before the actor_system is made.
//
// Thread safety: as caf::actor_system_config (not thread-safe; configure before use).
#pragma once

#include <caf/actor_system_config.hpp>

namespace mproc::actors {

void add_printer_pipeline_types(caf::actor_system_config& cfg);

}  // namespace mproc::actors
