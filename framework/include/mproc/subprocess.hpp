// mproc/subprocess.hpp — external commands with pipes (Python's subprocess.run and Popen).
//
//   namespace sp = mproc::subprocess;
//   sp::run_options o;
//   o.input = "b\na\n";
//   o.capture = true;
//   auto r = sp::run({"sort"}, o);      // r.returncode == 0, r.stdout_bytes == "a\nb\n"
//
//   sp::options pipes;
//   pipes.stdin_mode = pipes.stdout_mode = sp::stream::pipe;
//   sp::popen p{{"nslookup"}, pipes};
//   auto out = p.communicate("set q=mx\npython.org\nexit\n");
//   std::cout << mproc::decode_utf8(out.stdout_bytes, mproc::utf8_errors::replace);
//
// Output is bytes (std::string holds them as they came; see mproc/utf8.hpp to make text of
// them). Return codes follow Python: n for exit(n), -N when killed by signal N.
//
// Guarantees:
//  - Never a zombie: every command is reaped by waiting on its own pidfd (waitid(P_PIDFD)),
//    never by waitpid(-1), so it neither steals nor loses anybody else's exit status. A timeout
//    kills the command (SIGKILL) and reaps it before the call reports errc::timeout.
//  - No orphans: a command gets PR_SET_PDEATHSIG(SIGKILL) from a launcher thread that lives as
//    long as the program, so it dies with the program however the program dies (SIGKILL too).
//    Not inherited by the command's own children (the kernel clears it at fork), and a
//    command may clear it itself (prctl): what a command puts in the background is its own.
//  - No deadlock: communicate() writes stdin and reads stdout and stderr together (poll(2)),
//    so any amount of data can flow both ways at once.
//  - Exec failures are reported exactly: the child sends errno back on a close-on-exec pipe.
//  - Only stdin, stdout and stderr are inherited (close_range in the child), like Python's
//    close_fds=True. The signal mask is empty and handlers are back to SIG_DFL; SIGPIPE and
//    SIGXFSZ are SIG_DFL even when this program ignores them (Python's restore_signals).
//  - Writing to a command that closed its stdin never raises SIGPIPE in this program.
//
// Errors (mproc::errc): command_not_found (ENOENT on every PATH entry, or the file named by a
// path does not exist), access_denied (EACCES: not executable, or a directory on the way is
// not searchable), timeout, invalid_argument (empty argv, an argument with a NUL byte, a pipe
// operation on a stream that is not piped), command_failed (a nonzero return code under
// run_options::check), spawn_failed (any other failure of vfork, chdir or exec; the throwing
// form says which and why).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "mproc/error.hpp"

namespace mproc::detail {
struct popen_state;
struct popen_access;
}  // namespace mproc::detail

namespace mproc::subprocess {

using duration = std::chrono::steady_clock::duration;

/// What one of the command's standard streams is connected to.
enum class stream {
  inherit,    ///< this program's own stream (Python's None)
  pipe,       ///< a pipe to this program (subprocess.PIPE)
  null,       ///< /dev/null (subprocess.DEVNULL)
  to_stdout,  ///< stderr only: wherever stdout goes (subprocess.STDOUT)
};

/// How the command is started.
struct options {
  stream stdin_mode = stream::inherit;
  stream stdout_mode = stream::inherit;
  stream stderr_mode = stream::inherit;
  /// Working directory of the command (cwd=); empty: ours.
  std::filesystem::path cwd;
  /// Environment variables set (or overridden) in the command, on top of `base_env`.
  std::map<std::string, std::string> env;
  /// True: start from this program's environment (then apply `env`). False: `env` only
  /// (Python's env= replaces the whole environment; this is that, with inherit_env = false).
  bool inherit_env = true;
  /// setpgid(0, 0) in the command (Python's process_group=0): the command and whatever it starts
  /// form a process group of their own, and a timeout, send_signal/terminate/kill and the
  /// destructor signal the whole group, so a shell's children end with it. The group is not the
  /// terminal's foreground group: Ctrl-C at the terminal no longer reaches it directly.
  bool new_process_group = false;
};
// argv[0] without a '/' is looked up in the PATH of the command's environment (else of ours,
// else "/bin:/usr/bin"), as execvpe does: a later entry is tried after ENOENT, and EACCES is
// reported only when no entry could be run.

/// What run() and communicate() return.
struct completed {
  std::vector<std::string> args;
  int returncode = 0;  ///< n for exit(n), -N for signal N; on a timeout, the kill's -9
  std::string stdout_bytes;  ///< empty unless stdout was piped (captured)
  std::string stderr_bytes;  ///< empty unless stderr was piped (captured)
};

/// Options of run(): those of popen, plus Python's run() arguments.
struct run_options : options {
  /// Bytes written to stdin, then stdin is closed (implies stdin_mode = pipe). Python's input=.
  std::optional<std::string> input;
  /// Pipe stdout and stderr and return what they wrote (Python's capture_output=True).
  bool capture = false;
  /// Kill (SIGKILL) and reap the command after this long; report errc::timeout.
  duration timeout = duration::max();
  /// A nonzero return code is an error: errc::command_failed (Python's check=True).
  bool check = false;
};

/// A nonzero return code under run_options::check. Like Python's CalledProcessError it carries
/// what the command produced.
class called_process_error : public error {
 public:
  called_process_error(completed result, const std::string& context);
  const completed& result() const noexcept { return result_; }

