#pragma once
// Where a compiled kernel keeps its projections in saved memory (fusion/compiled_kernel.cpp, Note
// [Gradients in saved memory]): decided once per cell program.

#include <cstdint>
#include <vector>

#include "fusion/cell_program.hpp"

namespace kiln::plugins {

struct SavedLayout {
  std::vector<std::int64_t> dcol;  ///< per projection: its gradient's column in a row's saved block (-1: not there)
  bool gradients = false;          ///< the last backward keeps the projections' gradients in the saved rows
  bool x_projections = false;      ///< forward keeps its projections of x in the saved rows
};

SavedLayout saved_layout(const CellProgram& p);

}  // namespace kiln::plugins
