// The printer actor (mproc/actors/printer.hpp).
#include "mproc/actors/printer.hpp"
#include <mproc/actor_runtime.hpp>
#include "mproc/actors/printer_pipeline_types.hpp"

#include <caf/all.hpp>

#include <cerrno>
#include <map>
#include <memory>
#include <unistd.h>

#include "mproc/actors/caf_error.hpp"
#include "printer_actor.hpp"

namespace mproc::actors {
namespace detail {
namespace {

/// Writes all of `data`, continuing short writes and EINTR. False on any other error.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct printer_state {
  int fd;
  // Partial lines by sender; the null address holds the anonymous senders' text.
  std::map<caf::actor_addr, std::string> partial;
  bool failed = false;

  /// Writes `text` (whole lines only) in one write; false once the fd failed.
  bool emit(std::string_view text) {
    if (!failed && !write_all(fd, text)) failed = true;
    return !failed;
  }

  void flush_all() {
    std::string text;
    for (auto& [sender, rest] : partial) text += rest + '\n';
    partial.clear();
    if (!text.empty()) emit(text);
  }
};

}  // namespace

caf::behavior printer_behavior(caf::event_based_actor* self, int fd) {
  if (fd < 0) {
    self->quit(make_caf_error(errc::invalid_argument));
    return {};
  }
  auto st = std::make_shared<printer_state>();
  st->fd = fd;
  // What senders left unfinished still reaches the fd when the printer ends. On an exit message
  // the flush happens before quitting, so a monitor that learns of the end finds the text written
  // (CAF notifies monitors before it runs functors attached earlier); the functor covers the
  // endings without a message (the actor_system shutting down).
  self->set_exit_handler([self, st](caf::exit_msg& exit) {
    st->flush_all();
    self->quit(std::move(exit.reason));
  });
  self->attach_functor([st] { st->flush_all(); });
  self->set_down_handler([self, st](const caf::down_msg& down) {
    auto it = st->partial.find(down.source);
    if (it == st->partial.end()) return;
    std::string line = std::move(it->second) + '\n';
    st->partial.erase(it);
    if (!st->emit(line)) self->quit(make_caf_error(errc::end_of_stream));
  });
  return {
      [self, st](print_atom, std::string& text) {
        auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
        auto last_newline = text.rfind('\n');
        auto it = st->partial.find(sender);
        // The sender's first unfinished line: watch it, so its death flushes the line.
        auto start_partial = [&](std::string rest) {
          st->partial.emplace(sender, std::move(rest));
          if (sender) self->monitor(self->current_sender());
        };
        if (last_newline == std::string::npos) {  // still no end of line: keep it
          if (text.empty()) return;
          if (it == st->partial.end()) {
            start_partial(std::move(text));
          } else {
            it->second += text;
          }
          return;
        }
        std::string lines;
        bool had_partial = it != st->partial.end();
        if (had_partial) lines = std::move(it->second);
        lines.append(text, 0, last_newline + 1);
        if (last_newline + 1 < text.size()) {  // a new partial line follows the last newline
          if (had_partial) it->second = text.substr(last_newline + 1);
          else start_partial(text.substr(last_newline + 1));
        } else if (had_partial) {
          st->partial.erase(it);
          if (sender) self->demonitor(sender);
        }
        if (!st->emit(lines)) self->quit(make_caf_error(errc::end_of_stream));
      },
  };
}

}  // namespace detail

caf::actor spawn_printer(caf::actor_system& sys, int fd) {
  if (fd < 0) throw error(errc::invalid_argument, "spawn_printer: negative fd");
  return sys.spawn<caf::detached>(detail::printer_behavior, fd);
}

// Every process of a node knows the printer and stage types (mproc/actor_runtime.hpp); this file
// is linked whenever they are used.
MPROC_ACTOR_CONFIG(add_printer_pipeline_types);

}  // namespace mproc::actors
