#include "layers/summary.hpp"

#include "autograd/grad_mode.hpp"
#include "layers/sequential.hpp"

namespace kiln::nn {
namespace {

std::int64_t count(const Module& m, bool trainable) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters())
    if (!trainable || p.requires_grad()) n += p.numel();
  return n;
}

std::string row(const std::string& layer, const std::string& shape, std::int64_t params) {
  return fmt::format(" {:<34} {:<22} {:>10}\n", layer, shape, params);
}

std::string header(const Module& model) {
  return fmt::format("Model: {}\n{}\n {:<34} {:<22} {:>10}\n{}\n", model.type_name(), std::string(70, '_'),
                     "Layer (type)", "Output Shape", "Param #", std::string(70, '='));
}

std::string totals(const Module& model) {
  const std::int64_t total = count(model, false), trainable = count(model, true);
  return fmt::format("{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n{}\n", std::string(70, '='),
                     total, trainable, total - trainable, std::string(70, '_'));
}

std::string child_rows(const Module& model) {
  std::string out;
  for (const auto& [name, child] : model.named_children())
    out += row(fmt::format("{} ({})", name, child->type_name()), "-", count(*child, false));
  std::int64_t own = 0;
  for (const auto& p : model.parameters(/*recurse=*/false)) own += p.numel();
  if (own > 0) out += row("(own parameters)", "-", own);
  return out;
}

}  // namespace

std::string summary(const Module& model) { return header(model) + child_rows(model) + totals(model); }

std::string summary(Module& model, const Variable& example) {
  NoGradGuard no_grad;
  std::string out = header(model);
  if (auto* seq = dynamic_cast<Sequential*>(&model)) {
    Variable x = example;
    for (std::size_t i = 0; i < seq->size(); ++i) {
      Module& layer = *(*seq)[i];
      x = layer.forward(x);
      out += row(fmt::format("{} ({})", i, layer.type_name()), x.shape().str(), count(layer, false));
    }
  } else {
    out += child_rows(model);
    out += row(fmt::format("output of {}", model.type_name()), model.forward(example).shape().str(), 0);
  }
  return out + totals(model);
}

}  // namespace kiln::nn
