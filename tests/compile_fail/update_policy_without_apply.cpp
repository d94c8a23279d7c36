// Must not compile: the update policy has no apply.
// expect: hsgd UpdatePolicy: missing `void apply(
#include <hsgd/hsgd.hpp>

struct NoApply {
  static constexpr bool has_state = false;
  hsgd::StateAtAggregation state_at_aggregation() const { return hsgd::StateAtAggregation::keep; }
  void validate() const {}
};

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), hsgd::Options{}, NoApply{});
  engine.step();
}
