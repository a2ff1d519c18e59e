// The registry of stage functions (mproc/actors/stage_function.hpp).
#include "mproc/actors/stage_function.hpp"

#include <caf/deep_to_string.hpp>

#include <map>
#include <set>

namespace mproc::actors {
namespace detail {
namespace {

struct registry {
  std::map<std::string, std::pair<stage_function, const void*>> functions;
  std::set<std::string> duplicated;  // reported at lookup: static initialization cannot throw
};

registry& the_registry() {
  static registry r;
  return r;
}

}  // namespace

void register_stage_function(const char* name, stage_function fn, const void* identity) {
  auto& r = the_registry();
  auto [it, inserted] = r.functions.emplace(name, std::pair{fn, identity});
  if (!inserted && it->second.second != identity) r.duplicated.insert(name);
}

void throw_wrong_item(const caf::message& item) {
  throw error(errc::wrong_type, "stage function: the item " + caf::deep_to_string(item) +
                                    " does not match the function's parameters");
}

}  // namespace detail

stage_function find_stage_function(const std::string& name, std::error_code& ec) noexcept {
  auto& r = detail::the_registry();
  ec.clear();
  if (r.duplicated.count(name)) ec = errc::duplicate_entry;
  else if (auto it = r.functions.find(name); it != r.functions.end()) return it->second.first;
  else ec = errc::unknown_entry;
  return nullptr;
}

stage_function find_stage_function(const std::string& name) {
  std::error_code ec;
  auto fn = find_stage_function(name, ec);
  throw_if(ec, "stage function '" + name + "'");
  return fn;
}

}  // namespace mproc::actors
