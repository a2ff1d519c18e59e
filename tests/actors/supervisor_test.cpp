// mproc/actors/supervisor.hpp: strategies, restart types, intensity, stops, nesting, queries.
// Plain CAF in one process: the actor core promises that a remote child behaves the same.
#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <mproc/actors/caf_error.hpp>
#include <mproc/actors/directory.hpp>
#include <mproc/actors/supervisor.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace ma = mproc::actors;
namespace mt = mproc::test;

namespace {

using boom_atom = caf::atom_constant<caf::atom("boom")>;  // the child throws in its handler
using fail_atom = caf::atom_constant<caf::atom("fail")>;  // the child quits with an error
using done_atom = caf::atom_constant<caf::atom("done")>;  // the child quits normally

constexpr auto patience = std::chrono::seconds(10);  // only reached when a test fails

/// What the children did, in order: "start:<name>" (by the start function), "stop:<name>" (when
/// an exit message ends a child).
class event_log {
 public:
  void add(std::string event) {
    std::lock_guard lock{mutex_};
    events_.push_back(std::move(event));
  }
  std::vector<std::string> peek() {
    std::lock_guard lock{mutex_};
    return events_;
  }
  /// The events so far, and forgets them.
  std::vector<std::string> take() {
    std::lock_guard lock{mutex_};
    return std::exchange(events_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};
using log_ptr = std::shared_ptr<event_log>;
using events = std::vector<std::string>;

/// What a worker does with an exit message (other than kill, which ends any actor).
enum class on_exit_msg { quit, ignore, quit_later };
using later_atom = caf::atom_constant<caf::atom("later")>;

caf::behavior worker(caf::event_based_actor* self, std::string name, log_ptr log, on_exit_msg mode) {
  self->set_exit_handler([self, name, log, mode](caf::exit_msg& exit) {
    switch (mode) {
      case on_exit_msg::quit: log->add("stop:" + name); return self->quit(exit.reason);
      case on_exit_msg::ignore: return log->add("ignored:" + name);
      case on_exit_msg::quit_later:
        log->add("stopping:" + name);
        return self->delayed_send(self, 50ms, later_atom::value);
    }
  });
  return {
      [](boom_atom) { throw std::runtime_error("boom"); },
      [self](fail_atom) { self->quit(caf::make_error(caf::sec::runtime_error)); },
      [self](done_atom) { self->quit(); },
      [self, name, log](later_atom) {
        log->add("stop:" + name);
        self->quit(caf::exit_reason::user_shutdown);
      },
  };
}

ma::start_function start_worker(const std::string& name, log_ptr log, on_exit_msg mode = on_exit_msg::quit) {
  return [=](caf::actor_system& sys) -> caf::expected<caf::actor> {
    log->add("start:" + name);
    return sys.spawn(worker, name, log, mode);
  };
}

/// A supervisor spawnable by name: one permanent worker, watched by whoever published "watcher".
ma::supervisor_spec named_tree(caf::actor_system& sys) {
  ma::supervisor_spec spec;
  spec.children.push_back({"named.w", start_worker("named.w", std::make_shared<event_log>())});
  spec.observer = ma::lookup(sys, "watcher");
  return spec;
}
MPROC_SUPERVISOR(named_tree);

class supervisor : public testing::Test {
 protected:
  mt::guard watchdog{30s};  // first member: still armed while the actor_system shuts down
  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;
  log_ptr log = std::make_shared<event_log>();
  std::map<caf::actor_addr, caf::error> downs_;  // down_msgs received so far, by source

  void SetUp() override {
    ma::add_supervisor_types(cfg);
    sys.emplace(cfg);
  }
  void TearDown() override { sys.reset(); }  // waits for every actor: a leaked one hangs here

  ma::child_spec child(const std::string& name, ma::restart_type type = ma::restart_type::permanent) {
    return {name, start_worker(name, log), type};
  }
  ma::supervisor_spec spec_of(ma::restart_strategy strategy, std::vector<ma::child_spec> children,
                              caf::scoped_actor& observer) {
    ma::supervisor_spec spec;
    spec.strategy = strategy;
    spec.intensity = {5, 10s};
    spec.children = std::move(children);
    spec.observer = caf::actor_cast<caf::actor>(observer);
    return spec;
  }

  caf::actor whereis(const caf::actor& sup, const std::string& name) {
    caf::scoped_actor self{*sys};
    caf::actor out;
    self->request(sup, patience, ma::whereis_atom::value, name)
        .receive([&](const caf::actor& handle) { out = handle; },
                 [&](const caf::error& e) { ADD_FAILURE() << "whereis " << name << ": " << sys->render(e); });
    return out;
  }
  std::vector<ma::child_info> children(const caf::actor& sup) {
    caf::scoped_actor self{*sys};
    std::vector<ma::child_info> out;
    self->request(sup, patience, ma::children_atom::value)
        .receive([&](const std::vector<ma::child_info>& list) { out = list; },
                 [&](const caf::error& e) { ADD_FAILURE() << "children: " << sys->render(e); });
    return out;
  }
  std::vector<std::uint64_t> restart_counts(const caf::actor& sup) {
    std::vector<std::uint64_t> out;
    for (const auto& c : children(sup)) out.push_back(c.restarts);
    return out;
  }

  using restart = std::pair<std::string, std::uint64_t>;
  static restart restart_of(const std::string& name, std::uint64_t n) { return {name, n}; }
  /// The next (name, restarts) the supervisor reports to `observer`, or ("<timeout>", 0).
  static std::pair<std::string, std::uint64_t> next_restart(caf::scoped_actor& observer) {
    std::pair<std::string, std::uint64_t> out{"<timeout>", 0};
    observer->receive([&](ma::restarted_atom, const std::string& name, std::uint64_t n) { out = {name, n}; },
                      caf::after(patience) >> [] {});
    return out;
  }
  /// Waits for the down_msg of `who` (monitored before) and returns its reason. Down messages
  /// of others that arrive meanwhile are kept for their own call.
  caf::error down_reason(caf::scoped_actor& self, const caf::actor& who) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (!downs_.count(who.address()) && std::chrono::steady_clock::now() < deadline)
      self->receive([&](const caf::down_msg& down) { downs_[down.source] = down.reason; },
                    caf::after(patience) >> [] {});
    auto it = downs_.find(who.address());
    return it == downs_.end() ? caf::make_error(caf::sec::request_timeout) : it->second;
  }
  /// Stops the supervisor as a parent would, and returns its exit reason.
  caf::error stop(const caf::actor& sup) {
    caf::scoped_actor self{*sys};
    self->monitor(sup);
    self->send_exit(sup, caf::exit_reason::user_shutdown);
    return down_reason(self, sup);
  }
};

TEST_F(supervisor, one_for_one_restarts_only_the_crashed_child) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_one, {child("a"), child("b"), child("c")}, self));
  auto a = whereis(sup, "a"), b = whereis(sup, "b"), c = whereis(sup, "c");
  EXPECT_EQ(log->take(), (events{"start:a", "start:b", "start:c"}));
  caf::anon_send(b, boom_atom::value);
  EXPECT_EQ(next_restart(self), restart_of("b", 1));
  EXPECT_EQ(log->take(), (events{"start:b"}));
  EXPECT_EQ(whereis(sup, "a"), a);
  EXPECT_NE(whereis(sup, "b"), b);
  EXPECT_EQ(whereis(sup, "c"), c);
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{0, 1, 0}));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, one_for_all_stops_the_others_last_first_then_starts_all_in_order) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_all, {child("a"), child("b"), child("c")}, self));
  auto b = whereis(sup, "b");
  log->take();
  caf::anon_send(b, fail_atom::value);
  for (const char* name : {"a", "b", "c"}) EXPECT_EQ(next_restart(self), restart_of(name, 1));
  EXPECT_EQ(log->take(), (events{"stop:c", "stop:a", "start:a", "start:b", "start:c"}));
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{1, 1, 1}));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
  EXPECT_EQ(log->take(), (events{"stop:c", "stop:b", "stop:a"}));
}

