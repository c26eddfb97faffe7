#pragma once
// Compiling a cell written in generic ops (issue 18's automatic fusion, first stage): its step is traced
// once with Note [Traced steps] and split into what a fused recurrent kernel runs differently.
//
// Note [Cell programs]: a step's graph becomes
//   projections  each linear(x or a state, a parameter [or rows of it], [a bias]): the GEMMs. Those of
//                x can be hoisted out of the time loop into one GEMM over all steps, those of a state
//                batched into one GEMM per step;
//   a program    everything else, as instructions over registers that each hold one row's vector (a
//                projection's output, a state, a slice of either, the result of an elementwise op or
//                of a row's normalisation: layer_norm is Normalize then its weight and bias), or
//                a vector every row shares (a parameter such as a peephole weight, a constant). It runs
//                row by row; slices are views of their base register, so chunking gates copies nothing.
// Backward runs the program in reverse with each op's derivative rule, giving the gradients of the
// projections' outputs (whose weight, input and bias gradients are GEMMs and column sums), of the states
// (added to what the recurrent projections give) and of the shared parameters (summed over rows).
//
// What cannot be compiled is named: the op, its shape and why ("linear over a computed value (mul): a
// projection inside the step", "op 'softmax' is not one the compiler knows"); the cell then stays on the
// generic graph.
//
//   const kiln::plugins::CellProgram p = kiln::plugins::compile_cell(cell);
//   if (!p.ok()) std::cout << p.stopped << "\n";

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "layers/rnn_cell.hpp"

namespace kiln::plugins {

/// One GEMM of the step: y [B, rows] = source [B, K] W[row0 : row0 + rows]^T + b[bias0 : bias0 + rows].
struct Projection {
  static constexpr int kComputed = -2;
  int source = -1;            ///< -1: the input x; s >= 0: state s; kComputed: register source_reg
  int source_reg = -1;        ///< a value computed in the step (MGU's f h): a late projection
  int stage = 0;              ///< the program stage that first reads it (0, or a late one's: its source's + 1)
  std::string weight, bias;   ///< the cell's parameters (bias "" for none)
  std::int64_t row0 = 0, rows = 0, bias0 = 0;
};

enum class Opcode {
  LoadProjection,  ///< a: projection index
  LoadState,       ///< a: state index
  LoadParam,       ///< a: index into CellProgram::params (shared)
  Constant,        ///< imm (shared, width 1)
  Slice,           ///< a view of register a at offset
  Concat,          ///< registers a and b side by side
  Add, Sub, Mul, Div,
  Neg, Sigmoid, Tanh, Relu, Exp, Log, Sqrt, Abs,
  Pow,             ///< a^imm
  Clamp,           ///< min(max(a, imm), imm2)
  Normalize,       ///< (a - mean(a)) / sqrt(var(a) + imm) over a row's values; b: a width-1 row register
                   ///< that keeps the row's 1 / sqrt(var + eps) for backward (layer_norm without its affine part)
};

const char* opcode_name(Opcode op);

struct Instr {
  Opcode op;
  int dst = -1, a = -1, b = -1;
  std::int64_t offset = 0;
  double imm = 0, imm2 = 0;
  int stage = 0;  ///< instructions of a stage run for every row before a late projection's GEMM
};

/// A register: `width` values per row (or shared by every row), stored at `offset` of its row's (or the
/// shared) block, or a view of another register's storage (slices).
struct Register {
  std::int64_t width = 0;
  bool shared = false;
  std::int64_t offset = 0;  ///< into the row block (or the shared block, or the scratch)
  bool scratch = false;     ///< a row value backward never reads: kept in scratch, not saved
  std::int64_t grad_offset = 0;  ///< its gradient's place in a row's gradient block
  bool copy = false;             ///< a slice kept as a copy of its own, not a view (Note [Saved slices])
};

struct CellProgram {
  std::string cell;                     ///< the cell's type name
  std::int64_t input_size = 0, hidden_size = 0;
  std::size_t states = 0;
  std::vector<Projection> projections;
  std::vector<std::string> params;      ///< the parameters the program reads (shared registers)
  std::vector<std::int64_t> param_sizes;
  std::vector<Register> regs;
  std::vector<Instr> code;              ///< in order; instructions on shared registers only come first
  std::size_t shared_code = 0;          ///< how many leading instructions make shared registers
  std::vector<int> outputs;             ///< the register of each next state
  std::vector<int> loads;               ///< per projection: the instructions loading it (1: its gradient is written, not summed)
  int stages = 1;                       ///< 1 + the late projections' GEMMs between stages
  std::int64_t row_size = 0, shared_size = 0;  ///< values per (saved) row block, in the shared block
  std::int64_t scratch_size = 0, grad_size = 0; ///< a row's values backward does not read; a row's gradients
  int ops = 0;                          ///< ops in the traced step
  std::string stopped;                  ///< why it could not be compiled ("" when it was)
  bool ok() const { return stopped.empty(); }
  /// One line per instruction, for reports and tests.
  std::string listing() const;
};

/// Traces `cell`'s step (float64, batch 2) and compiles it (Note [Cell programs]).
CellProgram compile_cell(nn::RecurrentCell& cell);

/// Called between stages: forward after stage s (the caller makes the late projections of stage s + 1
/// from the saved values, rows row_size apart); backward before stage s, with every row's gradient block
/// (grad_size apart) where the caller adds the late projections' input gradients.
template <class T>
using StageFn = std::function<void(int stage, T* grads)>;

/// Runs the program forward on `rows` rows, an instruction at a time over every row (Note [Instruction by
/// instruction]). proj[p]: projection p's outputs, row r at proj[p] + r * ld_proj[p]; state[s], next[s]:
/// [rows, H] with row stride H; param[k]: params[k]'s values. `shared` [shared_size], `scratch` [rows *
/// scratch_size] and `saved` [rows * row_size] are the program's storage; backward reads shared and saved
/// (only the values a derivative rule needs are saved: Note [Cell programs]), never scratch.
template <class T>
void run_program(const CellProgram& p, std::int64_t rows, const T* const* proj, const std::int64_t* ld_proj, const T* const* state,
                 const T* const* param, T* shared, T* scratch, T* saved, T* const* next, const StageFn<T>& between = {});

/// Backward of run_program: dnext[s] [rows, H] -> dproj[p] (written, row stride ld_proj[p]), dstate[s]
/// [rows, H] (written) and dparam[k] (added to). `work` [rows * grad_size + shared_size] is scratch.
template <class T>
void run_program_backward(const CellProgram& p, std::int64_t rows, const std::int64_t* ld_proj, const T* shared, const T* saved,
                          const T* const* dnext, T* const* dproj, T* const* dstate, T* const* dparam, T* work,
                          const StageFn<T>& between = {});

}  // namespace kiln::plugins
