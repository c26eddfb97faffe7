#include "bench/bench_model.hpp"

#include <fmt/format.h>

#include "layers/recurrent.hpp"
#include "layers/research_cells.hpp"
#include "layers/transformer.hpp"
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

int gates(const std::string& cell) {
  if (cell == "lstm" || cell == "layer_norm_lstm") return 4;
  if (cell == "gru" || cell == "gru_reset_before") return 3;
  if (cell == "mgu") return 2;
  if (cell == "rnn_tanh" || cell == "rnn_relu") return 1;
  return 0;
}

bool known_model(const std::string& cell) { return gates(cell) > 0 || cell == "transformer_encoder"; }

bool runs_on(const std::string& cell, const Config& c) { return (cell == "transformer_encoder") == (c.name == "t"); }

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
      : layer_(std::move(layer)), x_(randn({c.seq, c.batch, c.input}), true) {}
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
      : layer_(std::move(layer)), x_(randn({c.seq, c.batch, c.input}), true) {}
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

std::unique_ptr<Model> make_kiln(const std::string& cell, const Config& c, bool fused, std::string* why) {
  using namespace nn;
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
                                 .impl(fused ? Impl::Fused : Impl::Generic);
  std::shared_ptr<Recurrent> layer;
  if (cell == "lstm") layer = std::make_shared<LSTM>(o);
  if (cell == "gru") layer = std::make_shared<GRU>(o);
  if (cell == "gru_reset_before") layer = std::make_shared<GRU>(RecurrentOptions(o).reset_after(false));
  if (cell == "rnn_tanh") layer = std::make_shared<RNN>(o);
  if (cell == "rnn_relu") layer = std::make_shared<RNN>(RecurrentOptions(o).nonlinearity(Nonlinearity::ReLU));
  if (cell == "mgu") layer = std::make_shared<MGU>(o);
  if (cell == "layer_norm_lstm") layer = std::make_shared<LayerNormLSTM>(o);
  if (!layer) {
    if (why) *why = fmt::format("no Kiln layer for cell '{}'", cell);
    return nullptr;
  }
  if (fused && !layer->uses_fused(why)) return nullptr;
  return std::make_unique<KilnModel>(layer, c);
}

}  // namespace kiln::bench
