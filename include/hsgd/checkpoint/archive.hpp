#pragma once
/// @file
/// What a checkpoint holds, and how each part of a run takes part in one: a single visit of the
/// part's state, `template <class Archive> void checkpoint(Archive& archive)`, serves saving,
/// checking and loading. With a SaveArchive the visit writes each field; with a LoadArchive it
/// reads and checks each field and stages it, and nothing changes until `commit()`, so a file
/// that any part refuses leaves every part as it was (serialization libraries such as cereal
/// work the same way: one function, an archive that reads or writes).
///
/// A plug-in (sampler, update policy, rate schedule, grouping policy, clock) whose state is only
/// settings declares them once, with `checkpoint_settings()`; only real state (a ShuffledSampler's
/// epoch order) needs the visit.

#include <cxxabi.h>

#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/checkpoint/format.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace detail {

inline std::string setting_text(std::string_view text) { return std::string(text); }
inline std::string setting_text(const char* text) { return std::string(text); }
inline std::string setting_text(bool value) { return value ? "true" : "false"; }
template <class T>
  requires(std::is_arithmetic_v<T> && !std::same_as<T, bool>)
std::string setting_text(T value) {
  return fmt::format("{}", value);
}
template <class E>
  requires std::is_enum_v<E>
std::string setting_text(E value) {
  return fmt::format("{}", static_cast<int>(value));
}
/// A list as fmt's range formatting writes it, "[a, b, c]", without instantiating that formatter.
template <class T>
std::string setting_text(const std::vector<T>& values) {
  std::string text = "[";
  for (std::size_t k = 0; k < values.size(); ++k) text += (k > 0 ? ", " : "") + setting_text(values[k]);
  return text + "]";
}

}  // namespace detail

/// A configuration entry a checkpoint records and a resume must match, e.g. {"momentum", 0.9}:
/// the value is kept as text (numbers as fmt's "{}" writes them, lists as "[a, b]", enums as
/// their number), and a resume compares the texts.
struct CheckpointSetting {
  template <class T>
  CheckpointSetting(std::string_view setting_name, const T& setting_value)
      : name(setting_name), value(detail::setting_text(setting_value)) {}
  std::string name;
  std::string value;
};
using CheckpointSettings = std::vector<CheckpointSetting>;

/// The save direction of a visit: every call writes its field (through CheckpointWriter) and
/// returns the value as it is, so a visit reads the same whichever way it runs.
class SaveArchive {
 public:
  static constexpr bool loading = false;

  explicit SaveArchive(CheckpointWriter& out) noexcept : out_(&out) {}

  /// A setting: written here, compared with this run's on load.
  void setting(std::string_view name, std::string_view value) { out_->put_setting(name, value); }
  void settings(const CheckpointSettings& settings) {
    for (const auto& entry : settings) setting(entry.name, entry.value);
  }
  /// The models' scalar type, recorded in the file's header (CheckpointFormat::scalar_code).
  void scalar_code(std::uint32_t code) { out_->set_scalar_code(code); }

  /// An integer saved as a 64-bit index; on load it must lie in [low, high].
  template <std::integral T>
  const T& index(std::string_view /*what*/, T& value, Index /*low*/, Index /*high*/) {
    out_->put_index(static_cast<Index>(value));
    return value;
  }
  template <std::unsigned_integral T>
  const T& u64(std::string_view /*what*/, T& value) {
    out_->put_u64(static_cast<std::uint64_t>(value));
    return value;
  }
  const double& real(std::string_view /*what*/, double& value) {
    out_->put_double(value);
    return value;
  }
  const bool& flag(std::string_view /*what*/, bool& value) {
    out_->put_bool(value);
    return value;
  }
  const std::string& text(std::string_view /*what*/, std::string& value) {
    out_->put_string(value);
    return value;
  }
  const Rng& stream(std::string_view /*what*/, Rng& value) {
    out_->put_rng(value);
    return value;
  }
  /// A value that belongs to no member (the length of a list visited element by element, a
  /// yes/no the part checks): written as given; on load read, checked and returned, not staged.
  Index count(std::string_view /*what*/, Index value, Index /*low*/, Index /*high*/) {
    out_->put_index(value);
    return value;
  }
  bool fact(std::string_view /*what*/, bool value) {
    out_->put_bool(value);
    return value;
  }
  /// A list of at most `max_count` indices, each in [low, high] on load.
  const std::vector<Index>& indices(std::string_view /*what*/, std::vector<Index>& values, Index /*max_count*/,
                                    Index /*low*/, Index /*high*/) {
    out_->put_indices(values);
    return values;
  }
  const std::vector<double>& reals(std::string_view /*what*/, std::vector<double>& values, Index /*max_count*/) {
    out_->put_doubles(values);
    return values;
  }
  /// `count` scalars in place (a model matrix, say): written from where they are, without a copy.
  template <Real Scalar>
  void scalars(std::string_view /*what*/, Scalar* data, std::size_t count) {
    out_->put_scalars(data, count);
  }

