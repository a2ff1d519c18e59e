// mproc/serialization.hpp: round trips of every built-in codec and of user types with a
// CAF-style inspect(), and rejection of truncated or garbage input with errc::bad_message.
#include <mproc/serialization.hpp>

#include <caf/meta/type_name.hpp>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace {

// ---- user types -------------------------------------------------------------------------

struct point {
  int x = 0;
  double y = 0;
  std::string label;
  bool operator==(const point&) const = default;
};
// Free inspect found by ADL, in the `auto ... return f(...)` spelling of the header comment.
template <class F>
auto inspect(F& f, point& p) {
  return f(p.x, p.y, p.label);
}

// The friend spelling, with a nested user type and containers inside.
struct route {
  std::string name;
  std::vector<point> stops;
  std::optional<point> depot;
  std::map<std::string, std::vector<int>> tags;
  template <class F>
  friend void inspect(F& f, route& r) {
    f(r.name, r.stops, r.depot, r.tags);
  }
  bool operator==(const route&) const = default;
};

// CAF annotations are accepted and skipped: one inspect serves both CAF and mproc.
struct annotated {
  std::int64_t id = 0;
  std::string text;
  template <class F>
  friend void inspect(F& f, annotated& a) {
    f(caf::meta::type_name("annotated"), a.id, a.text);
  }
  bool operator==(const annotated&) const = default;
};

enum plain_enum { pe_a = 1, pe_b = 1000 };
enum class color : std::uint8_t { red, green, blue = 250 };
enum class wide : std::int64_t { low = std::numeric_limits<std::int64_t>::min(), high = 42 };

struct pod {
  std::int64_t a;
  double b[3];
  char c;
  bool operator==(const pod&) const = default;
};

// ---- helpers ----------------------------------------------------------------------------

template <class T>
T round_trip(const T& x) {
  auto bytes = mproc::to_bytes(x);
  return mproc::from_bytes<T>(bytes.data(), bytes.size());
}

template <class T>
std::vector<std::byte> bytes_of(const T& x) {
  return mproc::to_bytes(x);
}

/// "" when decoding `bytes` as T throws mproc::error(bad_message); otherwise what happened.
template <class T>
std::string decode_problem(const std::vector<std::byte>& bytes) {
  try {
    (void)mproc::from_bytes<T>(bytes.data(), bytes.size());
    return "decoded without error";
  } catch (const mproc::error& e) {
    if (e.code() == mproc::errc::bad_message) return "";
    return std::string{"wrong error code: "} + e.code().message();
  } catch (const std::exception& e) {
    return std::string{"not an mproc::error: "} + e.what();
  }
}

#define EXPECT_BAD_MESSAGE(T, bytes) EXPECT_EQ(decode_problem<T>(bytes), "") << #T

std::vector<std::byte> concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- round trips ------------------------------------------------------------------------

