// mproc/subprocess.hpp with real commands (sh, cat, sleep, tee, env): pipes, big data both ways,
// timeouts, signals, environment, working directory, PATH search, typed exec errors, and no
// zombie or runaway command afterwards.
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <mproc/subprocess.hpp>
#include <mproc/utf8.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
namespace sp = mproc::subprocess;
namespace mt = mproc::test;

namespace {

class subprocess : public mt::reaping_test {
 protected:
  static sp::run_options captured() {
    sp::run_options o;
    o.capture = true;
    return o;
  }
  static sp::options piped(bool in, bool out, bool err = false) {
    sp::options o;
    if (in) o.stdin_mode = sp::stream::pipe;
    if (out) o.stdout_mode = sp::stream::pipe;
    if (err) o.stderr_mode = sp::stream::pipe;
    return o;
  }
};

/// Runs f, which must throw mproc::error with `code` and a what() that mentions `text`.
template <class F>
void expect_error(F f, errc code, const std::string& text = {}) {
  try {
    f();
    ADD_FAILURE() << "no throw";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), code);
    EXPECT_NE(std::string{e.what()}.find(text), std::string::npos) << e.what();
  }
}

void write_script(const std::filesystem::path& path, const std::string& body, mode_t mode) {
  std::ofstream{path} << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), mode);
}

TEST_F(subprocess, run_returns_code_stdout_and_stderr_as_bytes) {
  auto r = sp::run({"sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3"}, captured());
  EXPECT_EQ(r.returncode, 3);
  EXPECT_EQ(r.stdout_bytes, "out\n");
  EXPECT_EQ(r.stderr_bytes, "err");
  EXPECT_EQ(r.args, (std::vector<std::string>{"sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3"}));
  auto o = captured();
  o.input = "b\na\nc\n";
  EXPECT_EQ(sp::run({"sort"}, o).stdout_bytes, "a\nb\nc\n");
}

TEST_F(subprocess, sixteen_mib_in_and_out_of_all_three_pipes_at_once) {
  // tee copies stdin to stdout and stderr as it reads: a writer that filled stdin before
  // reading would deadlock against both full output pipes.
  std::string input(16u << 20, '\0');
  std::uint32_t x = 12345;
  for (auto& c : input) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  sp::popen p{{"sh", "-c", "tee /dev/stderr"}, piped(true, true, true)};
  auto r = p.communicate(input, 20s);
  EXPECT_EQ(r.returncode, 0);
  EXPECT_EQ(r.stdout_bytes.size(), input.size());
  EXPECT_TRUE(r.stdout_bytes == input);
  EXPECT_TRUE(r.stderr_bytes == input);
  EXPECT_EQ(p.returncode(), 0);
}

TEST_F(subprocess, timeout_kills_and_reaps_then_reports) {
  auto o = captured();
  o.timeout = 200ms;
  auto t0 = mt::steady::now();
  std::error_code ec;
  auto r = sp::run({"sh", "-c", "echo started; exec sleep 10"}, o, ec);
  EXPECT_EQ(ec, errc::timeout);
  EXPECT_LT(mt::steady::now() - t0, 5s);
  EXPECT_EQ(r.returncode, -SIGKILL);
  EXPECT_EQ(r.stdout_bytes, "started\n");  // what came before the kill is kept
  expect_error([&] { (void)sp::run({"sleep", "10"}, o); }, errc::timeout);
  // A command that never stops writing (and never ends a line) still ends at the deadline.
  ec.clear();
  t0 = mt::steady::now();
  r = sp::run({"sh", "-c", "while :; do printf x; done"}, o, ec);
  EXPECT_EQ(ec, errc::timeout);
  EXPECT_LT(mt::steady::now() - t0, 5s);
  EXPECT_GT(r.stdout_bytes.size(), 0u);
  sp::popen endless{{"sh", "-c", "while :; do printf x; done"}, piped(false, true)};
  t0 = mt::steady::now();
  EXPECT_EQ(endless.read_stdout_line(200ms, ec), std::nullopt);
  EXPECT_EQ(ec, errc::timeout);
  EXPECT_LT(mt::steady::now() - t0, 5s);
  // communicate on a handle: same rule, and the handle knows the command is gone.
  sp::popen p{{"sleep", "10"}, piped(false, true)};
  auto ref = mt::ref_of(p.pid());
  EXPECT_THROW(p.communicate({}, 100ms), mproc::error);
  EXPECT_EQ(p.returncode(), -SIGKILL);
  EXPECT_FALSE(mt::running(ref));
}

