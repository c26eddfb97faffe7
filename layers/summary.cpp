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
  // Each direct child's output shape, from a forward hook on it while the model runs once.
  const auto children = model.named_children();
  std::vector<std::string> shapes(children.size(), "-");
  std::vector<std::size_t> handles;
  for (std::size_t i = 0; i < children.size(); ++i)
    handles.push_back(children[i].second->register_forward_hook(
        [&shapes, i](const Module&, const Variable&, const Variable& out) { shapes[i] = out.shape().str(); }));
  Variable out;
  try {
    out = model(example);
  } catch (...) {
    for (std::size_t i = 0; i < children.size(); ++i) children[i].second->remove_forward_hook(handles[i]);
    throw;
  }
  for (std::size_t i = 0; i < children.size(); ++i) children[i].second->remove_forward_hook(handles[i]);
  Table t;
  for (std::size_t i = 0; i < children.size(); ++i)
    t.add(fmt::format("{} ({})", children[i].first, children[i].second->type_name()), shapes[i], count(*children[i].second, false));
  std::int64_t own = 0;
  for (const auto& p : model.parameters(/*recurse=*/false)) own += p.numel();
  if (own > 0 || dynamic_cast<Sequential*>(&model) == nullptr)
    t.add(fmt::format("output of {}{}", model.type_name(), own > 0 ? " (own parameters)" : ""), out.shape().str(), own);
  return t.render(model);
}

}  // namespace kiln::nn