 private:
  completed result_;
};

/// Runs a command to completion. Throws mproc::error (errc as listed above; on a timeout the
/// command was killed and reaped before the throw), or called_process_error with `check`.
completed run(std::vector<std::string> argv, run_options opts = {});
/// As above, never throws for the command's failures: ec is set and the result holds whatever
/// was captured (a timeout keeps the output read until the kill). With `check`, a nonzero
/// return code sets ec to errc::command_failed.
completed run(std::vector<std::string> argv, const run_options& opts, std::error_code& ec);

/// A running command with optional pipes (Python's Popen).
///
/// Thread safety: pid(), returncode(), poll(), wait(), send_signal(), terminate() and kill()
/// may be called from any number of threads at any time (for instance to stop a command that
/// another thread is waiting for). The pipe calls (communicate, write_stdin, close_stdin,
/// read_*_line) use one thread per stream at a time; communicate uses all three streams.
/// Signals go through a pidfd, so they never reach a recycled pid.
///
/// Destructor: if the command is still running it is killed (SIGKILL) and reaped, and the pipe
/// ends are closed; the destructor therefore returns promptly and never leaves a zombie or a
/// runaway command behind. Call wait() or communicate() first to let it finish. (Python's
/// Popen leaves the child running; C++ owners expect a handle to own what it started, as
/// std::jthread does.)
class popen {
 public:
  /// An empty handle (valid() == false); assign a started one to it.
  popen() noexcept;
  /// Starts the command. Throws mproc::error.
  explicit popen(std::vector<std::string> argv, options opts = {});
  /// Starts the command; on failure ec is set and the handle is empty (valid() == false).
  popen(std::vector<std::string> argv, const options& opts, std::error_code& ec);
  popen(popen&&) noexcept;
  popen& operator=(popen&&) noexcept;
  popen(const popen&) = delete;
  popen& operator=(const popen&) = delete;
  ~popen();

  bool valid() const noexcept { return state_ != nullptr; }
  const std::vector<std::string>& args() const;
  pid_t pid() const noexcept;
  /// The return code once the command was reaped (by poll, wait or communicate), else nullopt.
  std::optional<int> returncode() const;

  /// Reaps the command if it has exited; its return code, or nullopt while it runs.
  std::optional<int> poll();
  /// Waits for the command to exit and returns its return code.
  int wait();
  /// As wait(), at most `timeout`: nullopt on timeout, and the command keeps running (Python
  /// raises TimeoutExpired and does not kill either).
  std::optional<int> wait(duration timeout);

  /// Sends `sig`; nothing happens once the command has been reaped (as in Python).
  void send_signal(int sig);
  void terminate() { send_signal(15); }  ///< SIGTERM
  void kill() { send_signal(9); }        ///< SIGKILL

  /// Writes `input` to stdin (if any), closes stdin, reads stdout and stderr to end of file,
  /// waits for the exit. All three at once, so nothing deadlocks. After `timeout` the command
  /// is killed and reaped and errc::timeout thrown (this is Python's documented
  /// `except TimeoutExpired: proc.kill(); proc.communicate()` idiom, done for you); the
  /// ec form then returns what was read until the kill. Input to a command that does not
  /// read it all is dropped (a broken pipe is not an error, as in Python).
  completed communicate(std::string_view input = {}, duration timeout = duration::max());
  completed communicate(std::string_view input, duration timeout, std::error_code& ec);

  /// Writes all of `bytes` to stdin (blocking). errc::end_of_stream when the command closed its
  /// stdin (exited, say); errc::invalid_argument when stdin is not piped or already closed.
  void write_stdin(std::string_view bytes);
  void write_stdin(std::string_view bytes, std::error_code& ec);
  /// As above, for at most `timeout`: returns how many bytes were written; errc::timeout when
  /// that is not all of them (the rest was not written).
  std::size_t write_stdin(std::string_view bytes, duration timeout, std::error_code& ec);
  /// Closes our end of stdin: the command reads end of file.
  void close_stdin() noexcept;
  /// The next line of stdout / stderr, '\n' included (a last line without one as it is);
  /// nullopt at end of file. errc::timeout after `timeout` (the line read so far is kept for
  /// the next call); errc::invalid_argument when the stream is not piped.
  std::optional<std::string> read_stdout_line(duration timeout = duration::max());
  std::optional<std::string> read_stdout_line(duration timeout, std::error_code& ec);
  std::optional<std::string> read_stderr_line(duration timeout = duration::max());
  std::optional<std::string> read_stderr_line(duration timeout, std::error_code& ec);
  /// Reads stdout to end of file on the calling thread and hands each line to `on_line`, its
  /// '\n' removed. Returns at end of file, on a read error (ec set), or within ~100 ms of
  /// `stop` being requested (a partial line then waits for the next reader). For pump threads
  /// (std::jthread): the queue and actor forms are built on it.
  void for_each_stdout_line(const std::function<void(std::string&&)>& on_line, std::stop_token stop,
                            std::error_code& ec);

  /// Our ends of the pipes as raw descriptors (for Asio, poll, ...), -1 when not piped or
  /// closed. Owned by the handle; close them only through close_stdin() / the destructor. They
  /// are non-blocking and close-on-exec.
  int stdin_fd() const noexcept;
  int stdout_fd() const noexcept;
  int stderr_fd() const noexcept;

 private:
  friend struct mproc::detail::popen_access;
  std::unique_ptr<mproc::detail::popen_state> state_;
};

}  // namespace mproc::subprocess
