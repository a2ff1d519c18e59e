// mproc/error.hpp: the mproc error category, messages, error_code comparisons, mproc::error.
#include <mproc/error.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>

namespace {

constexpr mproc::errc all_errcs[] = {
    mproc::errc::not_started,  mproc::errc::already_started,    mproc::errc::unknown_entry,
    mproc::errc::duplicate_entry, mproc::errc::unsupported_target, mproc::errc::timeout,
    mproc::errc::interrupted,  mproc::errc::spawn_failed,       mproc::errc::node_closed,
    mproc::errc::no_node,      mproc::errc::bad_message,        mproc::errc::runtime_dir,
    mproc::errc::invalid_argument, mproc::errc::closed,         mproc::errc::full,
    mproc::errc::empty,        mproc::errc::end_of_stream,      mproc::errc::wrong_type,
    mproc::errc::access_denied, mproc::errc::message_too_large, mproc::errc::broken_barrier,
    mproc::errc::task_failed,  mproc::errc::worker_lost,
    mproc::errc::command_not_found, mproc::errc::command_failed, mproc::errc::cancelled,
    mproc::errc::actor_down, mproc::errc::host_lost, mproc::errc::too_many_restarts,
    mproc::errc::node_lost,
};

TEST(error, category_is_named_mproc_and_unique) {
  EXPECT_STREQ(mproc::category().name(), "mproc");
  EXPECT_EQ(&mproc::category(), &mproc::category());
  EXPECT_NE(mproc::category(), std::system_category());
  EXPECT_NE(mproc::category(), std::generic_category());
}

TEST(error, values_are_stable) {
  // "Values never change meaning once released."
  EXPECT_EQ(static_cast<int>(mproc::errc::not_started), 1);
  EXPECT_EQ(static_cast<int>(mproc::errc::invalid_argument), 13);
  EXPECT_EQ(static_cast<int>(mproc::errc::message_too_large), 20);
  EXPECT_EQ(static_cast<int>(mproc::errc::broken_barrier), 21);
  EXPECT_EQ(static_cast<int>(mproc::errc::command_failed), 25);
  EXPECT_EQ(static_cast<int>(mproc::errc::cancelled), 26);
  EXPECT_EQ(static_cast<int>(mproc::errc::host_lost), 28);
  EXPECT_EQ(static_cast<int>(mproc::errc::too_many_restarts), 29);
  EXPECT_EQ(static_cast<int>(mproc::errc::node_lost), 30);
  EXPECT_EQ(std::size(all_errcs), 30u);
  for (std::size_t i = 0; i < std::size(all_errcs); ++i) EXPECT_EQ(static_cast<int>(all_errcs[i]), static_cast<int>(i) + 1);
}

TEST(error, every_errc_has_its_own_non_empty_message) {
  std::set<std::string> seen;
  for (auto e : all_errcs) {
    auto ec = mproc::make_error_code(e);
    std::string msg = ec.message();
    EXPECT_FALSE(msg.empty()) << static_cast<int>(e);
    EXPECT_NE(msg, "unknown mproc error") << static_cast<int>(e);
    EXPECT_TRUE(seen.insert(msg).second) << "duplicate message: " << msg;
  }
  // Values outside the enum still get some text rather than crashing.
  EXPECT_FALSE(mproc::category().message(0).empty());
  EXPECT_FALSE(mproc::category().message(9999).empty());
}

TEST(error, error_code_comparisons) {
  static_assert(std::is_error_code_enum_v<mproc::errc>);
  std::error_code ec = mproc::errc::timeout;  // implicit, as for std's own enums
  EXPECT_TRUE(ec);
  EXPECT_EQ(ec, mproc::errc::timeout);
  EXPECT_EQ(mproc::errc::timeout, ec);
  EXPECT_NE(ec, mproc::errc::interrupted);
  EXPECT_EQ(ec.category(), mproc::category());
  EXPECT_EQ(ec.value(), static_cast<int>(mproc::errc::timeout));
  EXPECT_EQ(ec, mproc::make_error_code(mproc::errc::timeout));
  // Same number, different category: not equal.
  std::error_code eperm{static_cast<int>(mproc::errc::not_started), std::system_category()};
  EXPECT_NE(eperm, mproc::errc::not_started);
  EXPECT_NE(std::error_code(mproc::errc::not_started), std::make_error_code(std::errc::operation_not_permitted));
  // The empty code is none of them.
  std::error_code none;
  EXPECT_FALSE(none);
  for (auto e : all_errcs) EXPECT_NE(none, e);
  // Codes order and hash like any error_code (usable as map keys).
  std::set<std::error_code> codes;
  for (auto e : all_errcs) codes.insert(e);
  EXPECT_EQ(codes.size(), std::size(all_errcs));
}

TEST(error, mproc_error_is_a_system_error_with_context) {
  mproc::error e{mproc::errc::no_node, "mproc::node::current"};
  const std::system_error& base = e;
  EXPECT_EQ(base.code(), mproc::errc::no_node);
  std::string what = e.what();
  EXPECT_NE(what.find("mproc::node::current"), std::string::npos) << what;
  EXPECT_NE(what.find(mproc::make_error_code(mproc::errc::no_node).message()), std::string::npos) << what;
  // An OS failure keeps its system error code.
  mproc::error os{std::error_code{EAGAIN, std::system_category()}, "fork"};
  EXPECT_EQ(os.code(), std::errc::resource_unavailable_try_again);
  EXPECT_NE(os.code(), mproc::errc::spawn_failed);
}

TEST(error, throw_if_throws_only_for_a_set_code) {
  EXPECT_NO_THROW(mproc::throw_if({}, "nothing"));
  try {
    mproc::throw_if(mproc::errc::interrupted, "waiting");
    FAIL() << "no throw";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::interrupted);
    EXPECT_NE(std::string{e.what()}.find("waiting"), std::string::npos);
  }
  // Catchable as std::system_error and std::exception too.
  EXPECT_THROW(mproc::throw_if(mproc::errc::timeout, "x"), std::system_error);
  EXPECT_THROW(mproc::throw_if(std::error_code{ENOENT, std::system_category()}, "x"), mproc::error);
}

}  // namespace
