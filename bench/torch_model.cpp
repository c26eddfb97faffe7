// libtorch's layers for `kiln bench`; compiled only when CMake finds Debian's libtorch-dev.

#include <torch/torch.h>

#include "bench/bench_model.hpp"

namespace kiln::bench {
namespace {

template <class Layer>
class TorchModel : public Model {
 public:
  TorchModel(Layer layer, const Config& c) : layer_(std::move(layer)), x_(torch::randn({c.seq, c.batch, c.input}).requires_grad_(true)) {}
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

}  // namespace

std::unique_ptr<Model> make_torch(const std::string& cell, const Config& c, std::string* why) {
  torch::manual_seed(0);
  if (cell == "lstm")
    return std::make_unique<TorchModel<torch::nn::LSTM>>(
        torch::nn::LSTM(torch::nn::LSTMOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)), c);
  if (cell == "gru")
    return std::make_unique<TorchModel<torch::nn::GRU>>(
        torch::nn::GRU(torch::nn::GRUOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)), c);
  if (cell == "rnn_tanh" || cell == "rnn_relu")
    return std::make_unique<TorchModel<torch::nn::RNN>>(
        torch::nn::RNN(torch::nn::RNNOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)
                           .nonlinearity(cell == "rnn_relu" ? torch::nn::RNNOptions::nonlinearity_t(torch::kReLU)
                                                            : torch::nn::RNNOptions::nonlinearity_t(torch::kTanh))),
        c);
  if (cell == "transformer_encoder") {
    struct Encoder : Model {
      Encoder(const Config& c)
          : layer(torch::nn::TransformerEncoderLayerOptions(c.input, c.heads).dim_feedforward(c.hidden)),
            x(torch::randn({c.seq, c.batch, c.input}).requires_grad_(true)) {}
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
  }
  if (why) *why = "libtorch has no " + cell;
  return nullptr;
}

void set_torch_threads(int n) { torch::set_num_threads(n); }

std::string torch_version() { return "libtorch " TORCH_VERSION; }

}  // namespace kiln::bench
