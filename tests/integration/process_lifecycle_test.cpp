// The process handle under every start method: pid, join with and without timeout, is_alive,
// names, current_process() in the child, arguments, the subclass form, children of children,
// and calls from several threads at once.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
using mproc::test::method_test;
using mproc::test::read_file;

namespace lifecycle_test {

enum class shade : std::uint8_t { light = 3, dark = 200 };

struct payload {
  std::string text;
  std::vector<int> values;
  std::map<std::string, double> weights;
  std::optional<std::string> note;
  template <class F>
  friend void inspect(F& f, payload& p) {
    f(p.text, p.values, p.weights, p.note);
  }
};

payload sample_payload() { return {"inner", {4, 5}, {{"w", 0.5}}, std::string{"note"}}; }

/// Writes "who am I" as seen by the child.
void write_identity(const std::string& file) {
  auto me = mproc::current_process();
  std::ofstream{file} << me.name << '\n'
                      << me.pid << '\n'
                      << me.parent_pid << '\n'
                      << me.daemon << '\n'
                      << ::getpid() << '\n'
                      << mproc::parent_pid() << '\n';
}

struct identity {
  std::string name;
  pid_t pid = 0, parent_pid = 0;
  int daemon = -1;
  pid_t getpid = 0, parent_pid_shorthand = 0;
};

identity read_identity(const std::string& file) {
  std::istringstream in{read_file(file)};
  identity id;
  std::getline(in, id.name);
  in >> id.pid >> id.parent_pid >> id.daemon >> id.getpid >> id.parent_pid_shorthand;
  return id;
}

}  // namespace lifecycle_test

using namespace lifecycle_test;

namespace {

void return_normally() {}
void exit_with(int code) { std::exit(code); }
void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void report_identity(std::string file) { write_identity(file); }

void check_args(std::string s, std::vector<int> v, payload p, double d, shade c, std::vector<std::string> words,
                std::variant<int, std::string> alt, std::tuple<int, std::string> tup) {
  auto expected = sample_payload();
  bool ok = s == "text" && v == std::vector<int>{1, 2, 3} && p.text == expected.text && p.values == expected.values &&
            p.weights == expected.weights && p.note == expected.note && d == 2.5 && c == shade::dark &&
            words == std::vector<std::string>{"a", "", "b c"} && std::get<std::string>(alt) == "alt" &&
            tup == std::tuple<int, std::string>{7, "seven"};
  std::exit(ok ? 0 : 99);
}

void check_big_arg(std::string big, std::vector<std::int64_t> numbers) {
  bool ok = big.size() == (8u << 20) && big.find_first_not_of('b') == std::string::npos && numbers.size() == 1000000;
  for (std::size_t i = 0; ok && i < numbers.size(); ++i) ok = numbers[i] == static_cast<std::int64_t>(i);
  std::exit(ok ? 0 : 99);
}

void check_no_args_and_ref_params(const std::string& s, const std::vector<int>& v) {
  std::exit(s == "by const ref" && v.size() == 2 ? 0 : 99);
}

/// Spawns a grandchild that reports its identity, joins it, writes its own pid next to it.
void spawn_grandchild(std::string dir) {
  auto& node = mproc::node::current();
  mproc::process g{node, report_identity, dir + "/grandchild"};
  g.start();
  std::ofstream{dir + "/child"} << ::getpid() << '\n' << g.name() << '\n';
  g.join();
  std::exit(g.exitcode() == 0 ? 0 : 98);
}

void spawn_failing_grandchild(int code) {
  auto p = mproc::node::current().spawn(exit_with, code);
  p.join();
  std::exit(p.exitcode() == code ? 0 : 98);
}

}  // namespace

MPROC_ENTRY(return_normally);
MPROC_ENTRY(exit_with);
MPROC_ENTRY(sleep_ms);
MPROC_ENTRY(report_identity);
MPROC_ENTRY(check_args);
MPROC_ENTRY(check_big_arg);
MPROC_ENTRY(check_no_args_and_ref_params);
MPROC_ENTRY(spawn_grandchild);
MPROC_ENTRY(spawn_failing_grandchild);

// ---- the subclass form ------------------------------------------------------------------

