// mproc::cluster::node_main (mproc/cluster_node_main.hpp).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "mproc/cluster.hpp"
#include "mproc/cluster_node_main.hpp"
#include "mproc/node.hpp"

namespace mproc::cluster {
namespace {

struct node_arguments {
  listen_options listen;
  std::string cookie_file;
  tls_options tls;  // becomes listen.tls when all three files are given
  std::string passphrase_file;
  bool help = false;
};

constexpr std::string_view usage =
    "usage: mproc-node --cookie-file FILE [--listen ADDR:PORT]\n"
    "                  [--tls-cert FILE --tls-key FILE --tls-ca FILE [--tls-passphrase-file FILE]]\n";

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

/// nullopt after printing why.
std::optional<node_arguments> parse(int argc, char** argv) {
  node_arguments out;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string_view{argv[++i]};
    };
    if (arg == "--help") {
      out.help = true;
      return out;
    }
    auto v = value();
    if (!v) {
      std::cerr << "mproc-node: " << arg << " needs a value\n" << usage;
      return std::nullopt;
    }
    if (arg == "--cookie-file") {
      out.cookie_file = *v;
    } else if (arg == "--tls-cert") {
      out.tls.certificate = *v;
    } else if (arg == "--tls-key") {
      out.tls.key = *v;
    } else if (arg == "--tls-ca") {
      out.tls.ca = *v;
    } else if (arg == "--tls-passphrase-file") {
      out.passphrase_file = *v;
    } else if (arg == "--listen") {
      auto colon = v->rfind(':');
      auto port = colon == std::string_view::npos ? std::nullopt : parse_port(v->substr(colon + 1));
      if (!port) {
        std::cerr << "mproc-node: --listen wants ADDR:PORT, got '" << *v << "'\n";
        return std::nullopt;
      }
      out.listen.address = std::string{v->substr(0, colon)};
      out.listen.port = *port;
    } else {
      std::cerr << "mproc-node: unknown option " << arg << "\n" << usage;
      return std::nullopt;
    }
  }
  if (out.cookie_file.empty()) {
    std::cerr << "mproc-node: --cookie-file is required\n" << usage;
    return std::nullopt;
  }
  bool all_tls = !out.tls.certificate.empty() && !out.tls.key.empty() && !out.tls.ca.empty();
  bool any_tls = !out.tls.certificate.empty() || !out.tls.key.empty() || !out.tls.ca.empty();
  if ((any_tls || !out.passphrase_file.empty()) && !all_tls) {
    std::cerr << "mproc-node: TLS needs all of --tls-cert, --tls-key and --tls-ca\n" << usage;
    return std::nullopt;
  }
  if (all_tls) out.listen.tls = out.tls;
  return out;
}

}  // namespace

int node_main(int argc, char** argv) {
  node_options options;
  options.handle_sigint = false;  // SIGINT and SIGTERM both stop the node in order, below
  node n{argc, argv, options};    // first: with the spawn method this image may be a child
  auto args = parse(argc, argv);
  if (!args) return 2;
  if (args->help) {
    std::cout << usage;
    return 0;
  }
  try {
    args->listen.cookie = read_cookie_file(args->cookie_file);
    // A passphrase file follows the cookie file's rules: private, the first line.
    if (!args->passphrase_file.empty()) args->listen.tls->passphrase = read_cookie_file(args->passphrase_file);
    auto l = listen(n, args->listen);
    // A signal only wakes main(), which returns: the listener and the node then stop everything
    // in order (served pools and processes, the actor system, the children). Installed only now:
    // the fork server already exists, so its children do not inherit these handlers.
    static int stop_pipe[2] = {-1, -1};
    if (::pipe2(stop_pipe, O_CLOEXEC) != 0) throw error(std::error_code(errno, std::system_category()), "pipe2");
    struct sigaction on_stop{};
    on_stop.sa_handler = [](int) {
      char c = 0;
      [[maybe_unused]] auto written = ::write(stop_pipe[1], &c, 1);
    };
    ::sigaction(SIGTERM, &on_stop, nullptr);
    ::sigaction(SIGINT, &on_stop, nullptr);
    std::cout << "mproc-node listening on " << l.address() << ':' << l.port() << (args->listen.tls ? " with TLS" : "")
              << std::endl;
    char c = 0;
    while (::read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mproc-node: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace mproc::cluster
