#include "experiment/build_model.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "layers/activation.hpp"
#include "layers/embedding.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/positional.hpp"
#include "layers/sequential.hpp"
#include "layers/summary.hpp"
#include "seq2seq/transformer_seq2seq.hpp"
#include "sequence/pooling.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/transformer.hpp"
#include "tensor/error.hpp"

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

// True where a step is past its sequence's end: [B, T] for the Transformer's key padding mask.
Variable padding_mask(const Tensor& lengths, std::int64_t T) {
  const std::int64_t B = lengths.size(0);
  const std::int64_t* len = lengths.data<std::int64_t>();
  std::vector<bool> pad(static_cast<std::size_t>(B * T));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = std::max<std::int64_t>(1, len[b]); t < T; ++t) pad[static_cast<std::size_t>(b * T + t)] = true;
  return Variable(from_data(pad, {B, T}));
}

// A list of layers: the Sequential runs them in order, lengths go to those that take them.
class Stack : public Model {
 public:
  explicit Stack(std::shared_ptr<nn::Sequential> s) : seq_(std::move(s)) {}
  nn::Module& module() override { return *seq_; }
  Variable forward(const Batch& b) override {
    Variable x(b.x);
    if (!b.lengths.defined()) return (*seq_)(x);
    const Variable lengths(b.lengths);
    for (const auto& [name, child] : seq_->named_children()) {
      if (auto* r = dynamic_cast<nn::Recurrent*>(child.get())) {
        x = r->forward_padded(x, lengths);
      } else if (auto* enc = dynamic_cast<nn::TransformerEncoder*>(child.get())) {
        x = enc->forward(x, nn::TransformerMasks().src_key_padding_mask(padding_mask(b.lengths, x.size(1))));
      } else if (auto* pool = dynamic_cast<nn::SequencePool*>(child.get())) {
        x = pool->forward(x, lengths);
      } else {
        x = (*child)(x);
      }
    }
    return x;
  }
  std::string summary(const Batch& b) override { return nn::summary(*seq_, Variable(b.x)); }

 private:
  std::shared_ptr<nn::Sequential> seq_;
};

std::shared_ptr<nn::Sequential> build_stack(const Experiment& e, const Task& task) {
  auto model = std::make_shared<nn::Sequential>();
  bool tokens = task.input_features() == 0, sequence = true;
  std::int64_t features = task.input_features();
  for (std::size_t i = 0; i < e.model.size(); ++i) {
    const LayerSpec& l = e.model[i];
    const auto later = [&](std::initializer_list<const char*> kinds) {
      return std::any_of(e.model.begin() + static_cast<std::ptrdiff_t>(i) + 1, e.model.end(), [&](const LayerSpec& x) {
        return std::find(kinds.begin(), kinds.end(), x.kind) != kinds.end();
      });
    };
    KILN_CHECK(l.kind != "seq2seq" && l.kind != "transformer", "{}: an encoder-decoder is a whole model: `model: {{{}: {{...}}}}`, "
               "not a layer of a list", l.path, l.kind);
    KILN_CHECK(!tokens || l.kind == "embedding", "{}: the task gives token ids (vocabulary {}); the model must start with an "
               "embedding", l.path, task.vocabulary());
    const bool needs_sequence = l.kind == "recurrent" || l.kind == "transformer_encoder" || l.kind == "pool" || l.kind == "positional";
    KILN_CHECK(!needs_sequence || sequence, "{}: needs a sequence, but the layer before it returns one vector per sequence", l.path);
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
      const bool rs = l.return_sequences >= 0 ? l.return_sequences == 1
                                              : later({"recurrent", "transformer_encoder", "pool", "positional"}) || task.per_step();
      auto options = nn::RecurrentOptions(features, l.size).num_layers(l.layers).bidirectional(l.bidirectional).dropout(l.dropout)
                         .batch_first(true).single_bias(l.single_bias).return_sequences(rs)
                         .impl(l.impl == "generic" ? nn::Impl::Generic : l.impl == "fused" ? nn::Impl::Fused
                               : l.impl == "compiled" ? nn::Impl::Compiled : nn::Impl::Auto);
      if (l.forget_bias) options.forget_bias(*l.forget_bias);
      model->push_back(at_layer(l, [&] { return nn::make_recurrent(l.cell, options); }));
      features = l.size * (l.bidirectional ? 2 : 1);
      sequence = rs;
    } else if (l.kind == "positional") {
      KILN_CHECK(task.steps() <= l.max_len, "{}: max_len {} is shorter than the task's sequences ({} steps)", l.path, l.max_len,
                 task.steps());
      const auto o = nn::PositionalEncodingOptions(features).max_len(l.max_len).dropout(l.dropout).batch_first(true);
      model->push_back(at_layer(l, [&]() -> std::shared_ptr<nn::Module> {
        if (l.learned) return std::make_shared<nn::LearnedPositionalEncoding>(o);
        return std::make_shared<nn::SinusoidalPositionalEncoding>(o);
      }));
    } else if (l.kind == "transformer_encoder") {
      KILN_CHECK(features % l.heads == 0, "{}: {} features do not split into {} heads; make the size before it a multiple of {}",
                 l.path, features, l.heads, l.heads);
      model->push_back(at_layer(l, [&] {
        const auto o = nn::TransformerLayerOptions(features, l.heads).dim_feedforward(l.feedforward > 0 ? l.feedforward : 4 * features)
                           .dropout(l.dropout).norm_first(l.norm_first).batch_first(true)
                           .activation(l.activation == "gelu" ? nn::FeedForwardActivation::GELU : nn::FeedForwardActivation::ReLU);
        return std::make_shared<nn::TransformerEncoder>(nn::TransformerEncoderLayer(o), l.layers,
                                                        l.norm_first ? std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({features}))
                                                                     : nullptr);
      }));
    } else if (l.kind == "pool") {
      model->push_back(std::make_shared<nn::SequencePool>(l.mode == "last" ? nn::PoolMode::Last
                                                          : l.mode == "max" ? nn::PoolMode::Max : nn::PoolMode::Mean));
      sequence = false;
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
             sequence ? "one per step (set return_sequences: false on the last recurrent layer, or pool)" : "one per sequence");
  KILN_CHECK(features == task.outputs(), "{}: the task '{}' wants {} output(s) per {}, the model gives {} (linear: {{out: "
             "auto}} gives what the task wants)", last, e.data.task, task.outputs(), task.per_step() ? "step" : "sequence",
             features);
  return model;
}

