// add_printer_pipeline_types (mproc/actors/printer_pipeline_types.hpp).
#include "mproc/actors/printer_pipeline_types.hpp"

#include <caf/all.hpp>

#include "mproc/actors/pipeline.hpp"
#include "mproc/actors/printer.hpp"
#include "pipeline/stages.hpp"
#include "printer_actor.hpp"

namespace mproc::actors {

void add_printer_pipeline_types(caf::actor_system_config& cfg) {
  cfg.add_actor_type(printer_type_name, detail::printer_behavior);
  cfg.add_actor_type(source_type_name, detail::source_behavior);
  cfg.add_actor_type(stage_type_name, detail::stage_behavior);
  cfg.add_actor_type(sink_type_name, detail::sink_behavior);
}

}  // namespace mproc::actors
