#include "tls.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>

#include "../fd.hpp"
#include "mproc/actor_runtime.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::unique_fd;

// CAF can load the module only before a system starts, and mproc starts it lazily: so always.
void load_openssl_module(caf::actor_system_config& cfg) { cfg.load<caf::openssl::manager>(); }
const mproc::detail::actor_registrar openssl_module{&load_openssl_module};

/// A file's content in an anonymous memfd that OpenSSL can open by path.
struct snapshot {
  unique_fd fd;
  std::string path;
};

std::optional<snapshot> snapshot_of(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (file.empty() || !in) return std::nullopt;
  std::string content{std::istreambuf_iterator<char>(in), {}};
  unique_fd fd{::memfd_create("mproc-tls", MFD_CLOEXEC)};
  std::error_code ec;
  if (fd) mproc::detail::write_all(fd.get(), content.data(), content.size(), ec);
  OPENSSL_cleanse(content.data(), content.size());  // it may be a private key
  if (in.bad() || !fd || ec) return std::nullopt;
  auto path = "/proc/self/fd/" + std::to_string(fd.get());
  return snapshot{std::move(fd), std::move(path)};
}

/// Hands OpenSSL the passphrase; none at all makes an encrypted key fail here, where OpenSSL's
/// default would ask the terminal (as CAF's session lets it when the passphrase is empty).
int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
  const auto& passphrase = *static_cast<const std::string*>(user);
  if (passphrase.empty() || passphrase.size() >= static_cast<std::size_t>(size)) return 0;
  std::memcpy(buf, passphrase.data(), passphrase.size());
  return static_cast<int>(passphrase.size());
}

/// Loads the files as CAF's session will, so that a bad one is an error here and not on CAF's
/// I/O thread.
bool loadable(const std::string& certificate, const std::string& key, const std::string& ca, std::string passphrase) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_method()), &SSL_CTX_free};
  if (!ctx) return false;
  SSL_CTX_set_default_passwd_cb(ctx.get(), passphrase_callback);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), &passphrase);
  bool ok = SSL_CTX_use_certificate_chain_file(ctx.get(), certificate.c_str()) == 1 &&
            SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) == 1 &&
            SSL_CTX_check_private_key(ctx.get()) == 1 &&
            SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) == 1;
  ERR_clear_error();  // OpenSSL's error queue is per thread: leave nothing behind
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  return ok;
}

/// The TLS settings given to this process's actor system. Never destroyed: the memfds must
/// outlive every connection, even one CAF accepts while the process exits.
struct settings_in_use {
  std::mutex mutex;
  pid_t pid = 0;
  const caf::actor_system_config* config = nullptr;
  tls_options options;
  std::array<unique_fd, 3> files;
};

settings_in_use& in_use() {
  static auto* state = new settings_in_use;
  return *state;
}

bool has_tls_fields(const caf::actor_system_config& cfg) {
  return !cfg.openssl_certificate.empty() || !cfg.openssl_key.empty() || !cfg.openssl_passphrase.empty() ||
         !cfg.openssl_cafile.empty() || !cfg.openssl_capath.empty();
}

void configure(caf::actor_system& sys, const tls_options& tls, std::error_code& ec) {
  auto& state = in_use();
  std::lock_guard lock{state.mutex};
  // actor_runtime made this config and keeps it mutable; CAF hands it out const only. Writing the
  // fields is safe: only TLS connections read them, and this system has none before they are set.
  auto& cfg = const_cast<caf::actor_system_config&>(sys.config());
  if (has_tls_fields(cfg)) {
    bool same = state.pid == ::getpid() && state.config == &cfg && state.options == tls;
    if (!same) ec = make_error_code(errc::invalid_argument);
    return;
  }
  auto certificate = snapshot_of(tls.certificate);
  auto key = snapshot_of(tls.key);
  auto ca = snapshot_of(tls.ca);
  if (!certificate || !key || !ca || !loadable(certificate->path, key->path, ca->path, tls.passphrase)) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  // In a forked child the old descriptors are the parent's (or already closed by mproc): the
  // numbers may belong to something else now.
  if (state.pid != ::getpid())
    for (auto& fd : state.files) (void)fd.release();
  // The system these belonged to is gone (a new one starts without TLS fields).
  state.files = {std::move(certificate->fd), std::move(key->fd), std::move(ca->fd)};
  cfg.openssl_certificate = certificate->path;
  cfg.openssl_key = key->path;
  cfg.openssl_cafile = ca->path;
  cfg.openssl_passphrase = tls.passphrase;
  state.pid = ::getpid();
  state.config = &cfg;
  state.options = tls;
}

}  // namespace

caf::io::middleman_actor cluster_middleman(const std::optional<tls_options>& tls, std::error_code& ec) {
  ec.clear();
  auto& sys = actor_system();
  if (!tls) return sys.middleman().actor_handle();
  if (!sys.has_openssl_manager()) {  // a system started before this library's config hook existed
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  configure(sys, *tls, ec);
  if (ec) return {};
  return sys.openssl_manager().actor_handle();
}

}  // namespace mproc::cluster::detail
