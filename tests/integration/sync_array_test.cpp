// mproc::array<T> (and value<T>, an array of one): contents, the lock, without a lock, index
// errors, and a child writing through its copy (per start method).
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <numeric>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

struct point {
  double x;
  std::int32_t id;
};

void square_all(mproc::array<double> a) {
  a.with_lock([](std::span<double> xs) {
    for (auto& x : xs) x *= x;
  });
}
MPROC_ENTRY(square_all);

void add_to_each(mproc::array<std::int64_t> a, int n) {
  for (int i = 0; i < n; ++i)
    a.with_lock([](std::span<std::int64_t> xs) {
      for (auto& x : xs) ++x;
    });
}
MPROC_ENTRY(add_to_each);

class sync_array : public mproc::test::method_test {};

TEST_P(sync_array, a_child_writes_through_its_copy) {
  auto a = mproc::array<double>::create({1.0, 2.0, 3.0});
  EXPECT_EQ(run_child(square_all, a), 0);
  EXPECT_EQ(a.to_vector(), (std::vector<double>{1.0, 4.0, 9.0}));
}

TEST_P(sync_array, read_modify_write_under_the_lock_is_exact) {
  auto a = mproc::array<std::int64_t>::create(8, 0);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 3; ++i) ps.push_back(start(add_to_each, a, 500));
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  for (auto v : a.to_vector()) EXPECT_EQ(v, 1500);
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_array, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(sync_array_local, elements_and_views) {
  auto a = mproc::array<point>::create(4, point{1.5, 7});
  EXPECT_EQ(a.size(), 4u);
  EXPECT_TRUE(a.has_lock());
  a.set(3, {2.5, 9});
  EXPECT_EQ(a.get(0).id, 7);
  EXPECT_EQ(a.get(3).x, 2.5);
  auto span = a.span();
  EXPECT_EQ(span.size(), 4u);
  EXPECT_EQ(span[3].id, 9);
  span[1].id = 11;  // the raw view is the shared memory itself
  EXPECT_EQ(a.get(1).id, 11);
  auto sum = a.with_lock([](std::span<point> ps) {
    return std::accumulate(ps.begin(), ps.end(), 0, [](int s, const point& p) { return s + p.id; });
  });
  EXPECT_EQ(sum, 7 + 11 + 7 + 9);
  EXPECT_EQ(a.get_lock().try_acquire(), mproc::acquired::normally);
  a.get_lock().release();
}

TEST(sync_array_local, misuse_is_a_typed_error) {
  auto a = mproc::array<int>::create(3);
  auto code_of = [](auto f) {
    try {
      f();
    } catch (const mproc::error& e) {
      return e.code();
    }
    return std::error_code{};
  };
  EXPECT_EQ(code_of([&] { a.get(3); }), errc::invalid_argument);  // Python's IndexError
  EXPECT_EQ(code_of([&] { a.set(99, 1); }), errc::invalid_argument);
  EXPECT_EQ(code_of([] { mproc::array<int>::create(0); }), errc::invalid_argument);
  mproc::array<int> empty;
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(code_of([&] { empty.get(0); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { mproc::array<int>::attach(mproc::shared_memory::create(8)); }), errc::bad_message);
}

TEST(sync_array_local, without_a_lock_it_is_plain_memory) {
  auto raw = mproc::array<int>::create({1, 2, 3}, mproc::locking::without_lock);
  EXPECT_FALSE(raw.has_lock());
  raw.set(0, 5);
  EXPECT_EQ(raw.get(0), 5);
  EXPECT_THROW(raw.get_lock(), mproc::error);
  EXPECT_THROW(raw.with_lock([](std::span<int>) {}), mproc::error);
  auto v = mproc::value<int>::create(4, mproc::locking::without_lock);  // RawValue
  v.set(6);
  EXPECT_EQ(v.get(), 6);
  EXPECT_THROW(v.get_lock(), mproc::error);
}

TEST(sync_array_local, value_is_an_array_of_one) {
  auto v = mproc::value<std::int64_t>::create(41);
  EXPECT_EQ(v.with_lock([](std::int64_t& x) { return ++x; }), 42);
  EXPECT_EQ(v.get(), 42);
  *v.get_obj() = 7;
  EXPECT_EQ(v.get(), 7);
  EXPECT_EQ(mproc::array<std::int64_t>::attach(v.memory()).get(0), 7);
}

}  // namespace
