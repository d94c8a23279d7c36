#pragma once
/// @file
/// Random streams. Every stream is owned by one party (a worker, a server, a policy, a data
/// generator) and derived from (seed, kind, id) alone, so a party draws the same numbers whatever
/// the thread it runs on, the order the parties run in, or how many other parties exist.
///
/// The generators and distributions are written here rather than taken from <random>: the
/// standard leaves `uniform_int_distribution` and `normal_distribution` to the implementation,
/// and a research result should not change bits when the standard library does.

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <utility>

#include "hsgd/core/types.hpp"

namespace hsgd {

/// Who owns a random stream. Part of the stream's derivation, so two owners with the same id but
/// different kinds never share numbers.
enum class StreamKind : std::uint64_t {
  worker = 1,         ///< a worker's minibatch sampling (and anything else it draws)
  server = 2,         ///< a server's own choices (e.g. partial participation)
  grouping = 3,       ///< a grouping policy's draws
  data = 4,           ///< synthetic data generators
  initial_model = 5,  ///< random initial models
  user = 6,           ///< free for research code
  probe = 7,          ///< a probe's own draws (the fixed subsamples of DivergenceProbe)
  clock = 8,          ///< a simulated clock's draws (the workers' speed factors)
};

namespace detail {

__extension__ typedef unsigned __int128 uint128;  // NOLINT: GCC/Clang builtin, used for Lemire's method

/// SplitMix64 step: a bijective 64-bit mixer, used to expand and to combine seeds.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

}  // namespace detail

/// xoshiro256** (Blackman and Vigna): a small, fast generator with 2^256 - 1 period. Satisfies
/// std::uniform_random_bit_generator, and adds the few distributions hsgd needs with exactly
/// specified results.
class Rng {
 public:
  using result_type = std::uint64_t;

  /// A generator whose state is expanded from `seed` with SplitMix64.
  explicit constexpr Rng(std::uint64_t seed = 0) noexcept {
    for (auto& word : state_) word = detail::splitmix64(seed);
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  constexpr result_type operator()() noexcept {
    const std::uint64_t result = std::rotl(state_[1] * 5U, 7) * 9U;
    const std::uint64_t shifted = state_[1] << 17U;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = std::rotl(state_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform() noexcept { return static_cast<double>((*this)() >> 11U) * 0x1.0p-53; }

  /// Uniform integer in [0, bound), bound > 0, without modulo bias (Lemire's method).
  constexpr Index below(Index bound) noexcept {
    const auto range = static_cast<std::uint64_t>(bound);
    detail::uint128 product = static_cast<detail::uint128>((*this)()) * range;
    auto low = static_cast<std::uint64_t>(product);
    if (low < range) {
      const std::uint64_t threshold = (0 - range) % range;
      while (low < threshold) {
        product = static_cast<detail::uint128>((*this)()) * range;
        low = static_cast<std::uint64_t>(product);
      }
    }
    return static_cast<Index>(product >> 64U);
  }

  /// Standard normal draw (Box-Muller; the second value of each pair is kept for the next call).
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log1p(-uniform()));  // log(1 - u), u in [0, 1)
    const double angle = 2.0 * std::numbers::pi * uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  /// Fisher-Yates shuffle of `values` in place.
  template <class T>
  constexpr void shuffle(std::span<T> values) noexcept {
    for (Index i = static_cast<Index>(values.size()) - 1; i > 0; --i) {
      std::swap(values[static_cast<std::size_t>(i)], values[static_cast<std::size_t>(below(i + 1))]);
    }
  }

  friend constexpr bool operator==(const Rng&, const Rng&) = default;

  /// Everything that determines the next draws: for checkpoints.
  struct State {
    std::uint64_t words[4];
    double spare;
    bool has_spare;
  };
  [[nodiscard]] constexpr State state() const noexcept {
    return {{state_[0], state_[1], state_[2], state_[3]}, spare_, has_spare_};
  }
  /// The generator in `state` (which must not be all zero: xoshiro never leaves that state).
  [[nodiscard]] static constexpr Rng from_state(const State& state) noexcept {
    Rng rng;
    for (int k = 0; k < 4; ++k) rng.state_[k] = state.words[k];
    rng.spare_ = state.spare;
    rng.has_spare_ = state.has_spare;
    return rng;
  }

 private:
  std::uint64_t state_[4]{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// The stream of owner `id` of the given kind in a run seeded with `seed`.
constexpr Rng make_stream(std::uint64_t seed, StreamKind kind, std::uint64_t id) noexcept {
  std::uint64_t mix = seed;
  std::uint64_t key = detail::splitmix64(mix);
  key ^= static_cast<std::uint64_t>(kind) * 0xd1b54a32d192ed03ULL;
  mix = key;
  key = detail::splitmix64(mix) ^ (id * 0x8cb92ba72f3d8dd7ULL);
  mix = key;
  return Rng(detail::splitmix64(mix));
}

}  // namespace hsgd
