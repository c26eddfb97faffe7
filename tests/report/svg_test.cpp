// Report figures and pages: what they draw is in their data-* attributes (Note [Render check]), text is
// escaped, and a sweep's verdict cells are marked.

#include <cmath>

#include <gtest/gtest.h>

#include "report/html.hpp"
#include "report/svg.hpp"

namespace kiln::report {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::size_t count(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

TEST(Svg, ALineChartDrawsEveryUsablePointAndEscapesItsText) {
  LineChart c{"a < b & \"c\"", "step", "loss", {{"train", {0, 1, 2, 3}, {1, 0.5, std::nan(""), 0.25}}, {"eval", {0, 3}, {0.9, 0.3}}}, false};
  const std::string svg = line_chart(c);
  EXPECT_TRUE(contains(svg, "data-series=\"2\" data-points=\"5\"")) << svg.substr(0, 300);  // the NaN is left out
  EXPECT_TRUE(contains(svg, "a &lt; b &amp; &quot;c&quot;"));
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_TRUE(contains(svg, "data-last=\"0.3\""));
  c.log_y = true;
  c.series[0].y[1] = 0;  // not on a log axis
  EXPECT_TRUE(contains(line_chart(c), "data-points=\"4\""));
}

TEST(Svg, AHeatmapHasACellPerValueAndItsRangeOnTheScale) {
  const Heatmap m{"flow", "t", "step", {{1e-8, 1e-4, 1}, {1e-6, 0.01, 10}}, {"0", "50"}, {"0", "1", "2"}, true};
  const std::string svg = heatmap(m);
  EXPECT_TRUE(contains(svg, "data-rows=\"2\" data-columns=\"3\" data-min=\"1e-08\" data-max=\"10\"")) << svg.substr(0, 300);
  EXPECT_EQ(count(svg, "<title>"), 6u);
  // The smallest cell is the scale's dark end, the largest its bright end.
  EXPECT_TRUE(contains(svg, "fill=\"#440154\"><title>1e-08</title>"));
  EXPECT_TRUE(contains(svg, "fill=\"#fde725\"><title>10</title>"));
}

TEST(Svg, AStripChartShowsEachValueAndItsCategorysMean) {
  const std::string svg = strip_chart({"final mse", "mse", {"a", "b"}, {{1, 2, 3}, {5}}});
  EXPECT_TRUE(contains(svg, "data-categories=\"2\" data-points=\"4\""));
  EXPECT_EQ(count(svg, "<circle"), 4u);
  EXPECT_TRUE(contains(svg, "<title>mean 2</title>"));
}

TEST(Page, TablesEscapeTextAndMarkVerdicts) {
  Page p("run <1>");
  p.table({"variant", "vs baseline"}, {{"x<y", "+ better (p=0.01)"}, {"z", "- worse (p=0.02)"}, {"w", "same (p=0.5)"}}, "t");
  p.figure(line_chart({"c", "x", "y", {{"s", {0, 1}, {0, 1}}}, false}), "caption & more");
  const std::string html = p.html();
  EXPECT_TRUE(contains(html, "<title>run &lt;1&gt;</title>"));
  EXPECT_TRUE(contains(html, "<td>x&lt;y</td>"));
  EXPECT_TRUE(contains(html, "<td class=\"better\">better (p=0.01)</td>"));
  EXPECT_TRUE(contains(html, "<td class=\"worse\">worse (p=0.02)</td>"));
  EXPECT_TRUE(contains(html, "<figcaption>caption &amp; more</figcaption>"));
  EXPECT_TRUE(contains(html, "data-rendered-figures")) << "the render check is in the page";
}

}  // namespace
}  // namespace kiln::report
