// Exit codes under every start method, as in Python: 0 for a normal return, n for exit(n), 1 for
// an uncaught exception (whose type and message reach the parent), -N when killed by signal N.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::test::method_test;

namespace exitcode_test {

struct custom_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace {

void no_core_dump() {
  struct rlimit none {};
  ::setrlimit(RLIMIT_CORE, &none);
}

/// Dies of `sig` by its default action, even where a sanitizer installed a handler for it.
[[noreturn]] void die_of(int sig) {
  no_core_dump();
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  ::_exit(100);  // not reached
}

}  // namespace

void return_normally() {}
void call_exit(int code) { std::exit(code); }
void call_underscore_exit(int code) { ::_exit(code); }
void throw_runtime_error(std::string what) { throw std::runtime_error(what); }
void throw_custom_error(std::string what) { throw custom_error(what); }
void throw_out_of_range() { (void)std::vector<int>{}.at(3); }
void throw_mproc_error() { throw mproc::error(mproc::errc::timeout, "child context"); }
void throw_int() { throw 42; }
void throw_huge_message(int size) { throw std::runtime_error(std::string(static_cast<std::size_t>(size), 'm')); }
void raise_segv() { die_of(SIGSEGV); }
void raise_signal(int sig) { die_of(sig); }
void call_abort() {
  no_core_dump();
  std::abort();
}
void sleep_long() { std::this_thread::sleep_for(60s); }
void ignore_sigterm_and_sleep() {
  ::signal(SIGTERM, SIG_IGN);
  std::this_thread::sleep_for(60s);
}

}  // namespace exitcode_test

using namespace exitcode_test;

MPROC_ENTRY(return_normally);
MPROC_ENTRY(call_exit);
MPROC_ENTRY(call_underscore_exit);
MPROC_ENTRY(throw_runtime_error);
MPROC_ENTRY(throw_custom_error);
MPROC_ENTRY(throw_out_of_range);
MPROC_ENTRY(throw_mproc_error);
MPROC_ENTRY(throw_int);
MPROC_ENTRY(throw_huge_message);
MPROC_ENTRY(raise_segv);
MPROC_ENTRY(raise_signal);
MPROC_ENTRY(call_abort);
MPROC_ENTRY(sleep_long);
MPROC_ENTRY(ignore_sigterm_and_sleep);

