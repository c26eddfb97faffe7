// libtorch's layers for `kiln bench`; compiled only when CMake finds Debian's libtorch-dev.

#include <functional>
#include <map>

#include <torch/torch.h>

#include "bench/bench_model.hpp"

namespace kiln::bench {
namespace {

template <class Layer>
class TorchModel : public Model {
 public:
  TorchModel(Layer layer, const Config& c)
      : layer_(std::move(layer)), x_(torch::randn({c.seq, c.batch, c.input}).requires_grad_(c.input_grad)) {}
  void forward() override { std::get<0>(layer_->forward(x_)); }
  void train_step() override {
    std::get<0>(layer_->forward(x_)).sum().backward();
    layer_->zero_grad();
    x_.mutable_grad().reset();
  }

 private:
  Layer layer_;
  torch::Tensor x_;
};

// libtorch's counterpart of a registered cell, where it has one (nn::CellRegistry names the cells).
template <class Layer, class Options>
std::unique_ptr<Model> torch_recurrent(Options o, const Config& c) {
  return std::make_unique<TorchModel<Layer>>(Layer(o.num_layers(c.layers).bidirectional(c.bidirectional)), c);
}

using TorchMaker = std::function<std::unique_ptr<Model>(const Config&)>;

const std::map<std::string, TorchMaker>& torch_counterparts() {
  static const std::map<std::string, TorchMaker> m{
      {"lstm", [](const Config& c) { return torch_recurrent<torch::nn::LSTM>(torch::nn::LSTMOptions(c.input, c.hidden), c); }},
      {"gru", [](const Config& c) { return torch_recurrent<torch::nn::GRU>(torch::nn::GRUOptions(c.input, c.hidden), c); }},
      {"rnn_tanh",
       [](const Config& c) {
         return torch_recurrent<torch::nn::RNN>(torch::nn::RNNOptions(c.input, c.hidden).nonlinearity(torch::kTanh), c);
       }},
      {"rnn_relu",
       [](const Config& c) {
         return torch_recurrent<torch::nn::RNN>(torch::nn::RNNOptions(c.input, c.hidden).nonlinearity(torch::kReLU), c);
       }},
      {"transformer_encoder", [](const Config& c) -> std::unique_ptr<Model> {
         struct Encoder : Model {
           explicit Encoder(const Config& c)
               : layer(torch::nn::TransformerEncoderLayerOptions(c.input, c.heads).dim_feedforward(c.hidden)),
                 x(torch::randn({c.seq, c.batch, c.input}).requires_grad_(c.input_grad)) {}
           void forward() override { layer->forward(x); }
           void train_step() override {
             layer->forward(x).sum().backward();
             layer->zero_grad();
             x.mutable_grad().reset();
           }
           torch::nn::TransformerEncoderLayer layer;
           torch::Tensor x;
         };
         return std::make_unique<Encoder>(c);
       }}};
  return m;
}

}  // namespace

std::unique_ptr<Model> make_torch(const std::string& cell, const Config& c, std::string* why) {
  torch::manual_seed(0);
  const auto& m = torch_counterparts();
  if (const auto it = m.find(cell); it != m.end()) return it->second(c);
  if (why) *why = "libtorch has no " + cell;
  return nullptr;
}

void set_torch_threads(int n) { torch::set_num_threads(n); }

std::string torch_version() { return "libtorch " TORCH_VERSION; }

}  // namespace kiln::bench
