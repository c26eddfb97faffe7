#include "sequence/pooling.hpp"

#include <limits>

#include "ops/ops.hpp"
#include "tensor/error.hpp"

namespace kiln::nn {

SequencePool::SequencePool(PoolMode mode) : Module("SequencePool"), mode_(mode) {}

std::string SequencePool::extra_repr() const {
  return mode_ == PoolMode::Last ? "mode=last" : mode_ == PoolMode::Mean ? "mode=mean" : "mode=max";
}

Variable SequencePool::forward(const Variable& x, const Variable& lengths) {
  KILN_CHECK(x.defined() && x.dim() == 3, "SequencePool: input must be [B, T, F] (batch first), got {}",
             x.defined() ? x.shape() : Shape{});
  const std::int64_t B = x.size(0), T = x.size(1), F = x.size(2);
  KILN_CHECK(T >= 1, "SequencePool: the input has no steps ({})", x.shape());
  if (!lengths.defined()) {
    if (mode_ == PoolMode::Last) return reshape(narrow(x, 1, T - 1, 1), {B, F});
    return mode_ == PoolMode::Mean ? mean(x, {1}) : max(x, {1});
  }
  KILN_CHECK(lengths.dtype() == kInt64 && lengths.shape() == Shape{B}, "SequencePool: lengths must be int64 [{}], got {} {}", B,
             lengths.dtype(), lengths.shape());
  const std::int64_t* len = lengths.value().data<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b)
    KILN_CHECK(len[b] >= 1 && len[b] <= T, "SequencePool: lengths[{}] = {} is outside [1, {}]", b, len[b], T);
  if (mode_ == PoolMode::Last) {
    std::vector<std::int64_t> index(static_cast<std::size_t>(B * F));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t f = 0; f < F; ++f) index[static_cast<std::size_t>(b * F + f)] = len[b] - 1;
    return reshape(gather(x, 1, Variable(from_data(index, {B, 1, F}))), {B, F});
  }
  std::vector<bool> pad(static_cast<std::size_t>(B * T * F));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = len[b]; t < T; ++t)
      for (std::int64_t f = 0; f < F; ++f) pad[static_cast<std::size_t>((b * T + t) * F + f)] = true;
  const Variable mask(from_data(pad, {B, T, F}));
  if (mode_ == PoolMode::Max) return max(masked_fill(x, mask, -std::numeric_limits<double>::infinity()), {1});
  std::vector<double> count(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) count[static_cast<std::size_t>(b)] = static_cast<double>(len[b]);
  return div(sum(masked_fill(x, mask, 0.0), {1}), Variable(from_data(count, {B, 1}).to(x.dtype())));
}

}  // namespace kiln::nn
