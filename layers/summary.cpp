#include "layers/summary.hpp"

#include "autograd/grad_mode.hpp"
#include "layers/sequential.hpp"

#include <algorithm>
#include <vector>

namespace kiln::nn {
namespace {

std::int64_t count(const Module& m, bool trainable) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters())
    if (!trainable || p.requires_grad()) n += p.numel();
  return n;
}

// The table's rows, then laid out with columns as wide as their widest entry (Keras's widths at least),
// so a long type name or shape does not push the columns apart.
struct Table {
  struct Row {
    std::string layer, shape;
    std::int64_t params;
  };
  std::vector<Row> rows;
  void add(std::string layer, std::string shape, std::int64_t params) { rows.push_back({std::move(layer), std::move(shape), params}); }
  std::string render(const Module& model) const {
    std::size_t lw = 34, sw = 22;
    for (const auto& r : rows) lw = std::max(lw, r.layer.size()), sw = std::max(sw, r.shape.size());
    const std::size_t width = lw + sw + 14;
    const std::int64_t total = count(model, false), trainable = count(model, true);
    std::string out = fmt::format("Model: {}\n{}\n {:<{}} {:<{}} {:>10}\n{}\n", model.type_name(), std::string(width, '_'),
                                  "Layer (type)", lw, "Output Shape", sw, "Param #", std::string(width, '='));
    for (const auto& r : rows) out += fmt::format(" {:<{}} {:<{}} {:>10}\n", r.layer, lw, r.shape, sw, r.params);
    return out + fmt::format("{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n{}\n", std::string(width, '='),
                             total, trainable, total - trainable, std::string(width, '_'));
  }
};

void child_rows(const Module& model, Table& t) {
  for (const auto& [name, child] : model.named_children()) t.add(fmt::format("{} ({})", name, child->type_name()), "-", count(*child, false));
  std::int64_t own = 0;
  for (const auto& p : model.parameters(/*recurse=*/false)) own += p.numel();
  if (own > 0) t.add("(own parameters)", "-", own);
}

}  // namespace

std::string summary(const Module& model) {
  Table t;
  child_rows(model, t);
  return t.render(model);
}

std::string summary(Module& model, const Variable& example) {
  NoGradGuard no_grad;
  Table t;
  if (auto* seq = dynamic_cast<Sequential*>(&model)) {
    Variable x = example;
    for (std::size_t i = 0; i < seq->size(); ++i) {
      Module& layer = *(*seq)[i];
      x = layer.forward(x);
      t.add(fmt::format("{} ({})", i, layer.type_name()), x.shape().str(), count(layer, false));
    }
  } else {
    child_rows(model, t);
    t.add(fmt::format("output of {}", model.type_name()), model.forward(example).shape().str(), 0);
  }
  return t.render(model);
}

}  // namespace kiln::nn
