// A service that crashes on bad input, kept running by a supervisor until it crashes too often.
// In one process here; with the actor core, the same start function may spawn the service in
// another process, and nothing else changes.
#include <caf/all.hpp>

#include <iostream>
#include <mproc/actors/directory.hpp>
#include <mproc/actors/supervisor.hpp>
#include <stdexcept>

namespace ma = mproc::actors;
using divide_atom = caf::atom_constant<caf::atom("divide")>;

// Divides `dividend` by what it is asked; a zero makes it throw, as a bug would.
caf::behavior divider(caf::event_based_actor* self, int dividend) {
  // Quietly (CAF's default handler prints every exception on stderr): the supervisor reports.
  self->set_exception_handler([](std::exception_ptr&) { return caf::make_error(caf::sec::runtime_error); });
  return {[dividend](divide_atom, int x) {
    if (x == 0) throw std::domain_error("division by zero");
    return dividend / x;
  }};
}

int main() {
  caf::actor_system_config cfg;
  ma::add_supervisor_types(cfg);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  ma::supervisor_spec spec;
  spec.intensity = {2, std::chrono::seconds(60)};  // a third crash within a minute: give up
  spec.observer = caf::actor_cast<caf::actor>(self);
  spec.children.push_back({"divider", [](caf::actor_system& s) -> caf::expected<caf::actor> {
                             return s.spawn(divider, 100);
                           }});
  auto sup = ma::spawn_supervisor(sys, spec);
  self->monitor(sup);

  // Clients find the service by name, so they always reach the current incarnation.
  auto ask = [&](int x) {
    self->request(ma::lookup(sys, "divider"), std::chrono::seconds(5), divide_atom::value, x)
        .receive([&](int result) { std::cout << "100 / " << x << " = " << result << '\n'; },
                 [&](const caf::error&) { std::cout << "100 / " << x << " failed\n"; });
  };
  // After a crash: the restart, or the supervisor's end.
  auto await_supervisor = [&] {
    self->receive(
        [&](ma::restarted_atom, const std::string& name, std::uint64_t n) {
          std::cout << name << " restarted (" << n << ")\n";
        },
        [&](const caf::down_msg& down) { std::cout << "supervisor gave up: " << sys.render(down.reason) << '\n'; },
        caf::after(std::chrono::seconds(10)) >> [] { std::cout << "no news from the supervisor\n"; });
  };

  ask(4);
  for (int x : {5, 10, 20}) {
    ask(0);
    await_supervisor();
    if (!ma::lookup(sys, "divider")) break;
    ask(x);
  }
}
