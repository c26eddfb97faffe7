#include "sequence/research_layers.hpp"

namespace kiln::nn {

LayerNormLSTM::LayerNormLSTM(RecurrentOptions o)
    : Recurrent("LayerNormLSTM", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions&) {
        return std::make_shared<LayerNormLSTMCell>(in, h);
      }) {}

PeepholeLSTM::PeepholeLSTM(RecurrentOptions o)
    : Recurrent("PeepholeLSTM", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions& lo) {
        return std::make_shared<PeepholeLSTMCell>(in, h, lo.bias_);
      }) {}

MGU::MGU(RecurrentOptions o)
    : Recurrent("MGU", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions& lo) {
        return std::make_shared<MGUCell>(in, h, lo.bias_);
      }) {}

}  // namespace kiln::nn
