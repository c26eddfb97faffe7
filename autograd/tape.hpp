#pragma once
// The tape and the API for writing a differentiable op.
//
// Note [The tape]: every op whose inputs need a gradient appends one Record (op name, inputs, output,
// backward closure) to a thread-local, append-only tape. backward() walks the tape in reverse from
// the root's record: a record whose output holds a pending gradient runs its closure, which adds
// gradients to its inputs. Records are visited in a fixed order, so the sums are bit-reproducible.
// Afterwards (unless retain_graph) the walked records are freed, releasing every saved tensor.
// Records whose output can no longer receive a gradient (nobody holds the output) are collected
// while recording, so a loop that never calls backward does not grow the tape either.
//
// Writing an op (see ops/unary.cpp for many):
//   // y = exp(x); dx = dy * y
//   Variable exp(const Variable& x) {
//     Tensor y = ...;                                    // forward, evaluated now
//     return record("exp", y, {x}, [y](const Tensor& dy, Grads& g) {
//       if (g.needs(0)) g.add(0, mul(dy, y));            // only what backward reads is captured
//     });
//   }

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln {

struct AutogradMeta {
  Tensor grad;     // accumulated gradient (leaves, and non-leaves with retain_grad)
  Tensor pending;  // gradient flowing into a non-leaf during backward (or a hooked leaf: Note [Gradient hooks])
  // Note [Gradient hooks]: Variable::register_hook's functions, run in order on this variable's gradient
  // once a backward pass has finished it (a non-leaf's before its record's backward runs; a leaf's, summed
  // over the pass, at its end, before it is added to grad). A hook may return a replacement.
  std::vector<std::pair<std::uint64_t, std::function<Tensor(const Tensor&)>>> hooks;
  std::uint64_t next_hook = 1;
  bool leaf_pending = false;  // a hooked leaf on its tape's list to finish
  // Note [Gradient-ready hooks]: Variable::register_post_accumulate_grad_hook's functions, run once the
  // walk is past the last record that feeds this leaf; `reached` says this pass added to it.
  std::vector<std::pair<std::uint64_t, std::function<void(const Tensor&)>>> ready_hooks;
  bool reached = false;
  Shape shape;
  DType dtype = kFloat32;
  std::uint64_t node = 0;          // id of the record that made it; 0 for a leaf
  const void* tape = nullptr;      // the tape holding that record
  bool retain = false;
};

struct Record;

/// What a backward closure receives to deliver input gradients.
class Grads {
 public:
  /// Whether input `i` needs a gradient (skip computing it otherwise).
  bool needs(std::size_t i) const;
  /// Adds `g` (shape of input i) to input i's gradient.
  void add(std::size_t i, Tensor g);
  /// Adds `g` into the slice start, start+step, ... along `dim` of input i's gradient, in place,
  /// without materialising a full-size gradient: slicing T steps out of a sequence costs O(T), not
  /// O(T^2), in backward.
  void add_slice(std::size_t i, const Tensor& g, int dim, std::int64_t start, std::int64_t step);
  std::size_t size() const;
  /// False when this is the record's last backward (the tape frees it afterwards): a closure may then
  /// reuse what it saved as scratch.
  bool retains_graph() const { return retain_; }

 private:
  friend class Tape;
  Grads(const Record& r, bool retain) : rec_(r), retain_(retain) {}
  const Record& rec_;
  bool retain_;
};

using BackwardFn = std::function<void(const Tensor& grad_output, Grads& grads)>;

struct RecordInput {
  std::shared_ptr<AutogradMeta> meta;  // null when this input needs no gradient
  Shape shape;
  DType dtype = kFloat32;
  Tensor constant;  // the value of an input that needs no gradient, kept while tracing (Note [Traced steps])
};

struct Record {
  const char* op = nullptr;
  std::uint32_t scope = 0;  ///< the TapeScope it was made in (tape_scope_name), 0 for none
  std::vector<RecordInput> inputs;
  std::shared_ptr<AutogradMeta> output;
  BackwardFn backward;
  std::vector<double> attrs;  ///< while tracing: what else the op was called with (slice: dim, start, step)
  bool live() const { return output != nullptr; }
};

/// Note [Traced steps]: a compiler of recorded graphs (fusion/cell_program.hpp) needs what the backward
/// closures hide: the values of constant operands (the 1 of 1 - f) and the ops' own arguments (where a
/// slice starts). While a TraceDetails is alive on a thread, the records made there keep both
/// (RecordInput::constant, Record::attrs); otherwise nothing extra is kept.
class TraceDetails {
 public:
  TraceDetails();
  ~TraceDetails();
  TraceDetails(const TraceDetails&) = delete;
  TraceDetails& operator=(const TraceDetails&) = delete;

 private:
  bool prev_;
};
bool tracing_details();
/// Attaches an op's arguments to the record that made `out` (while tracing_details(); a no-op otherwise).
void note_attrs(const Variable& out, std::vector<double> attrs);

/// Called when a leaf gets its first gradient-ready hook: from then on backward looks for such leaves.
void note_ready_hook_registered();

/// Runs `callback` when the backward pass running on this thread has finished (after every gradient
/// and hook), as PyTorch's queue_callback: for a hook that starts work the pass must end with (the
/// wait for dist::DataParallel's all-reduces). Only during backward; a pass that fails drops them.
void queue_backward_callback(std::function<void()> callback);

/// Makes the result of an op: checks it for anomalies and, when grad mode is on and some input
/// requires grad, appends a record with `backward` to the tape.
Variable record(const char* op, Tensor value, std::initializer_list<Variable> inputs, BackwardFn backward);
Variable record(const char* op, Tensor value, const std::vector<Variable>& inputs, BackwardFn backward);

/// True when an op on these inputs would record (grad mode on and one of them requires grad).
bool should_record(std::initializer_list<Variable> inputs);

/// Note [Tape scopes]: records made inside a TapeScope carry its name (nested ones joined with " / "),
/// so a graph export can group them: `kiln graph` draws each time step of a recurrent layer in a box of
/// its own. Off by default, when a scope costs one branch; set_tape_scopes(true) turns them on for the
/// calling thread.
///   { kiln::TapeScope step("step", t); state = cell.step(x_t, state); }
class TapeScope {
 public:
  TapeScope(const char* what, std::int64_t index);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  std::uint32_t outer_ = 0;
  bool active_ = false;
};
void set_tape_scopes(bool enabled);
bool tape_scopes();
/// The name of scope `id` ("" for 0).
const std::string& tape_scope_name(std::uint32_t id);

/// The calling thread's tape.
class Tape {
 public:
  static Tape& current();

  /// Live records (not yet freed by backward or collected).
  std::size_t live_records() const;
  /// Records held, freed ones included until they can be trimmed.
  std::size_t size() const { return records_.size(); }
  /// The records, oldest first (ids first_id() ...), for inspection and graph export.
  const std::deque<Record>& records() const { return records_; }
  std::uint64_t first_id() const { return base_id_; }
  /// Frees every record: all gradients recorded so far become unreachable.
  void clear();

  // Used by Variable and record(); not for op writers.
  std::uint64_t append(Record r);
  const Record* find(std::uint64_t id) const;
  Record* find_mutable(std::uint64_t id);
  void backward(const std::shared_ptr<AutogradMeta>& root, const Tensor& seed, bool retain_graph);
  /// queue_backward_callback's tape side: true when a backward pass is running here.
  bool in_backward() const { return in_backward_; }
  void queue_callback(std::function<void()> callback) { callbacks_.push_back(std::move(callback)); }
  void collect();
  /// A hooked leaf received gradient in this backward pass: its hooks run, and its gradient is added, at the end.
  void note_hooked_leaf(const std::shared_ptr<AutogradMeta>& leaf);

 private:
  void finish_hooked_leaves();
  void run_callbacks();
  void walk(std::size_t last, bool retain_graph, std::vector<std::size_t>& visited);
  std::vector<std::pair<std::size_t, std::shared_ptr<AutogradMeta>>> ready_leaves(std::size_t last) const;
  std::vector<std::shared_ptr<AutogradMeta>> hooked_leaves_;
  std::vector<std::function<void()>> callbacks_;
  bool in_backward_ = false;
  void free_record(Record& r);
  void trim();
  std::deque<Record> records_;
  std::uint64_t base_id_ = 1;
  std::size_t collect_at_ = 1024;
  // Note [Collecting by memory]: a fused layer records a few nodes that hold large saved buffers, so
  // the tape is also collected when live tensor memory has grown by kCollectBytes (64 MiB) since the
  // last collection, or since its lowest point after it: forward-only loops then reuse the
  // allocator's blocks instead of touching fresh pages.
  std::int64_t collected_bytes_ = 0;
};

}  // namespace kiln