TEST_F(supervisor, rest_for_one_restarts_the_crashed_child_and_those_after_it) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::rest_for_one, {child("a"), child("b"), child("c"), child("d")}, self));
  auto a = whereis(sup, "a");
  log->take();
  caf::anon_send(whereis(sup, "b"), boom_atom::value);
  for (const char* name : {"b", "c", "d"}) EXPECT_EQ(next_restart(self), restart_of(name, 1));
  EXPECT_EQ(log->take(), (events{"stop:d", "stop:c", "start:b", "start:c", "start:d"}));
  EXPECT_EQ(whereis(sup, "a"), a);
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{0, 1, 1, 1}));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, a_transient_child_is_restarted_only_after_a_non_normal_exit) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_one,
                    {child("crashes", ma::restart_type::transient), child("finishes", ma::restart_type::transient),
                     child("shut", ma::restart_type::transient)},
                    self));
  auto crashes = whereis(sup, "crashes");
  caf::anon_send(crashes, fail_atom::value);
  EXPECT_EQ(next_restart(self), restart_of("crashes", 1));

  auto finishes = whereis(sup, "finishes"), shut = whereis(sup, "shut");
  caf::anon_send(finishes, done_atom::value);
  caf::anon_send_exit(shut, caf::exit_reason::user_shutdown);  // Erlang's shutdown: normal too
  // A restart would happen while the supervisor handles the down_msg: once the handles are gone,
  // nothing else is coming.
  EXPECT_TRUE(mt::eventually([&] { return !whereis(sup, "finishes") && !whereis(sup, "shut"); }));
  EXPECT_TRUE(whereis(sup, "crashes"));
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{1, 0, 0}));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, a_temporary_child_is_never_restarted_not_even_with_its_group) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_all,
                    {child("once", ma::restart_type::temporary), child("p"),
                     child("gone", ma::restart_type::temporary)},
                    self));
  auto gone = whereis(sup, "gone");
  caf::anon_send(gone, boom_atom::value);
  EXPECT_TRUE(mt::eventually([&] { return !whereis(sup, "gone"); }));
  EXPECT_TRUE(whereis(sup, "once"));  // a crash of a temporary child is no group restart either
  EXPECT_EQ(log->take(), (events{"start:once", "start:p", "start:gone"}));

  caf::anon_send(whereis(sup, "p"), fail_atom::value);  // the group restart stops "once" for good
  EXPECT_EQ(next_restart(self), restart_of("p", 1));
  EXPECT_EQ(log->take(), (events{"stop:once", "start:p"}));
  EXPECT_FALSE(whereis(sup, "once"));
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{0, 1, 0}));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, too_many_restarts_stop_every_child_last_first_and_name_the_child) {
  caf::scoped_actor self{*sys};
  auto spec = spec_of(ma::restart_strategy::one_for_one, {child("a"), child("w"), child("c")}, self);
  spec.intensity = {2, 10s};
  auto sup = ma::spawn_supervisor(*sys, spec);
  self->monitor(sup);
  for (std::uint64_t n = 1; n <= 2; ++n) {
    caf::anon_send(whereis(sup, "w"), boom_atom::value);
    EXPECT_EQ(next_restart(self), restart_of("w", n));
  }
  log->take();
  caf::anon_send(whereis(sup, "w"), boom_atom::value);  // the third within 10 s: one too many
  auto reason = down_reason(self, sup);
  EXPECT_EQ(ma::errc_of(reason), mproc::errc::too_many_restarts);
  EXPECT_EQ(ma::context_of(reason), "child \"w\" needed more than 2 restarts within 10000 ms");
  EXPECT_EQ(sys->render(reason),
            "mproc: too many restarts: child \"w\" needed more than 2 restarts within 10000 ms");
  EXPECT_EQ(log->take(), (events{"stop:c", "stop:a"}));  // stopped before the supervisor ended
  for (const char* name : {"a", "w", "c"}) EXPECT_FALSE(ma::lookup(*sys, name)) << name;
}

