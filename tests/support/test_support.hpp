// Helpers shared by the integration tests: /proc inspection and cleanup guards.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <mproc/node.hpp>
#include <mproc/process.hpp>

namespace mproc::test {

inline mproc::node_options with_method(mproc::start_method m) {
  mproc::node_options o;
  o.method = m;
  return o;
}

inline mproc::node_options with_root(const std::filesystem::path& root) {
  mproc::node_options o;
  o.runtime_root = root;
  return o;
}

/// True while /proc/<pid> exists and is not a zombie.
inline bool pid_running(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  if (!std::getline(in, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

/// Children of `parent` that are zombies, from /proc/*/stat.
inline std::vector<pid_t> zombie_children(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator{"/proc"}) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in{e.path() / "stat"};
    std::string stat;
    if (!std::getline(in, stat)) continue;
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = stat[close + 2];
    pid_t ppid = std::atoi(stat.c_str() + close + 4);
    if (ppid == parent && state == 'Z') out.push_back(std::atoi(name.c_str()));
  }
  return out;
}

/// Polls `cond` until it holds or `limit` passes.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

/// SIGKILLs the given pids when the scope ends, so a failed assertion leaves nothing running.
class kill_on_exit {
 public:
  kill_on_exit() = default;
  kill_on_exit(const kill_on_exit&) = delete;
  kill_on_exit& operator=(const kill_on_exit&) = delete;
  ~kill_on_exit() {
    for (pid_t p : pids_)
      if (p > 0) ::kill(p, SIGKILL);
  }
  void add(pid_t p) { pids_.push_back(p); }
  void add(const mproc::process& p) { pids_.push_back(p.pid()); }

 private:
  std::vector<pid_t> pids_;
};

/// A fresh private directory for one test; removed with it.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mproc-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace mproc::test
