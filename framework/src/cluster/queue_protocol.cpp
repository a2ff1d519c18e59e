#include "queue_protocol.hpp"

#include <algorithm>

#include "mproc/actor_error.hpp"
#include "mproc/error.hpp"

namespace mproc::cluster::detail {

std::int64_t timeout_for(mproc::detail::deadline until) {
  if (until == mproc::detail::forever) return -1;
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - std::chrono::steady_clock::now()).count();
  return std::max<std::int64_t>(left, 0);
}

mproc::detail::deadline deadline_for(std::int64_t timeout_ns) {
  if (timeout_ns < 0) return mproc::detail::forever;
  return mproc::detail::deadline_after(std::chrono::nanoseconds{timeout_ns});
}

caf::error to_caf_error(const std::error_code& ec) {
  if (ec.category() == mproc::category()) return make_caf_error(static_cast<errc>(ec.value()));
  // A system error of the serving side (rare: the owner's process ran out of descriptors, ...).
  return make_caf_error(errc::node_closed, ec.message());
}

std::string remote_token_path(const remote_token_info& info) {
  return std::string{mproc::detail::remote_queue_prefix} + std::to_string(info.maxsize) + ":" + info.capability + ":" +
         info.relay_socket;
}

bool parse_remote_token_path(const std::string& path, remote_token_info& info) {
  const auto prefix = mproc::detail::remote_queue_prefix;
  if (!path.starts_with(prefix)) return false;
  auto first = path.find(':', prefix.size());
  auto second = first == std::string::npos ? first : path.find(':', first + 1);
  if (second == std::string::npos || first == prefix.size() || second == first + 1 || second + 1 == path.size())
    return false;
  info.maxsize = 0;
  for (auto i = prefix.size(); i < first; ++i) {
    char c = path[i];
    if (c < '0' || c > '9' || info.maxsize > (SIZE_MAX - 9) / 10) return false;
    info.maxsize = info.maxsize * 10 + static_cast<std::size_t>(c - '0');
  }
  info.capability = path.substr(first + 1, second - first - 1);
  info.relay_socket = path.substr(second + 1);
  return true;
}

}  // namespace mproc::cluster::detail
