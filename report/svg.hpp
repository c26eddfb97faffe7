#pragma once
// SVG figures written by Kiln for its reports (and the examples): line charts and heatmaps as text, so
// they need no image library and open in any browser. Every figure is an <svg class="kiln-figure"> whose
// data-* attributes say what it draws (Note [Render check], report/html.hpp), and each mark carries its
// value in a <title>, so a browser's tooltip shows the number.
//
//   kiln::report::LineChart c{"Loss", "step", "loss"};
//   c.series.push_back({"train", steps, losses});
//   page.figure(kiln::report::line_chart(c), "Training loss");

#include <string>
#include <vector>

namespace kiln::report {

/// Text made safe inside HTML and SVG (&, <, >, ").
std::string escape(const std::string& s);

struct Series {
  std::string name;
  std::vector<double> x, y;  ///< same length; non-finite points are left out
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;  ///< a log10 y axis (points <= 0 left out)
  int width = 640, height = 360;
};

/// The chart as an <svg>: axes with ticks, a line per series, a legend.
std::string line_chart(const LineChart& chart);

struct StripChart {
  std::string title, y_label;
  std::vector<std::string> categories;          ///< one column each, labelled under the axis
  std::vector<std::vector<double>> values;      ///< values[category]: a dot each, with their mean as a bar
  int width = 640, height = 320;
};

/// Values per category as dots, each category's mean as a bar and +-1 standard deviation as a line (the
/// replicates of each variant of a sweep).
std::string strip_chart(const StripChart& chart);

struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::vector<double>> values;  ///< values[row][column]; non-finite cells drawn grey
  std::vector<std::string> row_labels, column_labels;  ///< may be empty, or give every row (column)
  bool log_scale = false;  ///< colour by log10 (cells <= 0 drawn as the smallest positive)
  int max_width = 720;     ///< cells shrink to fit
};

/// The heatmap as an <svg>: a cell per value coloured on a perceptual scale (dark = small), with a
/// colour bar giving the scale's ends.
std::string heatmap(const Heatmap& map);

}  // namespace kiln::report
