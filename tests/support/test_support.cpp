#include "test_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mproc::test {
namespace fs = std::filesystem;

mproc::start_method parse_method(const std::string& name) {
  if (name == "forkserver") return mproc::start_method::forkserver;
  if (name == "spawn") return mproc::start_method::spawn;
  if (name == "fork") return mproc::start_method::fork;
  throw std::invalid_argument("unknown start method " + name);
}

// ---- /proc, async-signal-safe core ------------------------------------------------------
//
// The watchdog runs from a signal handler, so the scanning core uses raw syscalls, fixed
// buffers and no allocation. The friendly functions below use the same core.

namespace {

struct pid_pair {
  pid_t pid;
  pid_t ppid;
};

/// Writes the decimal form of `v` at `out`; returns the number of characters.
std::size_t put_number(char* out, unsigned long long v) {
  char tmp[24];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

unsigned long long parse_number(const char* p, const char* end) {
  unsigned long long v = 0;
  bool neg = false;
  if (p < end && *p == '-') {
    neg = true;
    ++p;
  }
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + static_cast<unsigned long long>(*p++ - '0');
  return neg ? 0 : v;
}

/// Parses the text of /proc/<pid>/stat. The command name may contain spaces and ')'.
bool parse_stat(const char* buf, std::size_t n, proc_stat& st) {
  const char* close = nullptr;
  for (std::size_t i = n; i-- > 0;) {
    if (buf[i] == ')') {
      close = buf + i;
      break;
    }
  }
  if (close == nullptr) return false;
  const char* p = close + 1;
  const char* end = buf + n;
  int field = 2;
  while (p < end && field < 22) {
    while (p < end && *p == ' ') ++p;
    if (p >= end || *p == '\n') break;
    ++field;
    const char* tok = p;
    while (p < end && *p != ' ' && *p != '\n') ++p;
    switch (field) {
      case 3: st.state = *tok; break;
      case 4: st.ppid = static_cast<pid_t>(parse_number(tok, p)); break;
      case 5: st.pgrp = static_cast<pid_t>(parse_number(tok, p)); break;
      case 22: st.starttime = parse_number(tok, p); break;
      default: break;
    }
  }
  return field == 22;
}

bool read_stat_raw(pid_t pid, proc_stat& st) {
  char path[64] = "/proc/";
  std::size_t len = 6;
  len += put_number(path + len, static_cast<unsigned long long>(pid));
  std::memcpy(path + len, "/stat", 6);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return false;
  return parse_stat(buf, static_cast<std::size_t>(n), st);
}

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

/// Every process on the system as (pid, ppid), up to `cap`. Async-signal-safe.
std::size_t scan_processes(pid_pair* out, std::size_t cap) {
  int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  std::size_t count = 0;
  alignas(linux_dirent64) char buf[8192];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<linux_dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] < '1' || name[0] > '9') continue;
      std::size_t len = std::strlen(name);
      pid_t pid = static_cast<pid_t>(parse_number(name, name + len));
      proc_stat st;
      if (count < cap && read_stat_raw(pid, st)) out[count++] = {pid, st.ppid};
    }
  }
  ::close(dir);
  return count;
}

/// Collects the descendants of `root` into `out` (up to cap); returns how many. Signal-safe.
std::size_t collect_descendants(pid_t root, const pid_pair* all, std::size_t n, pid_t* out, std::size_t cap) {
  std::size_t k = 0;
  auto member = [&](pid_t p) {
    if (p == root) return true;
    for (std::size_t i = 0; i < k; ++i)
      if (out[i] == p) return true;
    return false;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < n && k < cap; ++i) {
      if (!member(all[i].pid) && member(all[i].ppid)) {
        out[k++] = all[i].pid;
        changed = true;
      }
    }
  }
  return k;
}

constexpr std::size_t max_processes = 8192;

void kill_descendants_signal_safe() {
  static pid_pair all[max_processes];
  static pid_t mine[max_processes];
  std::size_t n = scan_processes(all, max_processes);
  std::size_t k = collect_descendants(::getpid(), all, n, mine, max_processes);
  for (std::size_t i = 0; i < k; ++i) ::kill(mine[i], SIGKILL);
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_kill(int pidfd) { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0)); }

}  // namespace

std::optional<proc_stat> read_stat(pid_t pid) {
  proc_stat st;
  if (pid <= 0 || !read_stat_raw(pid, st)) return std::nullopt;
  return st;
}

proc_ref ref_of(pid_t pid) {
  auto st = read_stat(pid);
  return {pid, st ? st->starttime : 0};
}

bool running(const proc_ref& p) {
  auto st = read_stat(p.pid);
  return st && st->state != 'Z' && st->state != 'X' && (p.starttime == 0 || st->starttime == p.starttime);
}

bool running(pid_t pid) { return running(proc_ref{pid, 0}); }

