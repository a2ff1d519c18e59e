// Source, stage and sink actors (mproc/actors/pipeline.hpp).
#include "stages.hpp"

#include "mproc/actors/caf_error.hpp"
#include "mproc/actors/pipeline.hpp"

namespace mproc::actors::detail {
namespace {

/// The function named `name`, or nullptr after ending `self` with the lookup's error.
stage_function function_or_quit(caf::scheduled_actor* self, const std::string& name) {
  std::error_code ec;
  auto fn = find_stage_function(name, ec);
  if (!fn) self->quit(make_caf_error(static_cast<errc>(ec.value())));
  return fn;
}

/// fn(item), or nullopt after ending `self` with the errc of an mproc::error fn threw (an item of
/// the wrong type, say). Other exceptions crash the stage as CAF does (sec::runtime_error).
std::optional<caf::message> call_or_quit(caf::scheduled_actor* self, stage_function fn, const caf::message& item) {
  try {
    return fn(item);
  } catch (const error& e) {
    if (e.code().category() != category()) throw;
    self->quit(make_caf_error(static_cast<errc>(e.code().value())));
    return std::nullopt;
  }
}

/// Starts the outbox, or ends `self` with errc::invalid_argument for settings it cannot use.
bool start_outbox(caf::stateful_actor<sending_state>* self, outbox::settings s) {
  if (s.window == 0 || s.downstreams.empty() || s.expected_ends == 0) {
    self->quit(make_caf_error(errc::invalid_argument));
    return false;
  }
  self->state.out.emplace(self, std::move(s));
  self->state.out->start();
  self->state.alive.self = caf::actor_cast<caf::actor>(self);
  return true;
}

/// Makes items while the outbox can send: generator(index), or element `index` of `items` when
/// there is no generator; an empty result (or the end of `items`) ends the stream.
struct generator_state {
  stage_function generator;
  caf::message items;
  std::uint64_t first_seq;
  std::uint64_t index = 0;

  std::optional<caf::message> next(caf::scheduled_actor* self) {
    if (generator) return call_or_quit(self, generator, caf::make_message(index));
    if (index < items.size()) return items.get_as<caf::message>(static_cast<std::size_t>(index));
    return caf::message{};
  }

  void fill(caf::scheduled_actor* self, outbox& out) {
    while (!out.ending() && out.has_credit()) {
      auto item = next(self);
      if (!item) return;
      if (item->empty()) out.add_end({}, {});
      else out.add(first_seq + index++, std::move(*item), {});
    }
  }
};

}  // namespace

caf::behavior source_behavior(caf::stateful_actor<sending_state>* self, std::string name, std::string generator,
                              caf::message items, std::string downstream, std::uint64_t first_seq,
                              std::uint32_t window, std::uint32_t relink_ms) {
  stage_function fn = nullptr;
  if (!generator.empty() && !(fn = function_or_quit(self, generator))) return {};
  for (std::size_t i = 0; !fn && i < items.size(); ++i) {
    // A list holds messages, none empty (an empty item would end the stream early).
    if (!items.match_element<caf::message>(i) || items.get_as<caf::message>(i).empty()) {
      self->quit(make_caf_error(errc::invalid_argument));
      return {};
    }
  }
  if (!start_outbox(self, {name, {downstream}, window, std::chrono::milliseconds(relink_ms), 1})) return {};
  auto gen = std::make_shared<generator_state>(generator_state{fn, std::move(items), first_seq});
  gen->fill(self, *self->state.out);
  return {
      [self, gen](ack_atom, std::uint64_t seq) {
        self->state.out->on_item_ack(seq);
        gen->fill(self, *self->state.out);
      },
      [self](ack_atom, const std::string&) { self->state.out->on_end_ack(); },
      [self, gen](relink_atom) {
        self->state.out->on_relink();
        gen->fill(self, *self->state.out);
      },
  };
}

caf::behavior stage_behavior(caf::stateful_actor<sending_state>* self, std::string name, std::string kind,
                             std::string function, std::vector<std::string> downstreams, std::uint32_t upstreams,
                             std::uint32_t window, std::uint32_t relink_ms) {
  enum class what { map, filter, pass };
  what how;
  if (kind == "map") how = what::map;
  else if (kind == "filter") how = what::filter;
  else if (kind == "pass") how = what::pass;
  else {
    self->quit(make_caf_error(errc::invalid_argument));
    return {};
  }
  stage_function fn = nullptr;
  if (how != what::pass && !(fn = function_or_quit(self, function))) return {};
  if (!start_outbox(self, {name, std::move(downstreams), window, std::chrono::milliseconds(relink_ms), upstreams}))
    return {};
  return {
      [self, how, fn](item_atom, std::uint64_t seq, caf::message& item) {
        auto from = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (how == what::map) {
          auto made = call_or_quit(self, fn, item);
          if (!made) return;
          item = std::move(*made);
        } else if (how == what::filter) {
          auto keep = call_or_quit(self, fn, item);
          if (!keep) return;
          if (!keep->match_elements<bool>()) {
            self->quit(make_caf_error(errc::wrong_type));
            return;
          }
          if (!keep->get_as<bool>(0)) {  // dropped: nothing downstream to wait for
            self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value, seq);
            return;
          }
        }
        self->state.out->add(seq, std::move(item), std::move(from));
      },
      [self](eos_atom, const std::string& upstream) {
        self->state.out->add_end(upstream, caf::actor_cast<caf::actor_addr>(self->current_sender()));
      },
      [self](ack_atom, std::uint64_t seq) { self->state.out->on_item_ack(seq); },
      [self](ack_atom, const std::string&) { self->state.out->on_end_ack(); },
      [self](relink_atom) { self->state.out->on_relink(); },
  };
}

caf::behavior sink_behavior(caf::stateful_actor<sink_state>* self, std::string function, std::uint32_t upstreams,
                            caf::actor listener) {
  stage_function fn = nullptr;
  if (!function.empty() && !(fn = function_or_quit(self, function))) return {};
  if (upstreams == 0) {
    self->quit(make_caf_error(errc::invalid_argument));
    return {};
  }
  self->state.alive.self = caf::actor_cast<caf::actor>(self);
  return {
      [self, fn](item_atom, std::uint64_t seq, const caf::message& item) {
        // Acknowledged after the function ran: a duplicate (re-sent after a restart) only again.
        if (self->state.seen.insert(seq).second && fn && !call_or_quit(self, fn, item)) return;
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value, seq);
      },
      [self, upstreams, listener](eos_atom, const std::string& upstream) {
        self->state.ends[upstream] = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (self->state.ends.size() < upstreams) return;
        if (listener) self->send(listener, done_atom::value, static_cast<std::uint64_t>(self->state.seen.size()));
        for (auto& [up, from] : self->state.ends)
          if (auto to = caf::actor_cast<caf::actor>(from)) self->send(to, ack_atom::value, up);
        self->quit();
      },
  };
}

}  // namespace mproc::actors::detail
