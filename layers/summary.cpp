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

}  // namespace

std::string summary(Module& model, const Variable& example) {
  NoGradGuard no_grad;
  const std::string thin(70, '_'), thick(70, '=');
  std::string out = fmt::format("Model: {}\n{}\n {:<34} {:<22} {:>10}\n{}\n", model.type_name(), thin, "Layer (type)",
                                "Output Shape", "Param #", thick);
  if (auto* seq = dynamic_cast<Sequential*>(&model)) {
    Variable x = example;
    for (std::size_t i = 0; i < seq->size(); ++i) {
      Module& layer = *(*seq)[i];
      x = layer.forward(x);
      out += row(fmt::format("{} ({})", i, layer.type_name()), x.shape().str(), count(layer, false));
    }
  } else {
    for (const auto& [name, child] : model.named_children())
      out += row(fmt::format("{} ({})", name, child->type_name()), "-", count(*child, false));
    std::int64_t own = 0;
    for (const auto& p : model.parameters(/*recurse=*/false)) own += p.numel();
    if (own > 0) out += row("(own parameters)", "-", own);
    out += row(fmt::format("output of {}", model.type_name()), model.forward(example).shape().str(), 0);
  }
  const std::int64_t total = count(model, false), trainable = count(model, true);
  out += fmt::format("{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n{}\n", thick, total, trainable,
                     total - trainable, thin);
  return out;
}

}  // namespace kiln::nn
