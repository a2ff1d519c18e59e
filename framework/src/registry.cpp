// The entry registry: filled during static initialization (MPROC_ENTRY, MPROC_PROCESS_CLASS),
// read-only afterwards, so lookups need no lock.
#include <map>
#include <mutex>
#include <typeindex>

#include "mproc/entry.hpp"

namespace mproc::detail {
namespace {

struct registry {
  std::mutex mutex;  // static initializers may run on several threads in exotic setups
  std::map<std::pair<entry_kind, std::string>, entry_info> by_name;
  std::map<const void*, std::string> fn_names;
  std::map<std::type_index, std::string> class_names;
  std::string duplicate;
};

registry& instance() {
  static registry r;  // function-local: safe whatever the order of static initialization
  return r;
}

}  // namespace

void register_entry(entry_info info) {
  auto& r = instance();
  std::lock_guard lock{r.mutex};
  auto key = std::make_pair(info.kind, info.name);
  if (auto it = r.by_name.find(key); it != r.by_name.end()) {
    // The same function registered in two translation units is harmless; two different
    // targets behind one name would make the child run the wrong code.
    if (it->second.fn != info.fn || it->second.invoke != info.invoke)
      if (r.duplicate.empty()) r.duplicate = info.name;
    return;
  }
  if (info.fn != nullptr) r.fn_names.emplace(info.fn, info.name);
  r.by_name.emplace(std::move(key), std::move(info));
}

void register_class_type(std::type_index type, const std::string& name) {
  auto& r = instance();
  std::lock_guard lock{r.mutex};
  r.class_names.emplace(type, name);
}

const entry_info* find_entry_by_name(entry_kind kind, const std::string& name) {
  auto& r = instance();
  auto it = r.by_name.find({kind, name});
  return it == r.by_name.end() ? nullptr : &it->second;
}

const entry_info* find_entry_by_fn(const void* fn) {
  auto& r = instance();
  auto it = r.fn_names.find(fn);
  return it == r.fn_names.end() ? nullptr : find_entry_by_name(entry_kind::function, it->second);
}

const entry_info* find_entry_by_type(std::type_index type) {
  auto& r = instance();
  auto it = r.class_names.find(type);
  return it == r.class_names.end() ? nullptr : find_entry_by_name(entry_kind::process_class, it->second);
}

std::string duplicate_entry_name() {
  auto& r = instance();
  std::lock_guard lock{r.mutex};
  return r.duplicate;
}

}  // namespace mproc::detail
