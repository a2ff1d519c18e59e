// GoogleTest main for every mproc test binary. mproc re-executes the binary for the spawn start
// method (and for a fork server started after threads exist), so that role comes first.
#include <gtest/gtest.h>
#include <mproc/node.hpp>

int main(int argc, char** argv) {
  mproc::maybe_run_child();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
