#include "chunk_server.hpp"

#include <mutex>

#include "../node_impl.hpp"
#include "encoded.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/node.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::pool_result;
using mproc::detail::pool_task;

std::string what_of(const std::exception_ptr& why) {
  try {
    if (why) std::rethrow_exception(why);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "no result";
}

/// One chunk from another node, handed to the local pool as a job of its own.
class forwarded_chunk final : public mproc::detail::one_chunk_job {
 public:
  forwarded_chunk(pool_task task, std::function<void(bool, std::string)> done)
      : one_chunk_job(std::move(task)), done_(std::move(done)) {}
  void finished(std::uint64_t, pool_result& r) override { report(true, encode_to_string(r)); }
  void abandoned(std::uint64_t, std::exception_ptr why) override { report(false, what_of(why)); }
  void cancel(std::exception_ptr why) override { report(false, what_of(why)); }

 private:
  void report(bool ok, std::string text) {
    std::function<void(bool, std::string)> done;
    {
      std::lock_guard lock{done_mutex_};
      done.swap(done_);  // exactly once
    }
    if (done) done(ok, std::move(text));
  }
  std::mutex done_mutex_;
  std::function<void(bool, std::string)> done_;
};

struct serving_pool {
  std::mutex mutex;
  std::shared_ptr<mproc::detail::pool_core> core;

  static serving_pool& get() {
    static serving_pool p;
    return p;
  }

  std::shared_ptr<mproc::detail::pool_core> ensure(std::uint32_t workers) {
    std::lock_guard lock{mutex};
    if (core) return core;
    pool_options options;
    options.workers = workers;
    core = std::make_shared<mproc::detail::pool_core>(node::current(), options);
    // A pool must end before its node.
    mproc::detail::at_node_shutdown([] {
      std::shared_ptr<mproc::detail::pool_core> ending;
      {
        auto& self = serving_pool::get();
        std::lock_guard guard{self.mutex};
        ending.swap(self.core);
      }
      if (ending) ending->terminate();
    });
    return core;
  }
};

}  // namespace

void run_chunk(const std::string& task_bytes, std::uint32_t workers, std::function<void(bool, std::string)> done) {
  try {
    auto task = decode_from_string<pool_task>(task_bytes);
    auto core = serving_pool::get().ensure(workers);
    core->submit(std::make_shared<forwarded_chunk>(std::move(task), done));
  } catch (const std::exception& e) {
    done(false, e.what());
  }
}

}  // namespace mproc::cluster::detail
