#include "raw_baselines.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace bench {
namespace {
using clock_type = std::chrono::steady_clock;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }
}  // namespace

void place_all_threads(pid_t pid, bool pinned) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pinned) {
    CPU_SET(0, &set);
  } else {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &set);
  }
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    ::sched_setaffinity(static_cast<pid_t>(std::stol(task.path().filename().string())), sizeof set, &set);
}

double raw_af_unix_rtt_us(int n) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
  pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    ::close(sv[0]);
    std::int64_t v;
    while (::read(sv[1], &v, sizeof v) == sizeof v) {
      ++v;
      if (::write(sv[1], &v, sizeof v) != sizeof v) break;
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  auto once = [&](std::int64_t i) {
    std::int64_t v = i;
    if (::write(sv[0], &v, sizeof v) != sizeof v || ::read(sv[0], &v, sizeof v) != sizeof v || v != i + 1)
      fail("raw ping-pong failed");
  };
  for (int i = 0; i < 100; ++i) once(i);
  auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) once(i);
  double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n;
  ::close(sv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return us;
}

}  // namespace bench