TEST_F(subprocess, a_new_process_group_takes_the_commands_children_along) {
  auto o = captured();
  o.timeout = 300ms;
  o.new_process_group = true;
  std::error_code ec;
  auto r = sp::run({"sh", "-c", "sleep 30 & echo $!; wait"}, o, ec);  // sh forks sleep, no exec
  EXPECT_EQ(ec, errc::timeout);
  ASSERT_FALSE(r.stdout_bytes.empty());
  pid_t background = std::stoi(r.stdout_bytes);
  watchdog.add(background);
  EXPECT_TRUE(mt::gone_within(mt::ref_of(background), 5s)) << "the shell's child survived the timeout";

  sp::options g;
  g.new_process_group = true;
  sp::popen p{{"sleep", "10"}, g};
  EXPECT_EQ(mt::read_stat(p.pid())->pgrp, p.pid());
  p.terminate();
  EXPECT_EQ(p.wait(), -SIGTERM);
}

TEST_F(subprocess, returncode_is_minus_the_signal) {
  sp::popen a{{"sleep", "10"}};
  sp::popen b{{"sleep", "10"}};
  sp::popen c{{"sleep", "10"}};
  EXPECT_EQ(a.poll(), std::nullopt);
  EXPECT_EQ(a.wait(50ms), std::nullopt);  // a timed wait leaves it running
  EXPECT_TRUE(mt::running(a.pid()));
  a.terminate();
  b.kill();
  c.send_signal(SIGUSR1);
  EXPECT_EQ(a.wait(), -SIGTERM);
  EXPECT_EQ(b.wait(), -SIGKILL);
  EXPECT_EQ(c.wait(), -SIGUSR1);
  EXPECT_EQ(a.poll(), -SIGTERM);
  a.kill();  // after the reap: nothing happens, as in Python
  EXPECT_EQ(sp::run({"sh", "-c", "kill -TERM $$"}).returncode, -SIGTERM);
}

TEST_F(subprocess, a_signal_from_another_thread_ends_a_wait) {
  sp::popen p{{"sleep", "10"}};
  std::thread killer{[&] {
    std::this_thread::sleep_for(50ms);
    p.kill();
  }};
  EXPECT_EQ(p.wait(), -SIGKILL);
  killer.join();
}