TEST_F(supervisor, restarts_older_than_the_window_do_not_count) {
  caf::scoped_actor self{*sys};
  auto spec = spec_of(ma::restart_strategy::one_for_one, {child("w")}, self);
  spec.intensity = {1, 30ms};
  auto sup = ma::spawn_supervisor(*sys, spec);
  for (std::uint64_t n = 1; n <= 3; ++n) {
    caf::anon_send(whereis(sup, "w"), fail_atom::value);
    EXPECT_EQ(next_restart(self), restart_of("w", n));
    std::this_thread::sleep_for(40ms);  // the last restart leaves the window
  }
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, an_intensity_of_zero_gives_up_at_the_first_crash) {
  caf::scoped_actor self{*sys};
  auto spec = spec_of(ma::restart_strategy::one_for_one, {child("w")}, self);
  spec.intensity = {0, 10s};
  auto sup = ma::spawn_supervisor(*sys, spec);
  self->monitor(sup);
  caf::anon_send(whereis(sup, "w"), fail_atom::value);
  EXPECT_EQ(ma::errc_of(down_reason(self, sup)), mproc::errc::too_many_restarts);
}

TEST_F(supervisor, a_failed_start_counts_as_a_crash) {
  caf::scoped_actor self{*sys};
  auto attempts = std::make_shared<int>(0);
  auto flaky = [attempts, log = log](caf::actor_system& s) -> caf::expected<caf::actor> {
    switch (++*attempts) {  // three ways to fail, then a success
      case 1: throw std::runtime_error("cannot start");
      case 2: return caf::actor{};
      case 3: return caf::make_error(caf::sec::runtime_error);
      default: return s.spawn(worker, std::string{"flaky"}, log, on_exit_msg::quit);
    }
  };
  auto sup = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_one, {child("a"), {"flaky", flaky}, child("c")}, self));
  EXPECT_EQ(next_restart(self), restart_of("flaky", 3));
  EXPECT_EQ(*attempts, 4);
  EXPECT_TRUE(whereis(sup, "flaky"));
  EXPECT_EQ(restart_counts(sup), (std::vector<std::uint64_t>{0, 3, 0}));
  EXPECT_EQ(log->take(), (events{"start:a", "start:c"}));  // one_for_one: the others start anyway
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, a_start_that_always_fails_exhausts_the_intensity) {
  caf::scoped_actor self{*sys};
  auto attempts = std::make_shared<int>(0);
  auto broken = [attempts](caf::actor_system&) -> caf::expected<caf::actor> {
    ++*attempts;
    return caf::make_error(caf::sec::runtime_error);
  };
  auto spec = spec_of(ma::restart_strategy::rest_for_one, {child("a"), {"broken", broken}, child("c")}, self);
  spec.intensity = {2, 10s};
  auto sup = ma::spawn_supervisor(*sys, spec);
  self->monitor(sup);
  auto reason = down_reason(self, sup);
  EXPECT_EQ(ma::errc_of(reason), mproc::errc::too_many_restarts);
  EXPECT_NE(ma::context_of(reason).find("\"broken\""), std::string::npos);
  EXPECT_EQ(*attempts, 3);  // the first start and two restarts
  EXPECT_EQ(log->take(), (events{"start:a", "stop:a"}));  // "c" never started: it comes after
}

