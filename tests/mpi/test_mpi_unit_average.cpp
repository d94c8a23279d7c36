// Under mpirun: every unit's average computed over MPI, its members spread over the ranks, is the
// same bits as the in-process Server's, at any rank count, for random unequal groups, uniform and
// data-size weights, double and float, and with more ranks than workers. Exits non-zero on any
// difference (every rank runs the same checks; rank 0 reports).

#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>
#include <hsgd/mpi/mpi.hpp>

namespace {

using hsgd::Index;

struct Case {
  std::vector<Index> unit_sizes;
  Index dimension;
  bool data_size_weights;
  std::uint64_t seed;
};

/// Checks every unit of one grouping; returns the number of units whose bits differ.
template <class Scalar>
int check_case(const Case& c, int& unit_id) {
  const Index n = std::accumulate(c.unit_sizes.begin(), c.unit_sizes.end(), Index{0});
  hsgd::Rng rng = hsgd::make_stream(c.seed, hsgd::StreamKind::user, 0);
  hsgd::Matrix<Scalar> models(c.dimension, n);
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < c.dimension; ++i) models(i, j) = static_cast<Scalar>(rng.normal() * 10.0);
  std::vector<Scalar> weights(static_cast<std::size_t>(n), Scalar(1));
  if (c.data_size_weights)
    for (auto& w : weights) w = static_cast<Scalar>(1 + rng.below(500));
  std::vector<Index> slots(static_cast<std::size_t>(n));
  std::iota(slots.begin(), slots.end(), Index{0});
  rng.shuffle(std::span<Index>(slots));  // random grouping: members interleave over the ranks

  int ranks = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const hsgd::mpi::BlockLayout layout(n, ranks);
  int failures = 0;
  Index offset = 0;
  for (const Index size : c.unit_sizes) {
    const std::span<const Index> members(slots.data() + offset, static_cast<std::size_t>(size));
    offset += size;
    hsgd::Server<Scalar> server(1, 0, c.dimension);
    server.set_members(members, weights);
    hsgd::Matrix<Scalar> reference = models;
    server.aggregate(reference);

    std::vector<Scalar> member_weights;
    for (const Index j : members) member_weights.push_back(weights[static_cast<std::size_t>(j)]);
    hsgd::mpi::UnitAverager<Scalar> averager(MPI_COMM_WORLD, layout, unit_id++, members, member_weights, c.dimension);
    if (!averager.hosts_members()) continue;
    hsgd::Vector<Scalar> out(c.dimension);
    averager.average([&](Index j) { return models.col(j); }, out);
    if (std::memcmp(out.data(), server.model().data(), static_cast<std::size_t>(c.dimension) * sizeof(Scalar)) != 0) {
      ++failures;
      fmt::print(stderr, "unit of {} members over {} ranks: bits differ from the Server's (max |diff| {})\n", size,
                 averager.ranks(), static_cast<double>((out - server.model()).cwiseAbs().maxCoeff()));
    }
  }
  return failures;
}

int check_layout(Index workers, int ranks) {
  const hsgd::mpi::BlockLayout layout(workers, ranks);
  Index next = 0;
  int failures = 0;
  for (int r = 0; r < ranks; ++r) {
    if (layout.first(r) != next) ++failures;
    for (Index j = layout.first(r); j < layout.first(r) + layout.count(r); ++j) failures += layout.owner(j) != r;
    next += layout.count(r);
    if (layout.count(r) < workers / ranks || layout.count(r) > workers / ranks + 1) ++failures;
  }
  return failures + (next != workers);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int ranks = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  int failures = 0;
  try {
    for (const Index workers : {1, 5, 10, 64, 67}) failures += check_layout(workers, ranks);
    int unit_id = 0;
    const std::vector<Case> cases{
        {{3, 5, 8}, 7, false, 1},            // unequal groups
        {{4, 4, 4, 4}, 33, true, 2},         // data-size weights
        {{16}, 5, true, 3},                  // one global unit
        {{1, 2, 3}, 4, false, 4},            // fewer workers than some rank counts
        {{9, 1, 6, 8, 8}, 129, true, 5},     // d not a multiple of the vector width
    };
    for (const auto& c : cases) {
      failures += check_case<double>(c, unit_id);
      failures += check_case<float>(c, unit_id);
    }
  } catch (const std::exception& error) {
    fmt::print(stderr, "rank {}: {}\n", rank, error.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    fmt::print("{} ranks: {}\n", ranks, total == 0 ? "every unit average has the Server's bits" : fmt::format("{} failures", total));
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
