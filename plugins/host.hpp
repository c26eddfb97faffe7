#pragma once
// Internal: the services Kiln lends every kernel through kiln/plugin.h (GEMM and the thread pool).

#include "kiln/plugin.h"

namespace kiln::plugins {

const kiln_host& host_services();

}  // namespace kiln::plugins
