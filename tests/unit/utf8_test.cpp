// mproc/utf8.hpp: strict and replacing decodes, checked against what Python's
// bytes.decode('utf-8', errors='replace') gives for the same bytes.
#include <mproc/utf8.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using mproc::utf8_errors;
const std::string fffd = "\xEF\xBF\xBD";

std::string replaced(std::string_view bytes) { return mproc::decode_utf8(bytes, utf8_errors::replace); }
std::string times(int n, const std::string& s) {
  std::string out;
  while (n-- > 0) out += s;
  return out;
}

TEST(utf8, valid_text_passes_unchanged_in_both_modes) {
  for (std::string s : {std::string{}, std::string{"plain ascii"}, std::string{"\xE4\xB8\xAD\xE6\x96\x87"},
                        std::string{"\xF0\x9F\x98\x80 \xC3\xA9 \xED\x9F\xBF \xEE\x80\x80 \xF4\x8F\xBF\xBF"},
                        std::string{"nul\0inside", 10}}) {
    EXPECT_EQ(mproc::first_invalid_utf8(s), std::nullopt) << s;
    EXPECT_EQ(mproc::decode_utf8(s), s);
    EXPECT_EQ(replaced(s), s);
  }
}

TEST(utf8, strict_reports_the_offset_of_the_first_bad_byte) {
  // Seed 003's crash: "'utf-8' codec can't decode byte 0xc8 in position 2".
  std::string gbk = "ab\xC8\xCF\xE4\xB8\xAD";
  EXPECT_EQ(mproc::first_invalid_utf8(gbk), 2u);
  try {
    (void)mproc::decode_utf8(gbk);
    FAIL() << "no throw";
  } catch (const mproc::utf8_error& e) {
    EXPECT_EQ(e.offset(), 2u);
    EXPECT_EQ(e.code(), mproc::errc::bad_message);
    EXPECT_NE(std::string{e.what()}.find("byte 2"), std::string::npos) << e.what();
  }
  std::error_code ec;
  EXPECT_EQ(mproc::decode_utf8(gbk, utf8_errors::strict, ec), "");
  EXPECT_EQ(ec, mproc::errc::bad_message);
  EXPECT_EQ(mproc::decode_utf8("ok", utf8_errors::strict, ec), "ok");
  EXPECT_FALSE(ec);
}

TEST(utf8, a_truncated_sequence_is_one_replacement) {
  EXPECT_EQ(replaced("\xF0\x9F\x98"), fffd);         // 3 of 4 bytes at the end
  EXPECT_EQ(replaced("a\xE2\x82" "b"), "a" + fffd + "b");  // 2 of 3, then ASCII
  EXPECT_EQ(replaced("\xC3"), fffd);
  EXPECT_EQ(mproc::first_invalid_utf8("abc\xF0\x9F\x98"), 3u);
}

TEST(utf8, overlongs_surrogates_and_out_of_range_are_one_replacement_per_byte) {
  EXPECT_EQ(replaced("\xC0\xAF"), times(2, fffd));          // overlong '/'
  EXPECT_EQ(replaced("a\xE0\x80\xAF" "b"), "a" + times(3, fffd) + "b");
  EXPECT_EQ(replaced("\xED\xA0\x80"), times(3, fffd));      // U+D800, a surrogate
  EXPECT_EQ(replaced("\xF4\x90\x80\x80"), times(4, fffd));  // above U+10FFFF
  EXPECT_EQ(replaced("\xF8\x88\x80\x80\x80"), times(5, fffd));
  EXPECT_EQ(replaced("\x80\xBF"), times(2, fffd));          // lone continuation bytes
  EXPECT_EQ(replaced("\xFF\xFE"), times(2, fffd));
  for (std::string_view bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF"})
    EXPECT_EQ(mproc::first_invalid_utf8(bad), 0u);
}

TEST(utf8, replacement_output_is_always_valid) {
  std::string all;
  for (int b = 0; b < 256; ++b)
    for (int c = 0x70; c < 0xC8; c += 7) all += {static_cast<char>(b), static_cast<char>(c)};
  auto text = replaced(all);
  EXPECT_EQ(mproc::first_invalid_utf8(text), std::nullopt);
  EXPECT_NO_THROW((void)mproc::decode_utf8(text));
}

}  // namespace
