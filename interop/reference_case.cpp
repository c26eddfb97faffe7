#include "interop/reference_case.hpp"

#include <algorithm>
#include <cmath>

#include "io/safetensors.hpp"
#include "layers/recurrent.hpp"
#include "ops/ops.hpp"

namespace kiln::interop {
namespace {

// Reads the module's options from the case's metadata, naming the file and key on failure.
struct Options {
  const std::string& path;
  const std::map<std::string, std::string>& meta;

  const std::string& text(const std::string& key) const {
    auto it = meta.find(key);
    KILN_CHECK(it != meta.end(), "{}: metadata has no '{}'", path, key);
    return it->second;
  }
  std::int64_t integer(const std::string& key) const {
    const std::string& v = text(key);
    std::size_t used = 0;
    std::int64_t out = 0;
    try {
      out = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    KILN_CHECK(used == v.size() && !v.empty(), "{}: metadata '{}' = '{}' is not an integer", path, key, v);
    return out;
  }
  bool flag(const std::string& key, bool fallback) const {
    auto it = meta.find(key);
    if (it == meta.end() || it->second.empty()) return fallback;
    KILN_CHECK(it->second == "True" || it->second == "False", "{}: metadata '{}' = '{}' is not True or False", path,
               key, it->second);
    return it->second == "True";
  }
};

std::shared_ptr<nn::Recurrent> build_recurrent(const std::string& module, const Options& o) {
  nn::RecurrentOptions opt(o.integer("input_size"), o.integer("hidden_size"));
  opt.num_layers(o.integer("num_layers"))
      .bidirectional(o.flag("bidirectional", false))
      .batch_first(o.flag("batch_first", false))
      .bias(o.flag("bias", true));
  if (module == "nn.LSTM") return std::make_shared<nn::LSTM>(opt);
  if (module == "nn.GRU") return std::make_shared<nn::GRU>(opt);
  const auto it = o.meta.find("nonlinearity");
  const std::string nl = it == o.meta.end() || it->second.empty() ? "tanh" : it->second;
  KILN_CHECK(nl == "tanh" || nl == "relu", "{}: metadata 'nonlinearity' = '{}' is not tanh or relu", o.path, nl);
  opt.nonlinearity(nl == "tanh" ? nn::Nonlinearity::Tanh : nn::Nonlinearity::ReLU);
  return std::make_shared<nn::RNN>(opt);
}

TensorComparison compare(const std::string& name, const Tensor& kiln, const Tensor& ref, double tol) {
  TensorComparison c{name, ref.shape(), 0, 0, false, ""};
  if (!kiln.defined()) {
    c.problem = "Kiln produced no such tensor";
    return c;
  }
  if (kiln.numel() != ref.numel() || (kiln.shape() != ref.shape() && ref.numel() != 1)) {
    c.problem = fmt::format("shape {} differs from the reference's {}", kiln.shape(), ref.shape());
    return c;
  }
  const auto a = kiln.to_vector(), b = ref.to_vector();
  double scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    c.max_abs_error = std::isnan(d) ? INFINITY : std::max(c.max_abs_error, d);
    scale = std::max(scale, std::abs(b[i]));
  }
  c.max_rel_error = c.max_abs_error / std::max(scale, 1e-300);
  c.ok = c.max_rel_error <= tol;
  return c;
}

}  // namespace

bool CaseReport::ok() const {
  return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const TensorComparison& r) { return r.ok; });
}

double default_tolerance(DType dtype) { return dtype == kFloat64 ? 1e-8 : 1e-4; }

std::vector<std::string> supported_reference_modules() { return {"nn.RNN", "nn.LSTM", "nn.GRU"}; }

CaseReport run_reference_case(const std::string& path, DType dtype, const std::string& impl) {
  KILN_CHECK(is_floating(dtype), "compare: dtype must be float32 or float64");
  KILN_CHECK(impl == "generic" || impl == "fused" || impl == "auto", "compare: impl must be generic, fused or auto, got '{}'",
             impl);
  const io::Safetensors file = io::load_safetensors(path);
  const Options o{path, file.metadata};
  const std::string& module = o.text("module");
  const auto supported = supported_reference_modules();
  KILN_CHECK(std::find(supported.begin(), supported.end(), module) != supported.end(),
             "{}: module '{}' is not supported yet (supported: {})", path, module, fmt::join(supported, ", "));
  auto get = [&](const std::string& key) -> const Tensor* {
    auto it = file.tensors.find(key);
    return it == file.tensors.end() ? nullptr : &it->second;
  };

  CaseReport report;
  report.path = path;
  report.dtype = dtype;
  report.tolerance = default_tolerance(dtype);
  auto layer = build_recurrent(module, o);
  layer->set_impl(impl == "generic" ? nn::Impl::Generic : impl == "fused" ? nn::Impl::Fused : nn::Impl::Auto);
  std::string why;
  const bool fused = layer->uses_fused(&why);
  KILN_CHECK(fused || impl != "fused", "{}: --impl fused: {}", path, why);
  report.module = module + "(" + layer->extra_repr() + ")" + (fused ? " [fused kernel]" : " [generic graph]");
  layer->to(dtype);
  nn::StateDict params;
  for (const auto& [key, t] : file.tensors)
    if (key.rfind("param.", 0) == 0) params.emplace(key.substr(6), t);
  try {
    layer->load_state_dict(params);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }

  std::map<std::string, Variable> inputs;
  for (const char* name : {"x", "h0", "c0"})
    if (const Tensor* t = get(std::string("input.") + name)) inputs[name] = Variable(t->to(dtype), true);
  KILN_CHECK(inputs.count("x"), "{}: the case has no input.x", path);
  std::vector<Variable> state;
  if (inputs.count("h0")) state.push_back(inputs["h0"]);
  if (inputs.count("c0")) state.push_back(inputs["c0"]);
  Variable lengths;
  if (const Tensor* t = get("input.lengths")) lengths = Variable(t->to(kInt64));

  const nn::RecurrentOutput r = layer->forward(inputs["x"], state, lengths);
  std::map<std::string, Variable> outputs{{"out", r.output}, {"h_n", r.h_n}};
  if (r.c_n.defined()) outputs["c_n"] = r.c_n;
  Variable loss;
  for (const auto& [name, v] : outputs) {
    const Tensor* w = get("loss_weight." + name);
    if (w == nullptr) continue;
    KILN_CHECK(w->shape() == v.shape(), "{}: loss_weight.{} is {} but Kiln's output.{} is {}", path, name, w->shape(),
               name, v.shape());
    Variable term = sum(v * Variable(w->to(dtype)));
    loss = loss.defined() ? loss + term : term;
  }
  KILN_CHECK(loss.defined(), "{}: the case has no loss_weight.* for any output", path);
  loss.backward();

  for (const auto& [name, v] : outputs) report.kiln["output." + name] = v.value();
  report.kiln["output.loss"] = loss.value();
  for (const auto& [name, v] : inputs) report.kiln["grad." + name] = v.grad();
  for (const auto& [name, p] : layer->named_parameters()) report.kiln["grad.param." + name] = p.grad();
  for (const auto& [key, ref] : file.tensors) {
    if (key.rfind("output.", 0) != 0 && key.rfind("grad.", 0) != 0) continue;
    auto it = report.kiln.find(key);
    report.rows.push_back(compare(key, it == report.kiln.end() ? Tensor() : it->second, ref, report.tolerance));
  }
  return report;
}

}  // namespace kiln::interop
