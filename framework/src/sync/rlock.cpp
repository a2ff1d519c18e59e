#include "mproc/rlock.hpp"

namespace mproc {

rlock rlock::create() {
  rlock r;
  r.lock_ = lock::create_in(shared_memory::create(lock::footprint()), 0, detail::mutex_kind::recursive);
  return r;
}

rlock rlock::attach(shared_memory memory) {
  rlock r;
  r.lock_ = lock::attach(std::move(memory), 0);
  return r;
}

}  // namespace mproc
