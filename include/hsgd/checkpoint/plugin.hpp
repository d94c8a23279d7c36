#pragma once
/// @file
/// How plug-ins (samplers, update policies, rate schedules, grouping policies) take part in a
/// checkpoint, and the readable type names a checkpoint records for them.

#include <cxxabi.h>

#include <concepts>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "hsgd/checkpoint/format.hpp"

namespace hsgd {

namespace checkpoint_requirements {

template <class T>
concept has_save = requires(const T& t, CheckpointWriter& out) { t.save_state(out); };

template <class T>
concept has_load = requires(T& t, CheckpointReader& in) { t.load_state(in); };

template <class T>
concept declared_stateless = requires {
  { T::checkpoint_stateless } -> std::convertible_to<bool>;
} && static_cast<bool>(T::checkpoint_stateless);

}  // namespace checkpoint_requirements

/// A plug-in that a checkpoint can capture. Its state is whatever decides what it does next
/// (a ShuffledSampler's epoch order and position) and its configuration is what must match for
/// a resume to be the same run (a Momentum's beta). It takes part in one of three ways:
///
/// - hooks `void save_state(hsgd::CheckpointWriter& out) const` and
///   `void load_state(hsgd::CheckpointReader& in)`: save writes the state (`out.put_index`, ...)
///   and the configuration (`out.put_setting(name, value)`); load reads them back in the same
///   order, comparing the configuration with `in.expect(name, value)`, and throws (e.g. through
///   `in.fail(...)`) without changing the object when something does not fit;
/// - an empty class: nothing to save;
/// - `static constexpr bool checkpoint_stateless = true`: its members are configuration that the
///   run fixes (a buffer rebuilt by `bind`, say), so there is nothing to save.
///
/// A plug-in with members and none of these fails to compile where a checkpoint is saved or
/// loaded, so a checkpoint is never silently partial.
template <class T>
concept CheckpointablePlugin = (checkpoint_requirements::has_save<T> && checkpoint_requirements::has_load<T>) ||
                               std::is_empty_v<T> || checkpoint_requirements::declared_stateless<T>;

namespace detail {

template <class T>
consteval bool check_checkpointable_plugin() {
  static_assert(CheckpointablePlugin<T>,
                "hsgd checkpoint: this plug-in has data members but no checkpoint hooks. Add "
                "`void save_state(hsgd::CheckpointWriter&) const` and `void load_state(hsgd::CheckpointReader&)` "
                "(write what decides its next results; compare its configuration with put_setting/expect), or "
                "declare `static constexpr bool checkpoint_stateless = true` if its members are fixed configuration");
  return true;
}

template <class T>
void save_plugin(CheckpointWriter& out, const T& plugin) {
  static_assert(check_checkpointable_plugin<T>());
  if constexpr (checkpoint_requirements::has_save<T>) plugin.save_state(out);
}

template <class T>
void load_plugin(CheckpointReader& in, T& plugin) {
  static_assert(check_checkpointable_plugin<T>());
  if constexpr (checkpoint_requirements::has_load<T>) plugin.load_state(in);
}

}  // namespace detail

/// The C++ name of T as the compiler spells it (demangled), e.g. "hsgd::UniformSampler". GCC and
/// Clang share the Itanium ABI on Linux, so the name is the same whichever built the program.
template <class T>
std::string type_name() {
  const char* mangled = typeid(T).name();
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                              &std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(mangled);
}

}  // namespace hsgd