TEST_F(supervisor, the_published_name_follows_restarts) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(*sys, spec_of(ma::restart_strategy::one_for_one, {child("svc")}, self));
  auto first = ma::lookup(*sys, "svc");  // published before spawn_supervisor returned
  EXPECT_TRUE(first);
  EXPECT_EQ(whereis(sup, "svc"), first);
  caf::anon_send(first, boom_atom::value);
  EXPECT_EQ(next_restart(self).first, "svc");  // sent after the new handle was published
  auto second = ma::lookup(*sys, "svc");
  EXPECT_TRUE(second);
  EXPECT_NE(second, first);
  EXPECT_EQ(second, whereis(sup, "svc"));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
  EXPECT_FALSE(ma::lookup(*sys, "svc"));
}

TEST_F(supervisor, names_of_ended_actors_are_forgotten_as_new_ones_come) {
  // The directory of a hand-made system is a process-wide map: it must not grow with every
  // restart or every system a long-running process makes.
  auto& d = ma::detail::local_directory::get();
  auto count = [&] {
    std::lock_guard lock{d.mutex};
    return d.names.size();
  };
  auto before = count();
  for (int i = 0; i < 20; ++i) {
    auto a = sys->spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](int) {}}; }, 0);
    ma::publish(*sys, "short-lived." + std::to_string(i), a);
    caf::scoped_actor self{*sys};
    self->monitor(a);
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
  }
  // A publish sweeps. (CAF may hold the last actor a moment after its down message: ask again.)
  EXPECT_TRUE(mt::eventually([&] {
    ma::publish(*sys, "last", caf::actor{});
    return count() <= before;
  })) << count() << " names left, " << before << " before";
}

