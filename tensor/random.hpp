#pragma once
// Seeded random numbers. The same seed gives bit-identical tensors on the same machine.

#include <cstdint>
#include <memory>
#include <string>

#include "tensor/tensor.hpp"

namespace kiln {

/// A pseudo-random generator (64-bit Mersenne Twister) with its own state.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 5489u);
  ~Generator();
  Generator(const Generator&);
  Generator& operator=(const Generator&);
  void seed(std::uint64_t s);
  std::uint64_t next_u64();
  /// Uniform in [0, 1).
  double next_double();
  /// Standard normal.
  double next_normal();
  /// The whole state as text, and back (torch.Generator.get_state/set_state): a generator restored
  /// from state() draws the same numbers as the one it was taken from. set_state refuses text that is
  /// not a state, leaving the generator as it was.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The default generator every creation function uses when none is given.
Generator& default_generator();
/// Seeds the default generator: `kiln::manual_seed(0)` at the top of a run makes it reproducible.
void manual_seed(std::uint64_t seed);

/// Puts the default generator back as it was when this was made, when it goes out of scope: for
/// library code that makes a throwaway module (a probe, a proof) whose weights draw from the default
/// generator, so a run's random numbers do not depend on whether that code ran (Determinism).
class KeepDefaultGenerator {
 public:
  KeepDefaultGenerator() : state_(default_generator().state()) {}
  ~KeepDefaultGenerator() { default_generator().set_state(state_); }
  KeepDefaultGenerator(const KeepDefaultGenerator&) = delete;
  KeepDefaultGenerator& operator=(const KeepDefaultGenerator&) = delete;

 private:
  std::string state_;
};

/// Uniform in [low, high).
Tensor uniform(const Shape& shape, double low = 0, double high = 1, DType dtype = kFloat32,
               Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean = 0, double stddev = 1, DType dtype = kFloat32,
              Generator* gen = nullptr);
/// uniform(shape, 0, 1) and normal(shape, 0, 1).
Tensor rand(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
/// Integers uniform in [low, high), as int64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator* gen = nullptr);
/// Bool mask, each element true with probability p.
Tensor bernoulli(const Shape& shape, double p, Generator* gen = nullptr);

}  // namespace kiln
