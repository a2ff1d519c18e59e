// mproc/actors/pipeline.hpp — pipeline stages (source, map, filter, fan-out, fan-in, sink) that
// compose across processes, with bounded in-flight items and exactly-once output across restarts.
//
//   MPROC_STAGE_FN(numbers);   // std::optional<int> numbers(std::uint64_t i): i < 1000, then nullopt
//   MPROC_STAGE_FN(square);    // int square(int)
//   MPROC_STAGE_FN(show);      // void show(int)
//   namespace ma = mproc::actors;
//   ma::add_printer_pipeline_types(cfg);                  // in every process's config
//   auto sink = ma::spawn_sink(sys, "out", "show", listener);
//   auto sq   = ma::spawn_map(sys, "square", "square", "out");
//   auto src  = ma::spawn_source(sys, "numbers", "numbers", "square");
//   // listener receives (done_atom, std::uint64_t 1000) once every item went through show().
//
// Stages find each other by NAME (mproc/actors/directory.hpp): each spawn_* helper publishes the
// new stage under its name, and a stage looks its downstreams up (again and again until they
// exist, so stages may start in any order). Stages are spawned by name through CAF's actor
// factory ("mproc.source", "mproc.stage", "mproc.sink", registered by
// add_printer_pipeline_types), so the same calls work for a stage hosted in another process.
//
// Items are caf::message values carried with a sequence number the source gives them (first_seq,
// first_seq + 1, ...); stage functions are named (mproc/actors/stage_function.hpp).
//
// Guarantees:
//  - Bounded in flight (credit-based backpressure): a stage never has more than
//    `options.window` unacknowledged items towards each downstream. A stage acknowledges an item
//    to its upstream only when its downstream acknowledged what it made of it (a filter that drops
//    an item acknowledges at once), and a sink acknowledges an item after its function returned.
//    So everything between a source and the sinks is unacknowledged at the source, and a source
//    never runs more than `window` items ahead of its sink: a slow sink throttles the source.
//  - Restarts: a stage keeps every item it has not had acknowledged. When a downstream dies (any
//    reason), the stage looks its name up until a new actor is published under it (by a
//    supervisor, or by hand), then sends it every unacknowledged item again, in sequence order.
//    A sink skips sequence numbers it already had (and acknowledges them again), so the output is
//    complete and exactly once. A stage that stays without a downstream for
//    `options.relink_timeout` ends with reason errc::timeout (mproc/actors/caf_error.hpp).
//    Sources and sinks hold the stream's position and are not restartable mid-stream: a restarted
//    source starts its stream over (the sink skips what it had), a restarted sink gets only what
//    was not yet acknowledged (and counts from zero).
//  - Order: a chain of single stages (no fan-out) delivers items in source order as long as no
//    stage restarts; re-sent items arrive again in sequence order. Fan-out and fan-in do not
//    keep order.
//  - End of stream: when its generator returns nothing, a source sends an end of stream after its
//    last item. A stage passes it on (to every downstream) once it has it from all
//    `options.upstreams` upstreams and has sent all items; a sink then sends (done_atom,
//    std::uint64_t count of distinct items) to its listener. Every stage ends normally once its
//    downstreams acknowledged the end of stream, so a finished pipeline leaves no actor behind.
//  - Memory: a sink remembers every sequence number it took, so it grows with the stream.
//  - Errors: an item a function cannot take ends that stage with errc::wrong_type; a function
//    that throws ends it with CAF's sec::runtime_error (a crash, for its supervisor). The helpers
//    throw mproc::error: unknown_entry for an unknown function name or a config without
//    add_printer_pipeline_types, duplicate_entry, invalid_argument (window 0, no downstreams).
//
// Message protocol between stages (builtin types only): (item_atom, std::uint64_t seq,
// caf::message item) downstream, (ack_atom, std::uint64_t seq) upstream; (eos_atom, std::string
// upstream name) downstream, acknowledged by (ack_atom, std::string that name).
//
// Thread safety: the helpers may be called from any thread; handles are caf::actor. Lifetime: a
// stage runs until it ends (after the end of stream, on an error, or on an exit message) whether or
// not anyone holds its handle, so a pipeline may be started and forgotten. An actor_system waits
// for every actor when destroyed: stop a pipeline that has no end (an endless generator) by
// sending each stage an exit message first.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mproc/actors/stage_function.hpp"

