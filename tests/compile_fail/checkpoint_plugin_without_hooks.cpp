// Must not compile: the sampler keeps a position of its own but has no checkpoint hooks, so a
// checkpoint of the run would silently lose it.
// expect: hsgd checkpoint: this plug-in has data members but no checkpoint hooks
#include <hsgd/hsgd.hpp>

struct CountingSampler {
  hsgd::Index position = 0;
  hsgd::Index batch = 0;
  void bind(hsgd::Index) {}
  std::span<const hsgd::Index> next(hsgd::Rng&) {
    batch = position++;
    return {&batch, 1};
  }
};

int main() {
  std::vector<hsgd::Quadratic<double>> shards(2, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), shards, CountingSampler{}, hsgd::Options{});
  hsgd::save_checkpoint("run.ckpt", {}, engine);
}
