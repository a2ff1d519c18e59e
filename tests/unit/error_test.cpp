#include <mproc/error.hpp>

#include <gtest/gtest.h>

TEST(error, category_and_messages) {
  EXPECT_STREQ(mproc::category().name(), "mproc");
  for (int e = static_cast<int>(mproc::errc::not_started); e <= static_cast<int>(mproc::errc::invalid_argument); ++e) {
    auto ec = mproc::make_error_code(static_cast<mproc::errc>(e));
    EXPECT_FALSE(ec.message().empty());
    EXPECT_NE(ec.message(), "unknown mproc error") << e;
  }
}

TEST(error, codes_compare_and_throw) {
  std::error_code ec = mproc::errc::timeout;
  EXPECT_EQ(ec, mproc::errc::timeout);
  EXPECT_NE(ec, mproc::errc::interrupted);
  EXPECT_NO_THROW(mproc::throw_if({}, "nothing"));
  try {
    mproc::throw_if(ec, "waiting");
    FAIL();
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::timeout);
    EXPECT_NE(std::string{e.what()}.find("waiting"), std::string::npos);
  }
}