TEST(serialization, integers_of_every_width) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(-1), -1);
  EXPECT_EQ(round_trip(std::numeric_limits<std::int8_t>::min()), std::numeric_limits<std::int8_t>::min());
  EXPECT_EQ(round_trip(std::numeric_limits<std::uint16_t>::max()), std::numeric_limits<std::uint16_t>::max());
  EXPECT_EQ(round_trip(std::numeric_limits<std::int32_t>::min()), std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(round_trip(std::numeric_limits<std::int64_t>::min()), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(round_trip(std::numeric_limits<std::uint64_t>::max()), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(round_trip('x'), 'x');
  EXPECT_EQ(round_trip(true), true);
  EXPECT_EQ(round_trip(false), false);
  EXPECT_EQ(bytes_of(std::int32_t{7}).size(), 4u);  // the fast path: bytes as they are
}

TEST(serialization, enums) {
  EXPECT_EQ(round_trip(pe_b), pe_b);
  EXPECT_EQ(round_trip(color::green), color::green);
  EXPECT_EQ(round_trip(color::blue), color::blue);
  EXPECT_EQ(round_trip(wide::low), wide::low);
  EXPECT_EQ(round_trip(std::vector<color>{color::red, color::blue}), (std::vector<color>{color::red, color::blue}));
}

TEST(serialization, floating_point_including_special_values) {
  EXPECT_EQ(round_trip(3.25), 3.25);
  EXPECT_EQ(round_trip(1.5f), 1.5f);
  EXPECT_EQ(round_trip(std::numeric_limits<double>::infinity()), std::numeric_limits<double>::infinity());
  EXPECT_EQ(round_trip(std::numeric_limits<double>::denorm_min()), std::numeric_limits<double>::denorm_min());
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
  double neg_zero = round_trip(-0.0);
  EXPECT_TRUE(neg_zero == 0.0 && std::signbit(neg_zero));
}

TEST(serialization, trivially_copyable_structs_and_durations) {
  pod p{7, {1, 2, 3}, 'z'};
  EXPECT_EQ(round_trip(p), p);
  EXPECT_EQ(round_trip(std::chrono::milliseconds{1234}), std::chrono::milliseconds{1234});
  EXPECT_EQ(round_trip(std::chrono::nanoseconds::max()), std::chrono::nanoseconds::max());
}

TEST(serialization, strings) {
  EXPECT_EQ(round_trip(std::string{"hello"}), "hello");
  EXPECT_EQ(round_trip(std::string{}), "");
  std::string with_nuls{"a\0b\0c", 5};
  EXPECT_EQ(round_trip(with_nuls), with_nuls);
  std::string big(1 << 20, 'q');
  big[12345] = '\xff';
  EXPECT_EQ(round_trip(big), big);
  EXPECT_EQ(round_trip(std::string{"\xc3\xa9t\xc3\xa9"}), "\xc3\xa9t\xc3\xa9");
}

TEST(serialization, vectors) {
  EXPECT_EQ(round_trip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(round_trip(std::vector<int>{}), std::vector<int>{});
  EXPECT_EQ(round_trip(std::vector<double>{1.5, -2.5}), (std::vector<double>{1.5, -2.5}));
  EXPECT_EQ(round_trip(std::vector<std::string>{"a", "", "ccc"}), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(round_trip(std::vector<std::string>{}), std::vector<std::string>{});
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true, true}), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(round_trip(std::vector<bool>{}), std::vector<bool>{});
  std::vector<bool> many(1001);
  for (std::size_t i = 0; i < many.size(); i += 3) many[i] = true;
  EXPECT_EQ(round_trip(many), many);
  std::vector<std::vector<int>> nested{{1}, {}, {2, 3}};
  EXPECT_EQ(round_trip(nested), nested);
  std::vector<std::int64_t> large(100000);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<std::int64_t>(i * i);
  EXPECT_EQ(round_trip(large), large);
}

TEST(serialization, arrays) {
  EXPECT_EQ(round_trip(std::array<int, 3>{1, 2, 3}), (std::array<int, 3>{1, 2, 3}));
  EXPECT_EQ(round_trip(std::array<std::string, 2>{"x", "y"}), (std::array<std::string, 2>{"x", "y"}));
  EXPECT_EQ(round_trip(std::array<int, 0>{}), (std::array<int, 0>{}));
  EXPECT_EQ(round_trip(std::array<std::vector<int>, 2>{{{1}, {2, 3}}}), (std::array<std::vector<int>, 2>{{{1}, {2, 3}}}));
}

TEST(serialization, pairs_and_tuples) {
  EXPECT_EQ(round_trip(std::pair<int, std::string>{1, "one"}), (std::pair<int, std::string>{1, "one"}));
  EXPECT_EQ(round_trip(std::pair<int, double>{1, 2.5}), (std::pair<int, double>{1, 2.5}));
  EXPECT_EQ(round_trip(std::tuple<int, std::string, double>{1, "a", 2.5}),
            (std::tuple<int, std::string, double>{1, "a", 2.5}));
  EXPECT_EQ(round_trip(std::tuple<>{}), std::tuple<>{});
  EXPECT_TRUE(bytes_of(std::tuple<>{}).empty());  // empty types encode as nothing
  EXPECT_EQ(round_trip(std::tuple<std::vector<std::string>, point>{{"a"}, {1, 2, "p"}}),
            (std::tuple<std::vector<std::string>, point>{{"a"}, {1, 2, "p"}}));
}

TEST(serialization, optional) {
  EXPECT_EQ(round_trip(std::optional<std::string>{"x"}), std::optional<std::string>{"x"});
  EXPECT_EQ(round_trip(std::optional<std::string>{}), std::optional<std::string>{});
  EXPECT_EQ(round_trip(std::optional<std::string>{""}), std::optional<std::string>{""});
  EXPECT_EQ(round_trip(std::optional<int>{5}), std::optional<int>{5});
  EXPECT_EQ(round_trip(std::optional<int>{}), std::optional<int>{});
  EXPECT_EQ(round_trip(std::optional<std::vector<int>>{{1, 2}}), (std::optional<std::vector<int>>{{1, 2}}));
}

TEST(serialization, variant) {
  using var = std::variant<int, std::string, std::vector<double>>;
  EXPECT_EQ(round_trip(var{std::string{"s"}}), var{std::string{"s"}});
  EXPECT_EQ(round_trip(var{5}), var{5});
  EXPECT_EQ(round_trip(var{std::vector<double>{1.5}}), var{std::vector<double>{1.5}});
  // Same alternative type twice: the index, not the type, travels.
  using twins = std::variant<std::string, std::string>;
  twins t{std::in_place_index<1>, "second"};
  auto back = round_trip(t);
  EXPECT_EQ(back.index(), 1u);
  EXPECT_EQ(std::get<1>(back), "second");
  using trivial = std::variant<int, double>;
  EXPECT_EQ(round_trip(trivial{2.5}), trivial{2.5});
}

TEST(serialization, associative_containers) {
  std::map<std::string, int> m{{"a", 1}, {"b", 2}, {"", 0}};
  EXPECT_EQ(round_trip(m), m);
  std::unordered_map<int, std::string> u{{1, "a"}, {-7, "minus seven"}};
  EXPECT_EQ(round_trip(u), u);
  std::set<std::string> s{"x", "y", ""};
  EXPECT_EQ(round_trip(s), s);
  EXPECT_EQ(round_trip(std::map<int, int>{}), (std::map<int, int>{}));
  std::map<int, std::set<std::string>> ms{{1, {"a", "b"}}, {2, {}}};
  EXPECT_EQ(round_trip(ms), ms);
}

TEST(serialization, user_types_with_inspect) {
  point p{1, 2.5, "origin"};
  EXPECT_EQ(round_trip(p), p);
  route r{"r1", {p, {3, 4, "b"}}, point{9, 9, "depot"}, {{"k", {1, 2}}, {"e", {}}}};
  EXPECT_EQ(round_trip(r), r);
  route empty;
  EXPECT_EQ(round_trip(empty), empty);
  annotated a{-5, "annotations are skipped"};
  EXPECT_EQ(round_trip(a), a);
  // The annotation adds no bytes: same encoding as the two members alone.
  EXPECT_EQ(bytes_of(a), bytes_of(std::tuple<std::int64_t, std::string>{-5, "annotations are skipped"}));
}

TEST(serialization, deeply_nested) {
  using inner = std::variant<int, std::string, point>;
  std::map<std::string, std::vector<std::optional<inner>>> nested{
      {"k", {inner{1}, std::nullopt, inner{std::string{"s"}}, inner{point{3, 4, "p"}}}},
      {"empty", {}},
  };
  EXPECT_EQ(round_trip(nested), nested);
  std::vector<std::map<int, std::vector<route>>> deeper{{{1, {route{"a", {}, std::nullopt, {}}}}}, {}};
  EXPECT_EQ(round_trip(deeper), deeper);
}

// ---- what is (not) serializable ---------------------------------------------------------

TEST(serialization, raw_pointers_and_functions_are_not_serializable) {
  static_assert(!mproc::serializable<int*>);
  static_assert(!mproc::serializable<const char*>);
  static_assert(!mproc::serializable<void*>);
  static_assert(!mproc::serializable<std::nullptr_t>);
  static_assert(!mproc::serializable<int point::*>);
  static_assert(!mproc::serializable<std::vector<int*>>);
  static_assert(!mproc::serializable<std::pair<int, int*>>);
  static_assert(!mproc::serializable<std::function<void()>>);
  static_assert(!mproc::serializable<std::unique_ptr<int>>);
  static_assert(!mproc::serializable<std::shared_ptr<int>>);
  static_assert(mproc::serializable<point>);
  static_assert(mproc::serializable<route>);
  static_assert(mproc::serializable<const std::string>);
  static_assert(mproc::serializable<std::map<std::string, std::vector<point>>>);
  SUCCEED();
}

TEST(serialization, pointers_inside_trivially_copyable_types_are_not_serializable) {
  // These are trivially copyable, but what they carry is an address in the sender's memory:
  // sent to another process it dangles. (Regression: they used to pass through the memcpy fast
  // path, which only rejected T itself being a pointer; MPROC_ENTRY of f(std::string_view)
  // compiled and the child read a dangling address.)
  static_assert(!mproc::serializable<std::string_view>);
  static_assert(!mproc::serializable<std::span<const int>>);
  static_assert(!mproc::serializable<std::optional<int*>>);
  static_assert(!mproc::serializable<std::array<int*, 2>>);
  static_assert(!mproc::serializable<std::variant<int, int*>>);
  static_assert(!mproc::serializable<std::reference_wrapper<int>>);
  static_assert(!mproc::serializable<std::pair<int, std::string_view>>);
  // Their pointer-free relatives still are.
  static_assert(mproc::serializable<std::array<int, 2>>);
  static_assert(mproc::serializable<std::optional<int>>);
  static_assert(mproc::serializable<std::variant<int, double>>);
  SUCCEED();
}

// ---- bad input --------------------------------------------------------------------------

TEST(serialization, every_truncation_is_bad_message) {
  auto check_all_prefixes = [](const auto& value) {
    using T = std::decay_t<decltype(value)>;
    auto bytes = mproc::to_bytes(value);
    ASSERT_FALSE(bytes.empty());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      std::vector<std::byte> prefix{bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)};
      ASSERT_EQ(decode_problem<T>(prefix), "") << "prefix of " << n << " of " << bytes.size() << " bytes";
    }
  };
  check_all_prefixes(std::string{"hello world"});
  check_all_prefixes(std::int64_t{5});
  check_all_prefixes(std::vector<int>{1, 2, 3});
  check_all_prefixes(std::vector<std::string>{"ab", "", "c"});
  check_all_prefixes(std::vector<bool>{true, false});
  check_all_prefixes(std::optional<std::string>{"opt"});
  check_all_prefixes(std::variant<int, std::string>{std::string{"v"}});
  check_all_prefixes(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  check_all_prefixes(std::set<int>{1, 2});
  check_all_prefixes(route{"r", {{1, 2, "s"}}, point{}, {{"t", {1}}}});
}

TEST(serialization, huge_counts_are_bad_message_without_allocating) {
  // A count far beyond the payload must fail at once, not try to allocate 2^60 elements.
  for (std::uint64_t count : {std::uint64_t{1} << 60, ~std::uint64_t{0}, std::uint64_t{1} << 33, std::uint64_t{9}}) {
    auto huge = bytes_of(count);
    EXPECT_BAD_MESSAGE(std::string, huge);
    EXPECT_BAD_MESSAGE(std::vector<std::string>, huge);
    EXPECT_BAD_MESSAGE(std::vector<std::int64_t>, huge);
    EXPECT_BAD_MESSAGE(std::vector<bool>, huge);
    EXPECT_BAD_MESSAGE(std::vector<point>, huge);
    using str_int_map = std::map<std::string, int>;
    EXPECT_BAD_MESSAGE(str_int_map, huge);
    EXPECT_BAD_MESSAGE(std::set<int>, huge);
    using int_map = std::unordered_map<int, int>;
    EXPECT_BAD_MESSAGE(int_map, huge);
  }
  // A count that fits the payload in bytes but not in whole elements.
  auto seven_bytes_for_one_int64 = concat(bytes_of(std::uint64_t{1}), std::vector<std::byte>(7));
  EXPECT_BAD_MESSAGE(std::vector<std::int64_t>, seven_bytes_for_one_int64);
}

TEST(serialization, bad_variant_index_is_bad_message) {
  using var = std::variant<int, std::string>;
  for (std::uint32_t index : {2u, 7u, 0xffffffffu})
    EXPECT_BAD_MESSAGE(var, concat(bytes_of(index), bytes_of(1)));
}

TEST(serialization, bad_optional_flag_is_bad_message) {
  for (std::uint8_t flag : {std::uint8_t{2}, std::uint8_t{7}, std::uint8_t{255}})
    EXPECT_BAD_MESSAGE(std::optional<std::string>, concat(bytes_of(flag), bytes_of(std::string{"x"})));
}

TEST(serialization, trailing_bytes_are_bad_message) {
  EXPECT_BAD_MESSAGE(std::int32_t, bytes_of(std::int64_t{1}));
  EXPECT_BAD_MESSAGE(std::string, concat(bytes_of(std::string{"ab"}), {std::byte{0}}));
  EXPECT_BAD_MESSAGE(point, concat(bytes_of(point{1, 2, "p"}), {std::byte{1}}));
  EXPECT_BAD_MESSAGE(std::tuple<>, std::vector<std::byte>{std::byte{0}});
  EXPECT_BAD_MESSAGE(std::vector<int>, concat(bytes_of(std::vector<int>{1}), bytes_of(2)));
}

TEST(serialization, garbage_in_fast_path_types_is_bad_message) {
  // optional<int>, variant<int, double> and bool are trivially copyable; they used to take the
  // memcpy fast path, which copied an invalid engaged flag / index / bool byte as it was (reading
  // them was then undefined behaviour; UBSan: "load of value 2, which is not a valid value for
  // type bool"). Now each is checked.
  auto opt = bytes_of(std::optional<int>{5});
  ASSERT_FALSE(opt.empty());
  opt[0] = std::byte{2};  // the engaged flag
  auto var = bytes_of(std::variant<int, double>{1});
  ASSERT_GE(var.size(), 4u);
  var[0] = std::byte{7};  // the index
  std::vector<std::byte> boolean{std::byte{2}};
  EXPECT_BAD_MESSAGE(std::optional<int>, opt);
  using trivial_variant = std::variant<int, double>;
  EXPECT_BAD_MESSAGE(trivial_variant, var);
  EXPECT_BAD_MESSAGE(bool, boolean);
  // Valid ones round-trip.
  EXPECT_EQ(mproc::from_bytes<bool>(bytes_of(true).data(), 1), true);
  EXPECT_EQ(mproc::from_bytes<bool>(bytes_of(false).data(), 1), false);
  auto five = bytes_of(std::optional<int>{5});
  EXPECT_EQ((mproc::from_bytes<std::optional<int>>(five.data(), five.size())), std::optional<int>{5});
  auto none = bytes_of(std::optional<int>{});
  EXPECT_EQ((mproc::from_bytes<std::optional<int>>(none.data(), none.size())), std::nullopt);
  auto d = bytes_of(trivial_variant{2.5});
  EXPECT_EQ((mproc::from_bytes<trivial_variant>(d.data(), d.size())), trivial_variant{2.5});
}

TEST(serialization, random_garbage_never_crashes) {
  // Whatever the bytes, decoding either succeeds or throws bad_message: never another exception,
  // never an out-of-bounds read (ASan), an invalid bool (UBSan) or a giant allocation.
  using victim = std::tuple<std::string, std::vector<std::int64_t>, std::map<std::string, std::int32_t>,
                            std::optional<std::string>, std::variant<std::int64_t, std::string, std::vector<std::string>>,
                            bool, std::optional<std::int32_t>, std::variant<std::int32_t, double>, std::vector<bool>>;
  std::mt19937_64 rng{12345};
  victim sample{"s",  {1, 2}, {{"k", 3}}, std::string{"o"}, std::vector<std::string>{"a", "b"},
                true, 7,      2.5,        {true, false}};
  auto valid = mproc::to_bytes(sample);
  int decoded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::byte> bytes;
    if (i % 2 == 0) {
      // Mutate a valid encoding (flip a few bytes, sometimes cut it).
      bytes = valid;
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
      if (i % 6 == 0) bytes.resize(rng() % bytes.size());
    } else {
      bytes.resize(rng() % 64);
      for (auto& b : bytes) b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 3);
    }
    std::string problem = decode_problem<victim>(bytes);
    if (problem == "decoded without error") {
      ++decoded;
      continue;
    }
    ASSERT_EQ(problem, "") << "input " << i;
  }
  EXPECT_LT(decoded, 3000);
}

