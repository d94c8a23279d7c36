#pragma once
/// @file
/// The Engine's argument checks and its failure record: plain functions, written once for every
/// Engine type.

#include <cmath>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd::detail {

inline void check_index(Index value, Index count, const char* name) {
  require(value >= 0 && value < count, "'{}' ({}) must be in [0, {})", name, value, count);
}

inline void check_level(Index level, Index levels) {
  require(level >= 1 && level <= levels, "'level' ({}) must be in [1, {}]", level, levels);
}

inline void check_size(Index size, Index dimension, const char* name) {
  require(size == dimension, "'{}' has {} coordinates but the model has {}", name, size, dimension);
}

template <class Scalar>
void check_model(ConstVectorRef<Scalar> x, Index dimension, const char* name) {
  check_size(x.size(), dimension, name);
  for (Index i = 0; i < x.size(); ++i)
    require(std::isfinite(x(i)), "'{}' must be finite, but coordinate {} is {}", name, i, x(i));
}

inline Topology nonempty(Topology topology) {
  require(topology.levels() >= 1 && topology.workers() >= 1,
          "'topology' has {} workers and {} levels: it is empty (was it moved from?)", topology.workers(),
          topology.levels());
  return topology;
}

/// gamma_t in the model's scalar type, checked there: a rate that is fine as a double can round
/// to 0 or overflow to inf as a float.
template <class Scalar>
Scalar rate_in(double rate, Index step) {
  const auto converted = static_cast<Scalar>(rate);
  if (std::isfinite(converted) && converted > 0) [[likely]]
    return converted;
  if (!(std::isfinite(rate) && rate > 0) || std::is_same_v<Scalar, double>)
    fail("the learning rate at step {} ({}) must be finite and positive", step, rate);
  fail("the learning rate at step {} ({}) must be finite and positive in the model's scalar type, where it is {}",
       step, rate, converted);
}

template <class Scalar>
void check_base_rate(double rate) {
  const auto converted = static_cast<Scalar>(rate);
  require(std::isfinite(converted) && converted > 0,
          "'learning_rate' ({}) must be finite and positive in the model's scalar type, where it is {}", rate, converted);
}

/// The models' dimension and every worker's sample count (in `samples`), read off the shards hosted
/// here (`shards`, worker first_worker() + k on shard k), gathered from the processes that hold
/// the others, and checked the same way in every process: one dimension, and samples in each shard.
template <class Backend, class Objective>
Index shard_shape(const Backend& backend, std::span<const Objective> shards, Index workers, std::vector<Index>& samples) {
  std::vector<Index> dimensions(static_cast<std::size_t>(workers), 0);
  samples.assign(static_cast<std::size_t>(workers), 0);
  for (std::size_t k = 0; k < shards.size(); ++k) {
    dimensions[static_cast<std::size_t>(backend.first_worker()) + k] = shards[k].dimension();
    samples[static_cast<std::size_t>(backend.first_worker()) + k] = shards[k].sample_count();
  }
  backend.gather_values(dimensions.data());
  backend.gather_values(samples.data());
  const Index dimension = dimensions.front();
  require(dimension > 0, "shard 0 has dimension {}: the model needs at least one coordinate", dimension);
  for (std::size_t j = 0; j < dimensions.size(); ++j) {
    require(dimensions[j] == dimension, "shard {} has dimension {} but shard 0 has dimension {}", j, dimensions[j],
            dimension);
    require(samples[j] > 0, "shard {} has no samples", j);
  }
  return dimension;
}

/// Why an Engine cannot step any more: empty while it can. A step that throws after it has
/// started changing models leaves the engine failed, with the step and the error.
class Failure {
 public:
  /// Runs `body`; if it throws, records the failure at the step `step_now()` says and rethrows.
  template <class StepNow, class Body>
  void guard(StepNow&& step_now, Body&& body) {
    try {
      body();
    } catch (const std::exception& error) {
      record(step_now(), error.what());
      throw;
    } catch (...) {
      record(step_now(), "an exception of unknown type");
      throw;
    }
  }
  void require_none() const {
    if (!what_.empty()) [[unlikely]]
      throw InvalidState(fmt::format("hsgd::Engine: {}; it cannot step again (make a new Engine)", what_));
  }
  [[nodiscard]] const std::string& what() const { return what_; }
  void clear() { what_.clear(); }

 private:
  void record(Index step, const char* what) noexcept {
    try {
      what_ = fmt::format("failed at step {}: {}", step, what);
    } catch (...) {
      what_ = "failed";  // short enough for the small-string buffer: cannot throw
    }
  }

  std::string what_;
};

inline void require_live(bool live) {
  if (!live) [[unlikely]]
    throw InvalidState("hsgd::Engine: this engine was moved from; use the engine it was moved to");
}

}  // namespace hsgd::detail
