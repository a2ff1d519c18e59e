// mproc/actors/printer.hpp — one actor owns the console, so lines from many processes never mix.
//
//   auto out = mproc::actors::spawn_printer(sys);               // writes to stdout
//   mproc::actors::println(out, "worker ", id, " got ", x);     // from any thread: one whole line
//   mproc::actors::print(self, out, "progress: ");              // from an actor: a partial line ...
//   mproc::actors::println(self, out, 42, '%');                 // ... completed by its next text
//
// What the printer promises:
//  - every complete line reaches the fd in ONE write(2) (a write may carry several whole lines of
//    one message; a short write is continued, and the printer is the only writer, so a line is
//    never split by another line);
//  - text without a final '\n' is kept per sender until that sender writes the rest of the line;
//    when the sender terminates first (any reason, also the death of its process), the partial
//    line is written with a '\n' added; partial lines of anonymous senders (print(printer, ...)
//    from a thread that is not an actor) share one buffer;
//  - per sender, lines appear in the order they were sent (CAF keeps the order of messages from
//    one sender to one actor);
//  - when the printer itself ends (exit message, actor_system shutdown), it writes every partial
//    line it still holds, each with a '\n'.
// A write error (EPIPE, EBADF, ...) ends the printer with an mproc error reason
// (errc::end_of_stream) that monitors see; later text is dropped by CAF like any message to a
// dead actor. The printer never closes its fd. Writing to a closed pipe raises SIGPIPE as for any
// writer unless the program ignores it.
//
// Message protocol (for senders that do not use the helpers): (print_atom, std::string text).
//
// In another process: spawn by name "mproc.printer" with caf::make_message(int fd) after
// add_printer_pipeline_types(cfg) (mproc/actors/printer_pipeline_types.hpp); the fd is one of
// that process (1 is its stdout). CAF's factory cannot detach an actor, so a printer spawned by
// name runs on the scheduler: a terminal that stops reading holds one scheduler thread.
//
// Thread safety: the handle is a caf::actor (any thread); the helpers may be called from any
// thread or actor. Lifetime: the printer runs until it gets an exit message or nobody holds a
// handle to it any more (CAF ends an actor nobody references); either way it writes what it holds.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/send.hpp>

#include <sstream>
#include <string>
#include <unistd.h>
#include <utility>

namespace mproc::actors {

using print_atom = caf::atom_constant<caf::atom("print")>;

/// The name under which add_printer_pipeline_types registers the printer (argument: int fd).
inline constexpr const char* printer_type_name = "mproc.printer";

/// Spawns a printer (detached: a slow terminal blocks only the printer's own thread) that writes
/// to `fd`, by default this process's stdout. Throws mproc::error(errc::invalid_argument) for a
/// negative fd.
caf::actor spawn_printer(caf::actor_system& sys, int fd = STDOUT_FILENO);

namespace detail {

template <class... Ts>
std::string format_text(const Ts&... xs) {
  std::ostringstream out;
  (out << ... << xs);
  return std::move(out).str();
}

/// Something that can send as an actor: a caf::event_based_actor*, caf::stateful_actor<T>*,
/// caf::blocking_actor*, caf::scoped_actor... (a caf::actor cannot: it is the printer).
template <class Self>
concept actor_sender = requires(Self& self, const caf::actor& to) { self->send(to, print_atom::value, std::string{}); };

}  // namespace detail

/// Sends the text of `xs...` (formatted as std::ostream formats it) without adding a newline.
/// Anonymous: partial lines of all anonymous senders share one buffer.
template <class... Ts>
void print(const caf::actor& printer, const Ts&... xs) {
  caf::anon_send(printer, print_atom::value, detail::format_text(xs...));
}

/// Sends the text of `xs...` and a '\n'.
template <class... Ts>
void println(const caf::actor& printer, const Ts&... xs) {
  caf::anon_send(printer, print_atom::value, detail::format_text(xs..., '\n'));
}

/// As print(printer, xs...), sent by actor `self`: its partial line is its own, and is flushed
/// when `self` terminates.
template <detail::actor_sender Self, class... Ts>
void print(Self&& self, const caf::actor& printer, const Ts&... xs) {
  self->send(printer, print_atom::value, detail::format_text(xs...));
}

/// As println(printer, xs...), sent by actor `self`.
template <detail::actor_sender Self, class... Ts>
void println(Self&& self, const caf::actor& printer, const Ts&... xs) {
  self->send(printer, print_atom::value, detail::format_text(xs..., '\n'));
}

}  // namespace mproc::actors
