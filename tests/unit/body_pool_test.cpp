// Pooled bodies of large records (framework/src/mailbox/body_pool.hpp): a body is filled again
// only once its reader released it, never while it is in use, never by a forked child; a
// receiver refuses anything but a sent pooled body (bad_message, never SIGBUS); a reader takes
// a body while its producer fills it, and gets bad_message, never a torn value, when the
// producer dies or gives up before the last byte.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../../framework/src/mailbox/body_pool.hpp"
#include "../../framework/src/fd.hpp"
#include "mproc/detail/record_encoding.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/error.hpp"
#include "mproc/serialization.hpp"
#include "test_support.hpp"

namespace {

namespace bp = mproc::detail::body_pool;
using namespace std::chrono_literals;
using mproc::detail::unique_fd;
using bytes = std::vector<std::byte>;

bytes filled(std::size_t n, unsigned char v) { return bytes(n, std::byte{v}); }

unique_fd lend_bytes(const bytes& b, bool may_wait = true) {
  std::span<const std::byte> piece{b};
  return bp::lend({&piece, 1}, b.size(), may_wait);
}

ino_t inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

/// The state word of a body, read through a mapping of our own.
std::uint32_t state_of(int fd) {
  void* p = ::mmap(nullptr, bp::header_size, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(p, MAP_FAILED);
  std::uint32_t s = static_cast<const bp::body_header*>(p)->state.load();
  ::munmap(p, bp::header_size);
  return s;
}

/// What a consumer does with a body: borrow, then release. Each test hands back what it lent,
/// so the process's pool is free for the next test.
void give_back(const unique_fd& fd, std::size_t length) { bp::release(*bp::borrow(fd.get(), length)); }

bool holds(const std::shared_ptr<const bp::mapping>& m, const bytes& b) {
  auto got = bp::encoding(*m, b.size());
  return std::memcmp(got.data(), b.data(), b.size()) == 0;
}

constexpr std::size_t size = std::size_t{3} << 20;

TEST(body_pool, a_released_body_is_filled_again_and_read_through_the_same_mapping) {
  auto a = filled(size, 1), b = filled(size, 2);
  auto first = lend_bytes(a);
  ASSERT_TRUE(first);
  EXPECT_EQ(state_of(first.get()), bp::sent);
  auto m1 = bp::borrow(first.get(), a.size());
  EXPECT_EQ(state_of(first.get()), bp::reading);
  EXPECT_TRUE(holds(m1, a));
  bp::release(*m1);
  EXPECT_EQ(state_of(first.get()), bp::idle);
  auto second = lend_bytes(b);
  ASSERT_TRUE(second);
  EXPECT_EQ(inode(second.get()), inode(first.get())) << "a fresh memfd instead of the idle body";
  auto m2 = bp::borrow(second.get(), b.size());
  EXPECT_EQ(m2, m1) << "mapped anew instead of from the cache";
  EXPECT_TRUE(holds(m2, b));
  bp::release(*m2);
}

TEST(body_pool, a_body_in_use_is_never_filled_again) {
  auto a = filled(size, 1), b = filled(size, 2), c = filled(size, 3);
  auto first = lend_bytes(a);
  auto second = lend_bytes(b);  // the first is sent: not touched
  ASSERT_TRUE(first && second);
  EXPECT_NE(inode(first.get()), inode(second.get()));
  auto m = bp::borrow(first.get(), a.size());
  auto third = lend_bytes(c);  // the first is being read: not touched either
  ASSERT_TRUE(third);
  EXPECT_NE(inode(third.get()), inode(first.get()));
  EXPECT_TRUE(holds(m, a));
  bp::release(*m);
  give_back(second, size);
  give_back(third, size);
}

TEST(body_pool, a_full_pool_lends_nothing_rather_than_a_body_in_use) {
  std::vector<unique_fd> lent;
  for (std::size_t i = 0; i < bp::max_bodies; ++i) {
    lent.push_back(lend_bytes(filled(size, static_cast<unsigned char>(i))));
    ASSERT_TRUE(lent.back()) << i;
  }
  // Nobody reads them: the caller gets nothing (and makes a one-shot sealed memfd instead), at
  // once or after a short wait for the oldest.
  EXPECT_FALSE(lend_bytes(filled(size, 9), false));
  EXPECT_FALSE(lend_bytes(filled(size, 9), true));
  // Once the oldest is back, it is the one filled.
  auto m = bp::borrow(lent[0].get(), size);
  bp::release(*m);
  auto again = lend_bytes(filled(size, 10));
  ASSERT_TRUE(again);
  EXPECT_EQ(inode(again.get()), inode(lent[0].get()));
  for (const auto& fd : lent) give_back(fd, size);
}

TEST(body_pool, a_forked_child_makes_bodies_of_its_own) {
  auto a = filled(size, 1);
  auto first = lend_bytes(a);
  ASSERT_TRUE(first);
  give_back(first, a.size());  // idle in our pool
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto b = filled(size, 2);
    auto mine = lend_bytes(b);
    ::_exit(!mine ? 2 : inode(mine.get()) == inode(first.get()) ? 3 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child filled its parent's body";
  EXPECT_EQ(state_of(first.get()), bp::idle);
  auto again = lend_bytes(a);
  ASSERT_TRUE(again);
  EXPECT_EQ(inode(again.get()), inode(first.get())) << "the parent lost its own body";
  give_back(again, a.size());
}

TEST(body_pool, a_deferred_release_hands_the_body_back_when_its_scope_ends) {
  auto a = filled(size, 1);
  auto fd = lend_bytes(a);
  {
    bp::deferred_release outer;
    {
      bp::deferred_release inner;
      bp::release_when_done(bp::borrow(fd.get(), a.size()));
    }
    EXPECT_EQ(state_of(fd.get()), bp::reading) << "released before the outermost scope ended";
  }
  EXPECT_EQ(state_of(fd.get()), bp::idle);
  auto again = lend_bytes(a);
  bp::release_when_done(bp::borrow(again.get(), a.size()));  // no scope: at once
  EXPECT_EQ(state_of(again.get()), bp::idle);
}

TEST(body_pool, a_body_whose_reader_died_before_releasing_it_can_be_read_again) {
  // A consumer SIGKILLed while decoding leaves its body `reading`; the owner then gives the
  // message to another consumer, which must find it intact, and the producer must not refill it.
  auto a = filled(size, 4);
  auto fd = lend_bytes(a);
  ASSERT_TRUE(fd);
  auto dead_readers = bp::borrow(fd.get(), a.size());  // never released
  auto other = lend_bytes(filled(size, 5));
  ASSERT_TRUE(other);
  EXPECT_NE(inode(other.get()), inode(fd.get()));
  auto m = bp::borrow(fd.get(), a.size());
  EXPECT_TRUE(holds(m, a));
  bp::release(*m);
  give_back(other, size);
}

/// How many mappings of the file with inode `ino` this process has (from /proc/self/maps).
int mappings_of(ino_t ino) {
  std::ifstream maps{"/proc/self/maps"};
  std::string range, perms, offset, dev;
  unsigned long long inode = 0;
  int n = 0;
  for (std::string rest; maps >> range >> perms >> offset >> dev >> inode && std::getline(maps, rest);)
    if (inode == ino && rest.find("mproc-body") != std::string::npos) ++n;
  return n;
}

TEST(body_pool, a_body_its_producer_retires_leaves_no_mapping_behind) {
  auto first = lend_bytes(filled(size, 1));
  ASSERT_TRUE(first);
  give_back(first, size);  // idle, and mapped by this process's consumer cache too
  const ino_t retired = inode(first.get());
  first = {};
  ASSERT_GT(mappings_of(retired), 0);
  // Bodies too large for it fill the pool; one more makes the producer drop the idle one.
  const std::size_t larger = size + (std::size_t{2} << 20);
  std::vector<unique_fd> in_use;
  for (std::size_t i = 0; i < bp::max_bodies; ++i) {
    in_use.push_back(lend_bytes(filled(larger, static_cast<unsigned char>(i)), false));
    ASSERT_TRUE(in_use.back()) << i;
  }
  give_back(in_use[0], larger);  // a consumer's next lookup drops what its producer retired
  EXPECT_EQ(mappings_of(retired), 0) << "the retired body stays mapped";
  for (std::size_t i = 1; i < in_use.size(); ++i) give_back(in_use[i], larger);
}

// ---- bodies read while they are filled ----------------------------------------------------

/// What a consumer does with the body of a large message (`fd`, `length` encoding bytes):
/// decodes a T (a byte vector) from it while it arrives.
template <class T = bytes>
T take_value(int fd, std::size_t length) {
  const std::uint64_t record = length;  // an out-of-line record's inline bytes: its length
  mproc::detail::fd_set_owned fds;
  fds.adopt(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  T value;
  mproc::detail::decode_standalone(std::as_bytes(std::span{&record, 1}), true, fds, [&](std::span<const std::byte> e) {
    mproc::detail::wire::decode_record(e, value);
  });
  return value;
}

void expect_bad_message_taking(int fd, std::size_t length, const std::string& what) {
  try {
    take_value(fd, length);
    ADD_FAILURE() << what << ": a value was delivered";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::bad_message) << what;
  }
}

bytes numbered(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131) >> 3);
  return b;
}

TEST(body_pool, a_reader_takes_a_body_while_its_producer_fills_it) {
  const auto value = numbered(size);
  const auto encoded = mproc::to_bytes(value);
  auto body = bp::reserve(encoded.size(), true);
  ASSERT_TRUE(body);
  auto fd = body.descriptor();
  ASSERT_TRUE(fd);
  // The frame arrived before the bytes: the reader waits for them.
  std::thread producer{[&] {
    std::this_thread::sleep_for(50ms);
    std::span<const std::byte> piece{encoded};
    body.fill({&piece, 1});
  }};
  bytes got;
  EXPECT_NO_THROW(got = take_value(fd.get(), encoded.size()));
  producer.join();
  EXPECT_EQ(got, value);
  EXPECT_EQ(state_of(fd.get()), bp::idle) << "not handed back";
}

TEST(body_pool, a_value_read_ahead_of_its_producer_is_decoded_again_once_whole) {
  // Strings of 100 KiB are small reads: one beyond what is written cannot wait for its bytes,
  // so the decode starts over once the body is complete.
  const std::vector<std::string> value(30, std::string(100 * 1024, 's'));
  const auto encoded = mproc::to_bytes(value);
  auto body = bp::reserve(encoded.size(), true);
  ASSERT_TRUE(body);
  auto fd = body.descriptor();
  // We write the first chunk by hand, as the producer would, and the rest later.
  const std::size_t total = bp::header_size + encoded.size();
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memcpy(static_cast<std::byte*>(p) + bp::header_size, encoded.data(), bp::fill_chunk);
  static_cast<bp::body_header*>(p)->filled.store(bp::fill_chunk);
  std::vector<std::string> got;
  std::thread consumer{[&] { EXPECT_NO_THROW(got = take_value<std::vector<std::string>>(fd.get(), encoded.size())); }};
  std::this_thread::sleep_for(50ms);  // it read the first strings and waits for the rest
  std::span<const std::byte> piece{encoded};
  body.fill({&piece, 1});
  consumer.join();
  ::munmap(p, total);
  EXPECT_EQ(got, value);
}

TEST(body_pool, a_reader_gets_bad_message_when_the_producer_dies_before_the_last_byte) {
  const auto encoded = mproc::to_bytes(numbered(size));
  mproc::test::guard watchdog{30s};
  for (std::size_t written : {std::size_t{0}, encoded.size() / 2}) {
    std::error_code ec;
    auto [ours, theirs] = mproc::detail::make_socketpair(SOCK_SEQPACKET, ec);
    ASSERT_FALSE(ec);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the producer: sends the body, writes `written` bytes of it, dies
      auto body = bp::reserve(encoded.size(), true);
      auto fd = body ? body.descriptor() : unique_fd{};
      int raw = fd.get();
      std::byte one{1};
      mproc::detail::send_packet(theirs.get(), {&one, 1}, {&raw, 1}, ec);
      std::span<const std::byte> part{encoded.data(), written};
      if (written > 0) body.fill({&part, 1});
      std::this_thread::sleep_for(100ms);  // the reader waits for the rest by then
      ::_exit(0);                          // no destructor: the body stays unfinished
    }
    watchdog.add(pid);
    std::byte one{};
    std::vector<unique_fd> fds;
    ASSERT_EQ(mproc::detail::recv_packet(ours.get(), {&one, 1}, fds, ec), 1u);
    ASSERT_EQ(fds.size(), 1u);
    const auto t0 = std::chrono::steady_clock::now();
    expect_bad_message_taking(fds[0].get(), encoded.size(), "producer died after " + std::to_string(written) + " bytes");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "the producer's death was noticed late";
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  }
}

