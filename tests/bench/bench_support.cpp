#include "bench_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

extern char** environ;

namespace bench {

double median(std::vector<double> xs) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  std::size_t mid = xs.size() / 2;
  return xs.size() % 2 == 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

figure series::summarize() const {
  figure f;
  f.name = name;
  f.unit = unit;
  f.better = better;
  if (samples.empty()) return f;
  f.value = median(samples);
  auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  f.min = *lo;
  f.max = *hi;
  f.runs = static_cast<int>(samples.size());
  return f;
}

double ms_per_call(int n, const std::function<void()>& one) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) one();
  std::chrono::duration<double, std::milli> d = std::chrono::steady_clock::now() - t0;
  return d.count() / n;
}

void set_baseline(figure& f, const figure& base) {
  if (base.runs > 0) f.baseline = std::make_pair(base.name, base.value);
}

std::optional<double> ratio_against(const figure& f, double reference) {
  if (f.runs == 0 || f.value <= 0 || reference <= 0) return std::nullopt;
  return f.better == "higher" ? f.value / reference : reference / f.value;
}

std::optional<double> ratio(const figure& f) {
  if (!f.baseline) return std::nullopt;
  return ratio_against(f, f.baseline->second);
}

namespace {

std::string number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string number(const std::optional<double>& x) { return x ? number(*x) : "null"; }

// Figure names and units are ours (ASCII, no quotes), but escape anyway.
std::string quoted(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      r += buf;
    } else {
      r += c;
    }
  }
  return r + "\"";
}

}  // namespace

void write_json(std::ostream& out, const std::vector<figure>& figures) {
  out << "[\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const figure& f = figures[i];
    out << "  {\"name\": " << quoted(f.name) << ", \"value\": " << number(f.value) << ", \"unit\": " << quoted(f.unit)
        << ", \"better\": " << quoted(f.better) << ", \"baseline\": ";
    if (f.baseline)
      out << "{\"name\": " << quoted(f.baseline->first) << ", \"value\": " << number(f.baseline->second) << "}";
    else
      out << "null";
    out << ", \"ratio\": " << number(ratio(f));
    if (f.raw_ratio) out << ", \"raw_ratio\": " << number(f.raw_ratio);
    out << ", \"runs\": " << f.runs << ", \"min\": " << number(f.min) << ", \"max\": " << number(f.max) << "}"
        << (i + 1 < figures.size() ? "," : "") << "\n";
  }
  out << "]\n";
}

void print_table(std::FILE* out, const std::vector<figure>& figures) {
  auto g = [](double x) {  // 4 significant digits, no exponent for the sizes we print
    char buf[32];
    if (std::fabs(x) >= 1e4 && std::fabs(x) < 1e9) std::snprintf(buf, sizeof buf, "%.0f", x);
    else std::snprintf(buf, sizeof buf, "%.4g", x);
    return std::string{buf};
  };
  std::fprintf(out, "%-24s %10s %-4s  %-33s %7s  %-19s %4s  %s\n", "name", "value", "unit", "baseline", "ratio",
               "min-max", "runs", "vs raw fork");
  for (const figure& f : figures) {
    std::string base = f.baseline ? f.baseline->first + " " + g(f.baseline->second) : "-";
    auto r = ratio(f);
    std::string range = f.runs > 0 ? g(f.min) + "-" + g(f.max) : "not measured";
    std::fprintf(out, "%-24s %10s %-4s  %-33s %7s  %-19s %4d  %s\n", f.name.c_str(), g(f.value).c_str(),
                 f.unit.c_str(), base.c_str(), r ? (g(*r) + "x").c_str() : "-", range.c_str(), f.runs,
                 f.raw_ratio ? (g(*f.raw_ratio) + "x").c_str() : "");
  }
}

std::optional<double> rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  return std::nullopt;
}

bool run_result::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::optional<run_result> run_capture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string{"pipe2: "} + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return std::nullopt;
  }
  run_result r;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) r.out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

std::vector<double> parse_numbers(const std::string& text, std::size_t expected) {
  std::istringstream in{text};
  std::vector<double> xs;
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    double x = std::strtod(word.c_str(), &end);
    if (end == word.c_str() || *end != '\0' || !std::isfinite(x))
      throw std::runtime_error("not a number: '" + word + "' in output '" + text + "'");
    xs.push_back(x);
  }
  if (xs.size() != expected)
    throw std::runtime_error("expected " + std::to_string(expected) + " numbers, got output '" + text + "'");
  return xs;
}

std::vector<double> run_numbers(const std::vector<std::string>& argv, std::size_t expected) {
  auto r = run_capture(argv);
  if (!r) throw std::runtime_error("cannot execute " + argv[0]);
  if (!r->ok())
    throw std::runtime_error(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + " failed (status " +
                             std::to_string(r->status) + ")");
  return parse_numbers(r->out, expected);
}

cpu0_placement::cpu0_placement(bool pinned) {
  ::sched_getaffinity(0, sizeof saved_, &saved_);
  if (!pinned) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (::sched_setaffinity(0, sizeof one, &one) != 0) throw std::runtime_error("sched_setaffinity: cannot pin to CPU 0");
}

cpu0_placement::~cpu0_placement() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

std::optional<std::filesystem::path> python_script(const std::optional<std::filesystem::path>& python_dir,
                                                   const std::string& name, const char* text) {
  if (!python_dir) return std::nullopt;
  auto path = *python_dir / name;
  std::ofstream{path} << text;
  return path;
}

helper_program::helper_program(const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(std::string{"pipe2: "} + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw std::runtime_error(std::string{"pipe2: "} + std::strerror(errno));
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {  // only async-signal-safe calls until exec
    // It ends with this program even when we are killed (a node program does not wait for EOF).
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) ::_exit(127);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(in[0]);
  ::close(out[1]);
  stdin_ = in[1];
  stdout_ = out[0];
  if (pid_ < 0) {
    stop();
    throw std::runtime_error(std::string{"fork: "} + std::strerror(fork_errno));
  }
}

helper_program::~helper_program() { stop(); }

std::string helper_program::read_line() {
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    char buf[256];
    ssize_t n = stdout_ < 0 ? 0 : ::read(stdout_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("helper program " + std::to_string(pid_) + " ended its output");
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

int helper_program::stop(int sig) noexcept {
  for (int* fd : {&stdin_, &stdout_})
    if (*fd >= 0) ::close(std::exchange(*fd, -1));
  if (pid_ <= 0) return status_;
  if (sig != 0) ::kill(pid_, sig);
  while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status_;
}

}  // namespace bench
