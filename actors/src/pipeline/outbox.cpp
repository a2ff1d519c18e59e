// The sending half of pipeline stages (outbox.hpp).
#include "outbox.hpp"

#include "mproc/actors/caf_error.hpp"
#include "mproc/actors/directory.hpp"
#include "mproc/actors/pipeline.hpp"

namespace mproc::actors::detail {

// How often a stage without a downstream looks its name up again: a restart is seen within this.
constexpr auto relink_interval = std::chrono::milliseconds(5);

outbox::outbox(caf::event_based_actor* self, settings s) : self_(self), settings_(std::move(s)) {
  auto now = std::chrono::steady_clock::now();
  for (auto& name : settings_.downstreams) links_.push_back(link{name, {}, {}, now});
}

void outbox::start() {
  self_->set_down_handler([this](const caf::down_msg& down) { on_down(down); });
  on_relink();
}

void outbox::add(std::uint64_t seq, caf::message item, caf::actor_addr from) {
  auto [it, fresh] = held_.try_emplace(seq);
  if (from) it->second.from = std::move(from);
  if (!fresh) return;  // a re-sent item we still hold: it is on its way already
  it->second.item = std::move(item);
  pending_.push_back(seq);
  pump();
}

void outbox::add_end(const std::string& upstream, caf::actor_addr from) {
  auto& to = ends_[upstream];
  if (from) to = std::move(from);
  pump();
}

bool outbox::has_credit() const {
  if (!pending_.empty()) return false;
  for (auto& l : links_)
    if (l.handle && l.in_flight < settings_.window) return true;
  return false;
}

void outbox::send_item(std::uint64_t seq, held& h) {
  self_->send(links_[h.link].handle, item_atom::value, seq, h.item);
  h.sent = true;
}

void outbox::pump() {
  // Items in arrival order, each to the next downstream (round robin) that is up and has credit.
  while (!pending_.empty()) {
    std::size_t chosen = no_link;
    for (std::size_t i = 0; i < links_.size() && chosen == no_link; ++i) {
      auto& l = links_[(next_link_ + i) % links_.size()];
      if (l.handle && l.in_flight < settings_.window) chosen = (next_link_ + i) % links_.size();
    }
    if (chosen == no_link) return;
    next_link_ = (chosen + 1) % links_.size();
    auto seq = pending_.front();
    pending_.pop_front();
    auto& h = held_.at(seq);
    h.link = chosen;
    ++links_[chosen].in_flight;
    send_item(seq, h);
  }
  // The end of stream follows every item, on every downstream.
  if (!ending()) return;
  for (auto& l : links_) {
    if (l.handle && !l.end_sent) {
      self_->send(l.handle, eos_atom::value, settings_.name);
      l.end_sent = true;
    }
  }
}

void outbox::acknowledge(const caf::actor_addr& to, caf::message ack) {
  if (auto upstream = caf::actor_cast<caf::actor>(to)) self_->send(upstream, std::move(ack));
}

void outbox::on_item_ack(std::uint64_t seq) {
  auto it = held_.find(seq);
  if (it == held_.end() || !it->second.sent) return;  // a late duplicate
  --links_[it->second.link].in_flight;
  acknowledge(it->second.from, caf::make_message(ack_atom::value, seq));
  held_.erase(it);
  pump();
  maybe_finish();
}

void outbox::on_end_ack() {
  auto sender = caf::actor_cast<caf::actor_addr>(self_->current_sender());
  for (auto& l : links_)
    if (l.handle && l.handle.address() == sender && l.end_sent) l.end_acked = true;
  maybe_finish();
}

void outbox::maybe_finish() {
  if (!held_.empty()) return;
  for (auto& l : links_)
    if (!l.end_acked) return;
  // Everything downstream is complete: only now may the upstreams forget their ends of stream.
  for (auto& [upstream, from] : ends_) acknowledge(from, caf::make_message(ack_atom::value, upstream));
  self_->quit();
}

void outbox::on_down(const caf::down_msg& down) {
  for (std::size_t i = 0; i < links_.size(); ++i) {
    auto& l = links_[i];
    // A downstream that acknowledged our end of stream is done with us and ends normally.
    if (!l.handle || l.handle.address() != down.source || l.end_acked) continue;
    l.dead = down.source;
    l.handle = nullptr;
    l.down_since = std::chrono::steady_clock::now();
    l.end_sent = false;
    for (auto& [seq, h] : held_)
      if (h.link == i) h.sent = false;  // kept for this downstream's next instance
  }
  schedule_relink();
}

void outbox::schedule_relink() {
  if (relink_scheduled_) return;
  relink_scheduled_ = true;
  self_->delayed_send(self_, relink_interval, relink_atom::value);
}

void outbox::on_relink() {
  relink_scheduled_ = false;
  auto now = std::chrono::steady_clock::now();
  bool missing = false;
  for (std::size_t i = 0; i < links_.size(); ++i) {
    auto& l = links_[i];
    if (l.handle) continue;
    auto found = lookup(self_->system(), l.name);
    if (!found || found.address() == l.dead) {
      if (now - l.down_since > settings_.relink_timeout) {
        self_->quit(make_caf_error(errc::timeout));
        return;
      }
      missing = true;
      continue;
    }
    l.handle = found;
    self_->monitor(found);
    // The new instance gets what the old one did not acknowledge, in sequence order.
    for (auto& [seq, h] : held_)
      if (h.link == i && !h.sent) send_item(seq, h);
  }
  if (missing) schedule_relink();
  pump();
}

}  // namespace mproc::actors::detail
