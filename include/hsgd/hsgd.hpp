#pragma once
/// @file
/// hsgd: hierarchical SGD (local SGD on a multi-level network) for research code.
/// The one header a user includes.

#include "hsgd/version.hpp"

#include "hsgd/core/error.hpp"
#include "hsgd/core/format.hpp"
#include "hsgd/core/prefetch.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/checkpoint/checkpoint.hpp"
#include "hsgd/checkpoint/file.hpp"
#include "hsgd/checkpoint/format.hpp"

#include "hsgd/data/dataset.hpp"
#include "hsgd/data/distributions.hpp"
#include "hsgd/data/generators.hpp"
#include "hsgd/data/layout.hpp"
#include "hsgd/data/partition.hpp"
#include "hsgd/data/preprocess.hpp"
#include "hsgd/data/readers.hpp"
#include "hsgd/data/statistics.hpp"

#include "hsgd/objective/classifier.hpp"
#include "hsgd/objective/concepts.hpp"
#include "hsgd/objective/logistic.hpp"
#include "hsgd/objective/quadratic.hpp"
#include "hsgd/objective/rosenbrock.hpp"
#include "hsgd/objective/softmax.hpp"
#include "hsgd/objective/tanh_network.hpp"

#include "hsgd/sampler/samplers.hpp"

#include "hsgd/optimizer/learning_rate.hpp"
#include "hsgd/optimizer/update.hpp"

#include "hsgd/topology/assignment.hpp"
#include "hsgd/topology/grouping.hpp"
#include "hsgd/topology/schedule.hpp"
#include "hsgd/topology/topology.hpp"

#include "hsgd/aggregation/server.hpp"
#include "hsgd/aggregation/servers.hpp"
#include "hsgd/probe/csv.hpp"
#include "hsgd/probe/decomposition.hpp"
#include "hsgd/probe/probe.hpp"
#include "hsgd/probe/record.hpp"
#include "hsgd/round/round.hpp"
#include "hsgd/worker/worker.hpp"

#include "hsgd/run/backend.hpp"
#include "hsgd/run/checks.hpp"
#include "hsgd/run/engine.hpp"
#include "hsgd/run/observer.hpp"
#include "hsgd/run/options.hpp"
#include "hsgd/run/plugins.hpp"
#include "hsgd/run/progress.hpp"
#include "hsgd/run/state.hpp"
#include "hsgd/run/summary.hpp"
#include "hsgd/run/thread_pool.hpp"
#include "hsgd/time/clock.hpp"

#include "hsgd/study/study.hpp"

#include "hsgd/theory/bound.hpp"
#include "hsgd/theory/closed_forms.hpp"
#include "hsgd/theory/estimates.hpp"
#include "hsgd/theory/sandwich.hpp"