namespace lifecycle_test {

class worker : public mproc::process {
 public:
  worker() = default;
  explicit worker(mproc::node& n) : mproc::process(n) {}
  int code = 0;
  std::string file;
  std::vector<std::string> items;
  template <class F>
  friend void inspect(F& f, worker& w) {
    f(w.code, w.file, w.items);
  }

 protected:
  void run() override {
    // The state arrived, and this object is the handle of the running process.
    std::ofstream{file} << name() << '\n' << pid() << '\n' << items.size() << '\n';
    std::error_code ec;
    join(ec);  // joining oneself is misuse, not a deadlock
    bool ok = items == std::vector<std::string>{"x", "y z"} && ec == mproc::errc::invalid_argument &&
              mproc::current_process().name == name() && pid() == ::getpid();
    std::exit(ok ? code : 97);
  }
};

class stateless : public mproc::process {
 protected:
  void run() override { std::exit(mproc::current_process().name.empty() ? 96 : 21); }
};

class thrower : public mproc::process {
 public:
  std::string what;
  template <class F>
  friend void inspect(F& f, thrower& t) {
    f(t.what);
  }

 protected:
  void run() override { throw std::logic_error(what); }
};

}  // namespace lifecycle_test

MPROC_PROCESS_CLASS(lifecycle_test::worker);
MPROC_PROCESS_CLASS(lifecycle_test::stateless);
MPROC_PROCESS_CLASS(lifecycle_test::thrower);

namespace {

using lifecycle = method_test;

TEST_P(lifecycle, pid_is_a_real_other_process) {
  auto p = start(sleep_ms, 5000);
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), ::getpid());
  EXPECT_TRUE(mproc::test::running(p.pid()));
  EXPECT_TRUE(p.is_alive());
  pid_t pid = p.pid();
  p.kill();
  EXPECT_EQ(finish(p), -SIGKILL);
  EXPECT_EQ(p.pid(), pid);  // still known after exit
  EXPECT_FALSE(p.is_alive());
}