  /// A condition every loaded value must meet; nothing to check when saving.
  template <class... Args>
  void check(bool /*condition*/, fmt::format_string<Args...> /*message*/, Args&&... /*args*/) {}
  /// Work to do once a load is committed (rebuilding what derives from the loaded state).
  template <class Action>
  void after_load(Action&& /*action*/) {}

  /// The byte layer, for a part that assembles its section from pieces written elsewhere (the
  /// processes of a distributed run).
  [[nodiscard]] CheckpointWriter& writer() noexcept { return *out_; }

 private:
  CheckpointWriter* out_;
};

/// The load direction of a visit: every call reads its field, checks it, and stages it for the
/// object it belongs to; the call returns the staged value, so later checks in the same visit can
/// use it. Nothing is written into the object until `commit()`: a visit that throws (a field out
/// of range, a setting that differs) leaves the object untouched, and a visit run without commit
/// is a check. A field is staged for the object it names, which must outlive the archive: a
/// member of the part, or an object made with `hold`; a value that belongs to no member goes
/// through `count` or `fact`.
class LoadArchive {
 public:
  static constexpr bool loading = true;

  explicit LoadArchive(CheckpointReader in) : in_(std::move(in)) {}
  LoadArchive(LoadArchive&&) noexcept = default;
  LoadArchive& operator=(LoadArchive&&) noexcept = default;
  LoadArchive(const LoadArchive&) = delete;
  LoadArchive& operator=(const LoadArchive&) = delete;
  ~LoadArchive() = default;

  /// Throws CheckpointError naming the setting when the checkpoint's value differs from `value`.
  void setting(std::string_view name, std::string_view value) { in_.expect(name, value); }
  void settings(const CheckpointSettings& settings) {
    for (const auto& entry : settings) setting(entry.name, entry.value);
  }
  void scalar_code(std::uint32_t /*code*/) {}

  template <std::integral T>
  const T& index(std::string_view what, T& target, Index low, Index high) {
    return stage(target, static_cast<T>(in_.get_index(what, low, high)));
  }
  template <std::unsigned_integral T>
  const T& u64(std::string_view what, T& target) {
    return stage(target, static_cast<T>(in_.get_u64(what)));
  }
  const double& real(std::string_view what, double& target) { return stage(target, in_.get_double(what)); }
  const bool& flag(std::string_view what, bool& target) { return stage(target, in_.get_bool(what)); }
  const std::string& text(std::string_view what, std::string& target) { return stage(target, in_.get_string(what)); }
  const Rng& stream(std::string_view what, Rng& target) { return stage(target, in_.get_rng(what)); }
  Index count(std::string_view what, Index /*value*/, Index low, Index high) { return in_.get_index(what, low, high); }
  bool fact(std::string_view what, bool /*value*/) { return in_.get_bool(what); }
  const std::vector<Index>& indices(std::string_view what, std::vector<Index>& target, Index max_count, Index low,
                                    Index high) {
    return stage(target, in_.get_indices(what, max_count, low, high));
  }
  const std::vector<double>& reals(std::string_view what, std::vector<double>& target, Index max_count) {
    return stage(target, in_.get_doubles(what, max_count));
  }
  /// Checked now, copied at commit straight from the checkpoint's bytes (which must outlive the
  /// archive: load_checkpoint keeps the file open until every part has committed).
  template <Real Scalar>
  void scalars(std::string_view what, Scalar* target, std::size_t count) {
    const std::span<const char> bytes = in_.view_scalars<Scalar>(count, what);
    after_load([target, bytes] {
      if (!bytes.empty()) std::memcpy(target, bytes.data(), bytes.size());
    });
  }