TEST(serialization, reader_reports_position_and_writer_appends) {
  std::vector<std::byte> out;
  mproc::writer w{out};
  mproc::encode(w, std::int32_t{1});
  mproc::encode(w, std::string{"ab"});
  EXPECT_EQ(out.size(), 4u + 8u + 2u);
  mproc::reader r{out.data(), out.size()};
  std::int32_t i = 0;
  std::string s;
  mproc::decode(r, i);
  EXPECT_EQ(r.remaining(), 10u);
  mproc::decode(r, s);
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_EQ(i, 1);
  EXPECT_EQ(s, "ab");
  EXPECT_THROW(mproc::decode(r, i), mproc::error);
}

TEST(serialization, large_ranges_round_trip_beside_small_values) {
  // The bulk path of writer::raw (its buffer grows in huge pages) and of vector decoding.
  std::vector<std::byte> big(3 * mproc::detail::large_buffer + 5);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7);
  auto bytes = mproc::to_bytes(std::tuple{std::int32_t{1}, big, std::string(mproc::detail::large_buffer, 'x')});
  auto [i, v, s] = mproc::from_bytes<std::tuple<std::int32_t, std::vector<std::byte>, std::string>>(bytes.data(), bytes.size());
  EXPECT_EQ(i, 1);
  EXPECT_EQ(v, big);
  EXPECT_EQ(s, std::string(mproc::detail::large_buffer, 'x'));
}

