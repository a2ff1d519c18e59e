// mproc/actors/command_actor.hpp: an external command as an in-process CAF actor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <mproc/actors/command_actor.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace ma = mproc::actors;
namespace mt = mproc::test;

namespace {

class command_actor : public mt::reaping_test {
 protected:
  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;
  void SetUp() override { sys.emplace(cfg); }
  void TearDown() override {
    sys.reset();  // waits for every actor: a command actor that did not end would hang here
    reaping_test::TearDown();
  }

  /// The next (line_atom, text) message, or "<timeout>".
  static std::string next_line(caf::scoped_actor& self) {
    std::string out = "<timeout>";
    self->receive([&](ma::line_atom, const std::string& line) { out = line; },
                  caf::after(std::chrono::seconds(10)) >> [] {});
    return out;
  }
  static int exit_code(caf::scoped_actor& self) {
    int out = -1000;
    self->receive([&](ma::exited_atom, int code) { out = code; }, caf::after(std::chrono::seconds(10)) >> [] {});
    return out;
  }
};

TEST_F(command_actor, messages_feed_stdin_and_stdout_lines_come_back_then_the_exit) {
  caf::scoped_actor self{*sys};
  auto cmd = ma::spawn_command(*sys, {"sed", "-u", "s/^/> /"}, self);
  caf::anon_send(cmd, std::string{"hello\n"});
  EXPECT_EQ(next_line(self), "> hello");  // a round trip while stdin stays open
  caf::anon_send(cmd, std::string{"bytes \xFF\n"});
  EXPECT_EQ(next_line(self), "> bytes \xFF");  // not decoded
  caf::anon_send(cmd, ma::close_stdin_atom::value);
  EXPECT_EQ(exit_code(self), 0);
}

TEST_F(command_actor, an_exit_message_kills_and_reaps_the_command) {
  caf::scoped_actor self{*sys};
  auto cmd = ma::spawn_command(*sys, {"sh", "-c", "echo $$; exec sleep 30"}, self);
  pid_t pid = std::stoi(next_line(self));
  watchdog.add(pid);
  auto ref = mt::ref_of(pid);
  EXPECT_TRUE(mt::running(ref));
  self->monitor(cmd);
  caf::anon_send_exit(cmd, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](const caf::down_msg&) { down = true; }, caf::after(std::chrono::seconds(10)) >> [] {});
  EXPECT_TRUE(down);
  EXPECT_TRUE(mt::gone_within(ref, 5s));
}

TEST_F(command_actor, start_errors_are_typed) {
  caf::scoped_actor self{*sys};
  try {
    (void)ma::spawn_command(*sys, {"mproc-no-such-command-anywhere"}, self);
    FAIL() << "no throw";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::command_not_found);
  }
}

}  // namespace
