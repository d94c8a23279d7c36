// Must not compile: an argument after the options that is no plug-in of the Engine.
// expect: hsgd Engine: every argument after the options must be this Engine's update policy, learning-rate schedule, grouping policy, backend or clock
#include <hsgd/hsgd.hpp>

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), hsgd::Options{}, 42);
  engine.step();
}