namespace {

using exitcode = method_test;

TEST_P(exitcode, zero_on_return) {
  auto p = start(return_normally);
  EXPECT_EQ(finish(p), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(p.exception());
}

TEST_P(exitcode, n_for_exit_n) {
  for (int n : {0, 1, 7, 255}) {
    auto p = start(call_exit, n);
    EXPECT_EQ(finish(p), n) << "std::exit(" << n << ")";
    EXPECT_FALSE(p.exception());
  }
  auto q = start(call_underscore_exit, 42);
  EXPECT_EQ(finish(q), 42) << "_exit(42)";
}

TEST_P(exitcode, one_for_uncaught_exception_with_type_and_message) {
  auto p = start(throw_runtime_error, std::string{"boom in child"});
  EXPECT_EQ(finish(p), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->type, "std::runtime_error");
  EXPECT_EQ(p.exception()->message, "boom in child");
}

TEST_P(exitcode, exception_types_are_the_dynamic_demangled_type) {
  auto custom = start(throw_custom_error, std::string{"custom"});
  EXPECT_EQ(finish(custom), 1);
  ASSERT_TRUE(custom.exception());
  EXPECT_EQ(custom.exception()->type, "exitcode_test::custom_error");
  EXPECT_EQ(custom.exception()->message, "custom");

  auto range = start(throw_out_of_range);
  EXPECT_EQ(finish(range), 1);
  ASSERT_TRUE(range.exception());
  EXPECT_EQ(range.exception()->type, "std::out_of_range");
  EXPECT_FALSE(range.exception()->message.empty());

  auto own = start(throw_mproc_error);
  EXPECT_EQ(finish(own), 1);
  ASSERT_TRUE(own.exception());
  EXPECT_EQ(own.exception()->type, "mproc::error");
  EXPECT_NE(own.exception()->message.find("child context"), std::string::npos) << own.exception()->message;

  auto empty = start(throw_runtime_error, std::string{});
  EXPECT_EQ(finish(empty), 1);
  ASSERT_TRUE(empty.exception());
  EXPECT_EQ(empty.exception()->message, "");
}

TEST_P(exitcode, non_std_exception_type_is_named) {
  auto p = start(throw_int);
  EXPECT_EQ(finish(p), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->type, "int");
  EXPECT_EQ(p.exception()->message, "");
}

TEST_P(exitcode, huge_exception_message_does_not_block_the_child) {
  auto p = start(throw_huge_message, 4 << 20);
  EXPECT_EQ(finish(p), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->type, "std::runtime_error");
  EXPECT_GE(p.exception()->message.size(), 1024u);
  EXPECT_LE(p.exception()->message.size(), std::size_t{4} << 20);
  EXPECT_EQ(p.exception()->message.find_first_not_of('m'), std::string::npos);
}

TEST_P(exitcode, minus_sigterm_after_terminate) {
  auto p = start(sleep_long);
  EXPECT_FALSE(p.join(20ms));
  p.terminate();
  EXPECT_EQ(finish(p), -SIGTERM);
  EXPECT_FALSE(p.exception());
}

TEST_P(exitcode, minus_sigkill_after_kill) {
  auto p = start(ignore_sigterm_and_sleep);
  EXPECT_FALSE(p.join(50ms));  // time to install SIG_IGN; kill() cannot be ignored anyway
  p.kill();
  EXPECT_EQ(finish(p), -SIGKILL);
}

TEST_P(exitcode, terminate_is_ignorable_kill_is_not) {
  auto p = start(ignore_sigterm_and_sleep);
  // Give the child time to install SIG_IGN (a SIGTERM before that would kill it).
  ASSERT_TRUE(mproc::test::eventually([&] {
    auto status = mproc::test::read_file("/proc/" + std::to_string(p.pid()) + "/status");
    auto at = status.find("SigIgn:");
    return at != std::string::npos &&
           (std::stoull(status.substr(at + 7), nullptr, 16) & (1ull << (SIGTERM - 1))) != 0;
  }));
  p.terminate();
  EXPECT_FALSE(p.join(200ms));
  EXPECT_TRUE(p.is_alive());
  p.kill();
  EXPECT_EQ(finish(p), -SIGKILL);
}

TEST_P(exitcode, minus_eleven_for_sigsegv) {
  auto p = start(raise_segv);
  EXPECT_EQ(finish(p), -SIGSEGV);
  EXPECT_EQ(-SIGSEGV, -11);
  EXPECT_FALSE(p.exception());
}

TEST_P(exitcode, minus_n_for_other_signals) {
  auto usr1 = start(raise_signal, SIGUSR1);
  EXPECT_EQ(finish(usr1), -SIGUSR1);
  auto abrt = start(call_abort);
  EXPECT_EQ(finish(abrt), -SIGABRT);
}

TEST_P(exitcode, signal_from_outside_the_library) {
  auto p = start(sleep_long);
  ASSERT_EQ(::kill(p.pid(), SIGUSR2), 0);
  EXPECT_EQ(finish(p), -SIGUSR2);
}

TEST_P(exitcode, no_exitcode_or_exception_while_running) {
  auto p = start(sleep_long);
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.exitcode());
  EXPECT_FALSE(p.exception());
  p.kill();
  EXPECT_EQ(finish(p), -SIGKILL);
  // Stable once known.
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_TRUE(p.join(0ms));
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(method, exitcode, mproc::test::all_start_methods(), mproc::test::method_name);

// Not a method_test: a forkserver child writes to the fork server's stderr, which is the one the
// program had when the node was made, so stderr is captured before the node exists.
class exitcode_stderr : public testing::TestWithParam<mproc::start_method> {};

TEST_P(exitcode_stderr, exception_is_printed_to_stderr_like_python) {
  testing::internal::CaptureStderr();  // fd 2 now goes to a file, which children inherit
  int code = -1000;
  {
    mproc::node node{mproc::test::with_method(GetParam())};
    mproc::test::guard watchdog;
    mproc::process p{node, throw_runtime_error, std::string{"printed in the child"}};
    p.set_name("loud-worker");
    p.start();
    watchdog.add(p);
    if (p.join(20s)) code = p.exitcode().value_or(-2000);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("Process loud-worker:"), std::string::npos) << err;
  EXPECT_NE(err.find("std::runtime_error: printed in the child"), std::string::npos) << err;
}

INSTANTIATE_TEST_SUITE_P(method, exitcode_stderr, mproc::test::all_start_methods(), mproc::test::method_name);

}  // namespace
