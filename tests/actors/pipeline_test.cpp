// mproc/actors/pipeline.hpp: stages in one process, spawned by name as across processes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <thread>

#include <mproc/actors/caf_error.hpp>
#include <mproc/actors/directory.hpp>
#include <mproc/actors/pipeline.hpp>

#include "actor_fixture.hpp"

namespace ma = mproc::actors;
namespace mt = mproc::test;
using namespace std::chrono_literals;

namespace {

// ---- the functions the stages run, and what they saw -----------------------------------

std::atomic<std::uint64_t> item_limit{0};    // numbers() yields 0 .. item_limit-1
std::atomic<std::uint64_t> generated{0};     // items numbers() made so far
std::atomic<std::uint64_t> max_ahead{0};     // most items the source was ahead of slow_collect
std::atomic<int> branch_items[3];
std::mutex collected_mutex;
std::vector<int> collected;

std::optional<int> numbers(std::uint64_t i) {
  if (i >= item_limit) return std::nullopt;
  ++generated;
  return static_cast<int>(i);
}
int identity(int x) { return x; }
int square(int x) { return x * x; }
int twice(int x) { return 2 * x; }
bool is_even(int x) { return x % 2 == 0; }
std::string needs_text(const std::string& s) { return s; }
template <int Branch>
int branch(int x) {
  ++branch_items[Branch];
  return x;
}
int branch0(int x) { return branch<0>(x); }
int branch1(int x) { return branch<1>(x); }
int branch2(int x) { return branch<2>(x); }

int explode_at_3(int x) {
  if (x == 3) throw std::runtime_error("a stage function that crashes");
  return x;
}

void collect(int x) {
  std::lock_guard guard{collected_mutex};
  collected.push_back(x);
}
std::size_t collected_count() {
  std::lock_guard guard{collected_mutex};
  return collected.size();
}
/// A slow sink that measures how far the source runs ahead of it.
void slow_collect(int x) {
  auto done_before = collected_count();
  // The source's unacknowledged items include every item generated and not yet through here.
  auto ahead = generated.load() - done_before;
  for (auto seen = max_ahead.load(); ahead > seen && !max_ahead.compare_exchange_weak(seen, ahead);) {}
  std::this_thread::sleep_for(1ms);
  collect(x);
}

MPROC_STAGE_FN(numbers);
MPROC_STAGE_FN(square);
MPROC_STAGE_FN(twice);
MPROC_STAGE_FN(is_even);
MPROC_STAGE_FN(needs_text);
MPROC_STAGE_FN(branch0);
MPROC_STAGE_FN(branch1);
MPROC_STAGE_FN(branch2);
MPROC_STAGE_FN(explode_at_3);
MPROC_STAGE_FN(collect);
MPROC_STAGE_FN(slow_collect);

class pipeline : public mt::actor_fixture {
 protected:
  void SetUp() override {
    actor_fixture::SetUp();
    generated = 0;
    max_ahead = 0;
    for (auto& b : branch_items) b = 0;
    std::lock_guard guard{collected_mutex};
    collected.clear();
  }

  /// The count of (done_atom, count), or nullopt when none came in time.
  static std::optional<std::uint64_t> wait_done(caf::scoped_actor& self) {
    std::optional<std::uint64_t> count;
    self->receive([&](ma::done_atom, std::uint64_t n) { count = n; }, caf::after(20s) >> [] {});
    return count;
  }
  static std::vector<int> output() {
    std::lock_guard guard{collected_mutex};
    return collected;
  }
  static std::vector<int> expected(int n, int (*f)(int)) {
    std::vector<int> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = f(i);
    return v;
  }
  /// Every stage ends normally (after the end of stream). Monitoring an actor that already ended
  /// reports its reason at once.
  void expect_all_end_normally(caf::scoped_actor& self, const std::vector<caf::actor>& stages) {
    for (auto& s : stages) self->monitor(s);
    for (auto& s : stages) EXPECT_EQ(wait_down(self, s), caf::error{}) << "stage " << to_string(s.address());
  }

