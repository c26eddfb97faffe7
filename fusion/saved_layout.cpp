#include "fusion/saved_layout.hpp"

#include <algorithm>

namespace kiln::plugins {

// Note [Gradients in saved memory]: backward keeps a block of kBlock steps' projection gradients for the
// block's GEMMs (dX, dW). In the last backward (KILN_LAST_BACKWARD: the saved memory is the kernel's to
// reuse) they are written into the block's own saved rows instead of a work buffer, as the hand-written
// kernels write their gate gradients over their saved gates, when
//  - a row's saved block has room for them, a state projection whose gradient must equal an x
//    projection's sharing its columns: both are read only by one add of the two (LSTM's gates are
//    W_ih x + W_hh h), so the add's backward gives both the same values, bit for bit;
//  - a row's step writes them after its last read of its saved values: each projection is loaded
//    once (its gradient is written, not summed) and every load comes before the first instruction
//    whose derivative reads saved values (backward runs the program in reverse);
//  - the program has one stage (no late projections reading saved values between stages).
// The block's GEMMs then read the gradients with a row stride of the saved block.
SavedLayout saved_layout(const CellProgram& p) {
  SavedLayout out;
  std::vector<int> xs, ss;  // projections of x, of states
  std::int64_t x_rows = 0;
  bool late = false;        // a late projection (of a value computed in the step)
  for (std::size_t k = 0; k < p.projections.size(); ++k) {
    const int src = p.projections[k].source;
    if (src == -1) xs.push_back(static_cast<int>(k)), x_rows += p.projections[k].rows;
    else if (src >= 0) ss.push_back(static_cast<int>(k));
    else late = true;
  }
  const std::size_t P = p.projections.size();
  out.dcol.assign(P, -1);
  if (p.stages != 1 || late) return out;
  // Forward likewise (Note [Gradients in saved memory]): a block of steps' projections of x go into the
  // block's saved rows when a row's step reads them (its loads) before it writes any saved value.
  {
    std::size_t first_write = p.code.size(), last_x_load = 0;
    bool loads_x = false;
    for (std::size_t c = p.shared_code; c < p.code.size(); ++c) {
      const Instr& i = p.code[c];
      const Register& r = p.regs[static_cast<std::size_t>(i.dst)];
      if (i.op == Opcode::LoadProjection && p.projections[static_cast<std::size_t>(i.a)].source == -1) last_x_load = c, loads_x = true;
      if (!r.shared && !r.scratch && (i.op != Opcode::Slice || r.copy)) first_write = std::min(first_write, c);
    }
    out.x_projections = loads_x && last_x_load < first_write && x_rows <= p.row_size;
  }
  std::vector<int> reg(P, -1);
  std::size_t first_compute = p.code.size(), last_load = 0;
  for (std::size_t c = p.shared_code; c < p.code.size(); ++c) {
    const Instr& i = p.code[c];
    if (i.op == Opcode::LoadProjection) {
      reg[static_cast<std::size_t>(i.a)] = i.dst, last_load = c;
    } else if (i.op != Opcode::LoadState && i.op != Opcode::LoadParam && i.op != Opcode::Constant && i.op != Opcode::Slice) {
      first_compute = std::min(first_compute, c);
    }
  }
  for (std::size_t k = 0; k < P; ++k)
    if (k >= p.loads.size() || p.loads[k] != 1) return out;
  if (last_load > first_compute) return out;
  // The instructions reading register r (outputs count as readers).
  auto readers = [&](int r) {
    std::vector<std::size_t> found;
    for (std::size_t c = 0; c < p.code.size(); ++c) {
      const Opcode op = p.code[c].op;
      const bool reads_registers = op != Opcode::LoadProjection && op != Opcode::LoadState && op != Opcode::LoadParam && op != Opcode::Constant;
      if (reads_registers && (p.code[c].a == r || p.code[c].b == r)) found.push_back(c);
    }
    for (int o : p.outputs)
      if (o == r) found.push_back(p.code.size());
    return found;
  };
  std::int64_t col = 0;
  for (int k : xs) out.dcol[static_cast<std::size_t>(k)] = col, col += p.projections[static_cast<std::size_t>(k)].rows;
  for (int k : ss) {
    const auto rs = readers(reg[static_cast<std::size_t>(k)]);
    for (int kx : xs) {
      const auto rx = readers(reg[static_cast<std::size_t>(kx)]);
      const bool summed = rs.size() == 1 && rx == rs && rs[0] < p.code.size() && p.code[rs[0]].op == Opcode::Add &&
                          p.projections[static_cast<std::size_t>(kx)].rows == p.projections[static_cast<std::size_t>(k)].rows;
      if (summed) out.dcol[static_cast<std::size_t>(k)] = out.dcol[static_cast<std::size_t>(kx)];
    }
    if (out.dcol[static_cast<std::size_t>(k)] < 0) out.dcol[static_cast<std::size_t>(k)] = col, col += p.projections[static_cast<std::size_t>(k)].rows;
  }
  out.gradients = col <= p.row_size;
  return out;
}

}  // namespace kiln::plugins
