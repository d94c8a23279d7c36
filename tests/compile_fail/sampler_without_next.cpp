// Must not compile: the sampler cannot draw.
// expect: hsgd Sampler: missing `std::span<const hsgd::Index> next(hsgd::Rng& rng)`
#include <hsgd/hsgd.hpp>

struct CannotDraw {
  void bind(hsgd::Index) {}
};

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, CannotDraw{}, hsgd::Options{});
  engine.step();
}
