// The node's runtime directory (framework/src/runtime_dir.hpp): removing it succeeds even while
// another thread unlinks entries of its own inside (regression: a SIGINT's removal raced a
// listener unlinking its socket, remove_all stopped at the vanished entry, and the directory
// outlived the node).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../../framework/src/runtime_dir.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

TEST(runtime_dir_removal, removal_survives_entries_unlinked_meanwhile) {
  mproc::test::temp_dir tmp;
  constexpr int files = 400;
  int left_behind = 0;
  for (int round = 0; round < 20; ++round) {
    fs::path dir = tmp / ("node-" + std::to_string(round));
    fs::create_directory(dir);
    for (int i = 0; i < files; ++i) std::ofstream{dir / std::to_string(i)} << i;
    std::atomic<bool> go{false};
    // The other party unlinks from the end of the directory's order while the removal starts
    // from its beginning: they meet in the middle, where the removal finds entries gone.
    std::thread other{[&] {
      while (!go.load()) {
      }
      for (int i = files - 1; i >= 0; --i) ::unlink((dir / std::to_string(i)).c_str());
    }};
    go = true;
    mproc::detail::remove_runtime_dir(dir);
    other.join();
    if (fs::exists(dir)) ++left_behind;
  }
  EXPECT_EQ(left_behind, 0) << "of 20 directories, removed while entries vanished";
}

TEST(runtime_dir_removal, removing_a_missing_directory_is_no_error) {
  mproc::test::temp_dir tmp;
  mproc::detail::remove_runtime_dir(tmp / "never-made");
  mproc::detail::remove_runtime_dir({});
  EXPECT_FALSE(fs::exists(tmp / "never-made"));
}

}  // namespace
