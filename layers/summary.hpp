#pragma once
// summary(): a Keras-like table of a model's layers, their output shapes and parameter counts.
//
//   std::cout << kiln::nn::summary(model, example_input);
//
//   Model: Sequential
//   ______________________________________________________________________
//    Layer (type)                       Output Shape              Param #
//   ======================================================================
//    0 (Embedding)                      [32, 20, 10]                  500
//    1 (RNN)                            [32, 10]                      160
//    2 (Linear)                         [32, 1]                        11
//   ======================================================================
//   Total params: 671
//
// The model runs once on the example input with a forward hook on each of its children, so every child
// it calls as (*child)(x) shows the shape of its output (Kiln's own modules call their children so; a
// child called with several inputs, or as child->forward(x), shows "-"). Any model other than a
// Sequential ends with its own output's shape.

#include <string>

#include "layers/module.hpp"

namespace kiln::nn {

/// Runs `model` on `example` (without recording, in the model's current train/eval mode) and
/// returns the table.
std::string summary(Module& model, const Variable& example);
/// The table without output shapes, for models whose forward takes more than one input.
std::string summary(const Module& model);

}  // namespace kiln::nn
