#pragma once
// Thread-local switches for recording and for anomaly detection.

namespace kiln {

/// Whether ops record on the tape (true by default). Off inside a NoGradGuard.
bool grad_enabled();
void set_grad_enabled(bool enabled);

/// Nothing created in this scope records on the tape: evaluation, optimiser updates.
///   { kiln::NoGradGuard no_grad; auto y = model.forward(x); }
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Recording on or off in this scope, whatever it was outside (torch::AutoGradMode): a check that
/// differentiates inside a caller's NoGradGuard turns it back on for itself.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : prev_(grad_enabled()) { set_grad_enabled(enabled); }
  ~AutoGradMode() { set_grad_enabled(prev_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool prev_;
};

/// Anomaly mode: when on, the first op whose output (forward) or input gradient (backward) holds a
/// NaN or Inf throws a kiln::Error naming that op. Costs one pass over each tensor.
bool anomaly_enabled();
void set_anomaly_enabled(bool enabled);

class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : prev_(anomaly_enabled()) { set_anomaly_enabled(true); }
  ~DetectAnomalyGuard() { set_anomaly_enabled(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace kiln
