#include "interop/reference_case.hpp"

#include <map>

#include <algorithm>
#include <cmath>
#include <functional>

#include "io/safetensors.hpp"
#include "plugins/registry.hpp"
#include "sequence/attention.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/transformer.hpp"
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
  /// A positive, finite number.
  double positive(const std::string& key) const {
    const std::string& v = text(key);
    char* end = nullptr;
    const double out = std::strtod(v.c_str(), &end);
    KILN_CHECK(!v.empty() && end == v.c_str() + v.size() && std::isfinite(out) && out > 0,
               "{}: metadata '{}' = '{}' is not a positive number", path, key, v);
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

// The registered cell a reference case's module runs: PyTorch's recurrent modules by name, or for
// "kiln.Recurrent" the case's own 'cell' metadata (any registered cell, a plugin's included).
std::string case_cell(const std::string& module, const Options& o) {
  if (module == "kiln.Recurrent") return o.text("cell");
  static const std::map<std::string, std::string> pytorch{{"nn.LSTM", "lstm"}, {"nn.GRU", "gru"}};
  if (const auto it = pytorch.find(module); it != pytorch.end()) return it->second;
  const auto it = o.meta.find("nonlinearity");  // nn.RNN
  const std::string nl = it == o.meta.end() || it->second.empty() ? "tanh" : it->second;
  KILN_CHECK(nl == "tanh" || nl == "relu", "{}: metadata 'nonlinearity' = '{}' is not tanh or relu", o.path, nl);
  return "rnn_" + nl;
}

std::shared_ptr<nn::Recurrent> build_recurrent(const std::string& module, const Options& o) {
  nn::RecurrentOptions opt(o.integer("input_size"), o.integer("hidden_size"));
  opt.num_layers(o.integer("num_layers"))
      .bidirectional(o.flag("bidirectional", false))
      .batch_first(o.flag("batch_first", false))
      .bias(o.flag("bias", true));
  try {
    return nn::make_recurrent(case_cell(module, o), opt);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", o.path, e.what()));
  }
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


using InputFn = std::function<Variable(const std::string&)>;
using RunFn = std::function<std::map<std::string, Variable>(const InputFn& input, const InputFn& mask,
                                                             const std::map<std::string, Variable>& inputs)>;

// A module rebuilt from a case, with how to run it on the case's inputs.
struct Built {
  std::shared_ptr<nn::Module> module;
  std::string description;
  RunFn run;
  std::function<std::string()> path;  ///< after the run: which implementation ran, when it varies per call
};

Built build_recurrent_case(const std::string& module, const Options& o, const std::string& impl) {
  auto layer = build_recurrent(module, o);
  layer->set_impl(impl == "generic" ? nn::Impl::Generic : impl == "fused" ? nn::Impl::Fused
                  : impl == "compiled" ? nn::Impl::Compiled : nn::Impl::Auto);
  std::string why;
  const bool fused = layer->uses_fused(&why);
  KILN_CHECK(fused || (impl != "fused" && impl != "compiled"), "{}: --impl {}: {}", o.path, impl, why);
  const char* path = !fused ? " [generic graph]" : layer->choose_kernel()->in_process ? " [compiled cell]" : " [fused kernel]";
  Built b{layer, module + "(" + layer->extra_repr() + ")" + path, {}};
  b.run = [layer](const InputFn& input, const InputFn& mask, const std::map<std::string, Variable>& inputs) {
    std::vector<Variable> state;
    if (inputs.count("h0")) state.push_back(inputs.at("h0"));
    if (inputs.count("c0")) state.push_back(inputs.at("c0"));
    const nn::RecurrentOutput r = layer->forward(input("x"), state, mask("lengths"));
    std::map<std::string, Variable> out{{"out", r.output}, {"h_n", r.h_n}};
    if (r.c_n.defined()) out["c_n"] = r.c_n;
    return out;
  };
  return b;
}

// A bool mask from the case, or a causal one when the metadata says 'causal' and none is stored.
Variable case_mask(const InputFn& mask, const std::string& name, bool causal, std::int64_t length) {
  Variable m = mask(name);
  if (!m.defined() && causal) m = Variable(nn::causal_mask(length));
  return m;
}

// " [fused attention]" when every attention module's last call ran the fused kernel.
std::string attention_path(const std::vector<const nn::MultiheadAttention*>& modules) {
  bool fused = true;
  for (const auto* m : modules) fused = fused && m->last_call_fused();
  return fused ? " [fused attention]" : " [generic graph]";
}

Built build_attention(const std::string& module, const Options& o, const std::string& impl_name) {
  // (No compiled attention: "compiled" runs attention as auto.)
  const nn::Impl impl = impl_name == "generic" ? nn::Impl::Generic : impl_name == "fused" ? nn::Impl::Fused : nn::Impl::Auto;
  const bool batch_first = o.flag("batch_first", false);
  if (module == "nn.MultiheadAttention") {
    auto mha = std::make_shared<nn::MultiheadAttention>(
        nn::MultiheadAttentionOptions(o.integer("embed_dim"), o.integer("num_heads")).batch_first(batch_first).impl(impl));
    const bool causal = o.flag("causal", false);
    Built b{mha, module + "(" + mha->extra_repr() + ")", {}, [mha] { return attention_path({mha.get()}); }};
    b.run = [mha, causal, batch_first](const InputFn& input, const InputFn& mask, const std::map<std::string, Variable>&) {
      const Variable q = input("query");
      const std::int64_t lq = q.size(batch_first || q.dim() == 2 ? -2 : 0);
      auto opts = nn::AttentionForwardOptions()
                      .attn_mask(case_mask(mask, "attn_mask", causal, lq))
                      .key_padding_mask(mask("key_padding_mask"))
                      .average_attn_weights(false);
      const nn::AttentionOutput a = mha->forward(q, input("key"), input("value"), opts);
      return std::map<std::string, Variable>{{"out", a.output}, {"attn_weights", a.weights}};
    };
    return b;
  }
  auto lo = nn::TransformerLayerOptions(o.integer("d_model"), o.integer("nhead"))
                .dim_feedforward(o.integer("dim_feedforward"))
                .dropout(0)
                .batch_first(batch_first)
                .norm_first(o.flag("norm_first", false));
  const std::string act = o.meta.count("activation") ? o.meta.at("activation") : "relu";
  KILN_CHECK(act == "relu" || act == "gelu", "{}: metadata 'activation' = '{}' is not relu or gelu", o.path, act);
  lo.activation(act == "relu" ? nn::FeedForwardActivation::ReLU : nn::FeedForwardActivation::GELU);
  if (o.meta.count("layer_norm_eps")) lo.layer_norm_eps(o.positive("layer_norm_eps"));
  auto length = [batch_first](const Variable& x) { return x.size(batch_first || x.dim() == 2 ? -2 : 0); };
  if (module == "nn.TransformerEncoderLayer") {
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(lo);
    layer->self_attn->set_impl(impl);
    const bool causal = o.flag("causal", false);
    Built b{layer, module + "(" + layer->extra_repr() + ")", {}, [layer] { return attention_path({layer->self_attn.get()}); }};
    b.run = [layer, causal, length](const InputFn& input, const InputFn& mask, const std::map<std::string, Variable>&) {
      const Variable x = input("x");
      auto masks = nn::TransformerMasks()
                       .src_mask(case_mask(mask, "src_mask", causal, length(x)))
                       .src_key_padding_mask(mask("src_key_padding_mask"));
      return std::map<std::string, Variable>{{"out", layer->forward(x, masks)}};
    };
    return b;
  }
  KILN_CHECK(module == "nn.TransformerDecoderLayer", "{}: module '{}' is not supported yet", o.path, module);
  auto layer = std::make_shared<nn::TransformerDecoderLayer>(lo);
  layer->self_attn->set_impl(impl);
  layer->multihead_attn->set_impl(impl);
  const bool causal = o.meta.count("tgt_mask") && o.meta.at("tgt_mask") == "causal";
  Built b{layer, module + "(" + layer->extra_repr() + ")", {},
          [layer] { return attention_path({layer->self_attn.get(), layer->multihead_attn.get()}); }};
  b.run = [layer, causal, length](const InputFn& input, const InputFn& mask, const std::map<std::string, Variable>&) {
    const Variable tgt = input("tgt");
    auto masks = nn::TransformerMasks()
                     .tgt_mask(case_mask(mask, "tgt_mask", causal, length(tgt)))
                     .tgt_key_padding_mask(mask("tgt_key_padding_mask"))
                     .memory_mask(mask("memory_mask"))
                     .memory_key_padding_mask(mask("memory_key_padding_mask"));
    return std::map<std::string, Variable>{{"out", layer->forward(tgt, input("memory"), masks)}};
  };
  return b;
}

void check_run_options(DType dtype, const std::string& impl) {
  KILN_CHECK(is_floating(dtype), "compare: dtype must be float32 or float64");
  KILN_CHECK(impl == "generic" || impl == "fused" || impl == "auto" || impl == "compiled",
             "compare: impl must be generic, fused, compiled or auto, got '{}'",
             impl);
}

}  // namespace

bool CaseReport::ok() const {
  return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const TensorComparison& r) { return r.ok; });
}

