// A producer/consumer service of actors in three processes (issue 4's example): a bounded store
// in one host process, a producer in a second, a consumer in a third. The store answers a put
// only when it has room and a take only when it has an item, so the producer is throttled by the
// consumer (backpressure through response promises), across processes, with no polling.
#include <unistd.h>

#include <caf/all.hpp>
#include <deque>
#include <iostream>
#include <mproc/actor_host.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/node.hpp>
#include <set>

using put_atom = caf::atom_constant<caf::atom("put")>;
using take_atom = caf::atom_constant<caf::atom("take")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using pid_atom = caf::atom_constant<caf::atom("pid")>;

struct store_state {
  std::deque<int> items;
  std::deque<std::pair<int, caf::response_promise>> waiting_puts;  // full: the put waits
  std::deque<caf::typed_response_promise<int>> waiting_takes;      // empty: the take waits
};

caf::behavior store_impl(caf::stateful_actor<store_state>* self, int capacity) {
  return {
      [self, capacity](put_atom, int item) -> caf::result<void> {
        auto& s = self->state;
        if (!s.waiting_takes.empty()) {  // a consumer waits: hand it over
          s.waiting_takes.front().deliver(item);
          s.waiting_takes.pop_front();
          return caf::unit;
        }
        if (static_cast<int>(s.items.size()) < capacity) {
          s.items.push_back(item);
          return caf::unit;
        }
        auto rp = self->make_response_promise();
        s.waiting_puts.emplace_back(item, rp);
        return rp;
      },
      [self](take_atom) -> caf::result<int> {
        auto& s = self->state;
        if (s.items.empty()) {
          auto rp = self->make_response_promise<int>();
          s.waiting_takes.push_back(rp);
          return rp;
        }
        int item = s.items.front();
        s.items.pop_front();
        if (!s.waiting_puts.empty()) {  // room again: the oldest waiting put goes in
          auto [waiting, rp] = std::move(s.waiting_puts.front());
          s.waiting_puts.pop_front();
          s.items.push_back(waiting);
          rp.deliver(caf::unit);
        }
        return item;
      },
      [](pid_atom) { return static_cast<int>(::getpid()); },
  };
}
MPROC_ACTOR(store_impl);

/// Puts 0..count-1, one at a time: each put waits for the store's answer.
caf::behavior producer_impl(caf::event_based_actor* self, caf::actor store, int count) {
  auto next = std::make_shared<std::function<void(int)>>();
  *next = [self, store, count, next](int i) {
    if (i == count) return;
    self->request(store, caf::infinite, put_atom::value, i).then([next, i] { (*next)(i + 1); });
  };
  return {
      [next](start_atom) { (*next)(0); },
      [](pid_atom) { return static_cast<int>(::getpid()); },
  };
}
MPROC_ACTOR(producer_impl);

/// Takes `count` items and answers the start request with their sum.
caf::behavior consumer_impl(caf::event_based_actor* self, caf::actor store, int count) {
  return {
      [self, store, count](start_atom) -> caf::result<std::int64_t> {
        auto rp = self->make_response_promise<std::int64_t>();
        auto sum = std::make_shared<std::int64_t>(0);
        auto next = std::make_shared<std::function<void(int)>>();
        *next = [self, store, count, sum, rp, next](int taken) mutable {
          if (taken == count) return rp.deliver(*sum), void();
          self->request(store, caf::infinite, take_atom::value).then([sum, next, taken](int item) {
            *sum += item;
            (*next)(taken + 1);
          });
        };
        (*next)(0);
        return rp;
      },
      [](pid_atom) { return static_cast<int>(::getpid()); },
  };
}
MPROC_ACTOR(consumer_impl);

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  mproc::node node{argc, argv};
  constexpr int items = 1000;
  auto store_host = mproc::spawn_host(node);
  auto producer_host = mproc::spawn_host(node);
  auto consumer_host = mproc::spawn_host(node);
  auto store = store_host.spawn("store_impl", 10);  // room for 10: the producer waits for the consumer
  auto producer = producer_host.spawn("producer_impl", store, items);
  auto consumer = consumer_host.spawn("consumer_impl", store, items);

  std::set<int> pids;
  for (auto& a : {store, producer, consumer}) pids.insert(mproc::request<int>(a, 5s, pid_atom::value));
  std::cout << "actors in three processes: " << (pids.size() == 3 && !pids.count(::getpid()) ? "yes" : "no") << '\n';

  caf::anon_send(producer, start_atom::value);
  auto sum = mproc::request<std::int64_t>(consumer, 30s, start_atom::value);
  std::cout << "consumed " << items << " items, sum " << sum << '\n';
}
