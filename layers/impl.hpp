#pragma once
// The implementation choice of layers that have fused kernels (recurrent layers, multi-head attention).

namespace kiln::nn {

/// Which implementation runs a layer: the generic graph of its ops, a fused kernel (an error when none
/// supports the call), or the fused kernel when one does (the default). A recurrent layer's fused kernel
/// is a hand-written one, else its cell compiled from its step (fusion/compiled_kernel.hpp); Compiled
/// asks for the compiled one even when a hand-written kernel exists (an error when the cell does not
/// compile).
enum class Impl { Generic, Fused, Auto, Compiled };

}  // namespace kiln::nn