TEST(body_pool, a_body_given_up_unfilled_fails_its_reader_and_leaves_the_pool) {
  const auto encoded = mproc::to_bytes(numbered(size));
  unique_fd fd;
  std::shared_ptr<const bp::mapping> m;
  {
    auto body = bp::reserve(encoded.size(), true);
    ASSERT_TRUE(body);
    fd = body.descriptor();
    m = bp::borrow(fd.get(), encoded.size());  // a reader already has it
  }  // the put failed after its frame went out: never filled
  EXPECT_EQ(state_of(fd.get()), bp::retired);
  try {
    bp::arriving_body arriving{*m, encoded.size()};
    arriving.wait_all();
    ADD_FAILURE() << "a body given up was read";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::bad_message);
  }
  bp::release(*m);
  EXPECT_EQ(state_of(fd.get()), bp::retired) << "a given-up body came back into use";
  expect_bad_message_taking(fd.get(), encoded.size(), "a later reader of a given-up body");
  auto again = lend_bytes(filled(size, 4));
  ASSERT_TRUE(again);
  EXPECT_NE(inode(again.get()), inode(fd.get()));
  give_back(again, size);
}

// ---- forged bodies ------------------------------------------------------------------------

/// A memfd laid out like a pooled body holding `length` bytes, with the given seals, magic
/// and state.
unique_fd forged(std::size_t length, int seals, std::uint64_t magic, std::uint32_t state) {
  unique_fd fd{::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  EXPECT_TRUE(fd);
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(bp::header_size + length)), 0);
  void* p = ::mmap(nullptr, bp::header_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  EXPECT_NE(p, MAP_FAILED);
  auto* h = static_cast<bp::body_header*>(p);
  h->magic = magic;
  h->state.store(state);
  ::munmap(p, bp::header_size);
  if (seals != 0) {
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
  }
  return fd;
}

