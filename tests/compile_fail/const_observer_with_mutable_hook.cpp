// Must not compile: a const observer whose hook is not const would never be called.
// expect: a const observer needs const hooks
#include <hsgd/hsgd.hpp>

struct Counter {
  int calls = 0;
  template <class Run>
  void after_step(const Run&) { ++calls; }
};

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), hsgd::Options{});
  const Counter counter;
  engine.run(counter);
}
