// Makes one C++ file of every ```cpp block of a Markdown file, so the README's code is compiled and run
// by the tests and cannot drift from the library (test docs.readme_blocks).
//
//   extract_blocks README.md out.cpp
//
// Each block becomes a function, run in order by main(), unless the line before it says
// <!-- test: toplevel --> (the block is declarations: it goes at namespace scope, in order, so later
// blocks see it). <!-- test: setup CODE --> puts CODE before the block's own lines (the variables a
// fragment assumes). Blocks' #include lines are gathered at the top. A block's error names its line.

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Block {
  int line = 0;
  bool toplevel = false;
  std::string setup, body;
};

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: extract_blocks FILE.md OUT.cpp\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "extract_blocks: cannot read " << argv[1] << "\n";
    return 2;
  }
  std::vector<Block> blocks;
  std::vector<std::string> includes;
  std::string line, previous;
  int number = 0;
  bool inside = false;
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    if (!inside && t == "```cpp") {
      Block b;
      b.line = number;
      if (starts_with(previous, "<!-- test:")) {
        const std::string spec = trim(previous.substr(10, previous.rfind("-->") - 10));
        if (spec == "toplevel") b.toplevel = true;
        else if (starts_with(spec, "setup ")) b.setup = spec.substr(6);
      }
      blocks.push_back(b);
      inside = true;
    } else if (inside && t == "```") {
      inside = false;
    } else if (inside) {
      if (starts_with(t, "#include")) includes.push_back(t);
      else blocks.back().body += line + "\n";
    }
    if (!t.empty()) previous = t;
  }
  std::ostringstream out;
  out << "// Generated from " << argv[1] << " by tests/docs/extract_blocks.cpp: do not edit.\n";
  out << "#include <cstdio>\n#include <exception>\n#include <iostream>\n#include <kiln/kiln.hpp>\n";
  for (const auto& i : includes) out << i << "\n";
  out << "\nnamespace readme {\nusing kiln::Variable;\nnamespace nn = kiln::nn;\n";
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const Block& b = blocks[i];
    out << "\n// " << argv[1] << ":" << b.line << "\n";
    if (b.toplevel)
      out << b.body;
    else
      out << "void block_" << i << "() {\n" << b.setup << "\n" << b.body << "}\n";
  }
  out << "}  // namespace readme\n\nint main() {\n  int failed = 0, ran = 0;\n";
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].toplevel) continue;
    out << "  try {\n    ++ran;\n    readme::block_" << i << "();\n  } catch (const std::exception& e) {\n    ++failed;\n"
        << "    std::cerr << \"" << argv[1] << ":" << blocks[i].line << ": the block threw: \" << e.what() << \"\\n\";\n  }\n";
  }
  out << "  std::printf(\"%d of %d code blocks of " << argv[1] << " ran (" << blocks.size() << " compiled)\\n\", ran - failed, ran);\n"
      << "  return failed == 0 ? 0 : 1;\n}\n";
  std::ofstream file(argv[2]);
  file << out.str();
  return file ? 0 : 2;
}
