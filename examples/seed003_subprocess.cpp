// Seed 003: an external command with pipes (subprocess.Popen, communicate, returncode).
//
//   print('$ nslookup')
//   p = subprocess.Popen(['nslookup'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
//                        stderr=subprocess.PIPE)
//   output, err = p.communicate(b'set q=mx\npython.org\nexit\n')
//   print(output.decode('utf-8'))      # UnicodeDecodeError: ... byte 0xb7 in position 0
//   print('Exit code:', p.returncode)
//
// The seed's nslookup answered in the console's legacy encoding (GBK), and decode('utf-8')
// crashed. Here a local stand-in for nslookup (no network) answers the same way, with the GBK
// bytes of "服务器" ("Server"); mproc keeps the output as bytes and the caller picks the policy.
#include <mproc/subprocess.hpp>
#include <mproc/utf8.hpp>

#include <iostream>

namespace {

// Reads resolver commands on stdin; answers in GBK like a Chinese Windows console would.
constexpr const char* fake_nslookup = R"(
while read -r line; do
  case "$line" in
    "set q=mx") ;;
    exit) exit 0 ;;
    *) printf '\267\376\316\361\306\367:  127.0.0.1\n'
       printf '%s\tMX preference = 50, mail exchanger = mail.%s\n' "$line" "$line" ;;
  esac
done)";

}  // namespace

int main() {
  namespace sp = mproc::subprocess;
  std::cout << "$ nslookup" << std::endl;
  sp::options pipes;  // stdin=PIPE, stdout=PIPE, stderr=PIPE
  pipes.stdin_mode = pipes.stdout_mode = pipes.stderr_mode = sp::stream::pipe;
  sp::popen p{{"sh", "-c", fake_nslookup}, pipes};
  auto out = p.communicate("set q=mx\npython.org\nexit\n", std::chrono::seconds(10));
  // Python's output.decode('utf-8', errors='replace'): never crashes, U+FFFD for bad bytes.
  std::cout << mproc::decode_utf8(out.stdout_bytes, mproc::utf8_errors::replace);
  std::cout << "Exit code: " << out.returncode << std::endl;

  // The strict policy is Python's default; its error names the offset, and nothing crashes.
  try {
    std::cout << mproc::decode_utf8(out.stdout_bytes);
  } catch (const mproc::utf8_error& e) {
    std::cout << "strict decode: " << e.what() << " (offset " << e.offset() << ")" << std::endl;
  }

  // The seed's commented-out variant, r = subprocess.call(['nslookup', 'www.python.org']):
  sp::run_options o;
  o.input = "www.python.org\n";
  o.capture = true;
  auto r = sp::run({"sh", "-c", fake_nslookup}, o);
  std::cout << r.stdout_bytes.size() << " bytes; Exit code: " << r.returncode << std::endl;
}
