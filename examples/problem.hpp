#pragma once
// What the science examples share: a non-IID classification problem made from flags (data,
// partition, objective), the group-IID and group-non-IID layouts of its workers, and a recorder
// that keeps a run's probe records in memory while writing them to the CSV file.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"

namespace example {

/// The run's flags every science example takes; each example passes its own defaults.
struct RunFlags {
  hsgd::Index workers = 32;
  hsgd::Index groups = 4;
  hsgd::Index local_period = 4;
  hsgd::Index global_period = 32;
  hsgd::Index steps = 1024;
  hsgd::Index batch = 16;
  hsgd::Index seeds = 3;
  hsgd::Index probe_every = 32;
  double learning_rate = 0.05;
  std::string csv;

  static RunFlags read(Flags& flags, const RunFlags& defaults) {
    RunFlags r;
    r.workers = flags.integer("workers", defaults.workers, "n, number of workers");
    r.groups = flags.integer("groups", defaults.groups, "N, number of local servers (level-1 units)");
    r.local_period = flags.integer("local-period", defaults.local_period, "I, local (level-1) aggregation period");
    r.global_period = flags.integer("global-period", defaults.global_period, "G, global aggregation period");
    r.learning_rate = flags.real("lr", defaults.learning_rate, "gamma, learning rate");
    r.steps = flags.integer("steps", defaults.steps, "T, local steps per worker");
    r.batch = flags.integer("batch", defaults.batch, "minibatch size (uniform, with replacement)");
    r.seeds = flags.integer("seeds", defaults.seeds, "seeds 1..k: data, partition, grouping and sampling");
    r.probe_every = flags.integer("probe-every", defaults.probe_every, "steps between gradient-space probe measurements");
    r.csv = flags.text("csv", defaults.csv, "write every probe record to this CSV file (tag columns first, then step,...)");
    return r;
  }

  /// The engine's options for one seed's run.
  [[nodiscard]] hsgd::Options options(std::uint64_t seed, hsgd::Index threads = 1) const {
    hsgd::Options options;
    options.learning_rate = learning_rate;
    options.steps = steps;
    options.seed = seed;
    options.threads = threads;
    return options;
  }
};

/// n_1..n_N, the sizes of the topology's level-1 units.
inline std::vector<hsgd::Index> group_sizes(const hsgd::Topology& topology) {
  std::vector<hsgd::Index> sizes;
  for (hsgd::Index g = 0; g < topology.units(1); ++g) sizes.push_back(topology.unit_size(1, g));
  return sizes;
}

/// The problem's flags, with defaults that make a small, clearly non-IID problem.
struct ProblemFlags {
  std::string objective;   // softmax | tanh
  std::string partition;   // shards | dirichlet | two-level | iid
  hsgd::Index classes = 4;
  hsgd::Index dimension = 20;
  hsgd::Index samples_per_worker = 128;
  hsgd::Index hidden = 16;
  double separation = 2.0;
  double alpha = 0.1;
  double alpha_group = 0.1;
  double alpha_worker = 100.0;
  hsgd::Index shards_per_worker = 1;

  static ProblemFlags read(Flags& flags) {
    ProblemFlags p;
    p.objective = flags.text("objective", "softmax", "softmax (softmax regression) or tanh (two-layer tanh network)");
    p.partition = flags.text("partition", "shards",
                             "shards (label-sorted, the paper's), dirichlet, two-level (Dirichlet across and inside groups) or iid");
    p.classes = flags.integer("classes", 4, "C, classes of the Gaussian mixture");
    p.dimension = flags.integer("dimension", 20, "d, input dimension");
    p.samples_per_worker = flags.integer("samples", 128, "m, samples per worker (on average)");
    p.hidden = flags.integer("hidden", 16, "hidden units of the tanh network");
    p.separation = flags.real("separation", 2.0, "distance scale of the class means (noise 1)");
    p.shards_per_worker = flags.integer("shards-per-worker", 1, "label shards per worker (partition shards; 1: one label each)");
    p.alpha = flags.real("alpha", 0.1, "Dirichlet concentration (partition dirichlet)");
    p.alpha_group = flags.real("alpha-group", 0.1, "how alike the groups' label mixes are (partition two-level)");
    p.alpha_worker = flags.real("alpha-worker", 100.0, "how alike a group's workers are (partition two-level)");
    return p;
  }
};

/// One seed's data split over the workers, before an objective is chosen.
struct SplitData {
  hsgd::Dataset<double> data;
  hsgd::Partition partition;
};

inline SplitData make_split(const ProblemFlags& p, const std::vector<hsgd::Index>& group_sizes, hsgd::Index workers,
                            std::uint64_t seed) {
  hsgd::GaussianMixtureOptions mixture;
  mixture.classes = p.classes;
  mixture.dimension = p.dimension;
  mixture.samples = workers * p.samples_per_worker;
  mixture.separation = p.separation;
  mixture.seed = seed;
  SplitData split{hsgd::make_gaussian_mixture<double>(mixture), {}};
  const auto& labels = split.data.labels;
  if (p.partition == "shards") {
    split.partition = hsgd::partition_shards(labels, p.classes,
                                             {.workers = workers, .shards_per_worker = p.shards_per_worker, .seed = seed});
  } else if (p.partition == "dirichlet") {
    split.partition = hsgd::partition_dirichlet(labels, p.classes,
                                                {.workers = workers, .alpha = p.alpha, .min_size = 8, .seed = seed});
  } else if (p.partition == "two-level") {
    hsgd::TwoLevelDirichletOptions options;
    options.group_sizes = group_sizes;
    options.alpha_group = p.alpha_group;
    options.alpha_worker = p.alpha_worker;
    options.min_size = 8;
    options.seed = seed;
    split.partition = hsgd::partition_two_level_dirichlet(labels, p.classes, options);
  } else if (p.partition == "iid") {
    split.partition = hsgd::partition_iid(labels, p.classes, {.workers = workers, .seed = seed});
  } else {
    throw std::invalid_argument(fmt::format("'--partition' ({}) must be shards, dirichlet, two-level or iid", p.partition));
  }
  return split;
}

/// Calls `body(shards, initial_model)` with the shards of the chosen objective (their type
/// differs, hence the callback).
template <class Body>
void with_objective(const ProblemFlags& p, const SplitData& split, std::uint64_t seed, Body&& body) {
  if (p.objective == "softmax") {
    auto shards = hsgd::make_softmax_shards(split.data, split.partition);
    const hsgd::Vector<double> start = hsgd::Vector<double>::Zero(shards.front().dimension());
    body(shards, start);
  } else if (p.objective == "tanh") {
    auto shards = hsgd::make_tanh_network_shards(split.data, split.partition, p.hidden);
    hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::initial_model, 0);
    const hsgd::Vector<double> start = shards.front().initial_model(rng);
    body(shards, start);
  } else {
    throw std::invalid_argument(fmt::format("'--objective' ({}) must be softmax or tanh", p.objective));
  }
}

/// Keeps a run's records in memory and, when a CSV file is open, writes them there too.
struct RunRecorder {
  hsgd::CsvRecorder* csv = nullptr;
  hsgd::MemoryRecorder memory;

  void record(const hsgd::ProbeRecord& row) {
    if (csv != nullptr) csv->record(row);
    memory.record(row);
  }
};

}  // namespace example