double default_tolerance(DType dtype) { return dtype == kFloat64 ? 1e-8 : 1e-4; }

std::vector<std::string> supported_reference_modules() {
  return {"nn.RNN", "nn.LSTM", "nn.GRU", "kiln.Recurrent", "nn.MultiheadAttention", "nn.TransformerEncoderLayer",
          "nn.TransformerDecoderLayer"};
}

CaseReport run_reference_case(const std::string& path, DType dtype, const std::string& impl) {
  check_run_options(dtype, impl);
  return run_reference_case(io::load_safetensors(path), path, dtype, impl);
}

CaseReport run_reference_case(const io::Safetensors& file, const std::string& path, DType dtype, const std::string& impl) {
  check_run_options(dtype, impl);
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
  const Built built = module == "nn.MultiheadAttention" || module.rfind("nn.Transformer", 0) == 0
                          ? build_attention(module, o, impl)
                          : build_recurrent_case(module, o, impl);
  report.module = built.description;
  nn::Module& layer = *built.module;
  layer.to(dtype);
  nn::StateDict params;
  for (const auto& [key, t] : file.tensors)
    if (key.rfind("param.", 0) == 0) params.emplace(key.substr(6), t);
  try {
    layer.load_state_dict(params);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }

  std::map<std::string, Variable> inputs;
  std::map<std::string, Variable> masks;
  for (const auto& [key, t] : file.tensors) {
    if (key.rfind("input.", 0) != 0) continue;
    const std::string name = key.substr(6);
    if (t.dtype() == kBool || name == "lengths") masks[name] = Variable(t);
    else inputs[name] = Variable(t.to(dtype), true);
  }
  auto input = [&](const std::string& name) {
    auto it = inputs.find(name);
    KILN_CHECK(it != inputs.end(), "{}: the case has no input.{}", path, name);
    return it->second;
  };
  auto mask = [&](const std::string& name) {
    auto it = masks.find(name);
    return it == masks.end() ? Variable() : Variable(it->second.value().to(name == "lengths" ? kInt64 : kBool));
  };

  std::map<std::string, Variable> outputs;
  try {
    outputs = built.run(input, mask, inputs);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  if (built.path) report.module += built.path();
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
  for (const auto& [name, p] : layer.named_parameters()) report.kiln["grad.param." + name] = p.grad();
  for (const auto& [key, ref] : file.tensors) {
    if (key.rfind("output.", 0) != 0 && key.rfind("grad.", 0) != 0) continue;
    auto it = report.kiln.find(key);
    report.rows.push_back(compare(key, it == report.kiln.end() ? Tensor() : it->second, ref, report.tolerance));
  }
  return report;
}

}  // namespace kiln::interop