TEST_F(subprocess, environment_is_extended_or_replaced) {
  auto o = captured();
  o.env = {{"MPROC_SUBPROCESS_TEST", "42"}, {"HOME", "/elsewhere"}};
  auto r = sp::run({"sh", "-c", "echo $MPROC_SUBPROCESS_TEST $HOME; test -n \"$PATH\" && echo has-path"}, o);
  EXPECT_EQ(r.stdout_bytes, "42 /elsewhere\nhas-path\n");
  o.inherit_env = false;
  o.env = {{"ONLY", "this"}};
  EXPECT_EQ(sp::run({"env"}, o).stdout_bytes, "ONLY=this\n");  // found on the default PATH
  o.env = {{"BAD=NAME", "x"}};
  std::error_code ec;
  (void)sp::run({"env"}, o, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
}

TEST_F(subprocess, working_directory) {
  mt::temp_dir dir;
  auto o = captured();
  o.cwd = dir.path();
  EXPECT_EQ(sp::run({"pwd"}, o).stdout_bytes, std::filesystem::canonical(dir.path()).string() + "\n");
  o.cwd = dir / "missing";
  expect_error([&] { (void)sp::run({"pwd"}, o); }, errc::spawn_failed, "chdir");
}

TEST_F(subprocess, path_search_follows_execvp) {
  mt::temp_dir dir;
  std::filesystem::create_directory(dir / "a");
  std::filesystem::create_directory(dir / "b");
  write_script(dir / "a" / "mproc-tool", "echo from-a", 0644);  // not executable: skipped
  write_script(dir / "b" / "mproc-tool", "echo from-b", 0755);
  auto o = captured();
  o.env = {{"PATH", (dir / "missing").string() + ":" + (dir / "a").string() + ":" + (dir / "b").string()}};
  EXPECT_EQ(sp::run({"mproc-tool"}, o).stdout_bytes, "from-b\n");
  // Only a non-executable one on the PATH: permission denied, not "not found".
  o.env = {{"PATH", (dir / "missing").string() + ":" + (dir / "a").string()}};
  std::error_code ec;
  (void)sp::run({"mproc-tool"}, o, ec);
  EXPECT_EQ(ec, errc::access_denied);
  // A name with a '/' is not searched.
  o.env = {{"PATH", (dir / "b").string()}};
  o.cwd = dir / "b";
  EXPECT_EQ(sp::run({"./mproc-tool"}, o).stdout_bytes, "from-b\n");
}

TEST_F(subprocess, exec_failures_are_typed) {
  mt::temp_dir dir;
  write_script(dir / "not-executable", "echo never", 0644);
  std::error_code ec;
  sp::popen missing{{"/nonexistent/mproc-command"}, {}, ec};
  EXPECT_EQ(ec, errc::command_not_found);
  EXPECT_FALSE(missing.valid());
  sp::popen unknown{{"mproc-no-such-command-anywhere"}, {}, ec};
  EXPECT_EQ(ec, errc::command_not_found);
  sp::popen denied{{(dir / "not-executable").string()}, {}, ec};
  EXPECT_EQ(ec, errc::access_denied);
  sp::popen directory{{dir.path().string()}, {}, ec};
  EXPECT_EQ(ec, errc::access_denied);  // execve of a directory is EACCES
  expect_error([] { sp::popen p{{"/nonexistent/mproc-command"}}; }, errc::command_not_found, "/nonexistent/mproc-command");
  // The failed children were reaped (TearDown checks for zombies).
}

TEST_F(subprocess, misuse_is_a_typed_error) {
  std::error_code ec;
  sp::popen empty{{}, {}, ec};
  EXPECT_EQ(ec, errc::invalid_argument);
  sp::popen nul{{"echo", std::string{"a\0b", 3}}, {}, ec};
  EXPECT_EQ(ec, errc::invalid_argument);
  sp::options o;
  o.stdout_mode = sp::stream::to_stdout;
  sp::popen to_stdout{{"true"}, o, ec};
  EXPECT_EQ(ec, errc::invalid_argument);

  sp::popen p{{"cat"}, piped(false, true)};
  (void)p.communicate("input but stdin is not piped", 1s, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  p.write_stdin("x", ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  (void)p.read_stderr_line(1s, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  sp::popen none;
  EXPECT_FALSE(none.valid());
  EXPECT_THROW(none.wait(), mproc::error);
  EXPECT_EQ(none.pid(), 0);
}

TEST_F(subprocess, check_turns_a_nonzero_code_into_called_process_error) {
  auto o = captured();
  o.check = true;
  try {
    (void)sp::run({"sh", "-c", "echo why >&2; exit 4"}, o);
    FAIL() << "no throw";
  } catch (const sp::called_process_error& e) {
    EXPECT_EQ(e.code(), errc::command_failed);
    EXPECT_EQ(e.result().returncode, 4);
    EXPECT_EQ(e.result().stderr_bytes, "why\n");
  }
  std::error_code ec;
  EXPECT_EQ(sp::run({"false"}, o, ec).returncode, 1);
  EXPECT_EQ(ec, errc::command_failed);
  EXPECT_NO_THROW(sp::run({"true"}, o));
}

TEST_F(subprocess, output_that_is_not_utf8_is_bytes_and_decodes_by_policy) {
  auto r = sp::run({"printf", "ok \\310\\317 \\377"}, captured());  // GBK bytes, then 0xFF
  EXPECT_EQ(r.stdout_bytes, "ok \xC8\xCF \xFF");
  EXPECT_EQ(mproc::decode_utf8(r.stdout_bytes, mproc::utf8_errors::replace),
            "ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD");
  try {
    (void)mproc::decode_utf8(r.stdout_bytes, mproc::utf8_errors::strict);
    FAIL() << "no throw";
  } catch (const mproc::utf8_error& e) {
    EXPECT_EQ(e.offset(), 3u);
  }
}

TEST_F(subprocess, stderr_can_join_stdout_or_go_to_dev_null) {
  sp::run_options o;
  o.stdout_mode = sp::stream::pipe;
  o.stderr_mode = sp::stream::to_stdout;
  EXPECT_EQ(sp::run({"sh", "-c", "echo a; echo b >&2; echo c"}, o).stdout_bytes, "a\nb\nc\n");
  o.stderr_mode = sp::stream::null;
  o.stdin_mode = sp::stream::null;
  EXPECT_EQ(sp::run({"sh", "-c", "cat; echo b >&2; echo done"}, o).stdout_bytes, "done\n");
}

TEST_F(subprocess, lines_and_stdin_by_hand) {
  sp::popen p{{"cat"}, piped(true, true)};
  p.write_stdin("hello\nwor");
  EXPECT_EQ(p.read_stdout_line(5s), "hello\n");
  std::error_code ec;
  EXPECT_EQ(p.read_stdout_line(50ms, ec), std::nullopt);  // "wor" is not a line yet
  EXPECT_EQ(ec, errc::timeout);
  p.write_stdin("ld\nlast");
  p.close_stdin();
  EXPECT_EQ(p.stdin_fd(), -1);
  EXPECT_EQ(p.read_stdout_line(5s), "world\n");
  EXPECT_EQ(p.read_stdout_line(5s), "last");  // the last line, without '\n'
  EXPECT_EQ(p.read_stdout_line(5s), std::nullopt);
  EXPECT_EQ(p.wait(), 0);
}

TEST_F(subprocess, for_each_stdout_line_ends_at_eof_or_soon_after_a_stop_request) {
  sp::popen p{{"printf", "a\\nb\\n\\nc"}, piped(false, true)};
  std::vector<std::string> lines;
  std::error_code ec;
  p.for_each_stdout_line([&](std::string&& line) { lines.push_back(line); }, {}, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b", "", "c"}));

  sp::popen q{{"sh", "-c", "echo first; exec sleep 30"}, piped(false, true)};
  std::stop_source stop;
  lines.clear();
  auto t0 = mt::steady::now();
  q.for_each_stdout_line(
      [&](std::string&& line) {
        lines.push_back(line);
        stop.request_stop();
      },
      stop.get_token(), ec);
  EXPECT_LT(mt::steady::now() - t0, 5s);
  EXPECT_EQ(lines, (std::vector<std::string>{"first"}));
  EXPECT_EQ(q.poll(), std::nullopt);  // still running: stopping the reader is not a kill
}

TEST_F(subprocess, writing_to_a_command_that_is_gone_is_end_of_stream_not_sigpipe) {
  sp::popen p{{"true"}, piped(true, false)};
  EXPECT_EQ(p.wait(), 0);
  std::error_code ec;
  p.write_stdin(std::string(1 << 20, 'x'), ec);
  EXPECT_EQ(ec, errc::end_of_stream);
  // communicate drops input the command does not read, as Python does.
  sp::popen q{{"sh", "-c", "exit 0"}, piped(true, true)};
  auto r = q.communicate(std::string(4 << 20, 'y'), 10s);
  EXPECT_EQ(r.returncode, 0);
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_F(subprocess, destructor_kills_and_reaps_a_running_command) {
  mt::proc_ref ref;
  {
    sp::popen p{{"sleep", "10"}, piped(true, true, true)};
    ref = mt::ref_of(p.pid());
    EXPECT_TRUE(mt::running(ref));
    auto t0 = mt::steady::now();
    p = sp::popen{{"true"}};  // assignment ends the old command the same way
    EXPECT_LT(mt::steady::now() - t0, 5s);
    EXPECT_FALSE(mt::running(ref));
    ref = mt::ref_of(p.pid());
  }
  EXPECT_FALSE(mt::running(ref));
}

TEST_F(subprocess, only_stdin_stdout_and_stderr_are_inherited) {
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately not CLOEXEC
  ASSERT_GE(leaky, 3);
  auto r = sp::run({"sh", "-c", "ls /proc/$$/fd"}, captured());
  ::close(leaky);
  EXPECT_EQ(r.stdout_bytes, "0\n1\n2\n");
}

TEST_F(subprocess, a_command_outlives_the_thread_that_started_it_but_not_the_program) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  // A program that starts a command from a short-lived thread, leaks the handle on purpose (so
  // only PR_SET_PDEATHSIG can end the command), and then dies of SIGKILL.
  pid_t program = ::fork();
  if (program == 0) {
    ::close(report[0]);
    pid_t command = 0;
    std::thread{[&] { command = (new sp::popen{{"sleep", "30"}})->pid(); }}.join();
    std::this_thread::sleep_for(100ms);
    bool alive = mt::running(command);  // not a zombie: alive
    pid_t message[2] = {command, alive ? 1 : 0};
    ssize_t ignored = ::write(report[1], message, sizeof message);
    (void)ignored;
    ::pause();
  }
  ::close(report[1]);
  watchdog.add(program);
  pid_t message[2] = {0, 0};
  ASSERT_EQ(::read(report[0], message, sizeof message), static_cast<ssize_t>(sizeof message));
  ::close(report[0]);
  auto command = mt::ref_of(message[0]);
  watchdog.add(message[0]);
  EXPECT_EQ(message[1], 1) << "the command died with the thread that started it";
  EXPECT_TRUE(mt::running(command));
  ::kill(program, SIGKILL);
  ::waitpid(program, nullptr, 0);
  EXPECT_TRUE(mt::gone_within(command, 5s)) << "the command outlived its program";
}

}  // namespace