TEST_P(lifecycle, join_timeout_returns_false_while_alive_then_true_after_terminate) {
  auto p = start(sleep_ms, 60000);
  auto t0 = mproc::test::steady::now();
  EXPECT_FALSE(p.join(150ms));
  auto waited = mproc::test::steady::now() - t0;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 10s);
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.exitcode());
  EXPECT_FALSE(p.join(0ms));  // a zero timeout is a poll
  std::error_code ec;
  EXPECT_FALSE(p.join(1ms, ec));
  EXPECT_FALSE(ec);
  p.terminate();
  EXPECT_TRUE(p.join(20s));
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_TRUE(p.join(0ms));  // and again: done is done
  p.join();
  // Signals after exit are no-ops (never a signal to a recycled pid), and no error.
  p.terminate();
  p.kill();
  p.terminate(ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST_P(lifecycle, join_waits_for_a_short_child) {
  auto p = start(sleep_ms, 200);
  auto t0 = mproc::test::steady::now();
  p.join();
  EXPECT_GE(mproc::test::steady::now() - t0, 150ms);
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(lifecycle, default_names_count_per_node_and_the_child_sees_its_name) {
  mproc::test::temp_dir dir;
  auto first = start(report_identity, (dir / "first").string());
  auto second = start(return_normally);
  EXPECT_EQ(first.name(), "process-1");
  EXPECT_EQ(second.name(), "process-2");
  EXPECT_EQ(finish(first), 0);
  EXPECT_EQ(finish(second), 0);
  EXPECT_EQ(read_identity((dir / "first").string()).name, "process-1");
}

TEST_P(lifecycle, set_name_reaches_the_child) {
  mproc::test::temp_dir dir;
  mproc::process p{node, report_identity, (dir / "id").string()};
  p.set_name("worker-a");
  EXPECT_EQ(p.name(), "worker-a");
  p.start();
  watchdog.add(p);
  EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(p.name(), "worker-a");
  EXPECT_EQ(read_identity((dir / "id").string()).name, "worker-a");
}

TEST_P(lifecycle, current_process_in_the_child) {
  mproc::test::temp_dir dir;
  mproc::process p{node, report_identity, (dir / "id").string()};
  p.set_daemon(true);
  p.start();
  watchdog.add(p);
  EXPECT_EQ(finish(p), 0);
  auto id = read_identity((dir / "id").string());
  EXPECT_EQ(id.pid, p.pid());
  EXPECT_EQ(id.getpid, p.pid());
  // The node's process, also when a fork server did the fork.
  EXPECT_EQ(id.parent_pid, ::getpid());
  EXPECT_EQ(id.parent_pid_shorthand, ::getpid());
  EXPECT_EQ(id.daemon, 1);
}

TEST(lifecycle_main, current_process_in_the_main_process) {
  auto me = mproc::current_process();
  EXPECT_EQ(me.name, "MainProcess");
  EXPECT_EQ(me.pid, ::getpid());
  EXPECT_EQ(me.parent_pid, ::getppid());
  EXPECT_EQ(mproc::parent_pid(), ::getppid());
  EXPECT_FALSE(me.daemon);
  mproc::node node;  // unchanged by having a node
  EXPECT_EQ(mproc::current_process().name, "MainProcess");
}

TEST_P(lifecycle, arguments_of_many_types_arrive_intact) {
  auto p = start(check_args, std::string{"text"}, std::vector<int>{1, 2, 3}, sample_payload(), 2.5, shade::dark,
                 std::vector<std::string>{"a", "", "b c"}, std::variant<int, std::string>{std::string{"alt"}},
                 std::tuple<int, std::string>{7, "seven"});
  EXPECT_EQ(finish(p), 0) << "99: the child saw different values";
}

TEST_P(lifecycle, arguments_are_converted_to_the_parameter_types) {
  // const char* -> std::string, initializer list -> vector, const& parameters.
  auto p = start(check_no_args_and_ref_params, "by const ref", std::vector<int>{1, 2});
  EXPECT_EQ(finish(p), 0);
}

TEST_P(lifecycle, large_arguments_arrive_intact) {
  // Far larger than a socket buffer: the start message must not deadlock.
  std::vector<std::int64_t> numbers(1000000);
  for (std::size_t i = 0; i < numbers.size(); ++i) numbers[i] = static_cast<std::int64_t>(i);
  auto p = start(check_big_arg, std::string(8u << 20, 'b'), numbers);
  EXPECT_EQ(finish(p), 0);
}

TEST_P(lifecycle, subclass_state_arrives_in_the_child) {
  mproc::test::temp_dir dir;
  worker w{node};
  w.code = 5;
  w.file = (dir / "w").string();
  w.items = {"x", "y z"};
  w.set_name("subclassed");
  w.set_start_method(GetParam());
  w.start();
  watchdog.add(w);
  EXPECT_EQ(finish(w), 5) << "97: wrong state, name or self-join result in the child";
  std::istringstream in{read_file(dir / "w")};
  std::string name;
  pid_t pid = 0;
  std::size_t items = 0;
  in >> name >> pid >> items;
  EXPECT_EQ(name, "subclassed");
  EXPECT_EQ(pid, w.pid());
  EXPECT_EQ(items, 2u);
}

TEST_P(lifecycle, subclass_without_node_uses_the_current_one) {
  stateless s;  // not bound: node::current() at start()
  s.set_start_method(GetParam());
  s.start();
  watchdog.add(s);
  EXPECT_EQ(finish(s), 21);
}

TEST_P(lifecycle, subclass_exception_reaches_the_parent) {
  thrower t;
  t.what = "from run()";
  t.set_start_method(GetParam());
  t.start();
  watchdog.add(t);
  EXPECT_EQ(finish(t), 1);
  ASSERT_TRUE(t.exception());
  EXPECT_EQ(t.exception()->type, "std::logic_error");
  EXPECT_EQ(t.exception()->message, "from run()");
}

TEST_P(lifecycle, child_spawns_and_joins_its_own_child) {
  mproc::test::temp_dir dir;
  auto p = start(spawn_grandchild, dir.path().string());
  EXPECT_EQ(finish(p), 0);
  std::istringstream child{read_file(dir / "child")};
  pid_t child_pid = 0;
  std::string grandchild_name;
  child >> child_pid >> grandchild_name;
  EXPECT_EQ(child_pid, p.pid());
  auto g = read_identity((dir / "grandchild").string());
  EXPECT_EQ(g.parent_pid, p.pid());  // its node is the child
  EXPECT_NE(g.pid, p.pid());
  EXPECT_EQ(g.name, grandchild_name);
  EXPECT_EQ(g.name, p.name() + ":1") << "a child's child is named process-<parent id>:N";
  auto q = start(spawn_failing_grandchild, 33);
  EXPECT_EQ(finish(q), 0) << "98: the grandchild's exit code did not reach the child";
}

TEST_P(lifecycle, join_from_many_threads_at_once) {
  auto p = start(sleep_ms, 300);
  std::atomic<int> joined{0}, timed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      p.join();
      if (p.exitcode() == 0) ++joined;
    });
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] {
      while (!p.join(7ms)) {
      }
      ++timed;
    });
  threads.emplace_back([&] {
    while (p.is_alive()) std::this_thread::sleep_for(1ms);
    if (p.exitcode().has_value()) ++timed;
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(joined, 4);
  EXPECT_EQ(timed, 3);
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(lifecycle, terminate_while_others_join) {
  auto p = start(sleep_ms, 60000);
  std::vector<std::thread> threads;
  std::atomic<int> saw_sigterm{0};
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&] {
      p.join();
      if (p.exitcode() == -SIGTERM) ++saw_sigterm;
    });
  std::this_thread::sleep_for(50ms);
  std::thread killer{[&] { p.terminate(); }};
  killer.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(saw_sigterm, 3);
}

