// A fixture for tests of mproc::actors: one actor_system configured as every mproc process
// configures it for these actors, a watchdog, and helpers to wait for messages.
#pragma once

#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <mproc/actors/printer_pipeline_types.hpp>

#include "test_support.hpp"

namespace mproc::test {

class actor_fixture : public testing::Test {
 protected:
  guard watchdog{30s};
  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;

  void SetUp() override {
    mproc::actors::add_printer_pipeline_types(cfg);
    cfg.set("work-stealing.moderate-poll-attempts", 0);
    sys.emplace(cfg);
  }
  // Waits for every actor: one that did not end would hang here (and the watchdog report it).
  void TearDown() override { sys.reset(); }

  /// The exit reason of `who`, whom `self` monitors; caf::sec::request_timeout after `limit`.
  /// Down messages of other actors that arrive meanwhile are kept for their own wait_down.
  caf::error wait_down(caf::scoped_actor& self, const caf::actor& who,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = steady::now() + limit;
    for (;;) {
      if (auto it = downs_.find(who.address()); it != downs_.end()) return it->second;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      if (left <= std::chrono::milliseconds(0)) return caf::make_error(caf::sec::request_timeout);
      self->receive([&](const caf::down_msg& down) { downs_.emplace(down.source, down.reason); },
                    caf::after(left) >> [] {});
    }
  }

 private:
  std::map<caf::actor_addr, caf::error> downs_;
};

}  // namespace mproc::test
