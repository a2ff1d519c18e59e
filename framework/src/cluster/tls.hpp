// Internal: TLS for the cluster's TCP connections, through CAF 0.17's OpenSSL module.
//
// How CAF 0.17 does it, and what follows for us:
// - The module (caf::openssl::manager) must be loaded into the actor_system_config before the
//   system starts. tls.cpp loads it in every process that links it (a config hook); an unused
//   module costs one idle thread (its middleman actor), no connection and no setting.
// - Its middleman actor opens and connects TCP like CAF's plain one, but every socket it makes
//   gets an OpenSSL session. Both hand their connections to the one BASP broker, so a process can
//   have plain and TLS ports side by side, and unpublishing works through either.
// - The certificate, key, passphrase and CA are the config fields openssl_certificate/key/
//   passphrase/cafile, read again for EVERY new connection (session.cpp builds a fresh SSL_CTX per
//   connection), on CAF's I/O thread, where a file it cannot load throws and ends the process.
//   So we check the files first, copy them into anonymous memfds (later edits or removal of the
//   files cannot hurt) and point the fields at those, once per actor system, before its first
//   TLS port or connection. Nothing but TLS connections reads these fields.
// - With any of them set CAF requires a certificate from the peer (SSL_VERIFY_PEER |
//   SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and verifies it against the CA: mutual authentication.
//
// Thread safety: from any thread.
#pragma once

#include <caf/io/middleman_actor.hpp>

#include <optional>
#include <system_error>

#include "mproc/cluster.hpp"

namespace mproc::cluster::detail {

/// The middleman actor that opens ports and connects for the cluster: CAF's plain one without
/// `tls`; with it, the OpenSSL module's, after this process's actor system got the TLS files.
/// errc::invalid_argument when a file is missing or unusable (no PEM certificate, key not
/// matching it or not decrypted by the passphrase, no CA), or when the system already uses other
/// TLS settings (one set per process and node).
caf::io::middleman_actor cluster_middleman(const std::optional<tls_options>& tls, std::error_code& ec);

}  // namespace mproc::cluster::detail
