// A host whose actor registrations differ from its parent's is refused at start-up, naming the
// difference (mproc/actor_runtime.hpp). A binary of its own: the parent's registrations must be
// made before its actor system starts, which only a fresh process guarantees.
#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <mproc/actor_host.hpp>
#include <mproc/node.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace mt = mproc::test;

namespace {

struct late_type {
  int x = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, late_type& x) {
  return f(caf::meta::type_name("late_type"), x.x);
}

TEST(actor_registration, a_host_with_other_registrations_is_refused_naming_them) {
  // Registered at run time in this process only: a spawned image (a fresh exec) lacks it.
  mproc::detail::add_actor_config_hook(+[](caf::actor_system_config& cfg) { cfg.add_message_type<late_type>("late_type"); });
  mproc::node node{mt::with_method(mproc::start_method::spawn)};
  mt::guard watchdog{30s};
  try {
    auto host = mproc::spawn_host(node);
    FAIL() << "a host with different registrations was accepted";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::wrong_type);
    EXPECT_NE(std::string{e.what()}.find("only the parent has message late_type"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(node.active_children().empty());
}

}  // namespace