  /// Refuses the checkpoint (CheckpointError naming the section) unless `condition` holds.
  template <class... Args>
  void check(bool condition, fmt::format_string<Args...> message, Args&&... args) {
    if (!condition) [[unlikely]] in_.fail(message, std::forward<Args>(args)...);
  }
  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> message, Args&&... args) const {
    in_.fail(message, std::forward<Args>(args)...);
  }
  template <class Action>
  void after_load(Action&& action) {
    steps_.push_back(std::make_unique<Do<std::decay_t<Action>>>(std::forward<Action>(action)));
  }
  /// Keeps `value` alive as long as what is staged: a stand-in to read state into that is only
  /// checked, never kept (a sampler of a worker that another process hosts, say).
  template <class T>
  T& hold(T value) {
    auto step = std::make_unique<Hold<T>>(std::move(value));
    T& held = step->value;
    steps_.push_back(std::move(step));
    return held;
  }

  /// The byte layer, for the pieces a part reads on its own.
  [[nodiscard]] CheckpointReader& reader() noexcept { return in_; }
  /// Every byte of the section read: one with bytes left over was written by other code.
  void expect_end() { in_.expect_end(); }

  /// Puts everything staged in force, in the order it was read, then runs the after-load work.
  void commit() {
    for (auto& step : steps_) step->apply();
    steps_.clear();
  }

 private:
  struct Step {
    Step() = default;
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;
    virtual ~Step() = default;
    virtual void apply() = 0;
  };
  template <class T>
  struct Assign final : Step {
    Assign(T& target, T loaded) : destination(&target), value(std::move(loaded)) {}
    void apply() override { *destination = std::move(value); }
    T* destination;
    T value;
  };
  template <class T>
  struct Hold final : Step {
    explicit Hold(T held) : value(std::move(held)) {}
    void apply() override {}
    T value;
  };
  template <class Action>
  struct Do final : Step {
    explicit Do(Action work) : action(std::move(work)) {}
    void apply() override { action(); }
    Action action;
  };

  template <class T>
  const T& stage(T& target, T value) {
    auto step = std::make_unique<Assign<T>>(target, std::move(value));
    const T& staged = step->value;
    steps_.push_back(std::move(step));
    return staged;
  }

  CheckpointReader in_;
  std::vector<std::unique_ptr<Step>> steps_;
};

namespace checkpoint_requirements {

template <class T>
concept has_visit = requires(T& t, SaveArchive& save, LoadArchive& load) {
  t.checkpoint(save);
  t.checkpoint(load);
};

template <class T>
concept has_settings = requires(const T& t) {
  { t.checkpoint_settings() } -> std::convertible_to<CheckpointSettings>;
};

template <class T>
concept declared_stateless = requires {
  { T::checkpoint_stateless } -> std::convertible_to<bool>;
} && static_cast<bool>(T::checkpoint_stateless);

}  // namespace checkpoint_requirements

/// A plug-in that a checkpoint can capture. Its state is whatever decides what it does next (a
/// ShuffledSampler's epoch order and position); its settings are what must match for a resume to
/// be the same run (a Momentum's beta). It takes part through one or both of
///
/// - `hsgd::CheckpointSettings checkpoint_settings() const`: its settings, declared once, e.g.
///   `return {{"momentum", momentum}, {"nesterov", nesterov}};` (written on save, compared on load);
/// - `template <class Archive> void checkpoint(Archive& archive)`: its state, visited once for
///   save and load alike (`archive.index("the position", position_, 0, size)`, ...; see
///   SaveArchive and LoadArchive);
///
/// or it is an empty class, or declares `static constexpr bool checkpoint_stateless = true` (its
/// members are configuration that the run fixes, a buffer rebuilt by `bind`, say). A plug-in with
/// members and none of these fails to compile where a checkpoint is saved or loaded, so a
/// checkpoint is never silently partial.
template <class T>
concept CheckpointablePlugin = checkpoint_requirements::has_visit<T> || checkpoint_requirements::has_settings<T> ||
                               std::is_empty_v<T> || checkpoint_requirements::declared_stateless<T>;

namespace detail {

template <class T>
consteval bool check_checkpointable_plugin() {
  static_assert(CheckpointablePlugin<T>,
                "hsgd checkpoint: this plug-in has data members but no checkpoint hooks. Declare its settings "
                "with `hsgd::CheckpointSettings checkpoint_settings() const`, visit its state with "
                "`template <class Archive> void checkpoint(Archive& archive)`, or declare "
                "`static constexpr bool checkpoint_stateless = true` if its members are fixed configuration");
  return true;
}

/// A plug-in's part of a checkpoint: its settings, then its state.
template <class Archive, class T>
void visit_plugin(Archive& archive, T& plugin) {
  static_assert(check_checkpointable_plugin<T>());
  if constexpr (checkpoint_requirements::has_settings<T>) archive.settings(plugin.checkpoint_settings());
  if constexpr (checkpoint_requirements::has_visit<T>) plugin.checkpoint(archive);
}

/// The same for a const plug-in being saved: a SaveArchive only reads what it visits.
template <class T>
void visit_plugin(SaveArchive& archive, const T& plugin) {
  visit_plugin(archive, const_cast<T&>(plugin));
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
