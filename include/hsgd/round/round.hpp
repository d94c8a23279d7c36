#pragma once
/// @file
/// Who takes part in a round: partial participation draws, a simulated clock's deadlines, and
/// the count of participants that the probes see.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// The one owner of who takes part in each round of a run.
///
/// - **Partial participation** (Options::participation = p < 1): before each local round every
///   level-1 server's unit draws k = max(1, floor(p n_i)) of its n_i members, uniformly without
///   replacement, from its own stream (seed, StreamKind::server, s), s the server's number (level
///   by level, level 1 first). Only they step, the round's average is theirs (same weights,
///   renormalised), and it is sent back to every member, so a worker that sat the round out starts
///   the next one from its group's model. A round above level 1 first closes at level 1 (the
///   groups average their participants), so the higher level averages the groups' models.
/// - **Deadlines** (a SimulatedClock with ClockOptions::deadlines): before a level-l round the
///   clock says which members are ready; the others are left out of its average, and receive it.
///   Not combined with partial participation (the Engine refuses the pair).
/// - Otherwise every member takes part.
///
/// The participants of the current round are kept by each Server (`participants()`); the Round
/// decides them. `last_participants()` counts the workers that took part in the round the last
/// aggregation closed: what a probe counts as messages sent up. Allocates nothing per round.
class Round {
 public:
  /// Sizes the round for `topology`, with participation `fraction` in (0, 1] and the units'
  /// streams derived from `seed`; `deadlines`: whether the run's clock has any.
  void attach(const Topology& topology, double fraction, std::uint64_t seed, bool deadlines = false) {
    detail::require(fraction > 0 && fraction <= 1, "'fraction' ({}) must be in (0, 1]", fraction);
    detail::require(!(deadlines && fraction < 1.0),
                    "the clock's deadlines cannot be combined with 'participation' ({}) < 1: a round has either drawn "
                    "participants or the ready ones",
                    fraction);
    fraction_ = fraction;
    const auto n = static_cast<std::size_t>(topology.workers());
    streams_.clear();
    std::uint64_t id = 0;
    Index largest = 0;
    for (Index level = 1; level <= topology.levels(); ++level)
      for (Index unit = 0; unit < topology.units(level); ++unit) {
        streams_.push_back(make_stream(seed, StreamKind::server, id++));
        largest = std::max(largest, topology.unit_size(level, unit));
      }
    stepping_.assign(n, char{1});
    ready_.assign(n, char{1});
    positions_.resize(static_cast<std::size_t>(largest));
    chosen_.resize(static_cast<std::size_t>(largest));
    chosen_workers_.reserve(static_cast<std::size_t>(largest));
    last_participants_ = topology.workers();
  }

  /// Whether only a fraction of each group takes part in a round.
  [[nodiscard]] bool partial() const { return fraction_ < 1.0; }

  /// Before the first round, and after every aggregation: who takes part in the next round.
  template <class Servers>
  void draw(Servers& servers) {
    if (!partial()) return;
    std::fill(stepping_.begin(), stepping_.end(), char{0});
    std::size_t stream = 0;  // level-1 servers come first in the numbering
    for (auto& server : servers.level(1)) {
      draw_participants(server, fraction_, streams_[stream++]);
      for (const Index j : server.participants()) stepping_[static_cast<std::size_t>(j)] = 1;
    }
  }

  /// The draw of one unit: max(1, floor(fraction n_i)) of its members, by a partial Fisher-Yates
  /// shuffle of their positions with `stream`, taking part in member order.
  template <class Unit>
  void draw_participants(Unit& server, double fraction, Rng& stream) {
    detail::require(fraction > 0 && fraction <= 1, "'fraction' ({}) must be in (0, 1]", fraction);
    const std::span<const Index> members = server.members();
    const std::size_t size = members.size();
    detail::require(size <= positions_.size(), "the round is sized for units of at most {} members, not {}: attach it "
                    "to the run's topology", positions_.size(), size);
    const auto count = std::max<std::size_t>(1, static_cast<std::size_t>(fraction * static_cast<double>(size)));
    std::iota(positions_.begin(), positions_.begin() + static_cast<std::ptrdiff_t>(size), std::size_t{0});
    for (std::size_t k = 0; k < count; ++k)
      std::swap(positions_[k], positions_[k + static_cast<std::size_t>(stream.below(static_cast<Index>(size - k)))]);
    std::fill(chosen_.begin(), chosen_.begin() + static_cast<std::ptrdiff_t>(size), char{0});
    for (std::size_t k = 0; k < count; ++k) chosen_[positions_[k]] = 1;
    chosen_workers_.clear();
    for (std::size_t k = 0; k < size; ++k)
      if (chosen_[k] != 0) chosen_workers_.push_back(members[k]);
    server.set_participants(chosen_workers_);
  }

