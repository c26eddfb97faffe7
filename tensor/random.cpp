#include "tensor/random.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "tensor/dispatch.hpp"

namespace kiln {

// Note [Portable sampling]: the distributions are written out here rather than taken from <random>
// (whose std::normal_distribution is implementation-defined), so a seed means the same numbers
// under any standard library.
struct Generator::State {
  std::mt19937_64 engine;
  bool has_spare = false;
  double spare = 0;
};

Generator::Generator(std::uint64_t seed) : state_(std::make_unique<State>()) { this->seed(seed); }
Generator::~Generator() = default;
Generator::Generator(const Generator& other) : state_(std::make_unique<State>(*other.state_)) {}
Generator& Generator::operator=(const Generator& other) {
  *state_ = *other.state_;
  return *this;
}

void Generator::seed(std::uint64_t s) {
  state_->engine.seed(s);
  state_->has_spare = false;
}

// The engine's words as <random> writes them, then whether a second normal is waiting and its bits.
std::string Generator::state() const {
  std::ostringstream out;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &state_->spare, sizeof bits);
  out << state_->engine << ' ' << (state_->has_spare ? 1 : 0) << ' ' << bits;
  return out.str();
}

void Generator::set_state(const std::string& text) {
  std::istringstream in(text);
  State s;
  int spare = -1;
  std::uint64_t bits = 0;
  in >> s.engine >> spare >> bits;
  std::string rest;
  KILN_CHECK(!in.fail() && (spare == 0 || spare == 1) && !(in >> rest),
             "Generator::set_state: not a generator state ({} characters starting '{}')", text.size(), text.substr(0, 20));
  s.has_spare = spare == 1;
  std::memcpy(&s.spare, &bits, sizeof bits);
  *state_ = s;
}

std::uint64_t Generator::next_u64() { return state_->engine(); }

double Generator::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::next_normal() {
  // Box-Muller, both values used.
  if (state_->has_spare) {
    state_->has_spare = false;
    return state_->spare;
  }
  double u1 = next_double();
  while (u1 <= 0) u1 = next_double();
  const double u2 = next_double();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  state_->spare = r * std::sin(theta);
  state_->has_spare = true;
  return r * std::cos(theta);
}

Generator& default_generator() {
  static thread_local Generator gen(5489u);
  return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

namespace {

template <class Sample>
Tensor sample(const Shape& shape, DType dtype, const char* op, Sample&& draw) {
  Tensor t(shape, dtype);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(draw());
  });
  return t;
}

Generator& pick(Generator* gen) { return gen != nullptr ? *gen : default_generator(); }

}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  KILN_CHECK(low <= high, "uniform: low {} is greater than high {}", low, high);
  Generator& g = pick(gen);
  return sample(shape, dtype, "uniform", [&] { return low + (high - low) * g.next_double(); });
}

Tensor normal(const Shape& shape, double mean, double stddev, DType dtype, Generator* gen) {
  KILN_CHECK(stddev >= 0, "normal: stddev must be non-negative, got {}", stddev);
  Generator& g = pick(gen);
  return sample(shape, dtype, "normal", [&] { return mean + stddev * g.next_normal(); });
}

Tensor rand(const Shape& shape, DType dtype, Generator* gen) { return uniform(shape, 0, 1, dtype, gen); }
Tensor randn(const Shape& shape, DType dtype, Generator* gen) { return normal(shape, 0, 1, dtype, gen); }

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator* gen) {
  KILN_CHECK(low < high, "randint: empty range [{}, {})", low, high);
  Generator& g = pick(gen);
  const auto span = static_cast<std::uint64_t>(high - low);
  Tensor t(shape, kInt64);
  auto* p = t.data<std::int64_t>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = low + static_cast<std::int64_t>(g.next_u64() % span);
  return t;
}

Tensor bernoulli(const Shape& shape, double p, Generator* gen) {
  KILN_CHECK(p >= 0 && p <= 1, "bernoulli: probability must be in [0, 1], got {}", p);
  Generator& g = pick(gen);
  Tensor t(shape, kBool);
  bool* d = t.data<bool>();
  for (std::int64_t i = 0; i < t.numel(); ++i) d[i] = g.next_double() < p;
  return t;
}

}  // namespace kiln