TEST_P(lifecycle, not_alive_implies_exitcode_is_known) {
  // Poll is_alive() while short-lived children exit: whenever it says false, exitcode() must
  // already have a value (Python's guarantee), from this thread and from another.
  for (int round = 0; round < 5; ++round) {
    auto p = start(sleep_ms, round * 3);
    std::atomic<bool> violated{false};
    std::thread other{[&] {
      while (p.is_alive()) std::this_thread::yield();
      if (!p.exitcode().has_value()) violated = true;
    }};
    while (p.is_alive()) std::this_thread::yield();
    EXPECT_TRUE(p.exitcode().has_value()) << "round " << round;
    other.join();
    EXPECT_FALSE(violated) << "round " << round;
    EXPECT_EQ(p.exitcode(), 0);
  }
}

TEST_P(lifecycle, a_moved_handle_keeps_working) {
  auto p = start(sleep_ms, 50);
  mproc::process moved{std::move(p)};
  EXPECT_TRUE(moved.is_alive() || moved.exitcode().has_value());
  std::vector<mproc::process> many;
  many.push_back(std::move(moved));
  EXPECT_EQ(finish(many[0]), 0);
}

INSTANTIATE_TEST_SUITE_P(method, lifecycle, mproc::test::all_start_methods(), mproc::test::method_name);

// ---- the fork method's extras -----------------------------------------------------------

struct functor {
  int base;
  void operator()(int add) const { std::exit(base + add); }
};

TEST(fork_method, runs_a_capturing_lambda) {
  mproc::node node;
  mproc::test::guard watchdog;
  int expected = 17;
  std::string captured = "seen by the child";
  mproc::process p{node, [&] { std::exit(captured == "seen by the child" ? expected : 1); }};
  p.set_start_method(start_method::fork);
  p.start();
  watchdog.add(p);
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 17);
}

TEST(fork_method, lambda_with_arguments_and_functors) {
  mproc::node node{mproc::test::with_method(start_method::fork)};  // the node's default
  mproc::test::guard watchdog;
  mproc::process a{node, [](int x, std::string s) { std::exit(s == "s" ? x : 1); }, 9, std::string{"s"}};
  a.start();
  watchdog.add(a);
  mproc::process b{node, functor{20}, 3};
  b.start();
  watchdog.add(b);
  std::function<void()> fn = [] { throw std::runtime_error("from std::function"); };
  mproc::process c{node, fn};
  c.start();
  watchdog.add(c);
  ASSERT_TRUE(a.join(20s) && b.join(20s) && c.join(20s));
  EXPECT_EQ(a.exitcode(), 9);
  EXPECT_EQ(b.exitcode(), 23);
  EXPECT_EQ(c.exitcode(), 1);
  ASSERT_TRUE(c.exception());
  EXPECT_EQ(c.exception()->message, "from std::function");
}

TEST(fork_method, the_child_gets_a_copy_not_shared_memory) {
  mproc::node node;
  mproc::test::guard watchdog;
  int value = 1;
  mproc::process p{node, [&] {
                     value = 2;  // the child's copy
                     std::exit(value);
                   }};
  p.set_start_method(start_method::fork);
  p.start();
  watchdog.add(p);
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 2);
  EXPECT_EQ(value, 1);
}

}  // namespace
