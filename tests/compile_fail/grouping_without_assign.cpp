// Must not compile: the grouping policy cannot assign workers.
// expect: hsgd GroupingPolicy: missing `void assign(
#include <hsgd/hsgd.hpp>

struct NoAssign {
  bool regroups_at_global_aggregation() const { return false; }
};

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, hsgd::FullBatchSampler(), hsgd::Options{}, hsgd::Sgd{},
                      hsgd::ConstantRate{}, NoAssign{});
  engine.step();
}