TEST_F(supervisor, supervisors_nest) {
  caf::scoped_actor self{*sys};
  auto inner = spec_of(ma::restart_strategy::one_for_one, {child("leaf")}, self);
  inner.intensity = {1, 10s};
  auto start_inner = [inner](caf::actor_system& s) -> caf::expected<caf::actor> {
    return ma::spawn_supervisor(s, inner);
  };
  auto outer = ma::spawn_supervisor(
      *sys, spec_of(ma::restart_strategy::one_for_one, {{"inner", start_inner}, child("peer")}, self));
  auto first_inner = whereis(outer, "inner");
  caf::anon_send(whereis(first_inner, "leaf"), boom_atom::value);
  EXPECT_EQ(next_restart(self), restart_of("leaf", 1));
  log->take();

  caf::anon_send(whereis(first_inner, "leaf"), boom_atom::value);  // beyond the inner intensity
  EXPECT_EQ(next_restart(self), restart_of("inner", 1));
  auto second_inner = whereis(outer, "inner");
  EXPECT_NE(second_inner, first_inner);
  EXPECT_EQ(restart_counts(second_inner), (std::vector<std::uint64_t>{0}));  // a fresh supervisor
  EXPECT_EQ(log->take(), (events{"start:leaf"}));  // its leaf, started before it answered

  EXPECT_EQ(stop(outer), caf::exit_reason::user_shutdown);
  EXPECT_EQ(log->take(), (events{"stop:peer", "stop:leaf"}));  // last first, the tree depth first
}

TEST_F(supervisor, a_child_that_ignores_shutdown_is_killed_after_its_bound) {
  caf::scoped_actor self{*sys};
  auto stubborn_child = ma::child_spec{"stubborn", start_worker("stubborn", log, on_exit_msg::ignore)};
  auto spec = spec_of(ma::restart_strategy::one_for_one, {stubborn_child}, self);
  spec.children[0].shutdown = 20ms;
  auto sup = ma::spawn_supervisor(*sys, spec);
  auto stubborn = whereis(sup, "stubborn");
  self->monitor(stubborn);
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
  EXPECT_EQ(down_reason(self, stubborn), caf::exit_reason::kill);
  EXPECT_EQ(log->take(), (events{"start:stubborn", "ignored:stubborn"}));
}

TEST_F(supervisor, a_stop_during_a_group_restart_waits_for_the_children_being_stopped) {
  caf::scoped_actor self{*sys};
  auto spec = spec_of(ma::restart_strategy::one_for_all,
                      {{"slow", start_worker("slow", log, on_exit_msg::quit_later)}, child("w")}, self);
  auto sup = ma::spawn_supervisor(*sys, spec);
  caf::anon_send(whereis(sup, "w"), fail_atom::value);  // the group restart now waits for "slow"
  EXPECT_TRUE(mt::eventually([&] { return log->peek().size() == 3; }));
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
  // "slow" logged its stop before it ended; the supervisor ended after it, and restarted nothing.
  EXPECT_EQ(log->take(), (events{"start:slow", "start:w", "stopping:slow", "stop:slow"}));
}

TEST_F(supervisor, a_killed_supervisor_still_stops_its_children) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(*sys, spec_of(ma::restart_strategy::one_for_one, {child("a"), child("b")}, self));
  auto a = whereis(sup, "a"), b = whereis(sup, "b");
  self->monitor(a);
  self->monitor(b);
  caf::anon_send_exit(sup, caf::exit_reason::kill);
  EXPECT_EQ(down_reason(self, b), caf::exit_reason::user_shutdown);
  EXPECT_EQ(down_reason(self, a), caf::exit_reason::user_shutdown);
  EXPECT_EQ(log->take(), (events{"start:a", "start:b", "stop:b", "stop:a"}));
}

