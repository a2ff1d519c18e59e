// mproc/cluster_node_main.hpp — a node that waits for work from other hosts (the mproc-node program).
//
//   mproc-node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie
//
// mproc-node serves the actor types linked into it. To serve your own (MPROC_ACTOR,
// MPROC_ACTOR_MESSAGE, MPROC_ENTRY), make your program a node in one line:
//
//   int main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }
//
// Options:
//   --listen ADDR:PORT   where to accept other nodes (default 127.0.0.1:0; port 0 picks a free one)
//   --cookie-file FILE   the cluster's shared secret (first line; the file must be private: 0600)
//   --tls-cert FILE --tls-key FILE --tls-ca FILE
//                        accept TLS only, from nodes with a certificate of that CA (all three, PEM;
//                        see mproc::cluster::tls_options)
//   --tls-passphrase-file FILE
//                        the passphrase of an encrypted key (same rules as the cookie file)
//   --help
// Once listening it prints one line, "mproc-node listening on ADDR:PORT" (followed by " with TLS"
// for a TLS port), and flushes it, so that
// scripts (and tests) can learn a port chosen by the system. It runs until SIGINT or SIGTERM,
// then stops in order and exits 0: the port closes, the pools and processes it ran for other
// nodes are terminated, then its actor system, then its children.
// Bad options: a message on stderr and exit code 2; a cookie, TLS file or port problem: exit code 1.
//
// Thread safety: call once, from main().
#pragma once

namespace mproc::cluster {

int node_main(int argc, char** argv);

}  // namespace mproc::cluster
