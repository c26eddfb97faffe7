#include "layers/gradient_flow.hpp"

#include <cmath>

#include "tensor/error.hpp"
#include "tensor/tensor.hpp"

namespace kiln::nn {

struct GradientFlow::Data {
  std::vector<std::shared_ptr<FlowTrace>> traces;
};

namespace {
thread_local std::shared_ptr<GradientFlow::Data>* g_active = nullptr;
}

std::vector<double> FlowTrace::norms() const {
  std::vector<double> out(sum_sq.size());
  for (std::size_t t = 0; t < sum_sq.size(); ++t) out[t] = std::sqrt(sum_sq[t]);
  return out;
}

void FlowTrace::add(std::int64_t t, const Tensor& g, const std::vector<bool>* rows) {
  KILN_CHECK(t >= 0 && t < static_cast<std::int64_t>(sum_sq.size()), "gradient flow: step {} outside the trace's {} steps", t,
             sum_sq.size());
  const std::vector<double> v = g.to_vector();
  const std::size_t per_row = rows != nullptr && !rows->empty() ? v.size() / rows->size() : v.size();
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (rows == nullptr || (*rows)[i / per_row]) s += v[i] * v[i];
  sum_sq[static_cast<std::size_t>(t)] += s;
}

GradientFlow::GradientFlow() : data_(std::make_shared<Data>()) {
  KILN_CHECK(g_active == nullptr, "GradientFlow: a recording is already active on this thread");
  g_active = &data_;
}

GradientFlow::~GradientFlow() { g_active = nullptr; }

std::vector<FlowTrace> GradientFlow::traces() const {
  std::vector<FlowTrace> out;
  for (const auto& t : data_->traces) out.push_back(*t);
  return out;
}

bool GradientFlow::active() { return g_active != nullptr; }

std::shared_ptr<FlowTrace> GradientFlow::open(const Module* layer, std::int64_t index, bool reverse, std::int64_t steps,
                                              const std::string& path) {
  if (g_active == nullptr) return nullptr;
  auto t = std::make_shared<FlowTrace>();
  t->layer = layer;
  t->index = index;
  t->reverse = reverse;
  t->path = path;
  t->sum_sq.assign(static_cast<std::size_t>(std::max<std::int64_t>(steps, 0)), 0.0);
  (*g_active)->traces.push_back(t);
  return t;
}

std::shared_ptr<FlowTrace> GradientFlow::open(const Module* layer, std::int64_t index, bool reverse, const RecurrentCell& cell,
                                              const Tensor& input, const std::vector<Tensor>& initial,
                                              const std::vector<std::int64_t>& lengths, const std::string& path) {
  auto t = open(layer, index, reverse, input.dim() > 0 ? input.size(0) : 0, path);
  if (t == nullptr) return t;
  t->cell = &cell;
  t->input = input;
  t->initial = initial;
  t->lengths = lengths;
  return t;
}

}  // namespace kiln::nn
