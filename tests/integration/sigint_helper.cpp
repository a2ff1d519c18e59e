// A node for sigint_test.cpp to interrupt from outside (SIGINT must reach a process of its own).
//
//   sigint_helper <mode> <forkserver|spawn|fork> <runtime-root>
//
// Every mode starts two children with the given method and kill_grace 300 ms: "sleeper", which
// sleeps, and "stubborn", which ignores SIGTERM and sleeps (so only SIGKILL or SIGINT ends it).
// It announces, one "<what> <value>" line each, in any order:
//
//   node <pid>, runtime-dir <path>, sleeper <pid>, stubborn <pid>
//   stubborn-ready <pid>        printed by the stubborn child once SIGTERM is ignored
//   ready <pid>                 the node is about to do what the mode says
//
// Modes:
//   join          block in sleeper.join(); on errc::interrupted print "interrupted", join both
//                 children again, print "exitcode-sleeper <n>" and "exitcode-stubborn <n>",
//                 and return 3 (4 for any other outcome)
//   timed-join    the same with sleeper.join(60 s)
//   busy          spin, inside no mproc call (so the node itself must die of SIGINT)
//   pool-busy     like busy, with a pool of two workers each running a long task (the pool's
//                 manager thread waits on the workers; that must not count as a blocked call)
//   pool-get, pool-imap, pool-join
//                 with that pool, block in a task's get(), in imap over two more long tasks, or
//                 in close() + join(); on errc::interrupted print "interrupted" and return 3
//                 (4 for any other outcome)
//   host-stop     start an actor host whose actor makes it ignore SIGTERM, then block in
//                 actor_host::stop(60 s) (a wait of mproc's own: it must not take the interrupt,
//                 so the node dies of SIGINT); print "stop-returned" and return 5 if it returns
//   shutdown      return from main: the node's destructor blocks joining both children
//   unhandled     like busy, but with node_options::handle_sigint = false
#include <mproc/actor_host.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <caf/all.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/// One line, one write: lines of several processes share the pipe and must not interleave.
void announce(const std::string& what, const std::string& value) {
  std::ostringstream line;
  line << what << ' ' << value << '\n';
  std::cout << line.str() << std::flush;
}
void announce(const std::string& what, long value) { announce(what, std::to_string(value)); }

void sleep_long() { std::this_thread::sleep_for(std::chrono::minutes(5)); }
int long_task() {
  sleep_long();
  return 0;
}
int long_item(int x) {
  sleep_long();
  return x;
}
void stubborn_sleep() {
  ::signal(SIGTERM, SIG_IGN);
  announce("stubborn-ready", ::getpid());
  std::this_thread::sleep_for(std::chrono::minutes(5));
}

int report_interrupted_join(mproc::process& sleeper, mproc::process& stubborn, bool timed) {
  try {
    if (timed) {
      bool exited = sleeper.join(std::chrono::seconds(60));
      announce("join-returned", exited ? "exited" : "timeout");
    } else {
      sleeper.join();
      announce("join-returned", "exited");
    }
    return 4;
  } catch (const mproc::error& e) {
    if (e.code() != mproc::errc::interrupted) {
      announce("other-error", e.what());
      return 4;
    }
  }
  announce("interrupted", ::getpid());
  // The node is terminating the children; joining again (no interrupt pending now) sees them end.
  for (auto* p : {&sleeper, &stubborn}) {
    std::error_code ec;
    bool exited = p->join(std::chrono::seconds(20), ec);
    std::string what = p == &sleeper ? "exitcode-sleeper" : "exitcode-stubborn";
    if (ec) announce(what, "error:" + ec.message());
    else if (!exited) announce(what, "timeout");
    else announce(what, *p->exitcode());
  }
  return 3;
}

/// Blocks in a call on the pool (its two workers run long tasks) until Ctrl-C.
int report_interrupted_pool_call(const std::string& mode, mproc::pool& pool, mproc::async_result<int>& task) {
  try {
    if (mode == "pool-get") {
      task.get();
    } else if (mode == "pool-imap") {
      for (int v : pool.imap(long_item, std::vector<int>{1, 2})) announce("imap-value", v);
    } else {
      pool.close();
      pool.join();
    }
    announce("pool-call-returned", mode);
  } catch (const mproc::error& e) {
    if (e.code() == mproc::errc::interrupted) {
      announce("interrupted", ::getpid());
      return 3;
    }
    announce("other-error", e.what());
  }
  return 4;
}

/// Makes its host process ignore SIGTERM (so only SIGKILL ends it); answers what it is sent.
caf::behavior sigterm_ignorer(caf::event_based_actor*, int) {
  std::signal(SIGTERM, SIG_IGN);
  return {[](int x) { return x; }};
}

int report_stopped_host(mproc::node& node) {
  auto host = mproc::spawn_host(node);
  announce("host", host.pid());
  mproc::request<int>(host.spawn("sigterm_ignorer", 0), std::chrono::seconds(10), 1);  // it is set up
  announce("ready", ::getpid());
  host.stop(std::chrono::seconds(60));
  announce("stop-returned", ::getpid());
  return 5;
}

}  // namespace

MPROC_ACTOR(sigterm_ignorer);
MPROC_ENTRY(sleep_long);
MPROC_ENTRY(stubborn_sleep);
MPROC_ENTRY(long_task);
MPROC_ENTRY(long_item);

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: sigint_helper <join|timed-join|busy|pool-busy|pool-get|pool-imap|pool-join|host-stop|shutdown|unhandled> <method> <runtime-root>\n";
    return 2;
  }
  std::string mode = argv[1], method = argv[2];
  mproc::node_options opts;
  opts.method = method == "spawn" ? mproc::start_method::spawn
                : method == "fork" ? mproc::start_method::fork
                                   : mproc::start_method::forkserver;
  opts.kill_grace = std::chrono::milliseconds(300);
  opts.runtime_root = argv[3];
  opts.handle_sigint = mode != "unhandled";
  mproc::node node{argc, argv, opts};
  announce("node", ::getpid());
  announce("runtime-dir", node.runtime_dir().string());
  auto sleeper = node.spawn(sleep_long);
  auto stubborn = node.spawn(stubborn_sleep);
  announce("sleeper", sleeper.pid());
  announce("stubborn", stubborn.pid());
  std::optional<mproc::pool> pool;
  std::vector<mproc::async_result<int>> tasks;
  if (mode.starts_with("pool-")) {
    pool.emplace(node, 2);
    for (int i = 0; i < 2; ++i) tasks.push_back(pool->apply_async(long_task));
  }
  if (mode == "host-stop") return report_stopped_host(node);
  announce("ready", ::getpid());
  if (mode == "join" || mode == "timed-join") return report_interrupted_join(sleeper, stubborn, mode == "timed-join");
  if (mode == "shutdown") return 0;  // ~node joins the children: only SIGINT ends that
  if (mode.starts_with("pool-") && mode != "pool-busy") return report_interrupted_pool_call(mode, *pool, tasks[0]);
  // busy, pool-busy, unhandled: working, not inside any mproc call.
  for (;;) {
    std::this_thread::yield();
#if defined(__SANITIZE_THREAD__)
    // TSan runs a signal's handler only when the thread it arrived on makes a call TSan
    // intercepts (or is blocked in one); g++ 12's runtime does not intercept sched_yield, so a
    // pure spin would never see SIGINT. nanosleep is intercepted.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
#endif
  }
}
