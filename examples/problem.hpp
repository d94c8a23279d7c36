#pragma once
// What the science examples share: a non-IID classification problem made from flags (data,
// partition, objective), the sizes of its groups, and a study's results gathered over seeds.

#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "cli.hpp"

namespace example {

/// The run's flags every science example takes; each example passes its own defaults.
struct RunFlags {
  hsgd::Index workers = 32, groups = 4, local_period = 4, global_period = 32;
  double learning_rate = 0.05;
  hsgd::Index steps = 1024, batch = 16, seeds = 3, probe_every = 32;
  std::string csv{};

  static RunFlags read(Flags& flags, const RunFlags& d) {
    return {.workers = flags.integer("workers", d.workers, "n, number of workers"),
            .groups = flags.integer("groups", d.groups, "N, number of local servers (level-1 units)"),
            .local_period = flags.integer("local-period", d.local_period, "I, local (level-1) aggregation period"),
            .global_period = flags.integer("global-period", d.global_period, "G, global aggregation period"),
            .learning_rate = flags.real("lr", d.learning_rate, "gamma, learning rate"),
            .steps = flags.integer("steps", d.steps, "T, local steps per worker"),
            .batch = flags.integer("batch", d.batch, "minibatch size (uniform, with replacement)"),
            .seeds = flags.integer("seeds", d.seeds, "seeds 1..k: data, partition, grouping and sampling"),
            .probe_every = flags.integer("probe-every", d.probe_every, "steps between gradient-space probe measurements"),
            .csv = flags.text("csv", d.csv, "write every probe record to this CSV file (tag columns first, then step,...)")};
  }

  /// The engine's options for one seed's run.
  [[nodiscard]] hsgd::Options options(std::uint64_t seed, hsgd::Index threads = 1) const {
    return {.learning_rate = learning_rate, .steps = steps, .seed = seed, .threads = threads};
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
  hsgd::Index classes, dimension, samples_per_worker, hidden, shards_per_worker;
  double separation, alpha, alpha_group, alpha_worker;

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
  SplitData split{hsgd::make_gaussian_mixture<double>({.classes = p.classes, .dimension = p.dimension,
                                                       .samples = workers * p.samples_per_worker,
                                                       .separation = p.separation, .proportions = {}, .seed = seed}),
                  {}};
  const auto& labels = split.data.labels;
  if (p.partition == "shards") {
    split.partition = hsgd::partition_shards(labels, p.classes,
                                             {.workers = workers, .shards_per_worker = p.shards_per_worker, .seed = seed});
  } else if (p.partition == "dirichlet") {
    split.partition = hsgd::partition_dirichlet(labels, p.classes,
                                                {.workers = workers, .alpha = p.alpha, .min_size = 8, .seed = seed});
  } else if (p.partition == "two-level") {
    split.partition = hsgd::partition_two_level_dirichlet(
        labels, p.classes,
        {.group_sizes = group_sizes, .alpha_group = p.alpha_group, .alpha_worker = p.alpha_worker, .min_size = 8, .seed = seed});
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

/// A run's results: the time averages of ||grad f(xbar_t)||^2, D_up, D_down, the messages, then `more`.
inline std::vector<double> probe_results(const std::vector<hsgd::ProbeRecord>& rows, std::initializer_list<double> more = {}) {
  std::vector<double> results{hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared),
                              hsgd::time_average(rows, &hsgd::ProbeRecord::d_up), hsgd::time_average(rows, &hsgd::ProbeRecord::d_down),
                              rows.empty() ? 0.0 : static_cast<double>(rows.back().messages)};
  results.insert(results.end(), more);
  return results;
}

/// Result `field` of scheme `scheme` in every seed, from a study that ran `schemes` schemes per seed.
inline std::vector<double> over_seeds(const hsgd::Study& study, std::size_t schemes, std::size_t scheme, std::size_t field) {
  std::vector<double> values;
  for (std::size_t run = scheme; run < study.results().size(); run += schemes) values.push_back(study.results()[run].at(field));
  return values;
}
/// Their sum, in seed order.
inline double sum_over_seeds(const hsgd::Study& study, std::size_t schemes, std::size_t scheme, std::size_t field) {
  const auto values = over_seeds(study, schemes, scheme, field);
  return std::accumulate(values.begin(), values.end(), 0.0);
}

}  // namespace example
