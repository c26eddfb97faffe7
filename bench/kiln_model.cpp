#include "bench/bench_model.hpp"

#include <fmt/format.h>

#include "sequence/recurrent.hpp"
#include "layers/cell_registry.hpp"
#include "sequence/transformer.hpp"
#include "ops/ops.hpp"

namespace kiln::bench {

std::string Config::describe() const {
  if (heads > 0) return fmt::format("B={} T={} d_model={} heads={} ff={}", batch, seq, input, heads, hidden);
  return fmt::format("B={} T={} I={} H={}{}{}", batch, seq, input, hidden, layers > 1 ? fmt::format(" L={}", layers) : "",
                     bidirectional ? " bidir" : "");
}

const std::vector<Config>& configs() {
  static const std::vector<Config> c{{"a", 64, 100, 128, 256, 1, false},
                                     {"b", 32, 50, 32, 64, 1, false},
                                     {"c", 64, 50, 512, 1024, 1, false},
                                     {"d", 32, 64, 128, 256, 2, true},
                                     {"t", 32, 64, 256, 1024, 1, false, 8}};
  return c;
}

std::string configs_help() {
  std::string s = "Configurations:";
  for (const auto& c : configs()) s += fmt::format(" {} ({}{})", c.name, c.is_transformer() ? "Transformer encoder layer, " : "", c.describe());
  return s;
}

Config parse_shape(const std::string& spec) {
  std::vector<std::int64_t> v;
  std::size_t start = 0;
  while (start <= spec.size()) {
    const std::size_t end = std::min(spec.find(',', start), spec.size());
    const std::string part = spec.substr(start, end - start);
    std::size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    KILN_CHECK(!part.empty() && used == part.size(), "bench: --shape '{}': '{}' is not a whole number (B,T,I,H[,L[,bidir]])", spec, part);
    v.push_back(n);
    start = end + 1;
  }
  KILN_CHECK(v.size() >= 4 && v.size() <= 6, "bench: --shape '{}' has {} numbers; give B,T,I,H[,L[,bidir]]", spec, v.size());
  for (std::size_t i = 0; i < std::min<std::size_t>(v.size(), 5); ++i)
    KILN_CHECK(v[i] > 0 && v[i] <= (1 << 20), "bench: --shape '{}': every size must be in [1, 2^20], got {}", spec, v[i]);
  KILN_CHECK(v.size() < 6 || v[5] == 0 || v[5] == 1, "bench: --shape '{}': bidir must be 0 or 1, got {}", spec, v[5]);
  return Config{spec, v[0], v[1], v[2], v[3], v.size() > 4 ? v[4] : 1, v.size() > 5 && v[5] == 1};
}

int gates(const std::string& cell) {
  const nn::CellSpec* spec = nn::CellRegistry::global().get(cell);
  return spec != nullptr ? static_cast<int>(spec->gates) : 0;
}

void check_model(const std::string& cell) {
  if (cell != "transformer_encoder") nn::CellRegistry::global().at(cell);  // throws naming the registered cells
}

bool runs_on(const std::string& cell, const Config& c) { return (cell == "transformer_encoder") == c.is_transformer(); }

double forward_flops(const std::string& cell, const Config& c) {
  if (cell == "transformer_encoder") {
    const double n = static_cast<double>(c.batch * c.seq), e = static_cast<double>(c.input), f = static_cast<double>(c.hidden);
    return 2 * n * (4 * e * e + 2 * e * f) + 4.0 * static_cast<double>(c.batch * c.seq * c.seq) * e;
  }
  const double dirs = c.bidirectional ? 2 : 1;
  double flops = 0;
  for (std::int64_t l = 0; l < c.layers; ++l) {
    const double in = l == 0 ? static_cast<double>(c.input) : dirs * static_cast<double>(c.hidden);
    flops += dirs * 2.0 * static_cast<double>(c.seq * c.batch) * gates(cell) * static_cast<double>(c.hidden) *
             (in + static_cast<double>(c.hidden));
  }
  return flops;
}

namespace {

class KilnModel : public Model {
 public:
  KilnModel(std::shared_ptr<nn::Recurrent> layer, const Config& c)
      : layer_(std::move(layer)), x_(randn({c.seq, c.batch, c.input}), c.input_grad) {}
  void forward() override { layer_->forward(x_, {}); }
  void train_step() override {
    sum(layer_->forward(x_, {}).output).backward();
    layer_->zero_grad();
    x_.zero_grad();
  }

 private:
  std::shared_ptr<nn::Recurrent> layer_;
  Variable x_;
};

// A Transformer encoder layer (PyTorch's defaults: post-norm, relu, dropout 0.1, in training mode).
class TransformerModel : public Model {
 public:
  TransformerModel(std::shared_ptr<nn::TransformerEncoderLayer> layer, const Config& c)
      : layer_(std::move(layer)), x_(randn({c.seq, c.batch, c.input}), c.input_grad) {}
  void forward() override { layer_->forward(x_); }
  void train_step() override {
    sum(layer_->forward(x_)).backward();
    layer_->zero_grad();
    x_.zero_grad();
  }

 private:
  std::shared_ptr<nn::TransformerEncoderLayer> layer_;
  Variable x_;
};

}  // namespace

std::unique_ptr<Model> make_kiln(const std::string& cell, const Config& c, const std::string& impl, std::string* why) {
  using namespace nn;
  const bool fused = impl != "generic";
  manual_seed(0);
  if (cell == "transformer_encoder") {
    auto layer = std::make_shared<TransformerEncoderLayer>(TransformerLayerOptions(c.input, c.heads).dim_feedforward(c.hidden));
    layer->self_attn->set_impl(fused ? Impl::Auto : Impl::Generic);
    auto model = std::make_unique<TransformerModel>(layer, c);
    model->forward();
    if (fused && !layer->self_attn->last_call_fused(why)) return nullptr;
    return model;
  }
  const RecurrentOptions o = RecurrentOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)
                                 .impl(impl == "compiled" ? Impl::Compiled : fused ? Impl::Fused : Impl::Generic);
  const std::shared_ptr<Recurrent> layer = make_recurrent(cell, o);
  if (fused && !layer->uses_fused(why)) return nullptr;
  return std::make_unique<KilnModel>(layer, c);
}

}  // namespace kiln::bench
