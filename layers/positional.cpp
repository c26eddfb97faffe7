#include "layers/positional.hpp"

#include <cmath>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

void check_options(const PositionalEncodingOptions& o, const char* who) {
  KILN_CHECK(o.d_model_ > 0 && o.max_len_ > 0, "{}: d_model and max_len must be positive, got {} and {}", who,
             o.d_model_, o.max_len_);
  KILN_CHECK(o.dropout_ >= 0 && o.dropout_ < 1, "{}: dropout must be in [0, 1), got {}", who, o.dropout_);
}

// x + rows [start, start + L) of table [max_len, E], broadcast over the batch; then dropout.
Variable add_positions(const Variable& x, const Variable& table, std::int64_t start, const PositionalEncodingOptions& o,
                       bool training, const char* who) {
  KILN_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3) && x.size(-1) == o.d_model_,
             "{}(d_model={}): input must be {} or [L, E] ending in d_model, got {}", who, o.d_model_,
             o.batch_first_ ? "[B, L, E]" : "[L, B, E]", x.defined() ? x.shape() : Shape{});
  const std::int64_t len = x.size(x.dim() == 3 && o.batch_first_ ? 1 : 0);
  KILN_CHECK(start >= 0 && start + len <= o.max_len_, "{}(max_len={}): positions {}..{} are out of range", who,
             o.max_len_, start, start + len - 1);
  Variable pe = narrow(table, 0, start, len);  // [L, E]
  if (x.dim() == 3) pe = unsqueeze(pe, o.batch_first_ ? 0 : 1);
  const Variable y = x + pe;
  return o.dropout_ > 0 ? dropout(y, o.dropout_, training) : y;
}

}  // namespace

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(PositionalEncodingOptions options)
    : Module("SinusoidalPositionalEncoding"), options_(options) {
  check_options(options_, "SinusoidalPositionalEncoding");
  reset();
}

void SinusoidalPositionalEncoding::reset() {
  const std::int64_t n = options_.max_len_, d = options_.d_model_;
  std::vector<double> pe(static_cast<std::size_t>(n * d));
  for (std::int64_t p = 0; p < n; ++p)
    for (std::int64_t i = 0; i < d; ++i) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, static_cast<double>(i - i % 2) / static_cast<double>(d));
      pe[static_cast<std::size_t>(p * d + i)] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  table_ = from_data(pe, {n, d});
  table32_ = table_.to(kFloat32);
}

Variable SinusoidalPositionalEncoding::forward(const Variable& x, std::int64_t start) {
  const Variable table(x.defined() && x.dtype() == kFloat32 ? table32_ : table_);
  return add_positions(x, table, start, options_, is_training(), "SinusoidalPositionalEncoding");
}

std::string SinusoidalPositionalEncoding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}, dropout={}", options_.d_model_, options_.max_len_, options_.dropout_);
}

LearnedPositionalEncoding::LearnedPositionalEncoding(PositionalEncodingOptions options)
    : Module("LearnedPositionalEncoding"), options_(options) {
  check_options(options_, "LearnedPositionalEncoding");
  reset();
}

void LearnedPositionalEncoding::reset() {
  weight = register_parameter("weight", init::normal({options_.max_len_, options_.d_model_}, 0, 1));
}

Variable LearnedPositionalEncoding::forward(const Variable& x, std::int64_t start) {
  return add_positions(x, weight, start, options_, is_training(), "LearnedPositionalEncoding");
}

std::string LearnedPositionalEncoding::extra_repr() const {
  return fmt::format("max_len={}, d_model={}, dropout={}", options_.max_len_, options_.d_model_, options_.dropout_);
}

}  // namespace kiln::nn
