// mproc::test::temp_dir: a fresh private directory, removed with everything in it. A piece of
// the test support that the benchmarks use too (they cannot link the tests' main()).
#pragma once

#include <filesystem>
#include <string>

namespace mproc::test {

/// A fresh private directory (0700) under the system's temporary directory; the destructor
/// removes it with everything in it, also what a test made unwritable.
///
/// Thread safety: the path may be read from any thread.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace mproc::test
