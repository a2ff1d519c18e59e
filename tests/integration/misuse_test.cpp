// API misuse gets a clear, typed error (mproc::errc), in both the throwing and the error_code
// forms, and leaves everything usable.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::start_method;

namespace {

void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void not_registered() { std::exit(12); }

class registered_class : public mproc::process {
 protected:
  void run() override { std::exit(13); }
};
class unregistered_class : public mproc::process {
 protected:
  void run() override { std::exit(14); }
};

}  // namespace

MPROC_ENTRY(nap);
MPROC_PROCESS_CLASS(registered_class);

// Compile-time misuse: these must not even compile, so they are checked as traits.
static_assert(!mproc::serializable<int*>, "raw pointers never cross a process boundary");
static_assert(!mproc::serializable<std::function<void()>>);
static_assert(!std::is_copy_constructible_v<mproc::process>, "a process handle is move-only");
static_assert(!std::is_copy_constructible_v<mproc::node>);
static_assert(!std::is_move_constructible_v<mproc::node>);

namespace {

/// The errc of the mproc::error `f` throws, or a description of what happened instead.
template <class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const mproc::error& e) {
    if (e.code().category() == mproc::category()) return e.code().message();
    return std::string{"non-mproc code: "} + e.code().message();
  } catch (const std::exception& e) {
    return std::string{"not an mproc::error: "} + e.what();
  }
  return "nothing thrown";
}
std::string msg(errc e) { return mproc::make_error_code(e).message(); }

TEST(misuse, calls_before_start_are_not_started) {
  mproc::node node;
  mproc::process p{node, nap, 0};
  EXPECT_EQ(thrown([&] { p.join(); }), msg(errc::not_started));
  EXPECT_EQ(thrown([&] { p.join(1ms); }), msg(errc::not_started));
  EXPECT_EQ(thrown([&] { p.terminate(); }), msg(errc::not_started));
  EXPECT_EQ(thrown([&] { p.kill(); }), msg(errc::not_started));
  std::error_code ec;
  p.join(ec);
  EXPECT_EQ(ec, errc::not_started);
  ec.clear();
  EXPECT_FALSE(p.join(1ms, ec));
  EXPECT_EQ(ec, errc::not_started);
  ec.clear();
  p.terminate(ec);
  EXPECT_EQ(ec, errc::not_started);
  ec.clear();
  p.kill(ec);
  EXPECT_EQ(ec, errc::not_started);
  // Queries are fine before start.
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.pid(), 0);
  EXPECT_FALSE(p.exitcode());
  EXPECT_FALSE(p.exception());
  // And the handle still starts normally afterwards.
  mproc::test::guard watchdog;
  p.start();
  watchdog.add(p);
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(misuse, start_twice_is_already_started) {
  mproc::node node;
  mproc::test::guard watchdog;
  mproc::process p{node, nap, 100};
  p.start();
  watchdog.add(p);
  pid_t pid = p.pid();
  EXPECT_EQ(thrown([&] { p.start(); }), msg(errc::already_started));
  std::error_code ec;
  p.start(ec);
  EXPECT_EQ(ec, errc::already_started);
  EXPECT_EQ(p.pid(), pid) << "a failed second start changed the handle";
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  // Also after exit: a process runs once (as in Python).
  EXPECT_EQ(thrown([&] { p.start(); }), msg(errc::already_started));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(misuse, setters_after_start_are_already_started) {
  mproc::node node;
  mproc::test::guard watchdog;
  mproc::process p{node, nap, 0};
  p.start();
  watchdog.add(p);
  EXPECT_EQ(thrown([&] { p.set_daemon(true); }), msg(errc::already_started));
  EXPECT_EQ(thrown([&] { p.set_start_method(start_method::fork); }), msg(errc::already_started));
  EXPECT_FALSE(p.daemon());
  EXPECT_EQ(p.method(), start_method::forkserver);
  EXPECT_TRUE(p.join(20s));
}

TEST(misuse, unregistered_function_needs_the_fork_method) {
  mproc::node node;
  mproc::test::guard watchdog;
  for (auto m : {start_method::forkserver, start_method::spawn}) {
    mproc::process p{node, not_registered};
    p.set_start_method(m);
    EXPECT_EQ(thrown([&] { p.start(); }), msg(errc::unknown_entry)) << mproc::to_string(m);
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.pid(), 0);
    std::error_code ec;
    p.start(ec);
    EXPECT_EQ(ec, errc::unknown_entry) << "the failed start must leave the handle startable-and-failing again";
  }
  EXPECT_TRUE(node.active_children().empty());
  mproc::process f{node, not_registered};
  f.set_start_method(start_method::fork);
  f.start();
  watchdog.add(f);
  EXPECT_TRUE(f.join(20s));
  EXPECT_EQ(f.exitcode(), 12);
}

