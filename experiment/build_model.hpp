#pragma once
// The model of an experiment: a Sequential of its layers in order (batch-first), every "auto" size
// resolved from the task, and each layer checked against what reaches it. A mismatch is an error naming
// the layer's path in the file: "model[0].recurrent: the task gives token ids; start with an embedding".

#include <memory>

#include "experiment/experiment.hpp"
#include "experiment/tasks.hpp"
#include "layers/sequential.hpp"

namespace kiln::experiment {

std::shared_ptr<nn::Sequential> build_model(const Experiment& e, const Task& task);

}  // namespace kiln::experiment
