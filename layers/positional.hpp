#pragma once
// Positional encodings added to token embeddings: the fixed sinusoids of Vaswani et al. (2017) and a
// learned table (as BERT and GPT).
//
//   kiln::nn::SinusoidalPositionalEncoding pos(kiln::nn::PositionalEncodingOptions(256).batch_first(true));
//   Variable h = pos.forward(embed.forward(ids) * std::sqrt(256.0));  // [B, L, 256]
//   Variable next = pos.forward(embed.forward(new_ids), /*start=*/cache.length());  // incremental decoding

#include "layers/module.hpp"

namespace kiln::nn {

struct PositionalEncodingOptions {
  explicit PositionalEncodingOptions(std::int64_t d_model) : d_model_(d_model) {}
  /// The longest sequence (plus start offset) forward accepts.
  PositionalEncodingOptions& max_len(std::int64_t n) { max_len_ = n; return *this; }
  /// Dropout on the sum, while training.
  PositionalEncodingOptions& dropout(double p) { dropout_ = p; return *this; }
  /// [B, L, E] instead of [L, B, E].
  PositionalEncodingOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  std::int64_t d_model_;
  std::int64_t max_len_ = 5000;
  double dropout_ = 0.1;
  bool batch_first_ = false;
};

/// x + PE[start : start + L], PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)).
/// No parameters (the table is a constant, not in the state dict).
class SinusoidalPositionalEncoding : public Module {
 public:
  explicit SinusoidalPositionalEncoding(PositionalEncodingOptions options);
  void reset() override;
  /// x [L, B, E] ([B, L, E] with batch_first, or [L, E]); start: the position of x's first element.
  Variable forward(const Variable& x, std::int64_t start);
  Variable forward(const Variable& x) override { return forward(x, 0); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  /// The table, [max_len, d_model].
  const Tensor& table() const { return table_; }

 private:
  PositionalEncodingOptions options_;
  Tensor table_, table32_;  // float64, and float32 for float32 inputs
};

/// x + weight[start : start + L]; weight [max_len, d_model] ~ N(0, 1) is a parameter ("weight").
class LearnedPositionalEncoding : public Module {
 public:
  explicit LearnedPositionalEncoding(PositionalEncodingOptions options);
  void reset() override;
  Variable forward(const Variable& x, std::int64_t start);
  Variable forward(const Variable& x) override { return forward(x, 0); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  Variable weight;

 private:
  PositionalEncodingOptions options_;
};

}  // namespace kiln::nn