bool gone_within(const proc_ref& p, std::chrono::milliseconds limit) {
  return eventually([&] { return !running(p); }, limit);
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_pair> all(max_processes);
  all.resize(scan_processes(all.data(), all.size()));
  std::vector<pid_t> out;
  for (auto& e : all)
    if (e.ppid == parent) out.push_back(e.pid);
  return out;
}

std::vector<pid_t> zombie_children(pid_t parent) {
  std::vector<pid_t> out;
  for (pid_t p : children_of(parent)) {
    auto st = read_stat(p);
    if (st && st->ppid == parent && st->state == 'Z') out.push_back(p);
  }
  return out;
}

std::vector<pid_t> task_children(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator{"/proc/" + std::to_string(pid) + "/task", ec}) {
    std::ifstream in{task.path() / "children"};
    pid_t child;
    while (in >> child) out.push_back(child);
  }
  return out;
}

std::vector<pid_t> descendants_of(pid_t root) {
  std::vector<pid_pair> all(max_processes);
  all.resize(scan_processes(all.data(), all.size()));
  std::vector<pid_t> out(all.size());
  out.resize(collect_descendants(root, all.data(), all.size(), out.data(), out.size()));
  return out;
}

namespace {
std::vector<std::pair<int, std::string>> list_fd_dir(const std::string& dir_path, bool self) {
  std::vector<std::pair<int, std::string>> out;
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  int own = self ? ::dirfd(dir) : -1;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = std::atoi(e->d_name);
    if (fd == own) continue;
    char target[512];
    ssize_t n = ::readlink((dir_path + "/" + e->d_name).c_str(), target, sizeof target - 1);
    out.emplace_back(fd, n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string{"?"});
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::pair<int, std::string>> open_fds() { return list_fd_dir("/proc/self/fd", true); }
std::vector<std::pair<int, std::string>> open_fds_of(pid_t pid) {
  return list_fd_dir("/proc/" + std::to_string(pid) + "/fd", false);
}

long fd_flags(int fd) {
  std::ifstream in{"/proc/self/fdinfo/" + std::to_string(fd)};
  std::string key, value;
  while (in >> key >> value) {
    if (key == "flags:") return std::strtol(value.c_str(), nullptr, 8);
  }
  return -1;
}

void expect_waits_out(std::chrono::milliseconds timeout, const std::function<void()>& f) {
  auto t0 = steady::now();
  f();
  auto took = steady::now() - t0;
  EXPECT_GE(took, timeout);
  EXPECT_LT(took, 5s);
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return cond();
}

namespace {
bool main_thread_in_futex(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/syscall");
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;  // "running" or "-1 ..."
  return std::stol(text) == SYS_futex;
}
}  // namespace

bool main_thread_blocks(pid_t pid, std::chrono::milliseconds limit) {
  return eventually(
      [&] {
        if (!main_thread_in_futex(pid)) return false;
        std::this_thread::sleep_for(20ms);  // still there: not a passing lock
        return main_thread_in_futex(pid);
      },
      limit);
}

namespace {
char stall_go_ahead[512];
char* stall_from = nullptr;
std::size_t stall_length = 0;
volatile sig_atomic_t stall_gave_up_waiting = 0;

void on_stalled_read(int) {
  for (int i = 0; i < 2000 && ::access(stall_go_ahead, F_OK) != 0; ++i) {
    timespec pause{0, 5 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  if (::access(stall_go_ahead, F_OK) != 0) stall_gave_up_waiting = 1;
  ::mprotect(stall_from, stall_length, PROT_READ | PROT_WRITE);
}
}  // namespace

bool stall_reads_until(const void* begin, std::size_t size, const std::string& go_ahead) {
  if (go_ahead.size() >= sizeof stall_go_ahead) return false;
  go_ahead.copy(stall_go_ahead, go_ahead.size());
  stall_go_ahead[go_ahead.size()] = '\0';
  auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto from = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
  auto to = (reinterpret_cast<std::uintptr_t>(begin) + size) / page * page;
  if (to <= from) return false;
  stall_from = reinterpret_cast<char*>(from);
  stall_length = to - from;
  stall_gave_up_waiting = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stalled_read;
  ::sigaction(SIGSEGV, &sa, nullptr);
  return ::mprotect(stall_from, stall_length, PROT_NONE) == 0;
}

bool stall_gave_up() { return stall_gave_up_waiting != 0; }

std::string read_file(const fs::path& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- guard ------------------------------------------------------------------------------

namespace {

constexpr std::size_t max_guarded = 128;
std::atomic<int> guarded[max_guarded];
std::atomic<std::size_t> guarded_count{0};
std::atomic<bool> guard_active{false};
volatile sig_atomic_t watchdog_stage = 0;
unsigned watchdog_seconds = 0;

void say(const char* text) {
  ssize_t ignored = ::write(2, text, std::strlen(text));
  (void)ignored;
}

void on_watchdog(int) {
  int saved = errno;
  if (watchdog_stage == 0) {
    watchdog_stage = 1;
    say("\n*** test watchdog: the test is still running after its time limit; killing every process it "
        "started ***\n");
    std::size_t n = guarded_count.load();
    for (std::size_t i = 0; i < n && i < max_guarded; ++i) {
      int fd = guarded[i].load();
      if (fd >= 0) pidfd_kill(fd);
    }
    kill_descendants_signal_safe();
    ::alarm(10);  // it should now fail quickly instead of hanging; if not, give up
  } else {
    say("*** test watchdog: still stuck 10 s after killing the children; aborting ***\n");
    ::signal(SIGABRT, SIG_DFL);
    ::abort();
  }
  errno = saved;
}

}  // namespace

guard::guard(std::chrono::seconds limit) {
  if (guard_active.exchange(true)) throw std::logic_error("mproc::test::guard: one at a time");
  guarded_count = 0;
  watchdog_stage = 0;
  watchdog_seconds = static_cast<unsigned>(limit.count());
  struct sigaction sa {};
  sa.sa_handler = &on_watchdog;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGALRM, &sa, nullptr);
  ::alarm(watchdog_seconds);
}

guard::~guard() {
  ::alarm(0);
  bool failed = testing::Test::HasFailure() || watchdog_stage != 0;
  std::size_t n = std::min(guarded_count.load(), max_guarded);
  for (std::size_t i = 0; i < n; ++i) {
    int fd = guarded[i].exchange(-1);
    if (fd < 0) continue;
    pidfd_kill(fd);  // a process that is gone: ESRCH, nothing happens
    ::close(fd);
  }
  guarded_count = 0;
  // After a failure anything may be left: every descendant goes, so the node's destructor
  // (which joins non-daemon children) cannot hang.
  if (failed) kill_descendants_signal_safe();
  if (watchdog_stage != 0)
    ADD_FAILURE() << "the test watchdog fired after " << watchdog_seconds << " s: something hung";
  ::signal(SIGALRM, SIG_DFL);
  guard_active = false;
}

void guard::add(pid_t pid) {
  if (pid <= 0) return;
  int fd = pidfd_open(pid);  // pins this very process: a later kill can never hit a recycled pid
  if (fd < 0) return;        // already gone and reaped
  std::size_t i = guarded_count.load();
  if (i >= max_guarded) {
    ::close(fd);
    return;
  }
  guarded[i].store(fd);
  guarded_count.store(i + 1);
}

bool guard::fired() { return watchdog_stage != 0; }

// ---- temp_dir ---------------------------------------------------------------------------

// ---- subprocess -------------------------------------------------------------------------

subprocess::subprocess(std::vector<std::string> argv, options opts) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (opts.own_process_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  out_ = fds[0];
  if (rc != 0) {
    pid_ = 0;
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  }
}

subprocess::~subprocess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (out_ >= 0) ::close(out_);
}

std::optional<std::string> subprocess::read_line(std::chrono::milliseconds limit) {
  auto deadline = steady::now() + limit;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (eof_) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left <= 0ms) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) eof_ = true;
    else buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string subprocess::read_rest(std::chrono::milliseconds limit) {
  auto deadline = steady::now() + limit;
  std::string all;
  while (auto line = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now())))
    all += *line + "\n";
  return all + buffer_;
}