TEST(serialization, decoding_into_a_vector_with_room_keeps_its_memory) {
  std::vector<std::byte> big(mproc::detail::large_buffer, std::byte{3});
  auto bytes = mproc::to_bytes(big);
  std::vector<std::byte> into(big.size() + 10, std::byte{9});
  const std::byte* memory = into.data();
  mproc::reader r{bytes.data(), bytes.size()};
  mproc::decode(r, into);
  EXPECT_EQ(into, big);
  EXPECT_EQ(into.data(), memory);
}

TEST(serialization, a_gathering_writer_lists_large_ranges_instead_of_copying_them) {
  std::vector<std::byte> big(mproc::detail::large_buffer, std::byte{5});
  std::vector<std::byte> out;
  std::vector<mproc::writer::gathered_range> gathered;
  mproc::writer w{out, gathered};
  mproc::encode(w, std::int32_t{7});
  mproc::encode(w, big);
  mproc::encode(w, std::int32_t{8});
  ASSERT_EQ(gathered.size(), 1u);
  EXPECT_EQ(gathered[0].at, 4u + 8u) << "after the int and the vector's count";
  EXPECT_EQ(gathered[0].bytes.data(), big.data()) << "copied instead of gathered";
  EXPECT_EQ(gathered[0].bytes.size(), big.size());
  EXPECT_EQ(out.size(), 4u + 8u + 4u);
  // Small ranges are copied as ever.
  std::vector<std::byte> small(mproc::detail::large_buffer - 1);
  mproc::encode(w, small);
  EXPECT_EQ(gathered.size(), 1u);
}