  /// Whether worker j steps in the current round.
  [[nodiscard]] bool steps(Index worker) const { return stepping_[static_cast<std::size_t>(worker)] != 0; }
  /// stepping()[j]: the same for every worker (what a clock advances).
  [[nodiscard]] std::span<const char> stepping() const { return stepping_; }

  /// A level-`level` round begins: with a deadline at that level, each unit's participants are
  /// the members the clock finds ready.
  template <class Servers, class Clock>
  void open(Index level, Servers& servers, const Clock& clock) {
    if (!clock.has_deadline(level)) return;
    for (auto& server : servers.level(level)) {
      clock.mark_ready(level, server.members(), ready_);
      chosen_workers_.clear();
      for (const Index j : server.members())
        if (ready_[static_cast<std::size_t>(j)] != 0) chosen_workers_.push_back(j);
      server.set_participants(chosen_workers_);
    }
  }

  /// Whether a level-`level` round first closes at level 1, so that the higher level averages
  /// the groups' models (partial participation).
  [[nodiscard]] bool closes_groups_first(Index level) const { return partial() && level > 1; }

  /// The level-`level` round is over: its participants are counted, and after a deadline's round
  /// every member takes part again.
  template <class Servers, class Clock>
  void close(Index level, Servers& servers, const Clock& clock) {
    const bool deadline = clock.has_deadline(level);
    last_participants_ = partial() ? participants(servers, 1) : deadline ? participants(servers, level) : workers();
    if (deadline)
      for (auto& server : servers.level(level)) server.set_participants(server.members());
  }

  /// Workers that took part in the round the last aggregation closed (all of them without partial
  /// participation or deadlines).
  [[nodiscard]] Index last_participants() const { return last_participants_; }

  /// The participants a level-`level` unit of `members` has in a round of this run: what a
  /// checkpoint's participants must number.
  [[nodiscard]] std::size_t participants_per_unit(Index level, std::size_t members) const {
    if (level == 1 && partial()) return std::max<std::size_t>(1, static_cast<std::size_t>(fraction_ * static_cast<double>(members)));
    return members;
  }

  /// Its part of a checkpoint: the units' streams and the last round's count. After a load the
  /// stepping workers are read off the level-1 participants (the servers load those).
  template <class Archive, class Servers>
  void checkpoint(Archive& archive, const Servers& servers) {
    for (Rng& stream : streams_) archive.stream("a server's stream", stream);
    archive.index("the last round's participants", last_participants_, 0, workers());
    if constexpr (Archive::loading) {
      archive.after_load([this, &servers] {
        if (!partial()) return;
        std::fill(stepping_.begin(), stepping_.end(), char{0});
        for (const auto& server : servers.level(1))
          for (const Index j : server.participants()) stepping_[static_cast<std::size_t>(j)] = 1;
      });
    }
  }

 private:
  [[nodiscard]] Index workers() const { return static_cast<Index>(stepping_.size()); }

  template <class Servers>
  static Index participants(const Servers& servers, Index level) {
    Index count = 0;
    for (const auto& server : servers.level(level)) count += static_cast<Index>(server.participants().size());
    return count;
  }

  double fraction_ = 1.0;
  std::vector<Rng> streams_;    // one per server, numbered level by level
  std::vector<char> stepping_;  // stepping_[j]: worker j takes part in the current round
  std::vector<char> ready_;     // ready_[j]: worker j beat a deadline
  std::vector<std::size_t> positions_;  // scratch of a draw, sized for the largest unit
  std::vector<char> chosen_;
  std::vector<Index> chosen_workers_;
  Index last_participants_ = 0;
};

}  // namespace hsgd
