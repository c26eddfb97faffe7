#pragma once
// Instruments for recurrent research (the experiment file's `instruments:` section): what a run records
// about each recurrent layer every `every` steps, on the task's first evaluation batch (in eval mode, the
// generators untouched, so a run's training is the same with or without them):
//   - gradient flow: ||dL/dh_t|| for every step t of every layer and direction (Note [Gradient flow]);
//   - spectra by LAPACK (tensor/linalg.hpp): the singular values and spectral radius of each recurrent
//     weight block (weight_hh's gate blocks and any other recurrent matrix of the cell), and of the step
//     Jacobian ds_t/ds_{t-1} of the cell's whole state (h, and c for an LSTM) at a few steps of the first
//     sequence, taken by autograd in one backward pass;
//   - gate saturation: per sigmoid and tanh of the cell's step (Note [Activation probe]), the share of
//     outputs near their bounds (a sigmoid below 0.1 or above 0.9, a tanh beyond +-0.9).
// Each record is a line of instruments.jsonl in the run folder.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "experiment/build_model.hpp"
#include "experiment/experiment.hpp"

namespace kiln::experiment {

struct MatrixSpectrum {
  std::string name;  ///< "weight_hh[gate 0]", "step Jacobian t=24"
  std::int64_t step = -1;  ///< the sequence step of a Jacobian; -1 for a weight
  std::vector<double> singular_values;  ///< largest first
  double radius = 0;  ///< max |eigenvalue|
};

struct Saturation {
  std::string op;  ///< "sigmoid #1": the first sigmoid of a step
  std::int64_t width = 0;  ///< outputs per row
  double fraction = 0;  ///< the share near the bounds
};

struct LayerInstruments {
  std::string name;  ///< "model[0] LSTM l0", "model[2] GRU l1_reverse"
  std::string path;  ///< what computed the gradient flow: "generic" or a kernel
  std::vector<double> grad_norms;  ///< ||dL/dh_t|| per step, time order
  std::vector<MatrixSpectrum> spectra;
  std::vector<Saturation> saturation;
};

struct InstrumentRecord {
  std::int64_t step = 0;
  std::vector<LayerInstruments> layers;
};

/// Records the instruments of `model` on `batch`; `loss_of` gives the loss of the model's output.
InstrumentRecord record_instruments(Model& model, const Batch& batch, const std::function<Variable(const Variable&)>& loss_of,
                                    const InstrumentSpec& spec, std::int64_t step);

struct PathTiming {
  std::string path;  ///< "generic" or "fused" (each layer's kernel, where it has one)
  double ms = 0;     ///< one forward and backward pass on the batch, the fastest of a few
};

/// The time of a forward and backward pass of `model` on `batch` with every recurrent layer on the
/// generic graph, and with each on the kernel it chooses (when any does): the generic-vs-fused timing of
/// a run's report. Leaves the layers' impl, the gradients and the generators as they were.
std::vector<PathTiming> time_paths(Model& model, const Batch& batch, const std::function<Variable(const Variable&)>& loss_of);

/// (name, path) of every recurrent layer of `model`: "fused: KERNEL (PLUGIN)" when its forward runs a
/// kernel, else "generic".
std::vector<std::pair<std::string, std::string>> layer_paths(Model& model);

/// A record as one JSON line, and back (a line that is not one is an error naming it).
std::string to_json_line(const InstrumentRecord& r);
InstrumentRecord from_json_line(const std::string& line);

}  // namespace kiln::experiment
