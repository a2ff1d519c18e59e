// The mailbox wire format: frames, records, type identity, and what bad bytes turn into.
#include <gtest/gtest.h>

#include <mproc/detail/wire.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace mproc::detail;
using mproc::errc;

namespace {

std::vector<std::byte> data_frame(std::uint64_t type, const std::vector<std::string>& values) {
  std::vector<std::byte> payload;
  for (const auto& v : values) wire::put_record(payload, [&](mproc::writer& w) { mproc::encode(w, v); });
  std::vector<std::byte> frame;
  wire::put_header(frame, wire::kind::data, type, payload.size());
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

/// Feeds `bytes` to a splitter in chunks of `chunk`; returns the frames and the final error.
struct split_result {
  std::vector<std::pair<wire::header, std::vector<std::byte>>> frames;
  std::error_code ec;
};
split_result split(const std::vector<std::byte>& bytes, std::size_t chunk, std::uint64_t max = wire::default_max_payload) {
  wire::frame_splitter s{max};
  split_result r;
  for (std::size_t at = 0; at < bytes.size() && !r.ec; at += chunk) {
    std::size_t n = std::min(chunk, bytes.size() - at);
    auto room = s.prepare(n);
    std::memcpy(room.data(), bytes.data() + at, n);
    s.commit(n);
    wire::header h;
    std::span<const std::byte> payload;
    while (s.next(h, payload, r.ec)) r.frames.push_back({h, {payload.begin(), payload.end()}});
  }
  return r;
}

TEST(wire, type_ids_differ_by_type_and_are_stable) {
  EXPECT_EQ(wire::type_id<int>(), wire::type_id<int>());
  EXPECT_NE(wire::type_id<int>(), wire::type_id<unsigned>());
  EXPECT_NE(wire::type_id<int>(), wire::type_id<std::int64_t>());
  EXPECT_NE(wire::type_id<std::string>(), wire::type_id<std::vector<char>>());
  EXPECT_EQ(wire::type_name(typeid(std::vector<int>)), "std::vector<int, std::allocator<int> >");
}

TEST(wire, frames_survive_any_chunking) {
  auto a = data_frame(7, {"alpha", "", std::string(100000, 'z')});
  auto b = data_frame(7, {"beta"});
  std::vector<std::byte> stream = a;
  stream.insert(stream.end(), b.begin(), b.end());
  for (std::size_t chunk : {1ul, 3ul, 24ul, 25ul, 4096ul, stream.size()}) {
    auto r = split(stream, chunk);
    ASSERT_FALSE(r.ec) << chunk;
    ASSERT_EQ(r.frames.size(), 2u) << chunk;
    EXPECT_EQ(r.frames[0].first.type_id, 7u);
    std::error_code ec;
    EXPECT_EQ(wire::record_cursor::count(r.frames[0].second, ec), 3u);
    wire::record_cursor c{r.frames[1].second};
    std::span<const std::byte> rec;
    ASSERT_TRUE(c.next(rec, ec));
    std::string v;
    wire::decode_record(rec, v);
    EXPECT_EQ(v, "beta");
    EXPECT_FALSE(c.next(rec, ec));
    EXPECT_FALSE(ec);
  }
}

TEST(wire, bad_magic_version_and_kind_are_bad_message) {
  auto good = data_frame(1, {"x"});
  for (std::size_t offset : {0ul, 4ul, 6ul}) {  // magic, version, kind
    auto bad = good;
    bad[offset] ^= std::byte{0x5A};
    auto r = split(bad, bad.size());
    EXPECT_EQ(r.ec, errc::bad_message) << "offset " << offset;
    EXPECT_TRUE(r.frames.empty());
  }
}

TEST(wire, oversized_length_is_refused_before_allocating) {
  wire::header h{wire::magic, wire::version, static_cast<std::uint16_t>(wire::kind::data), 0, std::uint64_t{1} << 40};
  std::vector<std::byte> bytes(sizeof h);
  std::memcpy(bytes.data(), &h, sizeof h);
  auto r = split(bytes, bytes.size());
  EXPECT_EQ(r.ec, errc::message_too_large);
  auto small = split(data_frame(1, {std::string(2000, 'a')}), 4096, 1000);
  EXPECT_EQ(small.ec, errc::message_too_large);
}

TEST(wire, truncated_frame_waits_and_truncated_record_is_bad_message) {
  auto f = data_frame(1, {"hello"});
  f.pop_back();
  auto r = split(f, f.size());
  EXPECT_FALSE(r.ec);  // incomplete, not wrong: more bytes may come
  EXPECT_TRUE(r.frames.empty());
  // A record whose length runs past its frame.
  std::vector<std::byte> payload(8);
  std::uint64_t n = 100;
  std::memcpy(payload.data(), &n, sizeof n);
  std::error_code ec;
  EXPECT_EQ(wire::record_cursor::count(payload, ec), 0u);
  EXPECT_EQ(ec, errc::bad_message);
  std::vector<std::byte> stub(3);
  wire::record_cursor::count(stub, ec);
  EXPECT_EQ(ec, errc::bad_message);
}

TEST(wire, record_of_another_type_does_not_decode_silently) {
  std::vector<std::byte> payload;
  wire::put_record(payload, [](mproc::writer& w) { mproc::encode(w, std::int32_t{5}); });
  std::error_code ec;
  wire::record_cursor c{payload};
  std::span<const std::byte> rec;
  ASSERT_TRUE(c.next(rec, ec));
  std::int64_t wider = 0;
  EXPECT_THROW(wire::decode_record(rec, wider), mproc::error);
  std::string s;
  EXPECT_THROW(wire::decode_record(rec, s), mproc::error);
}

TEST(wire, put_record_rolls_back_when_encoding_throws) {
  std::vector<std::byte> payload;
  wire::put_record(payload, [](mproc::writer& w) { mproc::encode(w, 1); });
  auto before = payload;
  EXPECT_THROW(wire::put_record(payload,
                                [](mproc::writer& w) {
                                  mproc::encode(w, 2);
                                  throw mproc::error(errc::invalid_argument, "no");
                                }),
               mproc::error);
  EXPECT_EQ(payload, before);
}

TEST(wire, a_record_counts_its_gathered_ranges_in_its_length) {
  std::vector<std::byte> big(mproc::detail::large_buffer, std::byte{1});
  std::vector<std::byte> payload;
  std::vector<mproc::writer::gathered_range> gathered;
  wire::put_record(payload, [&](mproc::writer& w) { mproc::encode(w, big); }, &gathered);
  ASSERT_EQ(gathered.size(), 1u);
  std::uint64_t length = 0;
  std::memcpy(&length, payload.data(), sizeof length);
  EXPECT_EQ(length, 8u + big.size());
  EXPECT_EQ(payload.size(), 8u + 8u);
  EXPECT_THROW(wire::put_record(payload,
                                [&](mproc::writer& w) {
                                  mproc::encode(w, big);
                                  throw mproc::error(errc::invalid_argument, "no");
                                },
                                &gathered),
               mproc::error);
  EXPECT_EQ(gathered.size(), 1u) << "a failed record left ranges behind, or took earlier ones";
  EXPECT_EQ(payload.size(), 8u + 8u);
}

TEST(wire, descriptor_count_is_read_off_and_garbage_counts_are_bad_message) {
  std::vector<std::byte> frame;
  const std::byte body[] = {std::byte{1}, std::byte{2}};
  wire::put_frame_with_fds(frame, wire::kind::data, 9, body, 3);
  auto r = split(frame, frame.size());
  ASSERT_EQ(r.frames.size(), 1u);
  auto h = r.frames[0].first;
  std::span<const std::byte> payload{r.frames[0].second};
  std::error_code ec;
  EXPECT_EQ(wire::take_fd_count(h, payload, ec), 3u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(h.kind, static_cast<std::uint16_t>(wire::kind::data));
  EXPECT_EQ(payload.size(), 2u);
  // A frame without the flag has no count; one with the flag and a count of 0 or no room is bad.
  EXPECT_EQ(wire::take_fd_count(h, payload, ec), 0u);
  EXPECT_FALSE(ec);
  for (std::size_t room : {std::size_t{0}, std::size_t{4}}) {
    wire::header bad{wire::magic, wire::version, static_cast<std::uint16_t>(1 | wire::with_fds), 0, room};
    std::vector<std::byte> zeros(room);
    std::span<const std::byte> p{zeros};
    wire::take_fd_count(bad, p, ec);
    EXPECT_EQ(ec, errc::bad_message) << room;
  }
}

TEST(wire, out_of_line_records_need_a_frame_of_their_own_with_descriptors) {
  std::vector<std::byte> payload(16);
  std::uint64_t words[2] = {wire::out_of_line | 8, 12345};
  std::memcpy(payload.data(), words, sizeof words);
  std::error_code ec;
  EXPECT_EQ(wire::record_cursor::count(payload, ec, 1), 1u);
  EXPECT_FALSE(ec);
  wire::record_cursor::count(payload, ec, 0);  // its body would be missing
  EXPECT_EQ(ec, errc::bad_message);
  words[0] = wire::out_of_line | 9;  // the inline part of an out-of-line record is 8 bytes
  std::memcpy(payload.data(), words, sizeof words);
  wire::record_cursor::count(payload, ec, 1);
  EXPECT_EQ(ec, errc::bad_message);
  // Descriptors belong to one record: a frame of two records with descriptors is refused.
  auto two = data_frame(1, {"a", "b"});
  std::span<const std::byte> records{two.data() + sizeof(wire::header), two.size() - sizeof(wire::header)};
  EXPECT_EQ(wire::record_cursor::count(records, ec, 0), 2u);
  wire::record_cursor::count(records, ec, 1);
  EXPECT_EQ(ec, errc::bad_message);
}

TEST(wire, random_bytes_never_crash_the_decoder) {
  std::mt19937_64 rng{42};
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> bytes(rng() % 256);
    for (auto& b : bytes) b = static_cast<std::byte>(rng());
    if (round % 2 == 0 && bytes.size() >= sizeof(wire::header)) {  // plausible headers too
      wire::header h{wire::magic, wire::version, static_cast<std::uint16_t>(1 + rng() % 11), rng(),
                     rng() % (bytes.size() + 8)};
      std::memcpy(bytes.data(), &h, sizeof h);
    }
    auto r = split(bytes, 1 + rng() % 64);
    for (auto& [h, payload] : r.frames) {
      std::error_code ec;
      wire::record_cursor c{payload};
      std::span<const std::byte> rec;
      while (c.next(rec, ec)) {
        std::string s;
        try {
          wire::decode_record(rec, s);
        } catch (const mproc::error& e) {
          EXPECT_EQ(e.code(), errc::bad_message);
        }
      }
    }
  }
}

}  // namespace
