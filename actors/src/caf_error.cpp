// mproc::errc inside caf::error: category "mproc", code = the errc value, context = a string.
#include <caf/message.hpp>

#include <mproc/actor_error.hpp>
#include <mproc/actors/caf_error.hpp>

namespace mproc::actors {

caf::error to_caf_error(errc e, std::string context) { return make_caf_error(e, std::move(context)); }

std::optional<errc> errc_of(const caf::error& e) noexcept {
  if (!e || e.category() != errc_category) return std::nullopt;
  return static_cast<errc>(e.code());
}

std::string context_of(const caf::error& e) { return mproc::context_of(e); }

void add_errc_category(caf::actor_system_config& cfg) { add_error_category(cfg); }

}  // namespace mproc::actors
