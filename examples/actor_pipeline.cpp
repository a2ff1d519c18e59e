// A three-stage pipeline across processes whose middle stage is supervised (issue 4's example):
//   source (a host process) -> square (a process of its own, under a supervisor) -> sink (here).
// Midway the square stage's process is SIGKILLed. The supervisor starts the stage again in a new
// process, the source re-sends what was not acknowledged, and the sink, which drops duplicates,
// still sees every item exactly once.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <caf/all.hpp>
#include <iostream>
#include <mproc/actor_host.hpp>
#include <mproc/actors/directory.hpp>
#include <mproc/actors/pipeline.hpp>
#include <mproc/actors/supervisor.hpp>
#include <mproc/node.hpp>
#include <optional>
#include <thread>

namespace ma = mproc::actors;

constexpr std::uint64_t items = 1000;

std::optional<std::int64_t> numbers(std::uint64_t i) {
  if (i >= items) return std::nullopt;
  return static_cast<std::int64_t>(i);
}
std::int64_t square(std::int64_t x) { return x * x; }

std::atomic<std::int64_t> collected_sum{0};
std::atomic<std::uint64_t> collected{0};
void collect(std::int64_t x) {  // runs in the sink, in this process
  collected_sum += x;
  ++collected;
}
MPROC_STAGE_FN(numbers);
MPROC_STAGE_FN(square);
MPROC_STAGE_FN(collect);

std::atomic<pid_t> square_pid{0};
std::atomic<int> square_starts{0};

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  mproc::node node{argc, argv};
  auto& sys = mproc::actor_system();
  caf::scoped_actor self{sys};

  ma::stage_options options;
  options.window = 16;
  ma::spawn_sink(sys, "sink", "collect", self);

  // The middle stage lives in a process of its own; its start function is the supervisor's recipe.
  auto recipe = ma::map_spec("square", "square", "sink", options);
  ma::supervisor_spec spec;
  spec.intensity = {3, std::chrono::seconds(10)};
  spec.children.push_back({"square", [&node, recipe](caf::actor_system&) -> caf::expected<caf::actor> {
                             mproc::host_options dedicated;
                             dedicated.dedicated = true;  // the process ends with the stage
                             auto host = mproc::spawn_host(node, dedicated);
                             square_pid = host.pid();
                             ++square_starts;
                             auto stage = host.spawn_from_message(recipe.type, recipe.args);
                             host.release();
                             return stage;
                           },
                           ma::restart_type::transient});  // a stage that finished stays finished
  auto supervisor = ma::spawn_supervisor(sys, spec);

  auto source_host = mproc::spawn_host(node);
  auto src = ma::source_spec("numbers", "numbers", "square", options);
  ma::publish(sys, src.name, source_host.spawn_from_message(src.type, src.args));

  // Crash the middle stage's process once a third of the items went through.
  while (collected < items / 3) std::this_thread::sleep_for(1ms);
  ::kill(square_pid.load(), SIGKILL);
  std::cout << "killed the square stage's process mid-stream\n";

  std::uint64_t done = 0;
  self->receive([&](ma::done_atom, std::uint64_t count) { done = count; }, caf::after(60s) >> [] {});
  std::cout << "sink: " << done << " items, each exactly once: " << (collected == items ? "yes" : "no")
            << ", sum of squares " << collected_sum << '\n';
  std::cout << "square stage started " << square_starts << " times, each in a new process\n";
  caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
}
