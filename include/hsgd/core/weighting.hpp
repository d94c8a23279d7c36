#pragma once
/// @file
/// How workers are weighted in an average: a vocabulary type of its own, so that the data
/// statistics (statistics.hpp, layout.hpp) and the run options can name it without pulling in
/// the aggregation code.

namespace hsgd {

/// How workers are weighted in every average.
enum class Weighting {
  uniform,    ///< every worker counts once: 1/n_i inside a group, n_i/n across groups (the paper's objective)
  data_size,  ///< worker j counts m_j, its sample count (FedAvg; the paper's own code)
};

}  // namespace hsgd