void expect_bad_message(int fd, std::uint64_t length, const char* what) {
  try {
    bp::borrow(fd, length);
    ADD_FAILURE() << what << ": accepted";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::bad_message) << what;
  }
}

TEST(body_pool, a_receiver_refuses_anything_but_a_sent_pooled_body) {
  constexpr int sizes = F_SEAL_SHRINK | F_SEAL_GROW;
  expect_bad_message(forged(100, 0, bp::body_magic, bp::sent).get(), 100, "resizable");
  expect_bad_message(forged(100, F_SEAL_GROW, bp::body_magic, bp::sent).get(), 100, "shrinkable");
  expect_bad_message(forged(100, sizes, 0, bp::sent).get(), 100, "no magic");
  expect_bad_message(forged(100, sizes, bp::body_magic, bp::idle).get(), 100, "idle (its producer may write it)");
  expect_bad_message(forged(100, sizes, bp::body_magic, bp::retired).get(), 100, "retired");
  expect_bad_message(forged(100, sizes, bp::body_magic, bp::sent).get(), 101, "shorter than its length");
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  expect_bad_message(p[0], 1, "a pipe");
  ::close(p[0]);
  ::close(p[1]);

  auto good = forged(100, sizes, bp::body_magic, bp::sent);
  auto m = bp::borrow(good.get(), 100);
  EXPECT_EQ(bp::encoding(*m, 100).size(), 100u);
  bp::release(*m);
  EXPECT_EQ(state_of(good.get()), bp::idle);
}

}  // namespace
