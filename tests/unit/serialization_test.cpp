#include <mproc/serialization.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace {

struct point {
  int x = 0;
  double y = 0;
  std::string label;
  bool operator==(const point&) const = default;
};
template <class F>
void inspect(F& f, point& p) {
  f(p.x, p.y, p.label);
}

enum class color : std::uint8_t { red, green };

struct pod {
  std::int64_t a;
  double b[3];
  bool operator==(const pod&) const = default;
};

template <class T>
T round_trip(const T& x) {
  auto bytes = mproc::to_bytes(x);
  return mproc::from_bytes<T>(bytes.data(), bytes.size());
}

template <class T>
void expect_bad_message(const std::vector<std::byte>& bytes) {
  try {
    (void)mproc::from_bytes<T>(bytes.data(), bytes.size());
    FAIL() << "decoded garbage";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::bad_message);
  }
}

TEST(serialization, scalars_and_enums) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(std::numeric_limits<std::int64_t>::min()), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(round_trip(3.25), 3.25);
  EXPECT_EQ(round_trip(true), true);
  EXPECT_EQ(round_trip(color::green), color::green);
  EXPECT_EQ(round_trip(pod{7, {1, 2, 3}}), (pod{7, {1, 2, 3}}));
}

TEST(serialization, standard_containers) {
  EXPECT_EQ(round_trip(std::string{"hello"}), "hello");
  EXPECT_EQ(round_trip(std::string{}), "");
  EXPECT_EQ(round_trip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(round_trip(std::vector<std::string>{"a", "", "c"}), (std::vector<std::string>{"a", "", "c"}));
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true}), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(round_trip(std::array<std::string, 2>{"x", "y"}), (std::array<std::string, 2>{"x", "y"}));
  EXPECT_EQ(round_trip(std::pair<int, std::string>{1, "one"}), (std::pair<int, std::string>{1, "one"}));
  EXPECT_EQ(round_trip(std::tuple<int, std::string, double>{1, "a", 2.5}),
            (std::tuple<int, std::string, double>{1, "a", 2.5}));
  EXPECT_EQ(round_trip(std::optional<std::string>{"x"}), std::optional<std::string>{"x"});
  EXPECT_EQ(round_trip(std::optional<std::string>{}), std::optional<std::string>{});
  using var = std::variant<int, std::string>;
  EXPECT_EQ(round_trip(var{std::string{"s"}}), var{std::string{"s"}});
  EXPECT_EQ(round_trip(var{5}), var{5});
  EXPECT_EQ(round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}}), (std::map<std::string, int>{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(round_trip(std::unordered_map<int, std::string>{{1, "a"}}), (std::unordered_map<int, std::string>{{1, "a"}}));
  EXPECT_EQ(round_trip(std::set<std::string>{"x", "y"}), (std::set<std::string>{"x", "y"}));
  EXPECT_TRUE(mproc::to_bytes(std::tuple<>{}).empty());
}

TEST(serialization, user_type_with_inspect_and_nesting) {
  point p{1, 2.5, "origin"};
  EXPECT_EQ(round_trip(p), p);
  std::map<std::string, std::vector<point>> nested{{"k", {p, point{3, 4, "b"}}}};
  EXPECT_EQ(round_trip(nested), nested);
}

TEST(serialization, truncated_payload_is_bad_message) {
  auto bytes = mproc::to_bytes(std::string{"hello world"});
  for (std::size_t n = 0; n < bytes.size(); ++n)
    expect_bad_message<std::string>({bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)});
}

TEST(serialization, garbage_is_bad_message) {
  // An element count far beyond the payload must not allocate, just fail.
  auto huge = mproc::to_bytes(std::uint64_t{1} << 60);
  expect_bad_message<std::string>(huge);
  expect_bad_message<std::vector<std::string>>(huge);
  expect_bad_message<std::vector<std::int64_t>>(huge);
  auto bad_index = mproc::to_bytes(std::uint32_t{7});
  expect_bad_message<std::variant<int, double>>(bad_index);
  auto bad_flag = mproc::to_bytes(std::uint8_t{2});
  expect_bad_message<std::optional<int>>(bad_flag);
  auto trailing = mproc::to_bytes(std::int64_t{1});
  expect_bad_message<std::int32_t>(trailing);
}

TEST(serialization, what_is_not_serializable) {
  static_assert(mproc::serializable<point>);
  static_assert(mproc::serializable<std::map<std::string, std::vector<point>>>);
  static_assert(!mproc::serializable<int*>);
  static_assert(!mproc::serializable<const char*>);
  static_assert(!mproc::serializable<std::vector<int*>>);
  static_assert(!mproc::serializable<std::function<void()>>);
  SUCCEED();
}

}  // namespace
