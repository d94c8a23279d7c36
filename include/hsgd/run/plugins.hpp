#pragma once
/// @file
/// How the Engine finds its plug-ins among its constructor's arguments: each plug-in's role is
/// recognised by a piece of its interface, so they may come in any order and each may be left out.

#include <type_traits>
#include <utility>

#include "hsgd/optimizer/learning_rate.hpp"
#include "hsgd/optimizer/update.hpp"
#include "hsgd/run/backend.hpp"
#include "hsgd/time/clock.hpp"
#include "hsgd/topology/grouping.hpp"

namespace hsgd::detail {

/// The first of Candidates that plays Role, or Default.
template <template <class> class Role, class Default, class... Candidates>
struct first_of {
  using type = Default;
};
template <template <class> class Role, class Default, class First, class... Rest>
struct first_of<Role, Default, First, Rest...> {
  using type = std::conditional_t<Role<First>::value, First, typename first_of<Role, Default, Rest...>::type>;
};

// A plug-in's role is recognised by any one piece of its interface, not by the whole concept, so
// that a policy missing a piece is deduced into its place and the Engine's check names the piece.
template <class Scalar>
struct is_update_policy_for {
  template <class U>
  struct role : std::bool_constant<UpdatePolicy<U, Scalar> || update_requirements::declares_state<U> ||
                                   update_requirements::has_state_at_aggregation<U>> {};
};
template <class R>
struct is_rate_schedule : std::bool_constant<learning_rate_requirements::has_rate<R>> {};
template <class B>
struct is_backend : std::bool_constant<backend_requirements::has_layout<B>> {};
template <class C>
struct is_clock : std::bool_constant<clock_requirements::has_simulates<C>> {};
template <class G>
struct is_grouping_policy
    : std::bool_constant<grouping_requirements::has_assign<G> || grouping_requirements::has_regroups<G>> {};

template <class Scalar, class... Plugins>
using update_among = typename first_of<is_update_policy_for<Scalar>::template role, Sgd, std::remove_cvref_t<Plugins>...>::type;
template <class... Plugins>
using rate_among = typename first_of<is_rate_schedule, ConstantRate, std::remove_cvref_t<Plugins>...>::type;
template <class... Plugins>
using grouping_among =
    typename first_of<is_grouping_policy, ContiguousGrouping, std::remove_cvref_t<Plugins>...>::type;
template <class... Plugins>
using backend_among = typename first_of<is_backend, InProcess, std::remove_cvref_t<Plugins>...>::type;
template <class... Plugins>
using clock_among = typename first_of<is_clock, NoClock, std::remove_cvref_t<Plugins>...>::type;

/// The argument of type T among `arguments`, or T{} when there is none.
template <class T>
T take_plugin() {
  return T{};
}
template <class T, class First, class... Rest>
T take_plugin(First&& first, Rest&&... rest) {
  if constexpr (std::is_same_v<std::remove_cvref_t<First>, T>) {
    return T(std::forward<First>(first));
  } else {
    return take_plugin<T>(std::forward<Rest>(rest)...);
  }
}

template <class Role, class... Plugins>
inline constexpr int count_of = (std::is_same_v<Role, std::remove_cvref_t<Plugins>> + ... + 0);
template <class Plugin, class... Roles>
inline constexpr bool one_of = (std::is_same_v<std::remove_cvref_t<Plugin>, Roles> || ...);

/// The plug-ins an Engine of roles Roles... was given: each is one of the roles, and no role twice.
template <class... Roles>
struct PluginRoles {
  template <class... Plugins>
  static consteval bool check() {
    static_assert((one_of<Plugins, Roles...> && ...),
                  "hsgd Engine: every argument after the options must be this Engine's update policy, "
                  "learning-rate schedule, grouping policy, backend or clock");
    static_assert(((count_of<Roles, Plugins...> <= 1) && ...),
                  "hsgd Engine: give the update policy, the learning-rate schedule, the grouping policy, the "
                  "backend and the clock at most once each");
    return true;
  }
};

/// The sampler's minibatch size, for a clock's per-sample cost; 0 for a sampler that has none.
template <class SamplerType>
Index batch_size_of(const SamplerType& sampler) {
  if constexpr (requires { { sampler.batch_size() } -> std::convertible_to<Index>; }) return sampler.batch_size();
  else return 0;
}

/// True on the object that is live, false on one that was moved from: a member that lets the
/// Engine keep its defaulted move constructor and still know when it is an empty shell.
class Liveness {
 public:
  Liveness() = default;
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;
  Liveness(Liveness&& other) noexcept : live_(std::exchange(other.live_, false)) {}
  Liveness& operator=(Liveness&& other) noexcept {
    if (this != &other) live_ = std::exchange(other.live_, false);
    return *this;
  }
  ~Liveness() = default;
  [[nodiscard]] bool live() const noexcept { return live_; }

 private:
  bool live_ = true;
};

}  // namespace hsgd::detail