std::optional<int> subprocess::wait(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  bool done = eventually(
      [&] {
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        return r == pid_;
      },
      limit);
  if (!done) return std::nullopt;
  pid_ = 0;
  return status;
}

// ---- announcements ----------------------------------------------------------------------

std::optional<std::string> announcements::get(const std::string& what) const {
  for (const auto& [w, v] : lines)
    if (w == what) return v;
  return std::nullopt;
}

pid_t announcements::pid(const std::string& what) const {
  auto v = get(what);
  if (!v || v->empty() || v->find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::stol(*v));
}

std::vector<pid_t> announcements::pids() const {
  std::vector<pid_t> out;
  for (const auto& [w, v] : lines)
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) out.push_back(static_cast<pid_t>(std::stol(v)));
  return out;
}

std::string announcements::show() const {
  std::string s;
  for (const auto& [w, v] : lines) s += "  " + w + " " + v + "\n";
  return s.empty() ? "  (nothing)\n" : s;
}

announcements read_announcements(subprocess& p, std::set<std::string> until, std::chrono::milliseconds limit) {
  announcements a;
  auto deadline = steady::now() + limit;
  while (!until.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left <= 0ms) break;
    auto line = p.read_line(left);
    if (!line) break;
    auto space = line->find(' ');
    std::string what = line->substr(0, space);
    std::string value = space == std::string::npos ? std::string{} : line->substr(space + 1);
    a.lines.emplace_back(what, value);
    until.erase(what);
  }
  return a;
}

}  // namespace mproc::test