TEST_F(supervisor, an_unknown_child_name_is_a_typed_error) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(*sys, spec_of(ma::restart_strategy::one_for_one, {child("a")}, self));
  std::optional<mproc::errc> code;
  self->request(sup, patience, ma::whereis_atom::value, std::string{"nobody"})
      .receive([](const caf::actor&) { ADD_FAILURE() << "a handle for an unknown name"; },
               [&](const caf::error& e) { code = ma::errc_of(e); });
  EXPECT_EQ(code, mproc::errc::invalid_argument);
  EXPECT_EQ(stop(sup), caf::exit_reason::user_shutdown);
}

TEST_F(supervisor, a_spec_that_cannot_work_is_refused) {
  auto bad = [this](const std::string& problem, auto&& change) {
    ma::supervisor_spec spec;
    spec.children = {child("a"), child("b")};
    change(spec);
    std::error_code ec;
    EXPECT_FALSE(ma::spawn_supervisor(*sys, spec, ec));
    EXPECT_EQ(ec, mproc::errc::invalid_argument);
    try {
      (void)ma::spawn_supervisor(*sys, spec);
      ADD_FAILURE() << "no throw";
    } catch (const mproc::error& e) {
      EXPECT_EQ(e.code(), mproc::errc::invalid_argument);
      EXPECT_NE(std::string{e.what()}.find(problem), std::string::npos) << e.what();
    }
  };
  bad("two children named \"a\"", [](ma::supervisor_spec& s) { s.children[1].name = "a"; });
  bad("a child without a name", [](ma::supervisor_spec& s) { s.children[0].name.clear(); });
  bad("child \"a\" has no start function", [](ma::supervisor_spec& s) { s.children[0].start = nullptr; });
  bad("child \"b\" has a shutdown bound", [](ma::supervisor_spec& s) { s.children[1].shutdown = 0ms; });
  bad("a negative max_restarts", [](ma::supervisor_spec& s) { s.intensity.max_restarts = -1; });
  bad("intensity window", [](ma::supervisor_spec& s) { s.intensity.within = 0ms; });
  EXPECT_TRUE(log->take().empty());  // nothing was started
}


// The path another process takes: the actor factory, with serializable arguments only.
TEST_F(supervisor, spawns_by_name_from_a_registered_spec_builder) {
  caf::scoped_actor self{*sys};
  ma::publish(*sys, "watcher", caf::actor_cast<caf::actor>(self));
  auto sup = sys->spawn<caf::actor>(ma::supervisor_type, caf::make_message(std::string{"named_tree"}));
  ASSERT_TRUE(sup) << sys->render(sup.error());
  caf::anon_send(whereis(*sup, "named.w"), boom_atom::value);
  EXPECT_EQ(next_restart(self), restart_of("named.w", 1));
  EXPECT_EQ(stop(*sup), caf::exit_reason::user_shutdown);

  for (auto args : {caf::make_message(std::string{"no_such_tree"}), caf::make_message(42)}) {
    auto none = sys->spawn<caf::actor>(ma::supervisor_type, args);
    EXPECT_EQ(none.error(), caf::sec::cannot_spawn_actor_from_arguments);
  }
}


// As any CAF actor, a supervisor that nobody can reach any more ends; it stops its children then.
TEST_F(supervisor, ends_with_its_last_handle_and_stops_its_children) {
  caf::scoped_actor self{*sys};
  auto sup = ma::spawn_supervisor(*sys, spec_of(ma::restart_strategy::one_for_one, {child("a"), child("b")}, self));
  auto a = ma::lookup(*sys, "a"), b = ma::lookup(*sys, "b");
  self->monitor(a);
  self->monitor(b);
  sup = nullptr;  // the observer's messages would carry a reference, but there were none
  EXPECT_EQ(down_reason(self, b), caf::exit_reason::user_shutdown);
  EXPECT_EQ(down_reason(self, a), caf::exit_reason::user_shutdown);
  EXPECT_EQ(log->take(), (events{"start:a", "start:b", "stop:b", "stop:a"}));
}

}  // namespace
