// The spawn helpers of mproc/actors/pipeline.hpp: every stage is spawned by name, the path a stage
// in another process takes too, and published under its name.
#include <caf/all.hpp>

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

/// Spawns actor type `type` by name with `args`, publishes it as `name`, and turns CAF's errors
/// into mproc's.
caf::actor spawn_published(caf::actor_system& sys, const char* type, const std::string& name, caf::message args) {
  auto spawned = sys.spawn<caf::actor>(type, std::move(args));
  if (!spawned) {
    auto unknown = spawned.error() == caf::sec::unknown_type;
    throw error(unknown ? errc::unknown_entry : errc::invalid_argument,
                std::string{"spawn "} + type + " '" + name + "': " + sys.render(spawned.error()) +
                    (unknown ? " (add_printer_pipeline_types missing from the config?)" : ""));
  }
  publish(sys, name, *spawned);
  return *spawned;
}

caf::actor spawn_stage(caf::actor_system& sys, const std::string& name, const char* kind, const std::string& function,
                       std::vector<std::string> downstreams, const stage_options& o) {
  check_options(name, o);
  check(!downstreams.empty(), name, "no downstream");
  if (!function.empty()) (void)find_stage_function(function);  // throws unknown_entry, duplicate_entry
  return spawn_published(sys, stage_type_name, name,
                         caf::make_message(name, std::string{kind}, function, std::move(downstreams), o.upstreams,
                                           o.window, relink_ms(o)));
}

}  // namespace

caf::actor spawn_source(caf::actor_system& sys, const std::string& name, const std::string& generator,
                        const std::string& downstream, const stage_options& options, std::uint64_t first_seq) {
  check_options(name, options);
  (void)find_stage_function(generator);
  return spawn_published(sys, source_type_name, name,
                         caf::make_message(name, generator, caf::message{}, downstream, first_seq, options.window,
                                           relink_ms(options)));
}

caf::actor spawn_source(caf::actor_system& sys, const std::string& name, const std::vector<caf::message>& items,
                        const std::string& downstream, const stage_options& options, std::uint64_t first_seq) {
  check_options(name, options);
  caf::message_builder list{items.begin(), items.end()};  // one message whose elements are the items
  return spawn_published(sys, source_type_name, name,
                         caf::make_message(name, std::string{}, list.to_message(), downstream, first_seq,
                                           options.window, relink_ms(options)));
}

caf::actor spawn_map(caf::actor_system& sys, const std::string& name, const std::string& function,
                     const std::string& downstream, const stage_options& options) {
  check(!function.empty(), name, "no function");
  return spawn_stage(sys, name, "map", function, {downstream}, options);
}

caf::actor spawn_filter(caf::actor_system& sys, const std::string& name, const std::string& function,
                        const std::string& downstream, const stage_options& options) {
  check(!function.empty(), name, "no function");
  return spawn_stage(sys, name, "filter", function, {downstream}, options);
}

caf::actor spawn_fan_out(caf::actor_system& sys, const std::string& name, const std::vector<std::string>& downstreams,
                         const stage_options& options) {
  return spawn_stage(sys, name, "pass", {}, downstreams, options);
}

caf::actor spawn_fan_in(caf::actor_system& sys, const std::string& name, std::uint32_t upstreams,
                        const std::string& downstream, const stage_options& options) {
  auto o = options;
  o.upstreams = upstreams;
  return spawn_stage(sys, name, "pass", {}, {downstream}, o);
}

caf::actor spawn_sink(caf::actor_system& sys, const std::string& name, const std::string& function,
                      const caf::actor& listener, std::uint32_t upstreams) {
  check(upstreams > 0, name, "upstreams must be at least 1");
  if (!function.empty()) (void)find_stage_function(function);
  return spawn_published(sys, sink_type_name, name, caf::make_message(function, upstreams, listener));
}

}  // namespace mproc::actors
