#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>

#include "mproc/actor_error.hpp"
#include "runtime.hpp"

namespace mproc {
caf::error make_caf_error(errc code, std::string context) {
  return caf::error{static_cast<std::uint8_t>(code), caf_error_category, caf::make_message(std::move(context))};
}

std::error_code to_error_code(const caf::error& e) {
  if (!e) return {};
  if (e.category() == caf_error_category) return make_error_code(static_cast<errc>(e.code()));
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
      case caf::sec::request_timeout: return make_error_code(errc::timeout);
      case caf::sec::unexpected_message: return make_error_code(errc::wrong_type);
      case caf::sec::request_receiver_down:
      case caf::sec::remote_linking_failed: return make_error_code(errc::actor_down);
      case caf::sec::cannot_connect_to_node:
      case caf::sec::no_route_to_receiving_node: return make_error_code(errc::node_lost);
      default: return make_error_code(errc::bad_message);
    }
  }
  if (e.category() == caf::atom("exit")) {
    // CAF kills the proxies of a node whose connection broke (closed, or silent past the heartbeat
    // timeout) with remote_link_unreachable.
    if (static_cast<caf::exit_reason>(e.code()) == caf::exit_reason::remote_link_unreachable)
      return make_error_code(errc::node_lost);
    return make_error_code(errc::actor_down);
  }
  return make_error_code(errc::bad_message);
}

std::string context_of(const caf::error& e) {
  if (!e || e.category() != caf_error_category || !e.context().match_elements<std::string>()) return {};
  return e.context().get_as<std::string>(0);
}

namespace {
std::string render_mproc(std::uint8_t code, const caf::message& context) {
  std::string text = make_error_code(static_cast<errc>(code)).message();
  if (context.match_elements<std::string>() && !context.get_as<std::string>(0).empty())
    text += ": " + context.get_as<std::string>(0);
  return text;
}
}  // namespace

void add_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(caf_error_category, [](std::uint8_t code, caf::atom_value, const caf::message& context) {
    return "mproc: " + render_mproc(code, context);
  });
}

std::string describe(const caf::error& e) {
  if (!e) return {};
  if (e.category() == caf_error_category) return render_mproc(e.code(), e.context());
  if (auto* rt = detail::actor_runtime::started()) return rt->system().render(e);
  return caf::to_string(e);
}

mproc::error to_error(const caf::error& e, const std::string& what) {
  return mproc::error(to_error_code(e), what + ": " + describe(e));
}

}  // namespace mproc
