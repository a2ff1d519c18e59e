#include "mproc/error.hpp"

namespace mproc {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mproc"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_started: return "process not started";
      case errc::already_started: return "process already started";
      case errc::unknown_entry: return "entry point not registered (MPROC_ENTRY / MPROC_PROCESS_CLASS)";
      case errc::duplicate_entry: return "two different entry points registered under one name";
      case errc::unsupported_target: return "target cannot be started with this start method";
      case errc::timeout: return "timed out";
      case errc::interrupted: return "interrupted by SIGINT";
      case errc::spawn_failed: return "could not create the process";
      case errc::node_closed: return "node is shut down";
      case errc::no_node: return "no mproc::node in this process";
      case errc::bad_message: return "malformed message";
      case errc::runtime_dir: return "runtime directory is unsafe or unusable";
      case errc::invalid_argument: return "invalid argument";
      case errc::closed: return "mailbox closed";
      case errc::full: return "queue full";
      case errc::empty: return "queue empty";
      case errc::end_of_stream: return "end of stream: no writer is left, or the peer closed its end";
      case errc::wrong_type: return "message type does not match the mailbox's type";
      case errc::access_denied: return "access denied (a peer of another user, or a command that may not be executed)";
      case errc::message_too_large: return "message too large";
      case errc::broken_barrier: return "barrier broken";
      case errc::task_failed: return "task failed";
      case errc::worker_lost: return "worker lost";
      case errc::cancelled: return "cancelled";
      case errc::actor_down: return "actor down";
      case errc::host_lost: return "actor host process lost";
      case errc::too_many_restarts: return "too many restarts";
      case errc::node_lost: return "remote node lost or unreachable";
      case errc::command_not_found: return "command not found";
      case errc::command_failed: return "command returned a nonzero exit status";
    }
    return "unknown mproc error";
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

void throw_if(const std::error_code& ec, const std::string& context) {
  if (ec) throw error(ec, context);
}

}  // namespace mproc