namespace mproc::actors {

using item_atom = caf::atom_constant<caf::atom("item")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using eos_atom = caf::atom_constant<caf::atom("eos")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

/// The actor type names add_printer_pipeline_types registers (the stage_spec functions below make
/// their spawn arguments).
inline constexpr const char* source_type_name = "mproc.source";
inline constexpr const char* stage_type_name = "mproc.stage";
inline constexpr const char* sink_type_name = "mproc.sink";

struct stage_options {
  /// At most this many unacknowledged items towards each downstream (>= 1).
  std::uint32_t window = 16;
  /// Upstream stages whose end of stream this stage waits for (a fan-in has several).
  std::uint32_t upstreams = 1;
  /// How long a stage waits for a missing downstream to be published (again).
  std::chrono::milliseconds relink_timeout = std::chrono::seconds(10);
};

/// What to spawn for one stage: the actor type name, its spawn arguments, and the name to publish
/// it under. A supervisor keeps this as its child's recipe and, after a crash, spawns it by name
/// again (sys.spawn<caf::actor>(spec.type, spec.args), in whichever process) and publishes the new
/// actor under spec.name; upstreams then find it and send it what it lost.
struct stage_spec {
  std::string name;
  std::string type;
  caf::message args;
};

/// Spawns `spec` by name in this actor_system and publishes it under spec.name. Throws
/// mproc::error: unknown_entry when the config lacks add_printer_pipeline_types,
/// invalid_argument when the arguments do not fit the type.
caf::actor spawn_stage(caf::actor_system& sys, const stage_spec& spec);

// The recipes. Each checks what it can here (options, the function names in this process's
// registry) and throws mproc::error: unknown_entry, duplicate_entry, invalid_argument.

/// A source: calls generator(std::uint64_t i) for i = 0, 1, ... while it has credit; each result
/// is item first_seq + i, and an empty result ends the stream.
stage_spec source_spec(const std::string& name, const std::string& generator, const std::string& downstream,
                       const stage_options& options = {}, std::uint64_t first_seq = 0);

/// A source of the given items (item i has sequence number first_seq + i, none may be empty); the
/// end of stream follows the last. The items travel as one spawn argument, so keep the list
/// modest; a generator suits long or endless streams.
stage_spec source_spec(const std::string& name, const std::vector<caf::message>& items, const std::string& downstream,
                       const stage_options& options = {}, std::uint64_t first_seq = 0);

/// A map: each item becomes function(item).
stage_spec map_spec(const std::string& name, const std::string& function, const std::string& downstream,
                    const stage_options& options = {});

/// A filter: items for which function(item) is false are dropped (and acknowledged).
stage_spec filter_spec(const std::string& name, const std::string& function, const std::string& downstream,
                       const stage_options& options = {});

/// A fan-out: items go round robin to the downstreams (skipping one that is down or has no credit
/// left); an item stays with the downstream it was sent to until acknowledged. The end of stream
/// goes to all.
stage_spec fan_out_spec(const std::string& name, const std::vector<std::string>& downstreams,
                        const stage_options& options = {});

/// A fan-in: merges the items of `upstreams` upstream stages (with distinct sequence numbers:
/// sources merged here need disjoint first_seq ranges).
stage_spec fan_in_spec(const std::string& name, std::uint32_t upstreams, const std::string& downstream,
                       const stage_options& options = {});

/// A sink: calls function(item) once per distinct sequence number (an empty name: no function),
/// and after the end of stream of all `upstreams` sends (done_atom, std::uint64_t count) to
/// `listener` (when not null).
stage_spec sink_spec(const std::string& name, const std::string& function, const caf::actor& listener,
                     std::uint32_t upstreams = 1);

// Spawn and publish in one call: spawn_stage(sys, x_spec(...)).

inline caf::actor spawn_source(caf::actor_system& sys, const std::string& name, const std::string& generator,
                               const std::string& downstream, const stage_options& options = {},
                               std::uint64_t first_seq = 0) {
  return spawn_stage(sys, source_spec(name, generator, downstream, options, first_seq));
}
inline caf::actor spawn_source(caf::actor_system& sys, const std::string& name, const std::vector<caf::message>& items,
                               const std::string& downstream, const stage_options& options = {},
                               std::uint64_t first_seq = 0) {
  return spawn_stage(sys, source_spec(name, items, downstream, options, first_seq));
}
inline caf::actor spawn_map(caf::actor_system& sys, const std::string& name, const std::string& function,
                            const std::string& downstream, const stage_options& options = {}) {
  return spawn_stage(sys, map_spec(name, function, downstream, options));
}
inline caf::actor spawn_filter(caf::actor_system& sys, const std::string& name, const std::string& function,
                               const std::string& downstream, const stage_options& options = {}) {
  return spawn_stage(sys, filter_spec(name, function, downstream, options));
}
inline caf::actor spawn_fan_out(caf::actor_system& sys, const std::string& name,
                                const std::vector<std::string>& downstreams, const stage_options& options = {}) {
  return spawn_stage(sys, fan_out_spec(name, downstreams, options));
}
inline caf::actor spawn_fan_in(caf::actor_system& sys, const std::string& name, std::uint32_t upstreams,
                               const std::string& downstream, const stage_options& options = {}) {
  return spawn_stage(sys, fan_in_spec(name, upstreams, downstream, options));
}
inline caf::actor spawn_sink(caf::actor_system& sys, const std::string& name, const std::string& function,
                             const caf::actor& listener, std::uint32_t upstreams = 1) {
  return spawn_stage(sys, sink_spec(name, function, listener, upstreams));
}

}  // namespace mproc::actors
