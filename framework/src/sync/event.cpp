#include "mproc/event.hpp"

#include <atomic>

namespace mproc {
namespace {

struct event_state {
  std::uint32_t flag;
};

}  // namespace

event event::create() { return event{detail::sync_block::create(sizeof(event_state))}; }

event event::attach(shared_memory memory) { return event{detail::sync_block::attach(std::move(memory), sizeof(event_state))}; }

bool event::is_set() {
  auto held = block_.hold("mproc::event");
  return block_.state<event_state>().flag != 0;
}

void event::write(bool flag) {
  auto held = block_.hold("mproc::event");
  block_.state<event_state>().flag = flag ? 1 : 0;
}

void event::set() {
  write(true);
  block_.notify_all();
}

void event::clear() { write(false); }

bool event::wait(duration timeout) {
  auto until = detail::deadline_after(timeout);
  auto held = block_.hold("mproc::event");
  auto& s = block_.state<event_state>();
  while (s.flag == 0 && std::chrono::steady_clock::now() < until) block_.wait(until);
  return s.flag != 0;
}

}  // namespace mproc
