// Shared pieces of the benchmark driver: figures and their statistics, the results file of
// DESIGN.md section 7, the human table, and running helper programs (python3, probes, servers).
//
// A figure is measured in `runs` rounds; each round yields one sample (a per-round mean for
// timings). The reported value is the median of those samples, min/max are their extremes.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

struct figure {
  std::string name;
  std::string unit;
  std::string better = "lower";  // "lower" or "higher"
  double value = 0;              // median of the samples
  double min = 0;
  double max = 0;
  int runs = 0;                  // number of samples; 0 = not measured
  std::optional<std::pair<std::string, double>> baseline;
  std::optional<double> raw_ratio;  // extra comparison (spawn_join.*: against raw fork)
};

/// Samples of one figure, collected round by round.
struct series {
  std::string name;
  std::string unit;
  std::string better = "lower";
  std::vector<double> samples;

  figure summarize() const;
};

double median(std::vector<double> xs);

/// Milliseconds per call of `one`, averaged over `n` calls.
double ms_per_call(int n, const std::function<void()>& one);

/// Makes `base` the baseline of `f` (only when `base` was measured).
void set_baseline(figure& f, const figure& base);
/// value/baseline for "higher", baseline/value for "lower": above 1 means mproc is ahead.
std::optional<double> ratio(const figure& f);
/// The same orientation against any reference value.
std::optional<double> ratio_against(const figure& f, double reference);

/// The JSON array of DESIGN.md section 7.
void write_json(std::ostream& out, const std::vector<figure>& figures);
/// A table for humans: name, value, unit, baseline, ratio, min-max, runs.
void print_table(std::FILE* out, const std::vector<figure>& figures);

/// Pins the calling thread to CPU 0 when `pinned` (threads and children it starts from then on
/// inherit that: "both on one CPU" for the rtt.pinned figures), and restores its placement when
/// it goes. Throws std::runtime_error when CPU 0 cannot be had.
class cpu0_placement {
 public:
  explicit cpu0_placement(bool pinned);
  ~cpu0_placement();
  cpu0_placement(const cpu0_placement&) = delete;
  cpu0_placement& operator=(const cpu0_placement&) = delete;

 private:
  cpu_set_t saved_{};
};

/// Writes a Python baseline script into `python_dir` and returns its path; nullopt (Python
/// baselines skipped) when there is no python_dir.
std::optional<std::filesystem::path> python_script(const std::optional<std::filesystem::path>& python_dir,
                                                   const std::string& name, const char* text);

/// VmRSS of a process in KiB (from /proc/<pid>/status); nullopt when unreadable.
std::optional<double> rss_kib(pid_t pid);

/// Runs a program (PATH lookup, no shell) with stdin from /dev/null and stdout captured; stderr
/// passes through. nullopt when the program could not be executed at all.
struct run_result {
  int status = -1;  // raw waitpid status
  std::string out;
  bool ok() const;  // exited normally with status 0
};
std::optional<run_result> run_capture(const std::vector<std::string>& argv);

/// Runs a program that prints `expected` numbers; throws std::runtime_error when it cannot run,
/// fails, or prints anything else.
std::vector<double> run_numbers(const std::vector<std::string>& argv, std::size_t expected);

/// Numbers separated by white space; throws std::runtime_error on anything else.
std::vector<double> parse_numbers(const std::string& text, std::size_t expected);

/// A helper program that serves a measurement (a CAF remoting server, a node to join): started
/// with fork and exec, with only async-signal-safe calls between them, so a process that already
/// runs CAF's threads may start it. Its stdin is a pipe that stays open while this handle lives
/// (a server may wait for its EOF); its stdout is read line by line. It gets SIGTERM when the
/// thread that started it ends, so a killed benchmark leaves no helper behind.
///
/// Destructor: stop(). Thread safety: one thread at a time.
class helper_program {
 public:
  explicit helper_program(const std::vector<std::string>& argv);
  ~helper_program();
  helper_program(const helper_program&) = delete;
  helper_program& operator=(const helper_program&) = delete;

  pid_t pid() const noexcept { return pid_; }
  /// Its next line of output, without the newline; throws std::runtime_error at EOF.
  std::string read_line();
  /// Closes its stdin, sends it `sig` unless 0, and reaps it. Returns the raw wait status (0:
  /// it exited with 0), the same on every later call.
  int stop(int sig = 0) noexcept;

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::string pending_;
  int status_ = -1;
};

}  // namespace bench
