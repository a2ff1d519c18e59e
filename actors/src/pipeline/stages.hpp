// The behaviors of the pipeline's actor types, shared by the spawn helpers and the by-name
// factory (add_printer_pipeline_types). Arguments are CAF builtin types, so they cross processes.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "outbox.hpp"

namespace mproc::actors::detail {

/// A stage runs until it ends, whether or not anyone holds its handle (CAF ends an actor nobody
/// references): it references itself until its state is destroyed, when it ends.
struct keepalive {
  caf::actor self;
};

struct sending_state {
  std::optional<outbox> out;
  keepalive alive;
};

/// "mproc.source": items from the generator function named `generator`, or, when that name is
/// empty, the elements of `items` (each a caf::message).
caf::behavior source_behavior(caf::stateful_actor<sending_state>* self, std::string name, std::string generator,
                              caf::message items, std::string downstream, std::uint64_t first_seq, std::uint32_t window,
                              std::uint32_t relink_ms);

/// "mproc.stage"; kind is "map", "filter" or "pass" (fan-out and fan-in pass items on unchanged).
caf::behavior stage_behavior(caf::stateful_actor<sending_state>* self, std::string name, std::string kind,
                             std::string function, std::vector<std::string> downstreams, std::uint32_t upstreams,
                             std::uint32_t window, std::uint32_t relink_ms);

struct sink_state {
  std::set<std::uint64_t> seen;
  std::map<std::string, caf::actor_addr> ends;
  keepalive alive;
};

/// "mproc.sink"
caf::behavior sink_behavior(caf::stateful_actor<sink_state>* self, std::string function, std::uint32_t upstreams,
                            caf::actor listener);

}  // namespace mproc::actors::detail