  /// numbers -> map_fn (stage named as the function) -> sink_fn, which reports to `self`.
  struct chain {
    caf::actor sink, map, source;
  };
  chain spawn_chain(caf::scoped_actor& self, const std::string& map_fn, const std::string& sink_fn,
                    const ma::stage_options& opts = {}) {
    return {ma::spawn_sink(*sys, "out", sink_fn, self), ma::spawn_map(*sys, map_fn, map_fn, "out", opts),
            ma::spawn_source(*sys, "numbers", "numbers", map_fn, opts)};
  }

  /// numbers -> split (fan-out) -> b0, b1, b2 (maps branch0..2) -> merge (fan-in) -> sink_fn.
  /// Stages in that order from the sink up: {sink, merge, b0, b1, b2, split, numbers}.
  std::vector<caf::actor> spawn_diamond(caf::scoped_actor& self, const std::string& sink_fn,
                                        const ma::stage_options& opts = {}) {
    std::vector<caf::actor> stages{ma::spawn_sink(*sys, "out", sink_fn, self), ma::spawn_fan_in(*sys, "merge", 3, "out", opts)};
    for (int b = 0; b < 3; ++b)
      stages.push_back(ma::spawn_map(*sys, "b" + std::to_string(b), "branch" + std::to_string(b), "merge", opts));
    stages.push_back(ma::spawn_fan_out(*sys, "split", {"b0", "b1", "b2"}, opts));
    stages.push_back(ma::spawn_source(*sys, "numbers", "numbers", "split", opts));
    return stages;
  }

  static ma::stage_options window_of(std::uint32_t k) {
    ma::stage_options o;
    o.window = k;
    return o;
  }

  /// The sink reports n items, and they are f(0) ... f(n-1), each once, in any order.
  void expect_complete_output(caf::scoped_actor& self, int n, int (*f)(int)) {
    EXPECT_EQ(wait_done(self), static_cast<std::uint64_t>(n));
    auto out = output();
    std::sort(out.begin(), out.end());
    EXPECT_EQ(out, expected(n, f)) << "items lost or repeated";
  }

