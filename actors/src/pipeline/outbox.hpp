// The sending half of a source or a stage: items it owes acknowledgements for, credit per
// downstream, re-sending after a downstream restarts, and the end of stream.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace mproc::actors::detail {

using relink_atom = caf::atom_constant<caf::atom("relink")>;

class outbox {
 public:
  struct settings {
    std::string name;                      // this stage's name: the end of stream carries it
    std::vector<std::string> downstreams;  // found by name
    std::uint32_t window = 16;
    std::chrono::milliseconds relink_timeout{10000};
    std::size_t expected_ends = 1;         // ends of stream to collect before passing it on
  };

  outbox(caf::event_based_actor* self, settings s);

  /// Installs the down handler and starts looking the downstreams up.
  void start();

  /// Takes an item this stage made, owing `from` (may be null) an acknowledgement for `seq`. A
  /// sequence number held already only gets the new `from` (an upstream that restarted).
  void add(std::uint64_t seq, caf::message item, caf::actor_addr from);
  /// Records the end of stream of upstream `upstream` (sent by `from`, may be null).
  void add_end(const std::string& upstream, caf::actor_addr from);
  /// True when an item added now would be sent at once (a source generates only then).
  bool has_credit() const;
  /// True once the stream ended here (a source stops generating).
  bool ending() const { return ends_.size() >= settings_.expected_ends; }

  void on_item_ack(std::uint64_t seq);
  void on_end_ack();  // the current sender acknowledged our end of stream
  void on_relink();   // the relink_atom tick

 private:
  static constexpr std::size_t no_link = static_cast<std::size_t>(-1);
  struct held {
    caf::message item;
    caf::actor_addr from;  // whom to acknowledge, weak: a dead upstream re-sends anyway
    std::size_t link = no_link;
    bool sent = false;
  };
  struct link {
    std::string name;
    caf::actor handle;         // null while down
    caf::actor_addr dead;      // the instance that died: not taken again from the directory
    std::chrono::steady_clock::time_point down_since;
    std::uint32_t in_flight = 0;
    bool end_sent = false;
    bool end_acked = false;
  };

  void on_down(const caf::down_msg& down);
  void pump();
  void send_item(std::uint64_t seq, held& h);
  void schedule_relink();
  void acknowledge(const caf::actor_addr& to, caf::message ack);
  void maybe_finish();

  caf::event_based_actor* self_;
  settings settings_;
  std::map<std::uint64_t, held> held_;  // every item not acknowledged downstream, by seq
  std::deque<std::uint64_t> pending_;   // held but not yet given to a downstream, in arrival order
  std::vector<link> links_;
  std::size_t next_link_ = 0;  // round robin
  std::map<std::string, caf::actor_addr> ends_;  // upstream ends of stream and whom to acknowledge
  bool relink_scheduled_ = false;
};

}  // namespace mproc::actors::detail
