#pragma once
// Kiln: everything a user of the core needs, in one include.
//   #include "kiln.hpp"

#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/variable.hpp"
#include "ops/ops.hpp"
#include "tensor/random.hpp"
#include "tensor/storage.hpp"
#include "tensor/tensor.hpp"
