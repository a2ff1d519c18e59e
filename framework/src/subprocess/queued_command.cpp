#include <condition_variable>
#include <mutex>
#include <thread>

#include "mproc/detail/deadline.hpp"
#include "mproc/subprocess_queues.hpp"

namespace mproc::subprocess {
namespace {

// The pump threads block for at most this long at a time, so that the destructor can stop them
// even when a grandchild keeps the command's pipes open.
constexpr auto slice = std::chrono::milliseconds(100);

}  // namespace

struct queued_command::state {
  popen command;
  queue<std::string> lines;
  std::optional<queue_reader<std::string>> input;
  bool close_output_at_eof = true;
  std::mutex mutex;
  std::condition_variable output_done_changed;
  bool output_done = false;  // every stdout line is in the queue
  std::jthread reader, writer;

  void pump_stdout(std::stop_token stop) {
    bool delivering = true;  // until the queue refuses a line; then drain, so the command never blocks
    std::error_code ec;
    command.for_each_stdout_line(
        [&](std::string&& line) {
          std::error_code put_ec;
          if (delivering) lines.put(line, put_ec);
          if (put_ec) delivering = false;
        },
        stop, ec);
    if (close_output_at_eof && !stop.stop_requested()) lines.close(ec);
    std::lock_guard lock{mutex};
    output_done = true;
    output_done_changed.notify_all();
  }

  void pump_stdin(std::stop_token stop) {
    std::error_code ec;
    while (!stop.stop_requested()) {
      auto message = input->get(slice, ec);
      // Nothing yet, or a large message whose body is still being written: ask again.
      if (ec == errc::empty || ec == errc::timeout) continue;
      if (!message) break;  // end_of_stream, closed, or the queue's node is gone
      std::string_view rest{*message};
      while (!rest.empty() && !stop.stop_requested()) {
        rest.remove_prefix(command.write_stdin(rest, slice, ec));
        if (ec && ec != errc::timeout) break;  // the command closed its stdin
      }
      if (ec && ec != errc::timeout) break;
    }
    command.close_stdin();
  }

  void start_pumps() {
    reader = std::jthread{[this](std::stop_token stop) { pump_stdout(stop); }};
    if (input) writer = std::jthread{[this](std::stop_token stop) { pump_stdin(stop); }};
  }

  ~state() {
    reader.request_stop();
    writer.request_stop();
    command.kill();  // no-op once reaped
    if (reader.joinable()) reader.join();
    if (writer.joinable()) writer.join();
  }
};

queued_command::queued_command(std::vector<std::string> argv, queue<std::string> lines,
                               std::optional<queue_reader<std::string>> input, queued_options opts) {
  std::error_code ec;
  std::string what = "mproc::subprocess::queued_command" + (argv.empty() ? std::string{} : " " + argv.front());
  *this = queued_command{std::move(argv), std::move(lines), std::move(input), opts, ec};
  throw_if(ec, what);
}

queued_command::queued_command(std::vector<std::string> argv, queue<std::string> lines,
                               std::optional<queue_reader<std::string>> input, const queued_options& opts,
                               std::error_code& ec) {
  if (!lines.valid() || (input && !input->valid())) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  options o = opts;
  o.stdout_mode = stream::pipe;
  if (input) o.stdin_mode = stream::pipe;
  popen command{std::move(argv), o, ec};
  if (ec) return;
  state_ = std::make_unique<state>();
  state_->command = std::move(command);
  state_->lines = std::move(lines);
  state_->input = std::move(input);
  state_->close_output_at_eof = opts.close_output_at_eof;
  state_->start_pumps();
}

queued_command::queued_command(queued_command&&) noexcept = default;
queued_command& queued_command::operator=(queued_command&&) noexcept = default;
queued_command::~queued_command() = default;

pid_t queued_command::pid() const noexcept { return state_ ? state_->command.pid() : 0; }

int queued_command::wait() {
  if (!state_) throw error(errc::invalid_argument, "mproc::subprocess::queued_command::wait: empty handle");
  return *wait(duration::max());
}

std::optional<int> queued_command::wait(duration timeout) {
  if (!state_) throw error(errc::invalid_argument, "mproc::subprocess::queued_command::wait: empty handle");
  auto until = detail::deadline_after(timeout);
  {
    std::unique_lock lock{state_->mutex};
    auto done = [&] { return state_->output_done; };
    if (until == detail::forever) state_->output_done_changed.wait(lock, done);
    else if (!state_->output_done_changed.wait_until(lock, until, done)) return std::nullopt;
  }
  if (until == detail::forever) return state_->command.wait();
  return state_->command.wait(std::max(until - std::chrono::steady_clock::now(), duration::zero()));
}

void queued_command::terminate() {
  if (state_) state_->command.terminate();
}
void queued_command::kill() {
  if (state_) state_->command.kill();
}

}  // namespace mproc::subprocess
