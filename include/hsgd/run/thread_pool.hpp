#pragma once
/// @file
/// A small fixed pool of threads that run the workers of one step.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd::detail {

/// Splits [0, count) into one contiguous chunk per thread and runs them, the calling thread
/// taking chunk 0. Our own pool over std::thread rather than OpenMP (and not std::jthread, which
/// libc++ 16 lacks): it needs no compiler flag in
/// the user's build, it is allocation-free per call (a function pointer and a context, no
/// std::function), and the chunking is fixed, so which thread runs a worker never depends on
/// timing. Results cannot depend on the thread count anyway: a worker touches only its own
/// columns and its own random stream.
///
/// Helpers spin for a while, then sleep on an atomic wait, for the next call: a step is short
/// (tens of microseconds), and waking a sleeping thread costs about as much (measured on B1:
/// 1.0x on two threads with futex wake-ups alone, 1.6x with spinning).
class ThreadPool {
 public:
  /// Starts threads - 1 helpers. If the system refuses one (a process or pids limit), the
  /// helpers already started are stopped and joined, and ResourceError says which thread failed:
  /// a pool with a missing helper would wait for it forever.
  explicit ThreadPool(Index threads) : threads_(std::max<Index>(1, threads)) {
    helpers_.reserve(static_cast<std::size_t>(threads_ - 1));
    for (Index id = 1; id < threads_; ++id) {
      try {
        helpers_.emplace_back([this, id] { serve(id); });
      } catch (const std::system_error& error) {
        stop_helpers();
        throw ResourceError(fmt::format("hsgd: could not start thread {} of the {} that 'threads' asks for ({}): "
                                        "lower Options::threads, or raise the process limit (ulimit -u, pids.max)",
                                        id + 1, threads_, error.what()));
      }
    }
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() { stop_helpers(); }

  [[nodiscard]] Index threads() const { return threads_; }

  /// Calls body(begin, end) on every chunk of [0, count) and returns when all are done. The
  /// first exception thrown by any chunk is rethrown here.
  template <class Body>
  void for_each_chunk(Index count, Body& body) {
    if (threads_ == 1 || count <= 1) {
      body(Index{0}, count);
      return;
    }
    task_ = [](void* context, Index begin, Index end) { (*static_cast<Body*>(context))(begin, end); };
    context_ = &body;
    count_ = count;
    remaining_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_chunk(0);
    for (Index left = remaining_.load(std::memory_order_acquire); left != 0;
         left = remaining_.load(std::memory_order_acquire)) {
      remaining_.wait(left, std::memory_order_acquire);
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void stop_helpers() noexcept {
    stopping_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& helper : helpers_) helper.join();
    helpers_.clear();
  }

  void serve(Index id) {
    std::uint64_t seen = 0;
    while (true) {
      seen = await_generation(seen);
      if (stopping_.load(std::memory_order_relaxed)) return;
      run_chunk(id);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
  }

  std::uint64_t await_generation(std::uint64_t seen) {
    for (int spin = 0; spin < spin_limit; ++spin) {
      const std::uint64_t now = generation_.load(std::memory_order_acquire);
      if (now != seen) return now;
      cpu_relax();
    }
    generation_.wait(seen, std::memory_order_acquire);
    return generation_.load(std::memory_order_acquire);
  }

  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void run_chunk(Index id) {
    const Index begin = count_ * id / threads_;
    const Index end = count_ * (id + 1) / threads_;
    if (begin == end) return;
    try {
      task_(context_, begin, end);
    } catch (...) {
      const std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // About a millisecond of spinning (a pause is tens of cycles): longer than the serial part of
  // a step, so busy runs never sleep, short enough that an idle pool stops burning a core.
  static constexpr int spin_limit = 1 << 15;

  Index threads_;
  void (*task_)(void*, Index, Index) = nullptr;
  void* context_ = nullptr;
  Index count_ = 0;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<Index> remaining_{0};
  std::atomic<bool> stopping_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::vector<std::thread> helpers_;  // joined by stop_helpers() while the rest is alive
};

}  // namespace hsgd::detail