  /// Kills `stage` once 50 items reached the sink, and waits until it is gone.
  void kill_mid_stream(caf::scoped_actor& self, const caf::actor& stage) {
    ASSERT_TRUE(mt::eventually([] { return collected_count() >= 50; }, 10s));
    self->monitor(stage);
    caf::anon_send_exit(stage, caf::exit_reason::kill);
    EXPECT_EQ(wait_down(self, stage), caf::exit_reason::kill);
  }
};

TEST_F(pipeline, a_chain_delivers_in_source_order_and_every_stage_ends_after_the_end_of_stream) {
  item_limit = 200;
  caf::scoped_actor self{*sys};
  auto c = spawn_chain(self, "square", "collect");
  EXPECT_EQ(wait_done(self), 200u);
  EXPECT_EQ(output(), expected(200, square));
  expect_all_end_normally(self, {c.sink, c.map, c.source});
}

TEST_F(pipeline, stages_run_to_the_end_without_anyone_holding_their_handles) {
  item_limit = 1000;
  caf::scoped_actor self{*sys};
  ma::spawn_sink(*sys, "out", "collect", self);
  ma::spawn_filter(*sys, "evens", "is_even", "out");
  ma::spawn_map(*sys, "square", "square", "evens");
  ma::spawn_source(*sys, "numbers", "numbers", "square");
  EXPECT_EQ(wait_done(self), 500u);
  EXPECT_EQ(collected_count(), 500u);
  // Every stage ends: the fixture's actor_system would wait for ever otherwise (and the watchdog fire).
}

TEST_F(pipeline, a_source_of_a_list_sends_its_items_then_the_end_of_stream) {
  caf::scoped_actor self{*sys};
  auto sink = ma::spawn_sink(*sys, "out", "collect", self);
  auto map = ma::spawn_map(*sys, "square", "square", "out");
  auto src = ma::spawn_source(*sys, "list", {caf::make_message(3), caf::make_message(1), caf::make_message(2)}, "square",
                              window_of(1), 1000);
  EXPECT_EQ(wait_done(self), 3u);
  EXPECT_EQ(output(), (std::vector<int>{9, 1, 4}));
  expect_all_end_normally(self, {sink, map, src});
}

TEST_F(pipeline, a_filter_drops_items_and_stages_may_start_in_any_order) {
  item_limit = 100;
  caf::scoped_actor self{*sys};
  auto src = ma::spawn_source(*sys, "numbers", "numbers", "evens");  // its downstream is not there yet
  std::this_thread::sleep_for(20ms);
  auto filter = ma::spawn_filter(*sys, "evens", "is_even", "out");
  auto sink = ma::spawn_sink(*sys, "out", "collect", self);
  EXPECT_EQ(wait_done(self), 50u);
  std::vector<int> evens;
  for (int i = 0; i < 100; i += 2) evens.push_back(i);
  EXPECT_EQ(output(), evens);
  expect_all_end_normally(self, {sink, filter, src});
}

TEST_F(pipeline, fan_out_spreads_items_round_robin_and_fan_in_merges_them_all) {
  item_limit = 600;
  caf::scoped_actor self{*sys};
  auto stages = spawn_diamond(self, "collect");
  expect_complete_output(self, 600, identity);
  EXPECT_EQ(branch_items[0] + branch_items[1] + branch_items[2], 600);
  for (auto& b : branch_items) EXPECT_GT(b, 100) << "round robin left a branch nearly idle";
  expect_all_end_normally(self, stages);
}

TEST_F(pipeline, a_slow_sink_throttles_the_source_to_the_window) {
  item_limit = 100;
  caf::scoped_actor self{*sys};
  auto c = spawn_chain(self, "twice", "slow_collect", window_of(4));
  EXPECT_EQ(wait_done(self), 100u);
  EXPECT_EQ(output(), expected(100, twice));
  EXPECT_LE(max_ahead.load(), 4u) << "the source ran further ahead than its window";
  EXPECT_GE(max_ahead.load(), 2u) << "the window was never used: the measurement is not working";
  expect_all_end_normally(self, {c.sink, c.map, c.source});
}

TEST_F(pipeline, a_stage_killed_mid_stream_and_published_again_loses_and_repeats_nothing) {
  item_limit = 300;
  auto opts = window_of(8);
  caf::scoped_actor self{*sys};
  auto c = spawn_chain(self, "twice", "slow_collect", opts);
  kill_mid_stream(self, c.map);
  auto at_kill = collected_count();
  std::this_thread::sleep_for(30ms);  // the source looks for "twice" in vain meanwhile
  EXPECT_LT(collected_count(), std::size_t{300});
  // As a supervisor restarts a child: spawn its recipe by name again, publish it under its name.
  auto spec = ma::map_spec("twice", "twice", "out", opts);
  auto again = sys->spawn<caf::actor>(spec.type, spec.args);
  ASSERT_TRUE(again);
  ma::publish(*sys, spec.name, *again);
  expect_complete_output(self, 300, twice);
  EXPECT_GT(collected_count(), at_kill);
  expect_all_end_normally(self, {c.sink, *again, c.source});
}

TEST_F(pipeline, a_branch_of_a_fan_out_killed_mid_stream_and_published_again_loses_nothing) {
  item_limit = 300;
  auto opts = window_of(4);
  caf::scoped_actor self{*sys};
  auto stages = spawn_diamond(self, "slow_collect", opts);
  kill_mid_stream(self, stages[3]);
  stages[3] = ma::spawn_map(*sys, "b1", "branch1", "merge", opts);
  expect_complete_output(self, 300, identity);
  expect_all_end_normally(self, stages);
}

TEST_F(pipeline, a_function_that_throws_crashes_its_stage) {
  item_limit = 10;
  ma::stage_options opts;
  opts.relink_timeout = 200ms;
  caf::scoped_actor self{*sys};
  auto c = spawn_chain(self, "explode_at_3", "collect", opts);
  self->monitor(c.map);
  auto reason = wait_down(self, c.map);
  EXPECT_TRUE(reason) << "a crash is not a normal exit";
  EXPECT_FALSE(ma::errc_of(reason)) << sys->render(reason);
  EXPECT_TRUE(mt::eventually([] { return collected_count() == 3; })) << "items before the crash";
  EXPECT_EQ(output(), (std::vector<int>{0, 1, 2}));
  caf::anon_send_exit(c.sink, caf::exit_reason::user_shutdown);
  self->monitor(c.sink);
  self->monitor(c.source);
  EXPECT_EQ(wait_down(self, c.sink), caf::exit_reason::user_shutdown);
  EXPECT_EQ(ma::errc_of(wait_down(self, c.source)), mproc::errc::timeout);
}

// ---- the protocol, driven by hand: the test actor plays upstream and downstream ----------

/// The next (item_atom, seq, int) self receives, or nullopt within `limit`.
std::optional<std::pair<std::uint64_t, int>> next_item(caf::scoped_actor& self, std::chrono::milliseconds limit = 5s) {
  std::optional<std::pair<std::uint64_t, int>> got;
  self->receive([&](ma::item_atom, std::uint64_t seq, const caf::message& m) { got = {seq, m.get_as<int>(0)}; },
                caf::after(limit) >> [] {});
  return got;
}
std::optional<std::uint64_t> next_ack(caf::scoped_actor& self, std::chrono::milliseconds limit = 5s) {
  std::optional<std::uint64_t> got;
  self->receive([&](ma::ack_atom, std::uint64_t seq) { got = seq; }, caf::after(limit) >> [] {});
  return got;
}

TEST_F(pipeline, a_stage_sends_at_most_window_items_and_acknowledges_after_its_downstream) {
  caf::scoped_actor self{*sys};
  ma::publish(*sys, "probe", self);
  auto map = ma::spawn_map(*sys, "m", "twice", "probe", window_of(2));
  for (int i = 0; i < 5; ++i) self->send(map, ma::item_atom::value, static_cast<std::uint64_t>(i), caf::make_message(i));
  EXPECT_EQ(next_item(self), (std::pair<std::uint64_t, int>{0, 0}));
  EXPECT_EQ(next_item(self), (std::pair<std::uint64_t, int>{1, 2}));
  EXPECT_FALSE(next_item(self, 100ms)) << "more than the window in flight";
  EXPECT_FALSE(next_ack(self, 10ms)) << "acknowledged before its downstream did";
  self->send(map, ma::item_atom::value, std::uint64_t{1}, caf::make_message(1));  // a re-sent item it holds
  self->send(map, ma::ack_atom::value, std::uint64_t{0});
  EXPECT_EQ(next_ack(self), 0u);
  EXPECT_EQ(next_item(self), (std::pair<std::uint64_t, int>{2, 4}));
  EXPECT_FALSE(next_item(self, 50ms)) << "the re-sent item went out twice";
  for (std::uint64_t seq : {1, 2, 3}) {
    self->send(map, ma::ack_atom::value, seq);
    EXPECT_EQ(next_ack(self), seq);
    if (seq < 3) {
      EXPECT_EQ(next_item(self), (std::pair<std::uint64_t, int>{seq + 2, static_cast<int>(2 * (seq + 2))}));
    }
  }
  // Item 4 is out: the end of stream follows it on the same link at once.
  self->send(map, ma::eos_atom::value, std::string{"up"});
  std::string end_from;
  self->receive([&](ma::eos_atom, const std::string& name) { end_from = name; }, caf::after(5s) >> [] {});
  EXPECT_EQ(end_from, "m");
  auto next_end_ack = [&](std::chrono::milliseconds limit) {
    std::string acked;
    self->receive([&](ma::ack_atom, const std::string& name) { acked = name; }, caf::after(limit) >> [] {});
    return acked;
  };
  self->monitor(map);
  self->send(map, ma::ack_atom::value, std::string{"m"});
  EXPECT_EQ(next_end_ack(100ms), "") << "the end of stream was acknowledged before every item";
  self->send(map, ma::ack_atom::value, std::uint64_t{4});
  EXPECT_EQ(next_ack(self), 4u);
  EXPECT_EQ(next_end_ack(5s), "up");
  EXPECT_EQ(wait_down(self, map), caf::error{});
}

TEST_F(pipeline, a_sink_acknowledges_duplicates_but_takes_each_sequence_number_once) {
  caf::scoped_actor self{*sys};
  auto sink = ma::spawn_sink(*sys, "k", "collect", self);
  for (int i = 0; i < 2; ++i) {
    self->send(sink, ma::item_atom::value, std::uint64_t{5}, caf::make_message(10));
    EXPECT_EQ(next_ack(self), 5u);
  }
  self->send(sink, ma::eos_atom::value, std::string{"up"});
  EXPECT_EQ(wait_done(self), 1u);
  EXPECT_EQ(output(), std::vector<int>{10});
  self->monitor(sink);
  EXPECT_EQ(wait_down(self, sink), caf::error{});
}

TEST_F(pipeline, an_item_a_function_cannot_take_ends_the_stage_and_its_upstream_gives_up_in_time) {
  item_limit = 10;
  ma::stage_options opts;
  opts.relink_timeout = 300ms;
  caf::scoped_actor self{*sys};
  auto sink = ma::spawn_sink(*sys, "out", "collect", self);
  auto map = ma::spawn_map(*sys, "text", "needs_text", "out");
  auto src = ma::spawn_source(*sys, "numbers", "numbers", "text", opts);
  for (auto& s : {sink, map, src}) self->monitor(s);
  EXPECT_EQ(ma::errc_of(wait_down(self, map)), mproc::errc::wrong_type);
  EXPECT_EQ(ma::errc_of(wait_down(self, src)), mproc::errc::timeout);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  EXPECT_EQ(wait_down(self, sink), caf::exit_reason::user_shutdown);
}

TEST_F(pipeline, misuse_is_a_typed_error) {
  auto expect_errc = [](mproc::errc want, auto&& spawn) {
    try {
      spawn();
      ADD_FAILURE() << "no throw";
    } catch (const mproc::error& e) {
      EXPECT_EQ(e.code(), want) << e.what();
    }
  };
  expect_errc(mproc::errc::unknown_entry, [&] { ma::spawn_map(*sys, "m", "no_such_function", "out"); });
  expect_errc(mproc::errc::unknown_entry, [&] { ma::spawn_source(*sys, "s", "no_such_generator", "out"); });
  ma::stage_options zero;
  zero.window = 0;
  expect_errc(mproc::errc::invalid_argument, [&] { ma::spawn_map(*sys, "m", "square", "out", zero); });
  expect_errc(mproc::errc::invalid_argument, [&] { ma::spawn_fan_out(*sys, "f", {}); });
  expect_errc(mproc::errc::invalid_argument, [&] { ma::spawn_sink(*sys, "k", "", nullptr, 0); });
  // A config without add_printer_pipeline_types cannot spawn stages by name.
  caf::actor_system_config bare;
  caf::actor_system bare_sys{bare};
  expect_errc(mproc::errc::unknown_entry, [&] { ma::spawn_sink(bare_sys, "k", "", nullptr); });
  // Arguments of the wrong types, as a remote spawn could send them, are refused by the factory.
  auto wrong = sys->spawn<caf::actor>(ma::stage_type_name, caf::make_message(1, 2));
  EXPECT_FALSE(wrong);
  expect_errc(mproc::errc::invalid_argument,
              [&] { ma::spawn_stage(*sys, {"w", ma::stage_type_name, caf::make_message(1, 2)}); });
  expect_errc(mproc::errc::invalid_argument,
              [&] { ma::spawn_source(*sys, "l", std::vector<caf::message>{caf::message{}}, "out"); });
  EXPECT_EQ(ma::find_stage_function("square")(caf::make_message(7)).get_as<int>(0), 49);
  EXPECT_THROW(ma::find_stage_function("square")(caf::make_message(std::string{"7"})), mproc::error);
}

}  // namespace
