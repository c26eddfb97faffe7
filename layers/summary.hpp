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
// For a Sequential model each child is run in turn on the example input to show its output shape;
// for any other model the children are listed with their parameter counts and the model's own
// output shape is shown on the last line.

#include <string>

#include "layers/module.hpp"

namespace kiln::nn {

/// Runs `model` on `example` (without recording, in the model's current train/eval mode) and
/// returns the table.
std::string summary(Module& model, const Variable& example);
/// The table without output shapes, for models whose forward takes more than one input.
std::string summary(const Module& model);

}  // namespace kiln::nn
