// mproc::process under each start method: exit codes, exceptions, signals, timeouts, names,
// arguments, subclasses, nested children. Real processes and signals throughout.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;

namespace {

struct payload {
  std::string text;
  std::vector<int> values;
};
template <class F>
void inspect(F& f, payload& p) {
  f(p.text, p.values);
}

void return_normally() {}
void exit_with(int code) { std::exit(code); }
void throw_runtime_error(std::string what) { throw std::runtime_error(what); }
void throw_int() { throw 42; }
void raise_signal(int sig) { ::raise(sig); }
void sleep_long() { std::this_thread::sleep_for(60s); }
void check_args(std::string s, std::vector<int> v, payload p, double d) {
  bool ok = s == "text" && v == std::vector<int>{1, 2, 3} && p.text == "inner" && p.values == std::vector<int>{4} &&
            d == 2.5;
  std::exit(ok ? 0 : 99);
}
void write_identity(std::string file) {
  auto me = mproc::current_process();
  std::ofstream{file} << me.name << ' ' << me.parent_pid << ' ' << me.pid << ' ' << me.daemon;
}
void spawn_grandchild(int code) {
  auto p = mproc::node::current().spawn(exit_with, code);
  p.join();
  std::exit(*p.exitcode() == code ? 0 : 98);
}
}  // namespace

MPROC_ENTRY(return_normally);
MPROC_ENTRY(exit_with);
MPROC_ENTRY(throw_runtime_error);
MPROC_ENTRY(throw_int);
MPROC_ENTRY(raise_signal);
MPROC_ENTRY(sleep_long);
MPROC_ENTRY(check_args);
MPROC_ENTRY(write_identity);
MPROC_ENTRY(spawn_grandchild);

namespace {

class counter_process : public mproc::process {
 public:
  int code = 0;
  std::string tag;
  template <class F>
  friend void inspect(F& f, counter_process& p) {
    f(p.code, p.tag);
  }

 protected:
  void run() override { std::exit(tag == "subclass" ? code : 97); }
};

}  // namespace

MPROC_PROCESS_CLASS(counter_process);

namespace {

class process_test : public testing::TestWithParam<start_method> {
 protected:
  mproc::node node{mproc::test::with_method(GetParam())};

  template <class Fn, class... Args>
  mproc::process start(Fn fn, Args... args) {
    mproc::process p{node, fn, args...};
    p.start();
    cleanup.add(p);
    return p;
  }
  int run_to_end(mproc::process p) {
    p.join();
    return p.exitcode().value();
  }
  mproc::test::kill_on_exit cleanup;
};

TEST_P(process_test, exitcode_zero_on_return) {
  auto p = start(return_normally);
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), ::getpid());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(p.exception());
}

TEST_P(process_test, exitcode_n_for_exit_n) { EXPECT_EQ(run_to_end(start(exit_with, 7)), 7); }

TEST_P(process_test, uncaught_exception_reaches_parent) {
  auto p = start(throw_runtime_error, std::string{"boom in child"});
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->type, "std::runtime_error");
  EXPECT_EQ(p.exception()->message, "boom in child");
}

TEST_P(process_test, foreign_exception_type_is_named) {
  auto p = start(throw_int);
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->type, "int");
}

TEST_P(process_test, killed_by_signal_is_negative) {
  // SIGUSR1 and SIGABRT (abort) rather than SIGSEGV: sanitizers catch SIGSEGV themselves.
  EXPECT_EQ(run_to_end(start(raise_signal, SIGUSR1)), -SIGUSR1);
  EXPECT_EQ(run_to_end(start(raise_signal, SIGABRT)), -SIGABRT);
}

TEST_P(process_test, join_timeout_then_terminate) {
  auto p = start(sleep_long);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.exitcode());
  p.terminate();
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  p.terminate();  // after exit: a no-op, never a signal to a recycled pid
}

TEST_P(process_test, kill_gives_minus_sigkill) {
  auto p = start(sleep_long);
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_P(process_test, arguments_arrive_intact) {
  auto p = start(check_args, std::string{"text"}, std::vector<int>{1, 2, 3}, payload{"inner", {4}}, 2.5);
  EXPECT_EQ(run_to_end(std::move(p)), 0);
}

TEST_P(process_test, names_and_parent_pid_seen_by_child) {
  mproc::test::temp_dir dir;
  auto file = (dir.path() / "id").string();
  mproc::process p{node, write_identity, file};
  EXPECT_EQ(p.name(), "");
  p.set_name("worker-a");
  p.start();
  cleanup.add(p);
  p.join();
  std::ifstream in{file};
  std::string name;
  pid_t parent = 0, self = 0;
  int daemon = -1;
  in >> name >> parent >> self >> daemon;
  EXPECT_EQ(name, "worker-a");
  EXPECT_EQ(parent, ::getpid());  // the node, also when a fork server did the fork
  EXPECT_EQ(self, p.pid());
  EXPECT_EQ(daemon, 0);

  auto q = start(return_normally);
  EXPECT_EQ(q.name().rfind("process-", 0), 0u) << q.name();
  q.join();
}

TEST_P(process_test, subclass_with_state) {
  counter_process c;
  c.code = 5;
  c.tag = "subclass";
  c.set_start_method(GetParam());
  c.start();
  cleanup.add(c);
  c.join();
  EXPECT_EQ(c.exitcode(), 5);
}

TEST_P(process_test, child_spawns_its_own_child) { EXPECT_EQ(run_to_end(start(spawn_grandchild, 3)), 0); }

TEST_P(process_test, concurrent_joins_all_return) {
  auto p = start(exit_with, 4);
  std::vector<std::thread> joiners;
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i)
    joiners.emplace_back([&] {
      p.join();
      ++done;
    });
  for (auto& t : joiners) t.join();
  EXPECT_EQ(done, 4);
  EXPECT_EQ(p.exitcode(), 4);
}

TEST_P(process_test, is_alive_false_implies_exitcode) {
  auto p = start(return_normally);
  ASSERT_TRUE(mproc::test::eventually([&] { return !p.is_alive(); }));
  EXPECT_TRUE(p.exitcode().has_value());
}

INSTANTIATE_TEST_SUITE_P(all_methods, process_test,
                         testing::Values(start_method::forkserver, start_method::spawn, start_method::fork),
                         [](const auto& param_info) { return std::string{mproc::to_string(param_info.param)}; });

TEST(fork_method, runs_capturing_lambda) {
  mproc::node node;
  int expected = 17;
  mproc::process p{node, [&] { std::exit(expected); }};
  p.set_start_method(start_method::fork);
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 17);
}

}  // namespace
