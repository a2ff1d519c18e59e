// The stage recipes and spawn_stage of mproc/actors/pipeline.hpp: every stage is spawned by name,
// the path a stage in another process (or a supervisor's restart) takes too.
#include <caf/all.hpp>
#include <mproc/actor_runtime.hpp>
#include "mproc/actors/printer_pipeline_types.hpp"

#include <algorithm>

#include "mproc/actors/directory.hpp"
#include "mproc/actors/pipeline.hpp"

namespace mproc::actors {
namespace {

std::uint32_t relink_ms(const stage_options& o) {
  return static_cast<std::uint32_t>(std::max<std::chrono::milliseconds::rep>(0, o.relink_timeout.count()));
}

void check(bool ok, const std::string& name, const char* what) {
  if (!ok) throw error(errc::invalid_argument, "pipeline stage '" + name + "': " + what);
}

void check_options(const std::string& name, const stage_options& o) {
  check(o.window > 0, name, "window must be at least 1");
  check(o.upstreams > 0, name, "upstreams must be at least 1");
}

/// A "mproc.stage" of `kind` (map, filter, pass).
stage_spec middle_spec(const std::string& name, const char* kind, const std::string& function,
                       std::vector<std::string> downstreams, const stage_options& o) {
  check_options(name, o);
  check(!downstreams.empty(), name, "no downstream");
  if (!function.empty()) (void)find_stage_function(function);  // throws unknown_entry, duplicate_entry
  return {name, stage_type_name,
          caf::make_message(name, std::string{kind}, function, std::move(downstreams), o.upstreams, o.window,
                            relink_ms(o))};
}

}  // namespace

caf::actor spawn_stage(caf::actor_system& sys, const stage_spec& spec) {
  auto spawned = sys.spawn<caf::actor>(spec.type, spec.args);
  if (!spawned) {
    auto unknown = spawned.error() == caf::sec::unknown_type;
    throw error(unknown ? errc::unknown_entry : errc::invalid_argument,
                "spawn " + spec.type + " '" + spec.name + "': " + sys.render(spawned.error()) +
                    (unknown ? " (add_printer_pipeline_types missing from the config?)" : ""));
  }
  publish(sys, spec.name, *spawned);
  return *spawned;
}

stage_spec source_spec(const std::string& name, const std::string& generator, const std::string& downstream,
                       const stage_options& options, std::uint64_t first_seq) {
  check_options(name, options);
  (void)find_stage_function(generator);
  return {name, source_type_name,
          caf::make_message(name, generator, caf::message{}, downstream, first_seq, options.window,
                            relink_ms(options))};
}

stage_spec source_spec(const std::string& name, const std::vector<caf::message>& items, const std::string& downstream,
                       const stage_options& options, std::uint64_t first_seq) {
  check_options(name, options);
  check(std::none_of(items.begin(), items.end(), [](const caf::message& m) { return m.empty(); }), name,
        "an empty item");
  caf::message_builder list{items.begin(), items.end()};  // one message whose elements are the items
  return {name, source_type_name,
          caf::make_message(name, std::string{}, list.to_message(), downstream, first_seq, options.window,
                            relink_ms(options))};
}

stage_spec map_spec(const std::string& name, const std::string& function, const std::string& downstream,
                    const stage_options& options) {
  check(!function.empty(), name, "no function");
  return middle_spec(name, "map", function, {downstream}, options);
}

stage_spec filter_spec(const std::string& name, const std::string& function, const std::string& downstream,
                       const stage_options& options) {
  check(!function.empty(), name, "no function");
  return middle_spec(name, "filter", function, {downstream}, options);
}

stage_spec fan_out_spec(const std::string& name, const std::vector<std::string>& downstreams,
                        const stage_options& options) {
  return middle_spec(name, "pass", {}, downstreams, options);
}

stage_spec fan_in_spec(const std::string& name, std::uint32_t upstreams, const std::string& downstream,
                       const stage_options& options) {
  auto o = options;
  o.upstreams = upstreams;
  return middle_spec(name, "pass", {}, {downstream}, o);
}

stage_spec sink_spec(const std::string& name, const std::string& function, const caf::actor& listener,
                     std::uint32_t upstreams) {
  check(upstreams > 0, name, "upstreams must be at least 1");
  if (!function.empty()) (void)find_stage_function(function);
  return {name, sink_type_name, caf::make_message(function, upstreams, listener)};
}

// Every process of a node knows the printer and stage types (mproc/actor_runtime.hpp); this file
// is linked whenever they are used.
MPROC_ACTOR_CONFIG(add_printer_pipeline_types);

}  // namespace mproc::actors
