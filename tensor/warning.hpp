#pragma once
// Warnings: things a user should know that are not errors, e.g. a fused kernel declining a call and
// the layer running the generic graph instead. Each distinct message is printed once, to stderr.

#include <string>

namespace kiln {

/// Prints "kiln: warning: <message>" to stderr the first time this message is given; returns whether
/// it printed.
bool warn_once(const std::string& message);
/// Prints "kiln: <message>" to stderr the first time: what Kiln decided for you (e.g. a graph pass
/// swapping a fused kernel into a cell).
bool note_once(const std::string& message);

}  // namespace kiln