TEST(misuse, unregistered_class_needs_the_fork_method) {
  mproc::node node;
  mproc::test::guard watchdog;
  for (auto m : {start_method::forkserver, start_method::spawn}) {
    unregistered_class u;
    u.set_start_method(m);
    EXPECT_EQ(thrown([&] { u.start(); }), msg(errc::unknown_entry)) << mproc::to_string(m);
    registered_class r;
    r.set_start_method(m);
    r.start();
    watchdog.add(r);
    EXPECT_TRUE(r.join(20s));
    EXPECT_EQ(r.exitcode(), 13);
  }
  unregistered_class f;
  f.set_start_method(start_method::fork);
  f.start();
  watchdog.add(f);
  EXPECT_TRUE(f.join(20s));
  EXPECT_EQ(f.exitcode(), 14);
}

TEST(misuse, capturing_lambda_needs_the_fork_method) {
  mproc::node node;
  mproc::test::guard watchdog;
  int x = 3;
  for (auto m : {start_method::forkserver, start_method::spawn}) {
    mproc::process p{node, [&] { std::exit(x); }};
    p.set_start_method(m);
    EXPECT_EQ(thrown([&] { p.start(); }), msg(errc::unsupported_target)) << mproc::to_string(m);
    EXPECT_FALSE(p.is_alive());
  }
  // Not even a captureless lambda: it has no name another image could look up.
  mproc::process q{node, [] { std::exit(4); }};
  EXPECT_EQ(thrown([&] { q.start(); }), msg(errc::unsupported_target));
  mproc::process f{node, [&] { std::exit(x); }};
  f.set_start_method(start_method::fork);
  f.start();
  watchdog.add(f);
  EXPECT_TRUE(f.join(20s));
  EXPECT_EQ(f.exitcode(), 3);
}

TEST(misuse, a_second_node_is_invalid_argument) {
  mproc::node node;
  EXPECT_EQ(thrown([] { mproc::node second; }), msg(errc::invalid_argument));
  EXPECT_EQ(thrown([] { mproc::node second{mproc::test::with_method(start_method::spawn)}; }),
            msg(errc::invalid_argument));
  EXPECT_EQ(&mproc::node::current(), &node) << "the failed second node replaced the first";
  mproc::test::guard watchdog;
  auto p = node.spawn(nap, 0);
  watchdog.add(p);
  EXPECT_TRUE(p.join(20s));
}

TEST(misuse, nodes_one_after_another_are_fine) {
  for (int i = 0; i < 3; ++i) {
    mproc::node node;
    EXPECT_EQ(&mproc::node::current(), &node);
    mproc::test::guard watchdog;
    auto p = node.spawn(nap, 0);
    watchdog.add(p);
    EXPECT_TRUE(p.join(20s));
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_EQ(mproc::node::current_or_null(), nullptr);
}

TEST(misuse, no_node_at_all_is_no_node) {
  ASSERT_EQ(mproc::node::current_or_null(), nullptr);
  EXPECT_EQ(thrown([] { mproc::node::current(); }), msg(errc::no_node));
  registered_class lone;  // subclass form, bound to no node
  EXPECT_EQ(thrown([&] { lone.start(); }), msg(errc::no_node));
  std::error_code ec;
  lone.start(ec);
  EXPECT_EQ(ec, errc::no_node);
  EXPECT_FALSE(lone.is_alive());
  // With a node, the same handle starts.
  mproc::node node;
  mproc::test::guard watchdog;
  lone.start();
  watchdog.add(lone);
  EXPECT_TRUE(lone.join(20s));
  EXPECT_EQ(lone.exitcode(), 13);
}

TEST(misuse, process_of_a_destroyed_node_is_node_closed) {
  std::optional<mproc::process> p;
  {
    mproc::node node;
    p.emplace(node, nap, 0);
  }
  EXPECT_EQ(thrown([&] { p->start(); }), msg(errc::node_closed));
  // Even when another node exists now: it was bound to the first one.
  mproc::node other;
  EXPECT_EQ(thrown([&] { p->start(); }), msg(errc::node_closed));
}

}  // namespace
