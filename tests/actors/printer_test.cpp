// mproc/actors/printer.hpp: line-atomic output from many senders.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <mproc/actors/caf_error.hpp>
#include <mproc/actors/printer.hpp>

#include "actor_fixture.hpp"

namespace ma = mproc::actors;
namespace mt = mproc::test;
using namespace std::chrono_literals;

namespace {

/// A SOCK_SEQPACKET pair standing in for the terminal: each write(2) of the printer arrives as
/// one record, so the test sees exactly how the output was cut into writes.
class captured_writes {
 public:
  captured_writes() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    write_end_ = fds[0];
    read_end_ = fds[1];
    reader_ = std::thread{[this] {
      std::string buf(1 << 20, '\0');
      for (;;) {
        auto n = ::recv(read_end_, buf.data(), buf.size(), 0);
        if (n <= 0) return;
        std::lock_guard guard{mutex_};
        records_.emplace_back(buf.data(), static_cast<std::size_t>(n));
      }
    }};
  }
  ~captured_writes() {
    close_write_end();
    if (reader_.joinable()) reader_.join();
    ::close(read_end_);
  }
  int fd() const { return write_end_; }
  void close_write_end() {
    if (write_end_ >= 0) ::close(write_end_);
    write_end_ = -1;
  }
  /// Every write, once the write end is closed and everything was read.
  const std::vector<std::string>& writes() {
    close_write_end();
    if (reader_.joinable()) reader_.join();
    return records_;
  }
  /// True once the output so far ends with `tail` (within `limit`), while the printer still runs.
  bool ends_with_soon(const std::string& tail, std::chrono::milliseconds limit = 5s) {
    return mt::eventually([&] {
      std::lock_guard guard{mutex_};
      std::string all;
      for (auto& r : records_) all += r;
      return all.ends_with(tail);
    }, limit);
  }
  std::string text() {
    std::string all;
    for (auto& r : writes()) all += r;
    return all;
  }

 private:
  int write_end_ = -1;
  int read_end_ = -1;
  std::mutex mutex_;
  std::vector<std::string> records_;
  std::thread reader_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto nl = text.find('\n'); nl != std::string::npos; start = nl + 1, nl = text.find('\n', start))
    lines.push_back(text.substr(start, nl - start));
  EXPECT_EQ(start, text.size()) << "text after the last newline";
  return lines;
}

/// A sender: `count` lines, each sent in three pieces, of lengths up to ~6 KiB.
caf::behavior chatty_sender(caf::event_based_actor* self, caf::actor printer, int id, int count) {
  for (int i = 0; i < count; ++i) {
    ma::print(self, printer, "sender ", id, ' ');
    ma::print(self, printer, "line ", i, ' ');
    ma::println(self, printer, std::string(static_cast<std::size_t>((i * 997 + id * 131) % 6000), 'x'));
  }
  return {};  // no behavior: the sender ends normally
}

class printer : public mt::actor_fixture {
 protected:
  captured_writes out;

  /// Ends the printer and waits until it is gone (so everything it holds is written).
  void stop(const caf::actor& p) {
    caf::scoped_actor self{*sys};
    self->monitor(p);
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
    EXPECT_EQ(wait_down(self, p), caf::exit_reason::user_shutdown);
  }
};

TEST_F(printer, concurrent_senders_get_whole_lines_in_their_order_each_in_one_write) {
  auto p = ma::spawn_printer(*sys, out.fd());
  constexpr int senders = 6, lines_each = 150;
  {
    caf::scoped_actor self{*sys};
    std::vector<caf::actor> all;
    for (int id = 0; id < senders; ++id) {
      all.push_back(sys->spawn(chatty_sender, p, id, lines_each));
      self->monitor(all.back());
    }
    for (auto& s : all) {
      auto reason = wait_down(self, s);
      EXPECT_FALSE(reason) << sys->render(reason);
    }
  }
  stop(p);
  for (auto& w : out.writes()) ASSERT_EQ(w.back(), '\n') << "a write that does not end a line";
  std::map<int, int> next_line;
  static const std::regex shape{R"(sender (\d+) line (\d+) (x*))"};
  auto lines = lines_of(out.text());
  ASSERT_EQ(lines.size(), std::size_t{senders * lines_each});
  for (auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, shape)) << line.substr(0, 80);
    int id = std::stoi(m[1]), i = std::stoi(m[2]);
    EXPECT_EQ(i, next_line[id]++) << "sender " << id << " out of order";
    EXPECT_EQ(m[3].length(), (i * 997 + id * 131) % 6000);
  }
}

TEST_F(printer, a_partial_line_waits_for_its_sender_and_is_flushed_when_the_sender_ends) {
  auto p = ma::spawn_printer(*sys, out.fd());
  {
    caf::scoped_actor a{*sys};
    caf::scoped_actor b{*sys};
    ma::print(a, p, "abc");
    ma::println(b, p, "whole");
    ma::println(a, p, "def", 1);
    ma::print(a, p, "tail", ' ', 2.5);
    ma::print(b, p, "b's rest\nb's next ");
    ma::println(b, p, "part");
  }  // a ends here with "tail 2.5" pending: its end flushes it, the printer runs on
  EXPECT_TRUE(out.ends_with_soon("tail 2.5\n"));
  stop(p);
  EXPECT_EQ(out.text(), "whole\nabcdef1\nb's rest\nb's next part\ntail 2.5\n");
}

TEST_F(printer, anonymous_text_shares_one_line_and_is_flushed_when_the_printer_ends) {
  auto p = ma::spawn_printer(*sys, out.fd());
  ma::print(p, "from ", "threads");
  ma::println(p, ", ", 3, " parts");
  ma::print(p, "never finished");
  stop(p);
  EXPECT_EQ(out.text(), "from threads, 3 parts\nnever finished\n");
}

TEST_F(printer, spawned_by_name_as_in_another_process) {
  auto spawned = sys->spawn<caf::actor>(ma::printer_type_name, caf::make_message(out.fd()));
  ASSERT_TRUE(spawned) << sys->render(spawned.error());
  ma::println(*spawned, "by name ", 1);
  stop(*spawned);
  EXPECT_EQ(out.text(), "by name 1\n");
}

TEST_F(printer, a_bad_fd_is_a_typed_error) {
  try {
    (void)ma::spawn_printer(*sys, -1);
    FAIL() << "no throw";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::invalid_argument);
  }
  caf::scoped_actor self{*sys};
  auto spawned = sys->spawn<caf::actor>(ma::printer_type_name, caf::make_message(-1));
  ASSERT_TRUE(spawned);
  self->monitor(*spawned);
  EXPECT_EQ(ma::errc_of(wait_down(self, *spawned)), mproc::errc::invalid_argument);
}

TEST_F(printer, a_write_error_ends_the_printer_with_end_of_stream) {
  auto previous = std::signal(SIGPIPE, SIG_IGN);  // EPIPE instead of the signal, for this test
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ::close(fds[1]);
  auto p = ma::spawn_printer(*sys, fds[0]);
  caf::scoped_actor self{*sys};
  self->monitor(p);
  ma::println(p, "nobody reads this");
  EXPECT_EQ(ma::errc_of(wait_down(self, p)), mproc::errc::end_of_stream);
  ::close(fds[0]);
  std::signal(SIGPIPE, previous);
}

}  // namespace
