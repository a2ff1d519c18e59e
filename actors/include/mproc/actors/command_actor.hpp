// mproc/actors/command_actor.hpp — an external command as a CAF actor (in this process).
//
//   auto cmd = mproc::actors::spawn_command(sys, {"sed", "-u", "s/^/> /"}, listener);
//   caf::anon_send(cmd, std::string{"hello\n"});          // written to the command's stdin
//   caf::anon_send(cmd, mproc::actors::close_stdin_atom::value);
//   // listener receives (line_atom, "> hello"), then (exited_atom, 0); then cmd quits.
//
// The actor owns the command (stdin and stdout piped; stderr as `opts` says):
//  - each stdout line, its '\n' removed, goes to `sink` as (line_atom, std::string) — bytes,
//    not decoded (mproc/utf8.hpp);
//  - after the last line and the exit, `sink` gets (exited_atom, int returncode), and the actor
//    quits normally;
//  - a std::string message is written to stdin verbatim (add the '\n' yourself);
//    (close_stdin_atom) closes stdin, so the command reads end of file.
// The actor is detached (a thread of its own), so a write that waits for the command to read
// blocks nobody else. Stop it early with caf::anon_send_exit(cmd, caf::exit_reason::user_shutdown):
// the command is then killed (SIGKILL) and reaped, and no exited_atom is sent. An
// actor_system waits for its actors at destruction, so stop a command actor that could still
// run by then.
//
// Thread safety: the returned handle is a caf::actor (any thread). Errors: spawn_command throws
// mproc::error as mproc::subprocess::popen does (command_not_found, access_denied, ...).
#pragma once

#include <caf/all.hpp>

#include <memory>
#include <mproc/subprocess.hpp>
#include <string>
#include <thread>
#include <vector>

namespace mproc::actors {

using line_atom = caf::atom_constant<caf::atom("line")>;
using exited_atom = caf::atom_constant<caf::atom("exited")>;
using close_stdin_atom = caf::atom_constant<caf::atom("closestdin")>;

namespace detail {

struct command_state {
  subprocess::popen command;
  std::jthread reader;  // forwards stdout lines; stopped and joined when the actor ends

  ~command_state() {
    // The last reference to the actor (and so to this state) may be dropped by the reader
    // thread itself, right after its final send; it cannot join itself and is ending anyway.
    if (reader.joinable() && reader.get_id() == std::this_thread::get_id()) reader.detach();
  }
};

inline caf::behavior command_behavior(caf::event_based_actor* self, std::shared_ptr<command_state> st,
                                      caf::actor sink) {
  auto me = self->address();  // weak: the reader thread must not keep the actor alive
  st->reader = std::jthread{[state = st.get(), sink, me](std::stop_token stop) {
    std::error_code ec;
    state->command.for_each_stdout_line(
        [&](std::string&& line) { caf::anon_send(sink, line_atom::value, std::move(line)); }, stop, ec);
    if (stop.stop_requested()) return;
    int code = state->command.wait();
    caf::anon_send(sink, exited_atom::value, code);
    caf::anon_send_exit(me, caf::exit_reason::normal);
  }};
  self->attach_functor([st] {
    st->reader.request_stop();
    st->command.kill();  // no-op once reaped
    if (st->reader.joinable() && st->reader.get_id() != std::this_thread::get_id()) st->reader.join();
  });
  return {
      [st](const std::string& bytes) {
        std::error_code ec;  // a command that closed its stdin: its exit reports the rest
        st->command.write_stdin(bytes, ec);
      },
      [st](close_stdin_atom) { st->command.close_stdin(); },
  };
}

}  // namespace detail

inline caf::actor spawn_command(caf::actor_system& sys, std::vector<std::string> argv, caf::actor sink,
                                subprocess::options opts = {}) {
  opts.stdin_mode = opts.stdout_mode = subprocess::stream::pipe;
  auto st = std::make_shared<detail::command_state>();
  st->command = subprocess::popen{std::move(argv), opts};  // throws before any actor exists
  // State and sink travel as spawn arguments, not captures: CAF 0.17 dereferences a null
  // argument tuple for a function spawned without arguments (UBSan reports it).
  return sys.spawn<caf::detached>(detail::command_behavior, std::move(st), std::move(sink));
}

}  // namespace mproc::actors
