#include "autograd/tape.hpp"

#include <algorithm>
#include <atomic>
#include <unordered_map>

#include <fmt/format.h>

#include "autograd/grad_mode.hpp"
#include "tensor/math.hpp"

namespace kiln {
namespace {

// Leaves own their gradient buffer alone, so later accumulation may add in place.
void accumulate_owned(AutogradMeta& meta, Tensor g) {
  if (!meta.grad.defined())
    meta.grad = g.use_count() == 1 ? std::move(g) : g.clone();
  else
    math::add_(meta.grad, g);
}

// Runs meta's gradient hooks on g (Note [Gradient hooks]); a hook's replacement must match the variable.
Tensor run_hooks(const AutogradMeta& meta, Tensor g) {
  for (const auto& [id, hook] : std::vector<std::pair<std::uint64_t, std::function<Tensor(const Tensor&)>>>(meta.hooks)) {
    Tensor out = hook(g);
    if (!out.defined()) continue;
    KILN_CHECK(out.shape() == meta.shape && out.dtype() == meta.dtype,
               "gradient hook {} of a variable of shape {} {} returned a gradient of shape {} {}; a hook returns a "
               "gradient like the one it got, or nothing", id, meta.dtype, meta.shape, out.dtype(), out.shape());
    g = std::move(out);
  }
  return g;
}

// Note [Gradient-ready hooks]: the leaf's register_hook hooks first (on its gradient summed over the
// pass, now complete), then its ready hooks on the accumulated gradient, when this pass reached it.
void finish_ready_leaf(AutogradMeta& leaf) {
  if (leaf.leaf_pending) {
    Tensor g = std::move(leaf.pending);
    leaf.pending = Tensor();
    leaf.leaf_pending = false;  // finish_hooked_leaves finds nothing left
    if (g.defined()) accumulate_owned(leaf, run_hooks(leaf, std::move(g)));
  }
  if (!leaf.reached || !leaf.grad.defined()) return;
  leaf.reached = false;
  for (const auto& [id, hook] : std::vector<std::pair<std::uint64_t, std::function<void(const Tensor&)>>>(leaf.ready_hooks))
    hook(leaf.grad);
}

std::atomic<bool> any_ready_hooks{false};

thread_local std::uint32_t current_scope = 0;  // Note [Tape scopes]
thread_local bool scopes_on = false;

template <class It>
Variable record_range(const char* op, Tensor value, It first, It last, BackwardFn backward) {
  KILN_CHECK(value.defined(), "{}: produced an undefined tensor", op);
  if (anomaly_enabled() && !math::all_finite(value))
    throw Error(fmt::format("anomaly: forward of '{}' produced NaN or Inf (output shape {})", op,
                            value.shape()));
  bool any = false;
  if (backward && grad_enabled())
    for (It it = first; it != last; ++it) any = any || it->requires_grad();
  if (!any) return Variable(std::move(value));
  KILN_CHECK(is_floating(value.dtype()), "{}: a differentiable op must return float32/float64, got {}",
             op, value.dtype());

  Tape& tape = Tape::current();
  Record r;
  r.op = op;
  r.scope = current_scope;
  r.inputs.reserve(static_cast<std::size_t>(std::distance(first, last)));
  for (It it = first; it != last; ++it) {
    KILN_CHECK(it->defined(), "{}: input {} is undefined", op, r.inputs.size());
    const auto& m = it->meta();
    KILN_CHECK(!m || m->node == 0 || m->tape == &tape,
               "{}: input {} was recorded on another thread's tape", op, r.inputs.size());
    r.inputs.push_back(RecordInput{m, it->shape(), it->dtype(), {}});
    if (tracing_details() && !it->requires_grad()) r.inputs.back().constant = it->value();
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->shape = value.shape();
  meta->dtype = value.dtype();
  meta->tape = &tape;
  r.output = meta;
  r.backward = std::move(backward);
  meta->node = tape.append(std::move(r));
  return Variable::from_op(std::move(value), std::move(meta));
}

}  // namespace

namespace {

std::vector<std::string>& scope_names() {
  thread_local std::vector<std::string> names{""};
  return names;
}

}  // namespace

TapeScope::TapeScope(const char* what, std::int64_t index) {
  if (!scopes_on) return;
  active_ = true;
  outer_ = current_scope;
  const std::string& outer = scope_names()[outer_];
  std::string name = outer.empty() ? fmt::format("{} {}", what, index) : fmt::format("{} / {} {}", outer, what, index);
  auto& names = scope_names();
  const auto it = std::find(names.begin(), names.end(), name);
  current_scope = static_cast<std::uint32_t>(it - names.begin());
  if (it == names.end()) names.push_back(std::move(name));
}

TapeScope::~TapeScope() {
  if (active_) current_scope = outer_;
}

void set_tape_scopes(bool enabled) { scopes_on = enabled; }
bool tape_scopes() { return scopes_on; }

const std::string& tape_scope_name(std::uint32_t id) {
  const auto& names = scope_names();
  return id < names.size() ? names[id] : names[0];
}

Variable record(const char* op, Tensor value, std::initializer_list<Variable> inputs, BackwardFn backward) {
  return record_range(op, std::move(value), inputs.begin(), inputs.end(), std::move(backward));
}

Variable record(const char* op, Tensor value, const std::vector<Variable>& inputs, BackwardFn backward) {
  return record_range(op, std::move(value), inputs.begin(), inputs.end(), std::move(backward));
}

namespace {
thread_local bool trace_details = false;
}  // namespace

TraceDetails::TraceDetails() : prev_(trace_details) { trace_details = true; }
TraceDetails::~TraceDetails() { trace_details = prev_; }
bool tracing_details() { return trace_details; }

void note_attrs(const Variable& out, std::vector<double> attrs) {
  if (!trace_details || !out.requires_grad() || out.is_leaf()) return;
  Tape& tape = Tape::current();
  if (Record* r = tape.find_mutable(out.meta()->node)) r->attrs = std::move(attrs);
}

bool should_record(std::initializer_list<Variable> inputs) {
  if (!grad_enabled()) return false;
  for (const auto& v : inputs)
    if (v.requires_grad()) return true;
  return false;
}

void note_ready_hook_registered() { any_ready_hooks.store(true, std::memory_order_relaxed); }

void queue_backward_callback(std::function<void()> callback) {
  KILN_CHECK(callback != nullptr, "queue_backward_callback: needs a function");
  Tape& tape = Tape::current();
  KILN_CHECK(tape.in_backward(), "queue_backward_callback: no backward pass is running on this thread (call it from a hook)");
  tape.queue_callback(std::move(callback));
}

bool Grads::needs(std::size_t i) const { return i < rec_.inputs.size() && rec_.inputs[i].meta != nullptr; }

std::size_t Grads::size() const { return rec_.inputs.size(); }

void Grads::add(std::size_t i, Tensor g) {
  KILN_CHECK(i < rec_.inputs.size(), "{} backward: gradient for input {} but the op has {} inputs", rec_.op,
             i, rec_.inputs.size());
  const RecordInput& in = rec_.inputs[i];
  if (!in.meta) return;
  KILN_CHECK(g.defined() && g.shape() == in.shape && g.dtype() == in.dtype,
             "{} backward: gradient for input {} is {} {} but the input is {} {}", rec_.op, i,
             g.defined() ? dtype_name(g.dtype()) : "undefined", g.shape(), in.dtype, in.shape);
  if (anomaly_enabled() && !math::all_finite(g))
    throw Error(fmt::format("anomaly: backward of '{}' produced NaN or Inf in the gradient of input {} "
                            "(shape {})", rec_.op, i, in.shape));
  AutogradMeta& m = *in.meta;
  if (m.node == 0) m.reached = true;
  if (m.node == 0 && m.hooks.empty()) {
    accumulate_owned(m, std::move(g));
    return;
  }
  if (m.node == 0) {  // Note [Gradient hooks]: summed over the pass, then hooked
    Tape::current().note_hooked_leaf(in.meta);
    m.pending = m.pending.defined() ? math::add(m.pending, g) : std::move(g);
    return;
  }
  const auto* tape = static_cast<const Tape*>(m.tape);
  KILN_CHECK(tape->find(m.node) != nullptr,
             "backward: input {} of '{}' comes from a part of the graph that an earlier backward() "
             "already freed; pass retain_graph=true to the first backward() to go through it again",
             i, rec_.op);
  m.pending = m.pending.defined() ? math::add(m.pending, g) : std::move(g);
}

void Grads::add_slice(std::size_t i, const Tensor& g, int dim, std::int64_t start, std::int64_t step) {
  KILN_CHECK(i < rec_.inputs.size(), "{} backward: gradient for input {} but the op has {} inputs", rec_.op, i,
             rec_.inputs.size());
  const RecordInput& in = rec_.inputs[i];
  if (!in.meta) return;
  KILN_CHECK(g.defined() && g.dtype() == in.dtype, "{} backward: slice gradient for input {} has the wrong dtype",
             rec_.op, i);
  if (anomaly_enabled() && !math::all_finite(g))
    throw Error(fmt::format("anomaly: backward of '{}' produced NaN or Inf in the gradient of input {} "
                            "(shape {})", rec_.op, i, in.shape));
  AutogradMeta& m = *in.meta;
  if (m.node != 0) {
    const auto* tape = static_cast<const Tape*>(m.tape);
    KILN_CHECK(tape->find(m.node) != nullptr,
               "backward: input {} of '{}' comes from a part of the graph that an earlier backward() "
               "already freed; pass retain_graph=true to the first backward() to go through it again",
               i, rec_.op);
  }
  if (m.node == 0) m.reached = true;
  if (m.node == 0 && !m.hooks.empty()) Tape::current().note_hooked_leaf(in.meta);
  Tensor& slot = m.node == 0 && m.hooks.empty() ? m.grad : m.pending;
  if (!slot.defined())
    slot = zeros(in.shape, in.dtype);
  else if (slot.use_count() > 1)  // shared with another holder: accumulate into a private copy
    slot = slot.clone();
  math::add_slice_(slot, g, dim, start, step);
}

Tape& Tape::current() {
  static thread_local Tape tape;
  return tape;
}

std::size_t Tape::live_records() const {
  std::size_t n = 0;
  for (const auto& r : records_) n += r.live() ? 1 : 0;
  return n;
}

std::uint64_t Tape::append(Record r) {
  constexpr std::int64_t kCollectBytes = std::int64_t(64) << 20;
  const std::int64_t live = live_tensor_bytes();
  if (records_.size() >= collect_at_ || live > collected_bytes_ + kCollectBytes) {
    collect();
    collect_at_ = std::max<std::size_t>(1024, 2 * records_.size());
    collected_bytes_ = live_tensor_bytes();
  } else if (live < collected_bytes_) {
    collected_bytes_ = live;  // growth counts from the lowest point since the last collection
  }
  records_.push_back(std::move(r));
  return base_id_ + records_.size() - 1;
}

Record* Tape::find_mutable(std::uint64_t id) {
  if (id < base_id_ || id - base_id_ >= records_.size()) return nullptr;
  Record& r = records_[id - base_id_];
  return r.live() ? &r : nullptr;
}

const Record* Tape::find(std::uint64_t id) const {
  if (id < base_id_ || id - base_id_ >= records_.size()) return nullptr;
  const Record& r = records_[id - base_id_];
  return r.live() ? &r : nullptr;
}

void Tape::free_record(Record& r) {
  r.inputs = {};
  r.output.reset();
  r.backward = nullptr;
}

void Tape::trim() {
  // Only the front is trimmed: ids are positions from base_id_, and must never be reused while a
  // variable may still name a freed record (it would silently reach a newer one).
  while (!records_.empty() && !records_.front().live()) {
    records_.pop_front();
    ++base_id_;
  }
  if (records_.empty()) collect_at_ = 1024;
}

void Tape::collect() {
  // Newest first: freeing a record drops its hold on its inputs, which may free older ones.
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->live() && it->output.use_count() == 1) free_record(*it);
  trim();
}

void Tape::clear() {
  for (auto& r : records_) free_record(r);
  trim();
}

namespace {

// Sets a tape's in-backward flag for one pass (nested passes restore the outer one's).
class InBackward {
 public:
  explicit InBackward(bool& flag) : flag_(flag), prev_(flag) { flag_ = true; }
  ~InBackward() { flag_ = prev_; }
  InBackward(const InBackward&) = delete;
  InBackward& operator=(const InBackward&) = delete;

