// mproc::errc inside caf::error: category "mproc", code = the errc value, context = a string.
#include <caf/message.hpp>

#include <mproc/actors/caf_error.hpp>

namespace mproc::actors {

caf::error to_caf_error(errc e, std::string context) {
  return caf::error{static_cast<std::uint8_t>(e), errc_category, caf::make_message(std::move(context))};
}

std::optional<errc> errc_of(const caf::error& e) noexcept {
  if (!e || e.category() != errc_category) return std::nullopt;
  return static_cast<errc>(e.code());
}

std::string context_of(const caf::error& e) {
  if (!e || e.category() != errc_category || !e.context().match_elements<std::string>()) return {};
  return e.context().get_as<std::string>(0);
}

void add_errc_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(errc_category, [](std::uint8_t code, caf::atom_value, const caf::message& context) {
    std::string out = "mproc: " + make_error_code(static_cast<errc>(code)).message();
    if (context.match_elements<std::string>() && !context.get_as<std::string>(0).empty())
      out += ": " + context.get_as<std::string>(0);
    return out;
  });
}

}  // namespace mproc::actors
