#pragma once
// One self-contained HTML page per run and per sweep (report.html): headings, text, tables, figures
// (inline SVG from report/svg.hpp) and preformatted text, with its style inline, so the file alone
// opens anywhere and can be mailed or archived.
//
// Note [Render check]: the page carries a few lines of script that, once the browser has laid it out,
// measure each figure's drawn marks (their bounding box and count) and write the result into the DOM:
// data-rendered="yes" on each figure and data-figures / data-rendered-figures on <body>. A headless
// browser's --dump-dom then shows whether every figure really drew (tests/report/chromium_test.sh).
//
//   kiln::report::Page page("kiln train configs/adding_lstm.yaml");
//   page.table({"step", "loss"}, {{"100", "0.02"}});
//   page.write(run_dir + "/report.html");

#include <string>
#include <vector>

namespace kiln::report {

class Page {
 public:
  explicit Page(std::string title);
  /// A section heading (h2), with an id for links.
  void heading(const std::string& text, const std::string& id = "");
  /// A paragraph of text (escaped).
  void paragraph(const std::string& text);
  /// A paragraph of HTML the caller made safe (links, emphasis).
  void raw(const std::string& html);
  /// A table; `id` names it for tests and links. Cells are text (escaped).
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::string& id = "");
  /// An SVG figure with its caption.
  void figure(const std::string& svg, const std::string& caption);
  /// Preformatted text (a config, a model summary).
  void pre(const std::string& text);
  std::string html() const;
  /// Writes html() to `path` atomically.
  void write(const std::string& path) const;

 private:
  std::string title_, body_;
};

}  // namespace kiln::report
