// GoogleTest main for every mproc test binary. mproc re-executes the binary for the spawn start
// method (and for a fork server started after threads exist), so that role comes first.
#include <gtest/gtest.h>
#include <mproc/node.hpp>
#include <unistd.h>

namespace {
// Set during static initialization of each program image: a fork (fork-method and forkserver
// children) keeps the parent's value, an exec'd image (spawn) gets its own.
const pid_t image_pid = ::getpid();
}  // namespace

// LeakSanitizer hook (ASan builds; unused otherwise). A forked child is a copy of a
// multi-threaded process whose other threads do not exist in it, so when it calls exit() their
// stacks and thread-local caches (Asio keeps freed handler memory there) are not scanned and
// live memory is reported as leaked. Leaks are checked in the test process itself and in
// exec'd images; a forked copy is not checked.
extern "C" int __lsan_is_turned_off() { return ::getpid() != image_pid ? 1 : 0; }

int main(int argc, char** argv) {
  mproc::maybe_run_child();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