// An encoder-decoder: logits [B, T, V] from the source and the shifted target.
template <class M>
class EncoderDecoder : public Model {
 public:
  EncoderDecoder(std::shared_ptr<M> m, double teacher_forcing) : m_(std::move(m)), teacher_forcing_(teacher_forcing) {}
  nn::Module& module() override { return *m_; }
  Variable forward(const Batch& b) override {
    if constexpr (std::is_same_v<M, nn::Seq2Seq>)
      return m_->forward(Variable(b.x), Variable(b.lengths), Variable(b.tgt_in), m_->is_training() ? teacher_forcing_ : 1.0).logits;
    else
      return m_->forward(Variable(b.x), Variable(b.lengths), Variable(b.tgt_in)).logits;
  }
  nn::IncrementalDecoder* decoder() override { return m_.get(); }
  std::string summary(const Batch&) override { return nn::summary(*m_); }

 private:
  std::shared_ptr<M> m_;
  double teacher_forcing_;
};

std::unique_ptr<Model> build_encoder_decoder(const LayerSpec& l, const Task& task) {
  const std::int64_t src = task.vocabulary(), tgt = task.outputs();
  if (l.kind == "transformer") {
    KILN_CHECK(l.size % l.heads == 0, "{}: d_model {} does not split into {} heads", l.path, l.size, l.heads);
    KILN_CHECK(task.steps() <= l.max_len && task.max_target_length() < l.max_len, "{}: max_len {} is shorter than the task's "
               "sequences ({} source, {} target steps)", l.path, l.max_len, task.steps(), task.max_target_length() + 1);
    auto o = nn::TransformerSeq2SeqOptions(src, tgt).d_model(l.size).nhead(l.heads).num_encoder_layers(l.layers)
                 .num_decoder_layers(l.decoder_layers).dim_feedforward(l.feedforward > 0 ? l.feedforward : 4 * l.size)
                 .dropout(l.dropout).norm_first(l.norm_first).learned_positions(l.learned).max_len(l.max_len)
                 .activation(l.activation == "gelu" ? nn::FeedForwardActivation::GELU : nn::FeedForwardActivation::ReLU)
                 .pad_id(kPadId).bos_id(kBosId).eos_id(kEosId);
    return std::make_unique<EncoderDecoder<nn::TransformerSeq2Seq>>(at_layer(l, [&] { return std::make_shared<nn::TransformerSeq2Seq>(o); }), 1.0);
  }
  auto o = nn::Seq2SeqOptions(src, tgt).embedding_dim(l.embedding > 0 ? l.embedding : l.size).hidden_size(l.size)
               .num_layers(l.layers).cell(l.cell).bidirectional_encoder(l.bidirectional).dropout(l.dropout)
               .reverse_source(l.reverse_source).input_feeding(l.input_feeding).pad_id(kPadId).bos_id(kBosId).eos_id(kEosId)
               .attention(l.attention == "bahdanau" ? nn::Seq2SeqAttention::Bahdanau
                          : l.attention == "luong" ? nn::Seq2SeqAttention::Luong : nn::Seq2SeqAttention::None)
               .score(l.score == "dot" ? nn::AttentionScore::Dot : l.score == "concat" ? nn::AttentionScore::Concat
                                                                                      : nn::AttentionScore::General);
  return std::make_unique<EncoderDecoder<nn::Seq2Seq>>(at_layer(l, [&] { return std::make_shared<nn::Seq2Seq>(o); }), l.teacher_forcing);
}

}  // namespace

std::unique_ptr<Model> build_model(const Experiment& e, const Task& task) {
  KILN_CHECK(!e.model.empty(), "{}: model: the list of layers is empty", e.file);
  const LayerSpec& first = e.model.front();
  const bool whole = first.kind == "seq2seq" || first.kind == "transformer";
  if (task.seq2seq()) {
    KILN_CHECK(whole && e.model.size() == 1, "{}: the task '{}' translates one sequence into another; its model is an "
               "encoder-decoder: `model: {{seq2seq: {{...}}}}` or `model: {{transformer: {{...}}}}`", first.path, e.data.task);
    return build_encoder_decoder(first, task);
  }
  KILN_CHECK(!whole, "{}: an encoder-decoder needs a seq2seq task (digits, date_translation); the task '{}' wants a list of layers",
             first.path, e.data.task);
  return std::make_unique<Stack>(build_stack(e, task));
}

}  // namespace kiln::experiment
