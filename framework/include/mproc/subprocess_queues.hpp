// mproc/subprocess_queues.hpp — an external command wired to mproc queues: each line it writes
// to stdout arrives as a message on a queue, and each message of another queue is written to
// its stdin.
//
//   auto lines = node.make_queue<std::string>();
//   auto input = node.make_queue<std::string>();
//   mproc::subprocess::queued_command cmd{{"tr", "a-z", "A-Z"}, lines, input.reader()};
//   input.put("hello\n");
//   input.close();                      // end of stream on the input closes the command's stdin
//   std::cout << lines.get();           // "HELLO"
//   cmd.wait();                         // 0; `lines` is closed after the last line
//
// Lines are bytes without their '\n' (a last line without one is delivered as it is); they are
// not decoded (see mproc/utf8.hpp). Input messages are written verbatim: add the '\n' yourself.
// The command's stdin is closed when the input queue reports end of stream (no writer left
// anywhere) or is closed; without an input queue the command's stdin is as the options say.
// Once the command has closed its stdin (it exited, say), the one message that found it closed
// is dropped, and no further message is taken from the input queue.
// The queues may be used by any process (a consumer process can read the lines).
//
// Thread safety: pid(), wait(), terminate() and kill() from any thread.
//
// Destructor: a command still running is killed (SIGKILL) and reaped; the two pump threads
// are stopped and joined (within ~100 ms). Lines already put stay in the queue.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "mproc/queue.hpp"
#include "mproc/subprocess.hpp"

namespace mproc::subprocess {

struct queued_options : options {
  /// Close the output queue after the last line (its consumers then get errc::closed once
  /// drained), so a consumer loop ends with the command. False: leave it open.
  bool close_output_at_eof = true;
};

class queued_command {
 public:
  /// Starts `argv` with stdout piped into `lines` (and stdin fed from `input`, if given).
  /// Throws mproc::error as popen does.
  queued_command(std::vector<std::string> argv, queue<std::string> lines,
                 std::optional<queue_reader<std::string>> input = std::nullopt, queued_options opts = {});
  queued_command(std::vector<std::string> argv, queue<std::string> lines,
                 std::optional<queue_reader<std::string>> input, const queued_options& opts, std::error_code& ec);
  queued_command(queued_command&&) noexcept;
  queued_command& operator=(queued_command&&) noexcept;
  ~queued_command();

  pid_t pid() const noexcept;
  /// Waits until every stdout line is in the queue and the command has exited; its return code.
  int wait();
  /// As wait(), at most `timeout`; nullopt on timeout (the command keeps running).
  std::optional<int> wait(duration timeout);
  void terminate();
  void kill();

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace mproc::subprocess
