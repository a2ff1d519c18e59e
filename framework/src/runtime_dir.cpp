#include "runtime_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "mproc/error.hpp"

namespace mproc::detail {
namespace fs = std::filesystem;

std::uint64_t process_start_time(pid_t pid) noexcept {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  auto close = stat.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest{stat.substr(close + 2)};
  std::string field;
  // Fields after the name start at field 3 (state); starttime is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return 0;
  }
  return std::strtoull(field.c_str(), nullptr, 10);
}

fs::path runtime_root(const fs::path& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("MPROC_RUNTIME_DIR"); env != nullptr && *env != '\0') return env;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0')
    return fs::path{xdg} / "mproc";
  return fs::path{"/tmp"} / ("mproc-" + std::to_string(::geteuid()));
}

namespace {

/// Creates `dir` with mode 0700 if missing, then insists it is a real directory of ours that
/// nobody else can enter.
void ensure_private_dir(const fs::path& dir, std::error_code& ec) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    ec = {errno, std::system_category()};
    return;
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    ec = {errno, std::system_category()};
    return;
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    ec = make_error_code(errc::runtime_dir);
    return;
  }
  ec.clear();
}

}  // namespace

int reclaim_stale_runtime_dirs(const fs::path& root) noexcept {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator{root, ec}) {
    pid_t pid = 0;
    unsigned long long start = 0;
    auto name = entry.path().filename().string();
    if (std::sscanf(name.c_str(), "node-%d-%llu", &pid, &start) != 2) continue;
    if (process_start_time(pid) == start) continue;  // its node is alive
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
    if (!ignored) ++removed;
  }
  return removed;
}

fs::path create_runtime_dir(const fs::path& root, std::error_code& ec) {
  if (!root.parent_path().empty() && root.parent_path() != root) {
    std::error_code ignored;
    fs::create_directories(root.parent_path(), ignored);  // e.g. a configured nested root
  }
  ensure_private_dir(root, ec);
  if (ec) return {};
  reclaim_stale_runtime_dirs(root);
  pid_t self = ::getpid();
  auto dir = root / ("node-" + std::to_string(self) + "-" + std::to_string(process_start_time(self)));
  ensure_private_dir(dir, ec);
  if (ec) return {};
  return dir;
}

void remove_runtime_dir(const fs::path& dir) noexcept {
  if (dir.empty()) return;
  // Another thread may unlink its own socket inside meanwhile (a router or mailbox listener
  // closing while a SIGINT removes the directory). fs::remove_all gives up at the first entry
  // that vanished under it and leaves the directory behind, so each entry is removed on its own
  // and one already gone is fine. An entry created meanwhile makes rmdir fail: go again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code gone_already;
      fs::remove_all(it->path(), gone_already);
    }
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != ENOTEMPTY && errno != EEXIST) return;
  }
}

}  // namespace mproc::detail
