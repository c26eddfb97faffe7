#include "experiment/build_model.hpp"

#include <fmt/format.h>

#include "layers/activation.hpp"
#include "layers/embedding.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace kiln::experiment {

namespace {

// Runs `make`, naming the layer in any error it raises (a size beyond memory, say).
template <class F>
auto at_layer(const LayerSpec& l, F&& make) {
  try {
    return make();
  } catch (const Error& err) {
    throw Error(fmt::format("{}: {}", l.path, err.what()));
  }
}

}  // namespace

std::shared_ptr<nn::Sequential> build_model(const Experiment& e, const Task& task) {
  KILN_CHECK(!e.model.empty(), "{}: model: the list of layers is empty", e.file);
  auto model = std::make_shared<nn::Sequential>();
  bool tokens = task.input_features() == 0, sequence = true;
  std::int64_t features = task.input_features();
  for (std::size_t i = 0; i < e.model.size(); ++i) {
    const LayerSpec& l = e.model[i];
    const bool later_recurrent = std::any_of(e.model.begin() + static_cast<std::ptrdiff_t>(i) + 1, e.model.end(),
                                             [](const LayerSpec& x) { return x.kind == "recurrent"; });
    KILN_CHECK(!tokens || l.kind == "embedding", "{}: the task gives token ids (vocabulary {}); the model must start with an "
               "embedding", l.path, task.vocabulary());
    if (l.kind == "embedding") {
      KILN_CHECK(tokens, "{}: an embedding takes token ids, but {} reach it", l.path,
                 i == 0 ? fmt::format("the task gives {} features per step", features) : std::string("features"));
      const std::int64_t vocab = l.vocab > 0 ? l.vocab : task.vocabulary();
      KILN_CHECK(vocab >= task.vocabulary(), "{}: vocab {} is smaller than the task's {} token ids", l.path, vocab,
                 task.vocabulary());
      model->push_back(at_layer(l, [&] { return std::make_shared<nn::Embedding>(vocab, l.size); }));
      tokens = false;
      features = l.size;
    } else if (l.kind == "recurrent") {
      KILN_CHECK(sequence, "{}: a recurrent layer needs a sequence, but the layer before it returns only the last step "
                 "(return_sequences: false)", l.path);
      const bool rs = l.return_sequences >= 0 ? l.return_sequences == 1 : later_recurrent || task.per_step();
      auto options = nn::RecurrentOptions(features, l.size).num_layers(l.layers).bidirectional(l.bidirectional).dropout(l.dropout)
                         .batch_first(true).single_bias(l.single_bias).return_sequences(rs)
                         .impl(l.impl == "generic" ? nn::Impl::Generic : l.impl == "fused" ? nn::Impl::Fused : nn::Impl::Auto);
      model->push_back(at_layer(l, [&] { return nn::make_recurrent(l.cell, options); }));
      features = l.size * (l.bidirectional ? 2 : 1);
      sequence = rs;
    } else if (l.kind == "linear") {
      const std::int64_t out = l.size > 0 ? l.size : task.outputs();
      model->push_back(at_layer(l, [&] { return std::make_shared<nn::Linear>(features, out); }));
      features = out;
    } else if (l.kind == "dropout") {
      model->push_back(std::make_shared<nn::Dropout>(l.dropout));
    } else if (l.kind == "layer_norm") {
      model->push_back(std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({features})));
    } else if (l.kind == "activation") {
      model->push_back(l.activation == "tanh" ? nn::Tanh() : l.activation == "relu" ? nn::ReLU()
                       : l.activation == "sigmoid" ? nn::Sigmoid() : nn::GELU());
    }
  }
  const std::string last = e.model.back().path;
  KILN_CHECK(!tokens, "{}: the model never embeds the task's token ids", last);
  KILN_CHECK(sequence == task.per_step(), "{}: the task '{}' wants {}, but the model ends with {}", last, e.data.task,
             task.per_step() ? "an output per step" : "one output per sequence",
             sequence ? "one per step (set return_sequences: false on the last recurrent layer)" : "one per sequence");
  KILN_CHECK(features == task.outputs(), "{}: the task '{}' wants {} output(s) per {}, the model gives {} (linear: {{out: "
             "auto}} gives what the task wants)", last, e.data.task, task.outputs(), task.per_step() ? "step" : "sequence",
             features);
  return model;
}

}  // namespace kiln::experiment
