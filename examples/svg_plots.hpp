#pragma once
// SVG figures for the examples: an attention heatmap with token labels and a line chart. SVG is text, so
// it needs no image library and opens in any browser. Files are written atomically.

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "io/atomic_file.hpp"

namespace svg {

// A token as a label: a space shows as a visible-space sign.
inline std::string token(const std::string& t) { return t == " " ? "\u2423" : t; }

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

/// weights[r][c] in [0, 1] as a grid of cells, darker = larger; rows labelled by outputs, columns by inputs.
inline void heatmap(const std::string& path, const std::vector<std::vector<double>>& weights,
                    const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                    const std::string& title) {
  const int cell = 22, left = 40, top = 60;
  const int rows = static_cast<int>(weights.size()), cols = rows ? static_cast<int>(weights[0].size()) : 0;
  const int width = left + cols * cell + 20, height = top + rows * cell + 20;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"monospace\" font-size=\"13\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" font-size=\"14\">{}</text>\n",
      width, height, left, escape(title));
  for (int c = 0; c < cols && c < static_cast<int>(col_labels.size()); ++c)
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + c * cell + cell / 2, top - 8,
                     escape(token(col_labels[static_cast<std::size_t>(c)])));
  for (int r = 0; r < rows; ++r) {
    if (r < static_cast<int>(row_labels.size()))
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 8, top + r * cell + cell / 2 + 5,
                       escape(token(row_labels[static_cast<std::size_t>(r)])));
    for (int c = 0; c < cols; ++c) {
      const double w = std::clamp(weights[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)], 0.0, 1.0);
      const int shade = static_cast<int>(255 * (1 - w));
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"rgb({},{},255)\"><title>{:.3f}</title></rect>\n",
                       left + c * cell, top + r * cell, cell, cell, shade, shade, w);
    }
  }
  kiln::io::write_file_atomic(path, s + "</svg>\n");
}

struct Series {
  std::string name;
  std::vector<double> y;
};

/// y against x for each series, with axes, ticks and a legend; y from 0 to y_max.
inline void line_chart(const std::string& path, const std::vector<double>& x, const std::vector<Series>& series,
                       const std::string& title, const std::string& x_label, const std::string& y_label, double y_max = 1) {
  const int width = 640, height = 400, left = 60, right = 170, top = 40, bottom = 50;
  const double x0 = x.empty() ? 0 : x.front(), x1 = x.empty() ? 1 : std::max(x.back(), x0 + 1e-9);
  auto px = [&](double v) { return left + (v - x0) / (x1 - x0) * (width - left - right); };
  auto py = [&](double v) { return height - bottom - v / y_max * (height - top - bottom); };
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"};
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
      width, height, left, escape(title));
  s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n", left, py(0), px(x1), py(0));
  s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n", left, py(0), left, py(y_max));
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:g}</text>\n", left - 6, py(v) + 4, v);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ddd\"/>\n", left, py(v), px(x1), py(v));
  }
  for (double v : x) s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:g}</text>\n", px(v), py(0) + 16, v);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (left + px(x1)) / 2, height - 12, escape(x_label));
  s += fmt::format("<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\n",
                   (top + py(0)) / 2, (top + py(0)) / 2, escape(y_label));
  for (std::size_t k = 0; k < series.size(); ++k) {
    std::string points;
    for (std::size_t i = 0; i < x.size() && i < series[k].y.size(); ++i)
      points += fmt::format("{:.1f},{:.1f} ", px(x[i]), py(series[k].y[i]));
    const char* colour = colours[k % 5];
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", points, colour);
    s += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n", px(x1) + 10, top + 16 + 18 * static_cast<int>(k),
                     colour, escape(series[k].name));
  }
  kiln::io::write_file_atomic(path, s + "</svg>\n");
}

}  // namespace svg
