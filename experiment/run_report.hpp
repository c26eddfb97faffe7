#pragma once
// The HTML report of a run (report.html in its folder, written when `kiln train` ends, or again by
// `kiln report RUN`): the run's results and the path each recurrent layer took, loss and metric curves,
// the gradient flow through time as a heatmap over training, spectra and gate saturation over training
// (experiment/instruments.hpp), the model summary and the config. Figures are SVG written by Kiln
// (report/svg.hpp); the page needs nothing but itself.

#include <string>

namespace kiln::experiment {

/// Writes `run_dir`/report.html from the files of the run folder; returns its path. Files a run has not
/// written yet (a run still going) leave their sections out; a corrupt one is an error naming it.
std::string write_run_report(const std::string& run_dir);

}  // namespace kiln::experiment