// ---- arriving bytes ---------------------------------------------------------------------

/// Bytes that become readable `step` at a time, one step per wait (as a body being filled):
/// everything beyond what was revealed is garbage until then.
class revealed_in_steps final : public mproc::detail::arriving_bytes {
 public:
  revealed_in_steps(const std::vector<std::byte>& real, std::size_t step) : real_(real), shown_(real.size(), std::byte{0xee}), step_(step) {
    begin = shown_.data();
    reveal(step);
    outer_ = std::exchange(mproc::detail::arriving_now, this);
  }
  ~revealed_in_steps() { mproc::detail::arriving_now = outer_; }
  std::size_t wait_ready(std::size_t need) override {
    ++waits;
    if (need > real_.size()) ADD_FAILURE() << "waited for more than there is";
    while (ready < need) reveal(ready + step_);
    return ready;
  }
  const std::vector<std::byte>& shown() const { return shown_; }
  int waits = 0;

 private:
  void reveal(std::size_t upto) {
    upto = std::min(upto, real_.size());
    std::copy(real_.begin() + static_cast<std::ptrdiff_t>(ready), real_.begin() + static_cast<std::ptrdiff_t>(upto),
              shown_.begin() + static_cast<std::ptrdiff_t>(ready));
    ready = upto;
  }
  const std::vector<std::byte>& real_;
  std::vector<std::byte> shown_;
  std::size_t step_;
  mproc::detail::arriving_bytes* outer_;
};