 private:
  bool& flag_;
  bool prev_;
};

}  // namespace

std::vector<std::pair<std::size_t, std::shared_ptr<AutogradMeta>>> Tape::ready_leaves(std::size_t last) const {
  // Note [Gradient-ready hooks]: a leaf is finished once the walk (newest first) is past the oldest
  // live record that takes it; sorted newest first, the walk pops them in order.
  std::vector<std::pair<std::size_t, std::shared_ptr<AutogradMeta>>> out;
  if (!any_ready_hooks.load(std::memory_order_relaxed)) return out;
  std::unordered_map<const AutogradMeta*, std::size_t> seen;
  for (std::size_t i = 0; i <= last; ++i) {
    const Record& r = records_[i];
    if (!r.live()) continue;
    for (const auto& in : r.inputs)
      if (in.meta && in.meta->node == 0 && !in.meta->ready_hooks.empty() && seen.emplace(in.meta.get(), i).second) {
        in.meta->reached = false;
        out.emplace_back(i, in.meta);
      }
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

void Tape::walk(std::size_t last, bool retain_graph, std::vector<std::size_t>& visited) {
  const auto ready = ready_leaves(last);
  std::size_t next = 0;
  for (std::size_t i = last + 1; i-- > 0;) {
    Record& r = records_[i];
    if (r.live() && r.output->pending.defined()) {
      Tensor g = std::move(r.output->pending);
      r.output->pending = Tensor();
      if (!r.output->hooks.empty()) g = run_hooks(*r.output, std::move(g));
      if (r.output->retain) accumulate_owned(*r.output, g);
      Grads grads(r, retain_graph);
      r.backward(g, grads);
      visited.push_back(i);
    }
    while (next < ready.size() && ready[next].first >= i) finish_ready_leaf(*ready[next++].second);
  }
}

void Tape::backward(const std::shared_ptr<AutogradMeta>& root, const Tensor& seed, bool retain_graph) {
  InBackward running(in_backward_);
  if (root->node == 0) {  // a leaf: its gradient is the seed
    accumulate_owned(*root, run_hooks(*root, seed));
    root->reached = true;
    try {
      finish_ready_leaf(*root);
      run_callbacks();
    } catch (...) {
      callbacks_.clear();
      throw;
    }
    return;
  }
  KILN_CHECK(root->tape == this, "backward: the graph was recorded on another thread");
  KILN_CHECK(find(root->node) != nullptr,
             "backward: the graph of this output was already freed by an earlier backward(); pass "
             "retain_graph=true to the first backward() to run backward twice");
  NoGradGuard no_grad;  // closures compute with plain math; nothing they do is recorded
  const std::size_t last = root->node - base_id_;
  std::vector<std::size_t> visited;
  root->pending = seed;
  try {
    walk(last, retain_graph, visited);
    finish_hooked_leaves();
    run_callbacks();
  } catch (...) {
    callbacks_.clear();
    for (const auto& leaf : hooked_leaves_) leaf->pending = Tensor(), leaf->leaf_pending = false;
    hooked_leaves_.clear();
    for (std::size_t i = 0; i <= last; ++i) {
      Record& r = records_[i];
      if (r.live()) r.output->pending = Tensor();
      for (auto& in : r.inputs)
        if (in.meta) in.meta->pending = Tensor(), in.meta->reached = false;
    }
    throw;
  }
  if (!retain_graph) {
    for (std::size_t i : visited) free_record(records_[i]);
    trim();
  }
}

void Tape::run_callbacks() {
  while (!callbacks_.empty()) {  // a callback may queue another
    std::vector<std::function<void()>> now;
    now.swap(callbacks_);
    for (auto& callback : now) callback();
  }
}

void Tape::note_hooked_leaf(const std::shared_ptr<AutogradMeta>& leaf) {
  if (leaf->leaf_pending) return;
  leaf->leaf_pending = true;
  hooked_leaves_.push_back(leaf);
}

void Tape::finish_hooked_leaves() {
  std::vector<std::shared_ptr<AutogradMeta>> leaves;
  leaves.swap(hooked_leaves_);
  std::size_t done = 0;
  try {
    for (; done < leaves.size(); ++done) {
      AutogradMeta& leaf = *leaves[done];
      Tensor g = std::move(leaf.pending);
      leaf.pending = Tensor();
      leaf.leaf_pending = false;
      if (g.defined()) accumulate_owned(leaf, run_hooks(leaf, std::move(g)));
    }
  } catch (...) {  // a hook threw: the other leaves get nothing from this pass
    for (; done < leaves.size(); ++done) leaves[done]->pending = Tensor(), leaves[done]->leaf_pending = false;
    throw;
  }
}

}  // namespace kiln
