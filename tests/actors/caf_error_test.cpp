// mproc/actors/caf_error.hpp: mproc::errc inside a caf::error, and back.
#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <mproc/actors/caf_error.hpp>

namespace ma = mproc::actors;

namespace {

TEST(caf_error, carries_the_errc_and_its_context) {
  auto e = ma::to_caf_error(mproc::errc::too_many_restarts, "child \"db\"");
  EXPECT_EQ(e.category(), ma::errc_category);
  EXPECT_EQ(e.code(), static_cast<std::uint8_t>(mproc::errc::too_many_restarts));
  EXPECT_EQ(ma::errc_of(e), mproc::errc::too_many_restarts);
  EXPECT_EQ(ma::context_of(e), "child \"db\"");
}

TEST(caf_error, other_errors_have_no_errc) {
  EXPECT_EQ(ma::errc_of(caf::error{}), std::nullopt);
  EXPECT_EQ(ma::errc_of(caf::make_error(caf::sec::request_timeout)), std::nullopt);
  EXPECT_EQ(ma::errc_of(caf::make_error(caf::exit_reason::user_shutdown)), std::nullopt);
  EXPECT_EQ(ma::context_of(caf::make_error(caf::sec::request_timeout)), "");
  EXPECT_EQ(ma::context_of(caf::error{}), "");
}

TEST(caf_error, renders_with_the_errc_message_once_registered) {
  caf::actor_system_config cfg;
  ma::add_errc_category(cfg);
  caf::actor_system sys{cfg};
  EXPECT_EQ(sys.render(ma::to_caf_error(mproc::errc::invalid_argument, "no child named \"x\"")),
            "mproc: " + mproc::make_error_code(mproc::errc::invalid_argument).message() + ": no child named \"x\"");
  EXPECT_EQ(sys.render(ma::to_caf_error(mproc::errc::timeout, "")),
            "mproc: " + mproc::make_error_code(mproc::errc::timeout).message());
}

}  // namespace
