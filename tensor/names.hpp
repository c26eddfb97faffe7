#pragma once
// Suggestions for a mistyped name: "unknown cell 'lstn' (did you mean 'lstm'?)".

#include <string>
#include <vector>

namespace kiln {

/// The candidate nearest `name` in edit distance if it is a near miss (at most 2 edits), else "".
std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" for closest_name's answer, or "" when there is none.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace kiln