TEST(serialization, a_reader_over_arriving_bytes_copies_bulk_ranges_as_they_come) {
  auto check = [](const auto& value, std::size_t step) {
    using T = std::decay_t<decltype(value)>;
    auto bytes = mproc::to_bytes(value);
    revealed_in_steps arriving{bytes, step};
    T got = mproc::from_bytes<T>(arriving.shown().data(), arriving.shown().size());
    EXPECT_EQ(got, value) << "step " << step;
    EXPECT_GT(arriving.waits, 0) << "read all without waiting for any";
  };
  std::vector<std::byte> big(3 * mproc::detail::large_buffer + 7);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7);
  check(big, 1 << 16);
  check(big, 12345);
  check(std::vector<char>(mproc::detail::large_buffer + 99, 'x'), 999);
  check(std::vector<std::int64_t>(mproc::detail::large_buffer / 4, 42), 1 << 20);
  check(std::string(mproc::detail::large_buffer * 2, 's'), 1 << 18);
}

TEST(serialization, a_small_read_ahead_of_arriving_bytes_asks_to_be_done_again) {
  // Never a value from bytes not yet written: the caller decodes again once all are there.
  auto bytes = mproc::to_bytes(route{"r", {{1, 2, "s"}}, point{3, 4, "p"}, {{"t", {1, 2}}}});
  revealed_in_steps arriving{bytes, 5};
  EXPECT_THROW(mproc::from_bytes<route>(arriving.shown().data(), arriving.shown().size()),
               mproc::detail::bytes_not_ready);
}

TEST(serialization, a_reader_over_arriving_bytes_still_reports_truncation) {
  auto bytes = mproc::to_bytes(std::vector<std::byte>(mproc::detail::large_buffer, std::byte{1}));
  bytes.pop_back();
  revealed_in_steps arriving{bytes, 1 << 16};
  try {
    mproc::from_bytes<std::vector<std::byte>>(arriving.shown().data(), arriving.shown().size());
    ADD_FAILURE() << "a truncated value decoded";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::bad_message);
    EXPECT_EQ(dynamic_cast<const mproc::detail::bytes_not_ready*>(&e), nullptr) << "truncation is final, not a retry";
  }
}

}  // namespace
